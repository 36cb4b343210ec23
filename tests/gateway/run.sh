#!/usr/bin/env bash
# The deployment shape, for real, on loopback: one PostgreSQL database, two auth-server
# replicas on it, the players API and a second resource-api (audience scouting-api), and nginx
# with deploy/nginx/gateway.conf in front. Every check goes through the gateway; the services'
# own ports are used only to wait for them to be ready. Also validates deploy/k8s and runs the
# image's readiness probe. Prints each step; exits non-zero on the first failed check; stops
# what it started, by process id, and drops its database, however it ends.
#
#   bash tests/gateway/run.sh          (make test-gateway)
#
# Needs: PostgreSQL on 127.0.0.1:5432 with trust auth for `postgres` (PG_HOST, PG_PORT, PG_USER,
# PG_ADMIN_DB override); installs nginx, jq and envsubst from Debian's packages when missing.
# KEEP_TMP=1 keeps the logs and rendered configuration.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
PG_USER=${PG_USER:-postgres}
PG_ADMIN_DB=${PG_ADMIN_DB:-test}
BIN=$ROOT/target/debug
DB=gateway_test_$$
CLIENT_ID=gateway-test

# ---------------------------------------------------------------------------------------------
# Reporting

passed=0
failed=0
step() { printf '\n==> %s\n' "$*"; }
pass() { passed=$((passed + 1)); printf '    ok    %s\n' "$*"; }
note() { printf '          %s\n' "$*"; }
fail() {
  failed=$((failed + 1))
  printf '    FAIL  %s\n' "$*"
  exit 1
}
# expect ACTUAL EXPECTED WHAT
expect() {
  if [[ $1 == "$2" ]]; then pass "$3"; else fail "$3: got '$1', expected '$2'"; fi
}

# ---------------------------------------------------------------------------------------------
# Processes: every one this script starts is recorded by pid and stopped by pid.

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gateway-test.XXXXXX")
declare -A PID=()     # name -> pid
declare -a STARTED=() # names, in start order
db_created=0

start() { # start NAME LOGFILE COMMAND... (environment assignments may precede it via env)
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  PID[$name]=$!
  STARTED+=("$name")
}

stop() { # stop NAME [SIGNAL]: signal it, wait for it to exit (10 s, then SIGKILL)
  local name=$1 signal=${2:-TERM} pid=${PID[$1]:-}
  [[ -n $pid ]] || return 0
  {
    kill "-$signal" "$pid" || true
    for _ in $(seq 100); do
      kill -0 "$pid" || break
      sleep 0.1
    done
    if kill -0 "$pid"; then
      kill -KILL "$pid" || true
    fi
    wait "$pid" || true
  } 2>/dev/null # (and bash's own "Killed" notice)
  unset "PID[$name]"
}

