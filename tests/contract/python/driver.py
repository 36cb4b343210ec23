"""The Python SDK a user generates with openapi-python-client from openapi/*.json, driving the
whole flow against the live services: a token (client credentials, HTTP Basic), the players
listed, one created, replaced and deleted, and 401/403/404/409/422 seen as the typed errors
the spec promises.

run.sh generates the packages `auth_server_client` and `players_api_client` into a temporary
folder on PYTHONPATH, then runs this file. Both clients raise on any status the spec does not
list (`raise_on_unexpected_status`). Environment: AUTH_URL, API_URL, WRITER
(client_id:client_secret with players:write), READER (without it), SQUAD_NUMBER (free in the
seeded squad), KEYED_CLIENT (a private_key_jwt client with players:write; the server requires
DPoP nonces) and KEYED_KEY_FILE (its RS256 private key, PEM; kid = its RFC 7638 thumbprint).

The same SDK carries a client without a secret: `client_assertion` in the token request and
the `DPoP` header parameter, the server's `use_dpop_nonce` seen as a typed error.
"""

import base64
import datetime
import json
import os
import sys
import time
import uuid
from http import HTTPStatus
from typing import Any

from auth_server_client import AuthenticatedClient as AuthServerClient
from auth_server_client import Client as AuthServerAnonymousClient
from auth_server_client.api.oauth import issue_token
from auth_server_client.models import (
    AccessTokenResponse,
    OAuthError,
    OAuthErrorCode,
    TokenRequest,
)
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from players_api_client import AuthenticatedClient, Client
from players_api_client.api.players import (
    create_player,
    delete_player,
    get_player,
    get_player_by_squad_number,
    list_players,
    replace_player,
)
from players_api_client.api.metadata import protected_resource_metadata
from players_api_client.api.scouting import refer_player_to_scouting
from players_api_client.models import Player, PlayerInput, Problem, ProtectedResourceMetadata
from players_api_client.types import Unset

AUTH_URL = os.environ["AUTH_URL"]
API_URL = os.environ["API_URL"]
WRITER = os.environ["WRITER"]
READER = os.environ["READER"]
EXCHANGER = os.environ["EXCHANGER"]
SCOUTING_URL = os.environ["SCOUTING_URL"]
SQUAD_NUMBER = int(os.environ["SQUAD_NUMBER"])

passed = 0
failed = 0


def check(what: str, ok: bool, detail: Any = None) -> None:
    global passed, failed
    if ok:
        passed += 1
        print(f"    ok    {what}")
    else:
        failed += 1
        print(f"    FAIL  {what}" + ("" if detail is None else f": {detail!r}"))


def is_problem(parsed: Any, status: int, code: str, field: str | None = None) -> bool:
    """A typed error body of the players API, with its code (and field)."""
    return (
        isinstance(parsed, Problem)
        and parsed.status == status
        and parsed.error == code
        and bool(parsed.request_id)
        and (field is None or parsed.field == field)
    )


def token(credentials: str):
    """RFC 6749 §4.4 with client_secret_basic (the id and secret need no form-encoding here)."""
    basic = base64.b64encode(credentials.encode()).decode()
    client = AuthServerClient(
        base_url=AUTH_URL, token=basic, prefix="Basic", raise_on_unexpected_status=True
    )
    body = TokenRequest(grant_type="client_credentials", audience="players-api")
    return issue_token.sync_detailed(client=client, body=body)


def players_client(access_token: str) -> AuthenticatedClient:
    return AuthenticatedClient(
        base_url=API_URL, token=access_token, raise_on_unexpected_status=True
    )


