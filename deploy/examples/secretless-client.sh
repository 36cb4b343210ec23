#!/usr/bin/env bash
# A machine client with no shared secret, in bash and openssl only: it makes an RSA key,
# prints its JWKS (register it with `auth-server clients add --jwks-file`), then asks for a
# token with a private_key_jwt assertion (RFC 7523) and, with DPOP=1, a DPoP proof (RFC 9449)
# that binds the token to the same key.
#
#   deploy/examples/secretless-client.sh keys  billing        # writes billing.key.pem, billing.jwks.json
#   deploy/examples/secretless-client.sh token billing [ISSUER]  # prints the token response
#   DPOP=1 deploy/examples/secretless-client.sh token billing
#
# `call` uses a DPoP-bound token: it sends METHOD URL with `Authorization: DPoP TOKEN` and a new
# proof for that method, URL (query left out) and token (`ath`), signed with the same key.
# Further arguments go to curl.
#
#   deploy/examples/secretless-client.sh call billing POST http://localhost:9001/players "$TOKEN" \
#     -H 'Content-Type: application/json' -d @player.json
set -euo pipefail

usage="usage: $0 keys|token CLIENT_ID [ISSUER] | call CLIENT_ID METHOD URL TOKEN [CURL_ARGS...]"
command=${1:?$usage}
client_id=${2:?$usage}
issuer=${3:-http://localhost:9000}
key=${KEY:-$client_id.key.pem}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
hex_to_b64url() { local hex; hex=$(cat); printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | b64url; }

jwk() {
  local n e
  n=$(openssl rsa -in "$key" -noout -modulus | cut -d= -f2 | hex_to_b64url)
  e=$(printf '%06x' "$(openssl rsa -in "$key" -noout -text | awk '/publicExponent/ {print $2}')" | hex_to_b64url)
  printf '{"kty":"RSA","n":"%s","e":"%s"}' "$n" "$e"
}

# A compact JWS: header and claims (JSON) signed RS256 with the key.
sign() {
  local input
  input="$(printf '%s' "$1" | b64url).$(printf '%s' "$2" | b64url)"
  printf '%s.%s' "$input" "$(printf '%s' "$input" | openssl dgst -sha256 -sign "$key" -binary | b64url)"
}

case $command in
  keys)
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$key" 2>/dev/null
    printf '{"keys":[%s]}\n' "$(jwk | sed 's/}$/,"alg":"RS256","use":"sig","kid":"k1"}/')" > "$client_id.jwks.json"
    echo "wrote $key (keep it) and $client_id.jwks.json (register it)" >&2
    ;;
  token)
    now=$(date +%s)
    assertion=$(sign '{"alg":"RS256","typ":"JWT","kid":"k1"}' \
      "{\"iss\":\"$client_id\",\"sub\":\"$client_id\",\"aud\":\"$issuer\",\"iat\":$now,\"exp\":$((now + 60)),\"jti\":\"$(openssl rand -hex 16)\"}")
    dpop=()
    if [ "${DPOP:-0}" = 1 ]; then
      proof=$(sign "{\"alg\":\"RS256\",\"typ\":\"dpop+jwt\",\"jwk\":$(jwk)}" \
        "{\"htm\":\"POST\",\"htu\":\"$issuer/auth/token\",\"iat\":$now,\"jti\":\"$(openssl rand -hex 16)\"}")
      dpop=(-H "DPoP: $proof")
    fi
    curl -sS "$issuer/auth/token" "${dpop[@]}" \
      -d grant_type=client_credentials \
      -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
      -d "client_assertion=$assertion"
    echo
    ;;
  call)
    method=${3:?$usage} url=${4:?$usage} token=${5:?$usage}
    shift 5
    now=$(date +%s)
    ath=$(printf '%s' "$token" | openssl dgst -sha256 -binary | b64url)
    proof=$(sign "{\"alg\":\"RS256\",\"typ\":\"dpop+jwt\",\"jwk\":$(jwk)}" \
      "{\"htm\":\"$method\",\"htu\":\"${url%%[?#]*}\",\"iat\":$now,\"jti\":\"$(openssl rand -hex 16)\",\"ath\":\"$ath\"}")
    curl -sS -X "$method" "$url" -H "Authorization: DPoP $token" -H "DPoP: $proof" "$@"
    ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
