"""Python's authlib, as a user's service would use it, against the live services: its httpx
OAuth2Client authenticates with `private_key_jwt` (its `PrivateKeyJWT`, RS256, audience the
token endpoint, an assertion valid for an hour and signed just now, authlib's defaults), gets a
bearer token by client credentials, writes to the players API with it, and introspects it. The
server's side is checked too: the assertion authlib sent is single-use, and the same client
cannot authenticate with a secret.

Environment: AUTH_URL, API_URL, CLIENT_ID (a private_key_jwt client allowed players:write),
KEY_FILE (its RSA private key, PEM; its kid is the key's RFC 7638 thumbprint), SQUAD_NUMBER.
"""

import json
import os
import sys

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import RSAKey


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set")
    return value


AUTH_URL = env("AUTH_URL")
API_URL = env("API_URL")
CLIENT_ID = env("CLIENT_ID")
SQUAD_NUMBER = int(env("SQUAD_NUMBER"))
results = {"passed": 0, "failed": 0}


def check(what, ok, detail=None):
    if ok:
        results["passed"] += 1
        print(f"    ok    {what}")
    else:
        results["failed"] += 1
        suffix = "" if detail is None else f": {json.dumps(detail, default=str)}"
        print(f"    FAIL  {what}{suffix}")


metadata = httpx.get(f"{AUTH_URL}/.well-known/oauth-authorization-server", timeout=10).json()
token_endpoint = metadata["token_endpoint"]
check(
    "metadata: private_key_jwt with RS256",
    "private_key_jwt" in metadata.get("token_endpoint_auth_methods_supported", [])
    and "RS256" in metadata.get("token_endpoint_auth_signing_alg_values_supported", []),
    metadata,
)

with open(env("KEY_FILE"), "rb") as pem:
    key = RSAKey.import_key(pem.read())
# Every token request authlib sends, recorded (to replay one).
sent = []


def record(request):
    request.read()
    sent.append(request)


session = OAuth2Client(
    CLIENT_ID,
    key,
    token_endpoint_auth_method="private_key_jwt",
    scope="players:write",
    timeout=10,
    event_hooks={"request": [record]},
)
session.register_client_auth_method(
    PrivateKeyJWT(token_endpoint, headers={"kid": key.thumbprint()})
)

token = session.fetch_token(token_endpoint, grant_type="client_credentials")
check(
    "client credentials with PrivateKeyJWT: a Bearer token for players:write",
    token.get("token_type") == "Bearer" and token.get("scope") == "players:write",
    {k: v for k, v in token.items() if k != "access_token"},
)

# The assertion authlib sent is single-use.
first = sent[-1]
replay = httpx.post(token_endpoint, content=first.content, headers=dict(first.headers), timeout=10)
check(
    "the same client_assertion sent again: 401 invalid_client",
    replay.status_code == 401 and replay.json().get("error") == "invalid_client",
    {"status": replay.status_code, "body": replay.text},
)

# A client registered with keys has no secret to send.
with_secret = httpx.post(
    token_endpoint,
    data={"grant_type": "client_credentials"},
    auth=(CLIENT_ID, "a-guessed-secret"),
    timeout=10,
)
check(
    "the same client with a secret (client_secret_basic): 401 invalid_client",
    with_secret.status_code == 401 and with_secret.json().get("error") == "invalid_client",
    {"status": with_secret.status_code, "body": with_secret.text},
)

# authlib's session carries the token to the API.
player = {
    "firstName": "Interop",
    "lastName": "Authlib",
    "squadNumber": SQUAD_NUMBER,
    "position": "Defender",
    "abbrPosition": "CB",
    "team": "Loopback FC",
    "league": "Contract League",
    "dateOfBirth": "1998-08-08",
    "starting11": False,
}
created = session.post(f"{API_URL}/players", json=player)
check(
    "POST /players with the token (authlib's session): 201",
    created.status_code == 201 and created.json().get("squadNumber") == SQUAD_NUMBER,
    {"status": created.status_code, "body": created.text},
)
deleted = session.delete(f"{API_URL}/players/squadnumber/{SQUAD_NUMBER}")
check("DELETE it: 204", deleted.status_code == 204, {"status": deleted.status_code})

# Introspection, authenticated by a new assertion (authlib signs one per request).
introspection = session.introspect_token(
    metadata["introspection_endpoint"], token=token["access_token"]
)
body = introspection.json()
check(
    "introspection (private_key_jwt): active, Bearer, our client",
    introspection.status_code == 200
    and body.get("active") is True
    and body.get("token_type") == "Bearer"
    and body.get("client_id") == CLIENT_ID,
    body,
)

print(f"authlib: {results['passed']} passed, {results['failed']} failed")
sys.exit(0 if results["failed"] == 0 else 1)
