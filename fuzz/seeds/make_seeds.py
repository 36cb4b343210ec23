#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ and the public keys the JWS target checks with
(fuzz/seeds/keys.jwks.json). Run once by hand (python `cryptography`); the output is committed.

The private keys live only while this runs: every seed token is signed by a key in
keys.jwks.json but expired at the targets' fixed "now", so a target that ever accepts a
token has met a forgery (or a broken claim check), which it reports as a crash.
"""

import base64
import json
import os
import pathlib

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives import hashes

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE.parent / "corpus"
ISSUER = "https://issuer.fuzz.invalid"
AUDIENCE = "players-api"
NOW = 1_900_000_000  # the targets' fixed clock


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n: int, size: int | None = None) -> str:
    size = size or (n.bit_length() + 7) // 8
    return b64(n.to_bytes(size, "big"))


ec_key = ec.generate_private_key(ec.SECP256R1())
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ed_key = ed25519.Ed25519PrivateKey.generate()

ec_pub = ec_key.public_key().public_numbers()
rsa_pub = rsa_key.public_key().public_numbers()
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ed_pub = ed_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

JWKS = {
    "keys": [
        {"kty": "EC", "crv": "P-256", "x": uint(ec_pub.x, 32), "y": uint(ec_pub.y, 32),
         "kid": "ec-1", "alg": "ES256", "use": "sig"},
        {"kty": "RSA", "n": uint(rsa_pub.n), "e": uint(rsa_pub.e),
         "kid": "rsa-1", "alg": "RS256", "use": "sig"},
        {"kty": "OKP", "crv": "Ed25519", "x": b64(ed_pub), "kid": "ed-1", "alg": "EdDSA",
         "use": "sig"},
    ]
}


def sign(alg: str, kid: str, claims: dict, typ: str = "at+jwt") -> str:
    header = b64(json.dumps({"alg": alg, "typ": typ, "kid": kid}).encode())
    payload = b64(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    if alg == "ES256":
        der = ec_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "RS256":
        sig = rsa_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "PS256":
        sig = rsa_key.sign(signing_input, padding.PSS(padding.MGF1(hashes.SHA256()), 32),
                           hashes.SHA256())
    else:
        sig = ed_key.sign(signing_input)
    return f"{header}.{payload}.{b64(sig)}"


def claims(**over) -> dict:
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc-a", "client_id": "svc-a",
            "scope": "players:read players:write", "jti": "j-1",
            "iat": NOW - 7200, "exp": NOW - 3600}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def write(target: str, name: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main() -> None:
    (HERE / "keys.jwks.json").write_text(json.dumps(JWKS, indent=1) + "\n")

    # jws_checks: whole tokens (valid signatures, expired), near misses, and bare claim sets.
    tokens = {
        "es256": sign("ES256", "ec-1", claims()),
        "rs256": sign("RS256", "rsa-1", claims()),
        "eddsa": sign("EdDSA", "ed-1", claims()),
        "aud-array": sign("ES256", "ec-1", claims(aud=["other", AUDIENCE])),
        "wrong-alg-for-key": sign("PS256", "rsa-1", claims()),
        "unknown-kid": sign("ES256", "ec-9", claims()),
        "typ-jwt": sign("ES256", "ec-1", claims(), typ="JWT"),
        "nbf-future": sign("ES256", "ec-1", claims(nbf=NOW + 3600, exp=NOW + 7200)),
        "no-exp": sign("ES256", "ec-1", claims(exp=None)),
    }
    for name, token in tokens.items():
        write("jws_checks", f"token-{name}", token.encode())
    h, p, s = tokens["es256"].split(".")
    write("jws_checks", "token-bad-sig", f"{h}.{p}.{s[:-4]}AAAA".encode())
    write("jws_checks", "token-jku", (b64(json.dumps(
        {"alg": "ES256", "typ": "at+jwt", "kid": "ec-1", "jku": "https://evil"}).encode())
        + f".{p}.{s}").encode())
    write("jws_checks", "token-alg-none", (b64(b'{"alg":"none","typ":"at+jwt","kid":"ec-1"}')
                                           + f".{p}.").encode())
    write("jws_checks", "token-two-parts", f"{h}.{p}".encode())
    for name, c in {
        "valid": claims(exp=NOW + 600),
        "exp-float": claims(exp=NOW + 600.5),
        "exp-string": claims(exp="soon"),
        "exp-huge": claims(exp=2**63 - 1, nbf=-(2**63)),
        "scope-array": claims(exp=NOW + 600, scope=["a", "b"]),
        "iss-slash": claims(exp=NOW + 600, iss=ISSUER + "/"),
    }.items():
        write("jws_checks", f"claims-{name}", json.dumps(c).encode())

    # jwks: the key set, each key alone, and near misses.
    write("jwks", "full", json.dumps(JWKS).encode())
    for key in JWKS["keys"]:
        write("jwks", f"one-{key['kid']}", json.dumps({"keys": [key]}).encode())
    ec_entry = JWKS["keys"][0]
    for name, doc in {
        "empty": {"keys": []},
        "no-keys": {"kid": "x"},
        "hs256": {"keys": [{"kty": "oct", "k": b64(os.urandom(32)), "kid": "h", "alg": "HS256"}]},
        "no-kid": {"keys": [{k: v for k, v in ec_entry.items() if k != "kid"}]},
        "use-enc": {"keys": [dict(ec_entry, use="enc")]},
        "alg-mismatch": {"keys": [dict(ec_entry, alg="RS256")]},
        "short-x": {"keys": [dict(ec_entry, x=ec_entry["x"][:10])]},
        "dup-kid": {"keys": [ec_entry, dict(JWKS["keys"][1], kid="ec-1")]},
    }.items():
        write("jwks", name, json.dumps(doc).encode())
    write("jwks", "not-json", b'{"keys": [')

    # token_request: Content-Type, Authorization, body.
    basic = base64.b64encode(b"svc-a:s3cret").decode()
    for name, raw in {
        "form-basic": f"application/x-www-form-urlencoded\nBasic {basic}\n"
                      "grant_type=client_credentials&scope=players%3Aread",
        "form-post": "application/x-www-form-urlencoded\n\n"
                     "grant_type=client_credentials&client_id=svc-a&client_secret=s3cret",
        "form-password": "application/x-www-form-urlencoded; charset=utf-8\n"
                         f"Basic {basic}\ngrant_type=password&username=ann&password=p%20w",
        "form-refresh": f"application/x-www-form-urlencoded\nBasic {basic}\n"
                        "grant_type=refresh_token&refresh_token=abc.def&resource=players-api",
        "form-dup": "application/x-www-form-urlencoded\n\ngrant_type=a&grant_type=b",
        "form-bad-utf8": "application/x-www-form-urlencoded\n\ngrant_type=%FF%FE",
        "form-empty": "application/x-www-form-urlencoded\n\n",
        "json-post": "application/json\n\n"
                     '{"grant_type":"client_credentials","client_id":"svc-a","client_secret":"x"}',
        "json-basic": f"application/json\nBasic {basic}\n"
                      '{"grant_type":"client_credentials","audience":"players-api"}',
        "json-wrong-type": "application/json\n\n{\"grant_type\":1}",
        "both-methods": f"application/x-www-form-urlencoded\nBasic {basic}\n"
                        "grant_type=client_credentials&client_secret=x",
        "basic-no-colon": "application/x-www-form-urlencoded\nBasic "
                          f"{base64.b64encode(b'svc-a').decode()}\ngrant_type=client_credentials",
        "basic-bad-b64": "application/x-www-form-urlencoded\nBasic !!!\n"
                         "grant_type=client_credentials",
        "bearer": "application/x-www-form-urlencoded\nBearer abc\ngrant_type=client_credentials",
        "text-plain": "text/plain\n\ngrant_type=client_credentials",
        "no-content-type": "\n\ngrant_type=client_credentials",
    }.items():
        write("token_request", name, raw.encode())


if __name__ == "__main__":
    main()