psql_admin() {
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_ADMIN_DB" -v ON_ERROR_STOP=1 -qAtX -c "$1"
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if ((rc != 0)); then
    [[ $failed -gt 0 ]] || failed=1
    for log in "$TMP"/*.log; do
      [[ -s $log ]] || continue
      printf '\n---- last lines of %s ----\n' "${log#"$TMP"/}"
      tail -n 15 "$log"
    done
  fi
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    stop "${STARTED[i]}"
  done
  if ((db_created)); then
    psql_admin "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
  fi
  if [[ ${KEEP_TMP:-0} == 1 ]]; then
    echo "kept $TMP"
  else
    rm -rf "$TMP"
  fi
  printf '\ngateway: %d passed, %d failed\n' "$passed" "$failed"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_ready() { # wait_ready NAME URL: until URL answers 2xx, while NAME's process lives (60 s)
  local name=$1 url=$2
  for _ in $(seq 600); do
    kill -0 "${PID[$name]}" 2>/dev/null || fail "$name exited while starting (see its log below)"
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "$name not ready at $url after 60 s"
}

free_ports() { # free_ports N: N distinct free loopback ports
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# ---------------------------------------------------------------------------------------------
# HTTP through the gateway. Every request carries its own X-Request-Id, which the gateway logs
# with the replica that answered it: that is how the test knows which replica served what.

rid_seq=0
# gw METHOD PATH [CURL ARGS...]: sets STATUS, RID; the body is in $TMP/body, headers in $TMP/headers
gw() {
  local method=$1 path=$2
  shift 2
  rid_seq=$((rid_seq + 1))
  RID="gwtest-$$-$rid_seq"
  : >"$TMP/body"
  : >"$TMP/headers"
  # 000 when curl itself fails (connection refused, timeout): the caller's check reports it.
  STATUS=$(curl -sS --max-time 10 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' \
    -X "$method" -H "X-Request-Id: $RID" "$@" "$GW$path" 2>"$TMP/curl-error") || STATUS=000
}
header() { # header NAME: that header of the last response
  grep -i "^$1:" "$TMP/headers" | head -n 1 | cut -d' ' -f2- | tr -d '\r'
}
body() { cat "$TMP/body"; }
# upstream_of REQUEST_ID: the replica(s) the gateway logged for it. Called inside $(...), where
# `fail` could not stop the script: says so on stderr and answers "none", which no check accepts.
upstream_of() {
  local line
  for _ in $(seq 50); do
    line=$(grep -F "\"request_id\":\"$1\"" "$ACCESS_LOG" || true)
    if [[ -n $line ]]; then
      jq -r .upstream <<<"$line"
      return 0
    fi
    sleep 0.1
  done
  printf '    FAIL  the gateway logged no request %s\n' "$1" >&2
  echo none
  return 1
}
replica_name() { # replica_name UPSTREAM_ADDRESS
  case $1 in
    "127.0.0.1:$AUTH1_PORT") echo auth-1 ;;
    "127.0.0.1:$AUTH2_PORT") echo auth-2 ;;
    *) echo "$1" ;;
  esac
}

jwt_part() { # jwt_part TOKEN 0|1: the decoded header or claims, as JSON
  python3 -c '
import base64, sys
part = sys.argv[1].split(".")[int(sys.argv[2])]
print(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode())' "$1" "$2"
}

# token AUDIENCE: a client-credentials token through the gateway; sets TOKEN, TOKEN_REPLICA
token() {
  gw POST /auth/token -H @"$TMP/client-auth-header" \
    --data-urlencode grant_type=client_credentials --data-urlencode "audience=$1"
  [[ $STATUS == 200 ]] || fail "token for $1: HTTP $STATUS $(body)"
  TOKEN=$(jq -r .access_token "$TMP/body")
  TOKEN_REPLICA=$(replica_name "$(upstream_of "$RID")")
}

# tokens_from_both AUDIENCE: asks until each replica has issued one; sets TOKEN_BY[auth-1|auth-2]
declare -A TOKEN_BY=()
tokens_from_both() {
  TOKEN_BY=()
  for _ in $(seq 10); do
    token "$1"
    TOKEN_BY[$TOKEN_REPLICA]=$TOKEN
    [[ -n ${TOKEN_BY[auth-1]:-} && -n ${TOKEN_BY[auth-2]:-} ]] && return 0
  done
  fail "10 token requests for $1 did not reach both replicas: ${!TOKEN_BY[*]}"
}

squad=90
# accepts PREFIX TOKEN WHAT: the API mounted at PREFIX ("" for the players API, /scouting for
# the other) lets this token write: create, read back at its Location, delete
accepts() {
  local prefix=$1 tok=$2 what=$3 location
  squad=$((squad + 1))
  gw POST "$prefix/players" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d "{\"firstName\":\"Gate\",\"lastName\":\"Keeper\",\"squadNumber\":$squad,\"position\":\"Goalkeeper\"}"
  [[ $STATUS == 201 ]] || fail "$what: POST $prefix/players answered $STATUS $(body)"
  location=$(header Location)
  [[ $location == "$prefix/players/"* ]] || fail "$what: Location '$location' is not under $prefix/players/"
  gw GET "$location"
  [[ $STATUS == 200 && $(jq -r .squadNumber "$TMP/body") == "$squad" ]] ||
    fail "$what: GET $location (the Location, through the gateway) answered $STATUS"
  gw DELETE "$prefix/players/squadnumber/$squad" -H "Authorization: Bearer $tok"
  [[ $STATUS == 204 ]] || fail "$what: DELETE answered $STATUS $(body)"
  pass "$what"
}

# rejects PREFIX TOKEN REALM WHAT: a write is refused, 401 with an invalid_token challenge
rejects() {
  local prefix=$1 tok=$2 realm=$3 what=$4 challenge
  gw POST "$prefix/players" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d '{"firstName":"Gate","lastName":"Crasher","squadNumber":99,"position":"Striker"}'
  challenge=$(header WWW-Authenticate)
  [[ $STATUS == 401 ]] || fail "$what: answered $STATUS, expected 401"
  [[ $challenge == *"realm=\"$realm\""*'error="invalid_token"'* ]] ||
    fail "$what: WWW-Authenticate is '$challenge'"
  pass "$what (401, $(sed -E 's/.*(error="[a-z_]+").*/\1/' <<<"$challenge"))"
}