def main() -> int:
    print("  token endpoint (auth-server SDK)")
    issued = token(WRITER)
    check(
        "client credentials with HTTP Basic: 200 and a Bearer token",
        issued.status_code == HTTPStatus.OK
        and isinstance(issued.parsed, AccessTokenResponse)
        and issued.parsed.token_type == "Bearer",
        issued.parsed,
    )
    check("no-store on the token response", issued.headers.get("cache-control") == "no-store")
    assert isinstance(issued.parsed, AccessTokenResponse)
    writer = players_client(issued.parsed.access_token)

    # RFC 8693: the players API's client exchanges the writer's token for a scouting-api one.
    exchanger_id = EXCHANGER.split(":", 1)[0]
    exchanger = AuthServerClient(
        base_url=AUTH_URL,
        token=base64.b64encode(EXCHANGER.encode()).decode(),
        prefix="Basic",
        raise_on_unexpected_status=True,
    )
    exchanged = issue_token.sync_detailed(
        client=exchanger,
        body=TokenRequest(
            grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
            subject_token=issued.parsed.access_token,
            subject_token_type="urn:ietf:params:oauth:token-type:access_token",
            audience="scouting-api",
        ),
    )
    exchanged_claims: dict[str, Any] = {}
    if isinstance(exchanged.parsed, AccessTokenResponse):
        payload = exchanged.parsed.access_token.split(".")[1]
        exchanged_claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    check(
        "token exchange: 200, issued_token_type, the subject kept, act naming the actor",
        isinstance(exchanged.parsed, AccessTokenResponse)
        and exchanged.parsed.issued_token_type == "urn:ietf:params:oauth:token-type:access_token"
        and exchanged_claims.get("sub") == WRITER.split(":", 1)[0]
        and exchanged_claims.get("aud") == "scouting-api"
        and exchanged_claims.get("act") == {"sub": exchanger_id},
        exchanged.parsed,
    )

    client_id = WRITER.split(":", 1)[0]
    refused = token(f"{client_id}:not-the-secret")
    check(
        "a wrong secret is a typed 401 invalid_client",
        refused.status_code == HTTPStatus.UNAUTHORIZED
        and isinstance(refused.parsed, OAuthError)
        and refused.parsed.error == OAuthErrorCode.INVALID_CLIENT,
        refused.parsed,
    )
    check(
        "with a Basic challenge",
        refused.headers.get("www-authenticate") == 'Basic realm="auth-server"',
    )

    reader_issued = token(READER)
    check("the reader client gets a token too", reader_issued.status_code == HTTPStatus.OK)
    assert isinstance(reader_issued.parsed, AccessTokenResponse)
    reader = players_client(reader_issued.parsed.access_token)

    print("  players (resource-api SDK)")
    anyone = Client(base_url=API_URL, raise_on_unexpected_status=True)
    listed = list_players.sync_detailed(client=anyone)
    squad = listed.parsed if isinstance(listed.parsed, list) else []
    check(
        "list_players: 200 with the seeded squad, as Player objects",
        listed.status_code == HTTPStatus.OK
        and len(squad) >= 26
        and all(isinstance(p, Player) for p in squad),
        len(squad),
    )
    check(
        "dates of birth parse as dates",
        all(isinstance(p.date_of_birth, datetime.date | None | Unset) for p in squad)
        and any(isinstance(p.date_of_birth, datetime.date) for p in squad),
    )
    check("no player has our squad number yet", all(p.squad_number != SQUAD_NUMBER for p in squad))

    newcomer = PlayerInput(
        first_name="Contract",
        last_name="Tester",
        squad_number=SQUAD_NUMBER,
        position="Centre-Forward",
        abbr_position="CF",
        date_of_birth=datetime.date(2001, 2, 3),
        starting11=False,
    )

    # A client without credentials, where the SDK types ask for an authenticated one: what
    # a caller who forgot the token sends.
    anonymous = create_player.sync_detailed(client=anyone, body=newcomer)  # type: ignore[arg-type]
    check(
        "create_player without a token: typed 401",
        anonymous.status_code == HTTPStatus.UNAUTHORIZED and isinstance(anonymous.parsed, Problem),
        anonymous.parsed,
    )
    metadata_url = f"{API_URL}/.well-known/oauth-protected-resource"
    check(
        "with the bare Bearer challenge naming the API's RFC 9728 metadata",
        anonymous.headers.get("www-authenticate")
        == f'Bearer realm="players-api", resource_metadata="{metadata_url}"',
    )
    described = protected_resource_metadata.sync_detailed(client=anyone)
    metadata = described.parsed
    check(
        "protected_resource_metadata: 200, naming this API, its issuer and its scopes",
        described.status_code == HTTPStatus.OK
        and isinstance(metadata, ProtectedResourceMetadata)
        and metadata.resource == API_URL
        and metadata.authorization_servers == [AUTH_URL]
        and metadata.scopes_supported == ["players:write"]
        and metadata.bearer_methods_supported == ["header"],
        metadata,
    )

    forged = create_player.sync_detailed(
        client=players_client(issued.parsed.access_token[:-2]), body=newcomer
    )
    check(
        "create_player with a bad token: typed 401 invalid_token",
        forged.status_code == HTTPStatus.UNAUTHORIZED
        and is_problem(forged.parsed, 401, "invalid_token"),
        forged.parsed,
    )

    scoped_out = create_player.sync_detailed(client=reader, body=newcomer)
    check(
        "create_player without players:write: typed 403 insufficient_scope",
        scoped_out.status_code == HTTPStatus.FORBIDDEN
        and is_problem(scoped_out.parsed, 403, "insufficient_scope"),
        scoped_out.parsed,
    )

    created = create_player.sync_detailed(client=writer, body=newcomer)
    player = created.parsed
    check(
        "create_player: 201 with the player",
        created.status_code == HTTPStatus.CREATED
        and isinstance(player, Player)
        and player.squad_number == SQUAD_NUMBER
        and player.date_of_birth == datetime.date(2001, 2, 3),
        player,
    )
    assert isinstance(player, Player)
    check("Location is the new player", created.headers.get("location") == f"/players/{player.id}")
    check("an absent middle name comes back as None", player.middle_name is None)

    again = create_player.sync_detailed(client=writer, body=newcomer)
    check(
        "the same squad number again: typed 409 squad_number_taken",
        again.status_code == HTTPStatus.CONFLICT
        and is_problem(again.parsed, 409, "squad_number_taken", "squadNumber"),
        again.parsed,
    )

    too_long = PlayerInput.from_dict(
        {**newcomer.to_dict(), "squadNumber": SQUAD_NUMBER + 1, "team": "x" * 101}
    )
    invalid = create_player.sync_detailed(client=writer, body=too_long)
    check(
        "a 101-character team: typed 422 naming team",
        invalid.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
        and is_problem(invalid.parsed, 422, "validation_failed", "team"),
        invalid.parsed,
    )

    fetched = get_player.sync_detailed(player.id, client=anyone)
    check(
        "get_player by the new id: 200",
        fetched.status_code == HTTPStatus.OK
        and isinstance(fetched.parsed, Player)
        and fetched.parsed.last_name == "Tester",
        fetched.parsed,
    )

    replacement = PlayerInput.from_dict(
        {**newcomer.to_dict(), "team": "Contract FC", "starting11": True}
    )
    replaced = replace_player.sync_detailed(SQUAD_NUMBER, client=writer, body=replacement)
    check("replace_player: 204", replaced.status_code == HTTPStatus.NO_CONTENT, replaced.parsed)

    scoped_out = replace_player.sync_detailed(SQUAD_NUMBER, client=reader, body=replacement)
    check(
        "replace_player without players:write: typed 403",
        scoped_out.status_code == HTTPStatus.FORBIDDEN
        and is_problem(scoped_out.parsed, 403, "insufficient_scope"),
        scoped_out.parsed,
    )

    after = get_player_by_squad_number.sync_detailed(SQUAD_NUMBER, client=anyone)
    check(
        "get_player_by_squad_number shows the replacement",
        isinstance(after.parsed, Player)
        and after.parsed.team == "Contract FC"
        and after.parsed.starting11 is True,
        after.parsed,
    )

    # The players API calls the scouting API for us (it exchanges our token, RFC 8693).
    referred = refer_player_to_scouting.sync_detailed(SQUAD_NUMBER, client=writer)
    copy = referred.parsed
    check(
        "refer_player_to_scouting: 201 with the scouting API's copy as a Player",
        referred.status_code == HTTPStatus.CREATED
        and isinstance(copy, Player)
        and copy.squad_number == SQUAD_NUMBER
        and referred.headers.get("location") == f"{SCOUTING_URL}/players/{copy.id}",
        referred.parsed,
    )
    again = refer_player_to_scouting.sync_detailed(SQUAD_NUMBER, client=writer)
    check(
        "refer_player_to_scouting again: typed 409",
        again.status_code == HTTPStatus.CONFLICT and is_problem(again.parsed, 409, "conflict"),
        again.parsed,
    )
    scoped_out = refer_player_to_scouting.sync_detailed(SQUAD_NUMBER, client=reader)
    check(
        "refer_player_to_scouting without players:write: typed 403",
        scoped_out.status_code == HTTPStatus.FORBIDDEN
        and is_problem(scoped_out.parsed, 403, "insufficient_scope"),
        scoped_out.parsed,
    )

    removed = delete_player.sync_detailed(SQUAD_NUMBER, client=writer)
    check("delete_player: 204", removed.status_code == HTTPStatus.NO_CONTENT, removed.parsed)

    gone = get_player_by_squad_number.sync_detailed(SQUAD_NUMBER, client=anyone)
    check(
        "then get_player_by_squad_number: typed 404",
        gone.status_code == HTTPStatus.NOT_FOUND and is_problem(gone.parsed, 404, "not_found"),
        gone.parsed,
    )

    twice = delete_player.sync_detailed(SQUAD_NUMBER, client=writer)
    check(
        "delete_player again: typed 404",
        twice.status_code == HTTPStatus.NOT_FOUND and is_problem(twice.parsed, 404, "not_found"),
        twice.parsed,
    )

    secretless()

    print(f"python sdk: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def secretless() -> None:
    """private_key_jwt (RS256, signed with joserfc) and a DPoP proof through the generated SDK."""
    print("  a client without a secret (private_key_jwt, DPoP) through the same SDK")
    client_id = os.environ["KEYED_CLIENT"]
    with open(os.environ["KEYED_KEY_FILE"], "rb") as pem:
        key = RSAKey.import_key(pem.read())
    anonymous = AuthServerAnonymousClient(base_url=AUTH_URL, raise_on_unexpected_status=True)
    token_url = f"{AUTH_URL}/auth/token"

    def request(dpop: str | None = None):
        now = int(time.time())
        assertion = jwt.encode(
            {"alg": "RS256", "typ": "JWT", "kid": key.thumbprint()},
            {
                "iss": client_id,
                "sub": client_id,
                "aud": token_url,
                "iat": now,
                "exp": now + 60,
                "jti": str(uuid.uuid4()),
            },
            key,
        )
        body = TokenRequest(
            grant_type="client_credentials",
            client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            client_assertion=assertion,
        )
        if dpop is None:
            return issue_token.sync_detailed(client=anonymous, body=body)
        # openapi-python-client names the `DPoP` header parameter `d_po_p`.
        return issue_token.sync_detailed(client=anonymous, body=body, d_po_p=dpop)

    plain = request()
    check(
        "issue_token with client_assertion (private_key_jwt): 200 and a Bearer token",
        plain.status_code == HTTPStatus.OK
        and isinstance(plain.parsed, AccessTokenResponse)
        and plain.parsed.token_type == "Bearer",
        plain.parsed,
    )

    dpop_key = ECKey.generate_key("P-256")
    public_jwk = dpop_key.as_dict(private=False)

    def proof(nonce: str | None = None) -> str:
        claims = {
            "htm": "POST",
            "htu": token_url,
            "iat": int(time.time()),
            "jti": str(uuid.uuid4()),
        }
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "ES256", "typ": "dpop+jwt", "jwk": public_jwk}, claims, dpop_key)

    first = request(proof())
    nonce = first.headers.get("dpop-nonce")
    check(
        "with a DPoP proof and no nonce: typed 400 use_dpop_nonce and a DPoP-Nonce header",
        first.status_code == HTTPStatus.BAD_REQUEST
        and isinstance(first.parsed, OAuthError)
        and first.parsed.error == OAuthErrorCode.USE_DPOP_NONCE
        and bool(nonce),
        first.parsed,
    )
    bound = request(proof(nonce))
    check(
        "again with the nonce: 200 and token_type DPoP",
        bound.status_code == HTTPStatus.OK
        and isinstance(bound.parsed, AccessTokenResponse)
        and bound.parsed.token_type == "DPoP",
        bound.parsed,
    )


if __name__ == "__main__":
    sys.exit(main())