auth_cli() { # auth_cli ARGS...: the auth-server CLI with replica 1's configuration
  env AUTH_DATABASE_URL="$DATABASE_URL" AUTH_KEY_ENCRYPTION_KEY_FILE="$TMP/key-encryption-key" \
    AUTH_ISSUER="$GW" AUTH_CONFIG="$TMP/auth-server.toml" RUST_LOG=warn \
    "$BIN/auth-server" "$@"
}

# =============================================================================================

step "tools: cargo, curl, python3, psql; nginx, jq and envsubst from Debian's packages if missing"
for tool in cargo curl python3 psql; do
  command -v "$tool" >/dev/null || fail "$tool is required"
done
missing=()
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v jq >/dev/null || missing+=(jq)
command -v envsubst >/dev/null || missing+=(gettext-base)
if ((${#missing[@]})); then
  note "installing ${missing[*]}"
  ((EUID == 0)) || fail "installing ${missing[*]} needs root"
  apt-get update -qq >/dev/null
  # policy-rc.d on these machines keeps the package from starting a system nginx.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
pass "$("$NGINX" -v 2>&1), $(jq --version), $(curl --version | head -n 1 | cut -d' ' -f1-2)"

step "PostgreSQL at $PG_HOST:$PG_PORT"
if ! pg_isready -h "$PG_HOST" -p "$PG_PORT" -q 2>/dev/null; then
  if [[ -d /etc/postgresql ]] && command -v pg_ctlcluster >/dev/null; then
    note "not answering; starting the local cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    for _ in $(seq 30); do pg_isready -h "$PG_HOST" -p "$PG_PORT" -q && break; sleep 1; done
  fi
fi
pass "$(psql_admin 'SHOW server_version') answers"

step "build: cargo build --bins"
cargo build --bins --quiet
[[ -x $BIN/auth-server && -x $BIN/resource-api ]] || fail "binaries missing in $BIN"
pass "target/debug/auth-server and target/debug/resource-api"

step "deploy/k8s: schema validation (kubernetes-validate) and policy checks"
bash tests/gateway/validate-k8s.sh
pass "deploy/k8s is valid"

step "deploy/Dockerfile and compose.yaml: BuildKit's parser, hadolint, image and compose checks"
bash tests/gateway/validate-docker.sh
pass "deploy/Dockerfile and deploy/compose.yaml pass (images cannot be built here: no engine)"

# ---------------------------------------------------------------------------------------------
step "ports, secrets and configuration in $TMP"
read -r GW_PORT AUTH1_PORT AUTH2_PORT PLAYERS_PORT SCOUTING_PORT <<<"$(free_ports 5)"
GW=http://127.0.0.1:$GW_PORT
DATABASE_URL=postgres://$PG_USER@$PG_HOST:$PG_PORT/$DB
(
  umask 077
  head -c 32 /dev/urandom | base64 >"$TMP/key-encryption-key"
  head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$TMP/client-secret"
  printf 'Authorization: Basic %s\n' \
    "$(printf '%s:%s' "$CLIENT_ID" "$(cat "$TMP/client-secret")" | base64 -w0)" >"$TMP/client-auth-header"
)
# The client both replicas bootstrap, its secret read from a file as in production.
cat >"$TMP/auth-server.toml" <<EOF
[[clients]]
client_id = "$CLIENT_ID"
client_secret_file = "$TMP/client-secret"
scopes = ["players:write"]
audiences = ["players-api", "scouting-api"]
EOF
note "gateway $GW_PORT, auth-1 $AUTH1_PORT, auth-2 $AUTH2_PORT, players-api $PLAYERS_PORT, scouting-api $SCOUTING_PORT"
pass "issuer = the gateway's URL, $GW"

step "gateway: deploy/nginx/gateway.conf rendered with these ports; nginx -t"
mkdir -p "$TMP/nginx"
GATEWAY_LISTEN=127.0.0.1:$GW_PORT AUTH_SERVER_1=127.0.0.1:$AUTH1_PORT \
  AUTH_SERVER_2=127.0.0.1:$AUTH2_PORT PLAYERS_API=127.0.0.1:$PLAYERS_PORT \
  SCOUTING_API=127.0.0.1:$SCOUTING_PORT \
  envsubst '${GATEWAY_LISTEN} ${AUTH_SERVER_1} ${AUTH_SERVER_2} ${PLAYERS_API} ${SCOUTING_API}' \
  <deploy/nginx/gateway.conf >"$TMP/nginx/gateway.conf"
if grep -n '^[^#]*\${' "$TMP/nginx/gateway.conf"; then fail "placeholders left unrendered"; fi
# What the nginx image's own nginx.conf provides around conf.d, with every path in $TMP.
cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    keepalive_timeout 65;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    include $TMP/nginx/gateway.conf;
}
EOF
# Workers run as nobody when we are root: let them into their temporary directories.
chmod 0755 "$TMP"
mkdir -p "$TMP"/nginx/{client_body,proxy,fastcgi,uwsgi,scgi}
((EUID != 0)) || chown nobody "$TMP"/nginx/{client_body,proxy,fastcgi,uwsgi,scgi}
"$NGINX" -t -q -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx-error.log" ||
  fail "nginx -t: $(cat "$TMP/nginx-error.log")"
pass "nginx -t: the rendered gateway configuration is valid"

step "database: a fresh PostgreSQL database $DB (and leftovers of runs that died)"
for stale in $(psql_admin "SELECT datname FROM pg_database WHERE datname ~ '^gateway_test_[0-9]+$'"); do
  kill -0 "${stale#gateway_test_}" 2>/dev/null && continue # a run still going
  psql_admin "DROP DATABASE IF EXISTS $stale WITH (FORCE)" >/dev/null
  note "dropped $stale"
done
psql_admin "CREATE DATABASE $DB" >/dev/null
db_created=1
pass "created $DB"

step "auth-server x2: same database, same key-encryption key, same issuer, started together"
for n in 1 2; do
  port_var=AUTH${n}_PORT
  start "auth-$n" "$TMP/auth-$n.log" env AUTH_BIND="127.0.0.1:${!port_var}" AUTH_ISSUER="$GW" \
    AUTH_DATABASE_URL="$DATABASE_URL" AUTH_KEY_ENCRYPTION_KEY_FILE="$TMP/key-encryption-key" \
    AUTH_KEY_REFRESH_SECS=1 AUTH_TRUST_FORWARDED_FOR=true AUTH_CONFIG="$TMP/auth-server.toml" \
    LOG_FORMAT=compact NO_COLOR=1 \
    "$BIN/auth-server" serve
done
wait_ready auth-1 "http://127.0.0.1:$AUTH1_PORT/health/ready"
wait_ready auth-2 "http://127.0.0.1:$AUTH2_PORT/health/ready"
pass "auth-1 (pid ${PID[auth-1]}) and auth-2 (pid ${PID[auth-2]}) ready"

step "nginx (the gateway) in front of them"
ACCESS_LOG=$TMP/gateway-access.log
start nginx "$TMP/nginx.log" sh -c \
  'exec "$0" -p "$1" -c "$1/nginx.conf" -e "$2" >>"$3"' \
  "$NGINX" "$TMP/nginx" "$TMP/nginx-error.log" "$ACCESS_LOG"
wait_ready nginx "$GW/healthz"
pass "gateway (pid ${PID[nginx]}) answers on $GW"

step "resource-api x2: players-api and scouting-api, keys discovered from the issuer (the gateway)"
start players-api "$TMP/players-api.log" env API_BIND="127.0.0.1:$PLAYERS_PORT" API_ISSUER="$GW" \
  API_AUDIENCE=players-api API_DATABASE_URL="sqlite://$TMP/players.sqlite?mode=rwc" \
  API_JWKS_COOLDOWN_SECS=1 NO_COLOR=1 "$BIN/resource-api" serve
start scouting-api "$TMP/scouting-api.log" env API_BIND="127.0.0.1:$SCOUTING_PORT" API_ISSUER="$GW" \
  API_AUDIENCE=scouting-api API_DATABASE_URL="sqlite://$TMP/scouting.sqlite?mode=rwc" \
  API_JWKS_COOLDOWN_SECS=1 NO_COLOR=1 "$BIN/resource-api" serve
wait_ready players-api "http://127.0.0.1:$PLAYERS_PORT/health/ready"
wait_ready scouting-api "http://127.0.0.1:$SCOUTING_PORT/health/ready"
pass "players-api (pid ${PID[players-api]}) and scouting-api (pid ${PID[scouting-api]}) ready: both fetched the JWKS through the gateway"

step "the image's HEALTHCHECK probe (deploy/Dockerfile) against the real services"
sed -n "/^COPY --chmod=0755 <<'PROBE' /,/^PROBE\$/p" deploy/Dockerfile | sed '1d;$d' >"$TMP/probe-ready"
[[ -s $TMP/probe-ready ]] || fail "no probe-ready script found in deploy/Dockerfile"
# As HEALTHCHECK runs it: no argument, the port taken from the image's AUTH_BIND / API_BIND.
env -u API_BIND AUTH_BIND="0.0.0.0:$AUTH2_PORT" bash "$TMP/probe-ready" || fail "probe-ready failed for auth-2"
env -u AUTH_BIND API_BIND="0.0.0.0:$PLAYERS_PORT" bash "$TMP/probe-ready" || fail "probe-ready failed for players-api"
pass "probe-ready exits 0 for a ready auth-server and a ready resource-api"
if bash "$TMP/probe-ready" "$(free_ports 1)" 2>/dev/null; then fail "probe-ready passed on a closed port"; fi
pass "probe-ready exits non-zero when nothing listens"

# ---------------------------------------------------------------------------------------------
step "discovery through the gateway: iss and every metadata URL are the gateway's"
declare -A METADATA_BY=()
for _ in 1 2 3 4; do
  gw GET /.well-known/oauth-authorization-server
  [[ $STATUS == 200 ]] || fail "metadata: HTTP $STATUS $(body)"
  METADATA_BY[$(replica_name "$(upstream_of "$RID")")]=$(jq -S -c . "$TMP/body")
done
[[ -n ${METADATA_BY[auth-1]:-} && -n ${METADATA_BY[auth-2]:-} ]] || fail "metadata did not come from both replicas"
expect "${METADATA_BY[auth-1]}" "${METADATA_BY[auth-2]}" "both replicas serve the same metadata"
metadata=${METADATA_BY[auth-1]}
expect "$(jq -r .issuer <<<"$metadata")" "$GW" "issuer is $GW"
for field in $(jq -r 'to_entries[] | select(.key | test("_(endpoint|uri)$|^service_documentation$")) | .key' <<<"$metadata"); do
  url=$(jq -r --arg f "$field" '.[$f]' <<<"$metadata")
  [[ $url == "$GW/"* ]] || fail "$field is $url, not under $GW"
  pass "$field = $url"
done
gw GET /.well-known/openid-configuration
expect "$(jq -S -c . "$TMP/body")" "$metadata" "/.well-known/openid-configuration is the same document"
gw GET "$(jq -r .jwks_uri <<<"$metadata" | sed "s|^$GW||")"
expect "$STATUS" 200 "jwks_uri answers through the gateway"
gw GET "$(jq -r .service_documentation <<<"$metadata" | sed "s|^$GW||")"
expect "$STATUS" 200 "service_documentation answers through the gateway"

step "both replicas serve the same JWKS"
declare -A JWKS_BY=()
for _ in 1 2 3 4; do
  gw GET /.well-known/jwks.json
  [[ $STATUS == 200 ]] || fail "JWKS: HTTP $STATUS"
  JWKS_BY[$(replica_name "$(upstream_of "$RID")")]=$(jq -S -c . "$TMP/body")
done
[[ -n ${JWKS_BY[auth-1]:-} && -n ${JWKS_BY[auth-2]:-} ]] || fail "the JWKS did not come from both replicas"
expect "${JWKS_BY[auth-1]}" "${JWKS_BY[auth-2]}" "auth-1 and auth-2 publish identical key sets"
note "kids: $(jq -r '[.keys[].kid] | join(", ")' <<<"${JWKS_BY[auth-1]}")"

step "tokens for players-api and scouting-api, from each replica"
tokens_from_both players-api
declare -A PLAYERS_TOKEN=([auth-1]=${TOKEN_BY[auth-1]} [auth-2]=${TOKEN_BY[auth-2]})
tokens_from_both scouting-api
declare -A SCOUTING_TOKEN=([auth-1]=${TOKEN_BY[auth-1]} [auth-2]=${TOKEN_BY[auth-2]})
for replica in auth-1 auth-2; do
  for audience in players-api scouting-api; do
    if [[ $audience == players-api ]]; then tok=${PLAYERS_TOKEN[$replica]}; else tok=${SCOUTING_TOKEN[$replica]}; fi
    claims=$(jwt_part "$tok" 1)
    head=$(jwt_part "$tok" 0)
    [[ $(jq -r .iss <<<"$claims") == "$GW" ]] || fail "$audience token from $replica: iss $(jq -r .iss <<<"$claims")"
    [[ $(jq -r '.aud | if type == "array" then .[0] else . end' <<<"$claims") == "$audience" ]] ||
      fail "$audience token from $replica: aud $(jq -c .aud <<<"$claims")"
    [[ $(jq -r .typ <<<"$head") == at+jwt ]] || fail "$audience token from $replica: typ $(jq -r .typ <<<"$head")"
    pass "$audience token from $replica: iss $GW, aud $audience, typ at+jwt, kid $(jq -r .kid <<<"$head" | cut -c1-12)…"
  done
done
OLD_KID=$(jwt_part "${PLAYERS_TOKEN[auth-1]}" 0 | jq -r .kid)

step "each API accepts its own audience's tokens, from either replica, and refuses the other's"
for replica in auth-1 auth-2; do
  accepts "" "${PLAYERS_TOKEN[$replica]}" "/players accepts a players-api token from $replica"
  accepts /scouting "${SCOUTING_TOKEN[$replica]}" "/scouting accepts a scouting-api token from $replica"
done
rejects /scouting "${PLAYERS_TOKEN[auth-1]}" scouting-api "/scouting refuses a players-api token"
rejects "" "${SCOUTING_TOKEN[auth-2]}" players-api "/players refuses a scouting-api token"
gw POST /players -H 'Content-Type: application/json' -d '{}'
expect "$STATUS $(header WWW-Authenticate)" '401 Bearer realm="players-api"' "/players without a token: 401, a bare Bearer challenge"
gw GET /scouting/players
expect "$STATUS $(jq length "$TMP/body")" "200 26" "GET /scouting/players (prefix stripped) lists the 26 seeded players"

# ---------------------------------------------------------------------------------------------
step "key rotation: auth-server keys rotate --now (the CLI, with auth-1's configuration)"
rotated=$(auth_cli keys rotate --now)
NEW_KID=$(awk '{print $1; exit}' <<<"$rotated")
note "$rotated"
[[ -n $NEW_KID && $NEW_KID != "$OLD_KID" ]] || fail "no new kid from keys rotate: $rotated"
pass "new active key $(cut -c1-12 <<<"$NEW_KID")…, replacing $(cut -c1-12 <<<"$OLD_KID")…"
# Each replica re-reads the keys every second (AUTH_KEY_REFRESH_SECS=1): wait until both publish it.
declare -A HAS_NEW=()
for _ in $(seq 50); do
  gw GET /.well-known/jwks.json
  if jq -e --arg k "$NEW_KID" 'any(.keys[]; .kid == $k)' "$TMP/body" >/dev/null; then
    HAS_NEW[$(replica_name "$(upstream_of "$RID")")]=1
  fi
  [[ -n ${HAS_NEW[auth-1]:-} && -n ${HAS_NEW[auth-2]:-} ]] && break
  sleep 0.2
done
[[ -n ${HAS_NEW[auth-1]:-} && -n ${HAS_NEW[auth-2]:-} ]] || fail "the new key did not reach both replicas' JWKS in 10 s"
jq -e --arg k "$OLD_KID" 'any(.keys[]; .kid == $k)' "$TMP/body" >/dev/null ||
  fail "the old key is no longer published: its tokens would stop verifying"
pass "both replicas publish the new key, and still the old one"
tokens_from_both players-api
declare -A NEW_PLAYERS_TOKEN=([auth-1]=${TOKEN_BY[auth-1]} [auth-2]=${TOKEN_BY[auth-2]})
tokens_from_both scouting-api
declare -A NEW_SCOUTING_TOKEN=([auth-1]=${TOKEN_BY[auth-1]} [auth-2]=${TOKEN_BY[auth-2]})
for replica in auth-1 auth-2; do
  expect "$(jwt_part "${NEW_PLAYERS_TOKEN[$replica]}" 0 | jq -r .kid)" "$NEW_KID" "$replica signs with the new key (rotated through auth-1's configuration)"
done
accepts "" "${NEW_PLAYERS_TOKEN[auth-2]}" "/players accepts a new-key token (no restart: it refetched on the unknown kid)"
accepts /scouting "${NEW_SCOUTING_TOKEN[auth-1]}" "/scouting accepts a new-key token"
accepts "" "${PLAYERS_TOKEN[auth-1]}" "/players still accepts an old-key token"
accepts /scouting "${SCOUTING_TOKEN[auth-2]}" "/scouting still accepts an old-key token"
rejects /scouting "${NEW_PLAYERS_TOKEN[auth-1]}" scouting-api "/scouting refuses a new-key players-api token"
keys=$(auth_cli keys list)
grep -q "^$NEW_KID .* active " <<<"$keys" || fail "keys list: $NEW_KID is not active: $keys"
grep -q "^$OLD_KID .* retired " <<<"$keys" || fail "keys list: $OLD_KID is not retired: $keys"
pass "keys list: the new key active, the old one retired (published until its tokens expire)"

# ---------------------------------------------------------------------------------------------
step "failover: kill -9 auth-1, keep getting tokens through the gateway"
dead_pid=${PID[auth-1]}
stop auth-1 KILL
kill -0 "$dead_pid" 2>/dev/null && fail "auth-1 (pid $dead_pid) still runs"
pass "auth-1 (pid $dead_pid) is gone"
retried=0
for i in 1 2 3 4 5 6; do
  token players-api
  upstreams=$(upstream_of "$RID")
  [[ $upstreams == *", "* ]] && retried=$((retried + 1))
  [[ $upstreams == *"127.0.0.1:$AUTH2_PORT" ]] || fail "token $i was answered by $upstreams, not auth-2"
  last_token=$TOKEN
done
pass "6 of 6 token requests answered 200 by auth-2"
((retried >= 1)) || fail "no request was retried: was auth-1 ever tried?"
pass "$retried request(s) tried the dead replica first and were retried on auth-2 (max_fails/proxy_next_upstream)"
accepts "" "$last_token" "/players accepts a token issued after the failover"
gw GET /.well-known/jwks.json
expect "$STATUS $(jq -r --arg k "$NEW_KID" 'any(.keys[]; .kid == $k)' "$TMP/body")" "200 true" "the JWKS is still served, with the current key"

# ---------------------------------------------------------------------------------------------
step "gateway limits: unknown paths, body size and request rate on /auth/token"
gw GET /metrics
expect "$STATUS $(header Content-Type)" "404 application/problem+json" "GET /metrics is not exposed (a JSON 404)"
head -c 20000 /dev/zero | tr '\0' a >"$TMP/big-body"
gw POST /auth/token -H @"$TMP/client-auth-header" --data-binary @"$TMP/big-body"
expect "$STATUS $(jq -r .error "$TMP/body")" "413 invalid_request" "a 20 KB token request is refused at the gateway (413, RFC 6749 shape)"
# A burst from one address, 20 at a time (one curl, so the burst does not depend on how fast
# this machine starts processes): 200 requests far outrun 20/s with a burst of 40.
mkdir -p "$TMP/burst"
for i in $(seq 200); do
  printf 'url = "%s/auth/token"\noutput = "%s/burst/%d"\n' "$GW" "$TMP" "$i"
done >"$TMP/burst.cfg"
curl -sS --no-progress-meter --parallel --parallel-max 20 -K "$TMP/burst.cfg" \
  -w '%{http_code} %{filename_effective} %header{retry-after} %header{cache-control}\n' \
  >"$TMP/burst.out" 2>"$TMP/curl-error" || true
limited=$(grep -c '^429 ' "$TMP/burst.out" || true)
answered=$(grep -c '^405 ' "$TMP/burst.out" || true)
((limited > 0)) || fail "200 requests in a burst were never limited: $(cut -d' ' -f1 "$TMP/burst.out" | sort | uniq -c | xargs)"
pass "a burst of 200: $answered reached the auth-server, $limited were refused with 429"
read -r _ first retry_after cache_control <<<"$(grep -m1 '^429 ' "$TMP/burst.out")"
expect "$(jq -r .error "$first") $retry_after $cache_control" "temporarily_unavailable 1 no-store" \
  "the 429 has an RFC 6749 body, Retry-After and Cache-Control: no-store"

# ---------------------------------------------------------------------------------------------
step "stop everything by pid, drop the database"
for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
  name=${STARTED[i]}
  pid=${PID[$name]:-}
  [[ -n $pid ]] || continue
  stop "$name"
  kill -0 "$pid" 2>/dev/null && fail "$name (pid $pid) still runs"
  pass "stopped $name (pid $pid)"
done
STARTED=()
psql_admin "DROP DATABASE $DB WITH (FORCE)" >/dev/null
db_created=0
expect "$(psql_admin "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" 0 "dropped $DB"
