#!/usr/bin/env bash
# The deployment shape, for real, on loopback: one PostgreSQL database, two auth-server
# replicas on it, the players API and a second resource-api (audience scouting-api), and nginx
# with deploy/nginx/gateway.conf in front. Every check goes through the gateway; the services'
# own ports are used only to wait for them to be ready. Also validates deploy/k8s and runs the
# image's readiness probe. Every service exports its spans over OTLP to a small receiver
# (tests/gateway/otlp_receiver.py), and a token request and a protected write through the
# gateway must form one trace across both services. Prints each step; exits non-zero on the first failed check; stops
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

squad=80
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
pass "deploy/Dockerfile and deploy/compose.yaml pass (make test-images builds and runs the images)"

# ---------------------------------------------------------------------------------------------
step "OTLP receiver: tests/gateway/otlp_receiver.py (opentelemetry-proto from PyPI) on loopback"
source tests/gateway/venv.sh
ensure_venv
SPANS=$TMP/spans.jsonl
start otlp "$TMP/otlp.log" "$VENV/bin/python" tests/gateway/otlp_receiver.py "$TMP/otlp-port" "$SPANS"
for _ in $(seq 100); do
  [[ -s $TMP/otlp-port ]] && break
  kill -0 "${PID[otlp]}" 2>/dev/null || fail "the OTLP receiver exited (see its log below)"
  sleep 0.1
done
[[ -s $TMP/otlp-port ]] || fail "the OTLP receiver did not start in 10 s"
OTLP=http://127.0.0.1:$(cat "$TMP/otlp-port")
# Every service exports there; batches leave every 200 ms instead of every 5 s.
export OTEL_BSP_SCHEDULE_DELAY=200
pass "receiving OTLP/HTTP spans at $OTLP/v1/traces"

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
# A client without a secret whose tokens are DPoP-bound: its key made by the README's shell
# client (deploy/examples/secretless-client.sh), which also makes its proofs below.
DPOP_CLIENT=gateway-dpop
secretless() { (cd "$TMP" && bash "$ROOT/deploy/examples/secretless-client.sh" "$@"); }
secretless keys "$DPOP_CLIENT" 2>/dev/null || fail "secretless-client.sh keys failed"
EXCHANGE_SECRET=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
(umask 077 && printf '%s' "$EXCHANGE_SECRET" >"$TMP/exchange-secret")
# The clients both replicas bootstrap, the secret read from a file as in production.
cat >"$TMP/auth-server.toml" <<EOF
# The two APIs, registered: their resource URIs are their public URLs behind the gateway (the
# \`resource\` of their RFC 9728 metadata).
[[apis]]
id = "players-api"
resource = "$GW"
scopes = ["players:write"]

[[apis]]
id = "scouting-api"
resource = "$GW/scouting"
scopes = ["players:write"]
token_ttl_secs = 120

[[clients]]
client_id = "$CLIENT_ID"
client_secret_file = "$TMP/client-secret"
scopes = ["players:write"]
audiences = ["players-api", "scouting-api"]

[[clients]]
client_id = "$DPOP_CLIENT"
jwks_file = "$TMP/$DPOP_CLIENT.jwks.json"
scopes = ["players:write"]
audiences = ["players-api"]
dpop_bound = true

# The players API's own client: it exchanges its callers' tokens for scouting-api ones.
[[clients]]
client_id = "players-api"
client_secret_file = "$TMP/exchange-secret"
scopes = ["players:write"]
audiences = ["players-api"]
grant_types = ["token-exchange"]
exchange_to = ["scouting-api"]
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

# Throttle counts shared by both replicas, under a key prefix of this run's own.
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
REDIS_PREFIX="gateway-test-$$:"

step "auth-server x2: same database, same key-encryption key, same issuer, started together"
for n in 1 2; do
  port_var=AUTH${n}_PORT
  start "auth-$n" "$TMP/auth-$n.log" env AUTH_BIND="127.0.0.1:${!port_var}" AUTH_ISSUER="$GW" \
    AUTH_DATABASE_URL="$DATABASE_URL" AUTH_KEY_ENCRYPTION_KEY_FILE="$TMP/key-encryption-key" \
    AUTH_KEY_REFRESH_SECS=1 AUTH_TRUSTED_PROXIES='["127.0.0.1"]' AUTH_CONFIG="$TMP/auth-server.toml" \
    AUTH_THROTTLE__STORE=redis AUTH_THROTTLE__REDIS_URL="$REDIS_URL" \
    AUTH_THROTTLE__REDIS_KEY_PREFIX="$REDIS_PREFIX" \
    AUTH_OTLP_ENDPOINT="$OTLP" LOG_FORMAT=compact NO_COLOR=1 \
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
# The players API refers players to the scouting API (through the gateway) for its callers,
# exchanging their tokens as its own client "players-api".
start players-api "$TMP/players-api.log" env API_BIND="127.0.0.1:$PLAYERS_PORT" API_ISSUER="$GW" \
  API_PUBLIC_URL="$GW" API_AUDIENCE=players-api API_DATABASE_URL="sqlite://$TMP/players.sqlite?mode=rwc" \
  API_SCOUTING__URL="$GW/scouting" API_SCOUTING__AUDIENCE=scouting-api \
  API_SCOUTING__CLIENT_ID=players-api API_SCOUTING__CLIENT_SECRET_FILE="$TMP/exchange-secret" \
  API_JWKS_COOLDOWN_SECS=1 API_OTLP_ENDPOINT="$OTLP" NO_COLOR=1 "$BIN/resource-api" serve
start scouting-api "$TMP/scouting-api.log" env API_BIND="127.0.0.1:$SCOUTING_PORT" API_ISSUER="$GW" \
  API_PUBLIC_URL="$GW/scouting" API_AUDIENCE=scouting-api API_DATABASE_URL="sqlite://$TMP/scouting.sqlite?mode=rwc" \
  API_JWKS_COOLDOWN_SECS=1 API_OTLP_ENDPOINT="$OTLP" NO_COLOR=1 "$BIN/resource-api" serve
wait_ready players-api "http://127.0.0.1:$PLAYERS_PORT/health/ready"
wait_ready scouting-api "http://127.0.0.1:$SCOUTING_PORT/health/ready"
pass "players-api (pid ${PID[players-api]}) and scouting-api (pid ${PID[scouting-api]}) ready: both fetched the JWKS through the gateway"

step "the image's HEALTHCHECK probe (deploy/probe-ready) against the real services"
cp deploy/probe-ready "$TMP/probe-ready"
# As HEALTHCHECK runs it: no argument, the port taken from the image's AUTH_BIND / API_BIND.
env -u API_BIND AUTH_BIND="0.0.0.0:$AUTH2_PORT" bash "$TMP/probe-ready" || fail "probe-ready failed for auth-2"
env -u AUTH_BIND API_BIND="0.0.0.0:$PLAYERS_PORT" bash "$TMP/probe-ready" || fail "probe-ready failed for players-api"
pass "probe-ready exits 0 for a ready auth-server and a ready resource-api"
if bash "$TMP/probe-ready" "$(free_ports 1)" 2>/dev/null; then fail "probe-ready passed on a closed port"; fi
pass "probe-ready exits non-zero when nothing listens"

# ---------------------------------------------------------------------------------------------
step "traces: a token request and a protected write through the gateway form one trace across both services"
hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
TRACE_ID=$(hex 16)
TOKEN_PARENT=$(hex 8)
WRITE_PARENT=$(hex 8)
WRONG_PARENT=$(hex 8)
note "trace $TRACE_ID: the token request's parent span $TOKEN_PARENT, the write's $WRITE_PARENT"
# A wrong secret first: a secret not proven before is checked with argon2id (the right one may
# already be remembered by the replica that answers: it proved it when it bootstrapped the client).
WRONG_SECRET=wrong-$(hex 12)
gw POST /auth/token -u "$CLIENT_ID:$WRONG_SECRET" -H "traceparent: 00-$TRACE_ID-$WRONG_PARENT-01" \
  --data-urlencode grant_type=client_credentials --data-urlencode audience=players-api
[[ $STATUS == 401 ]] || fail "token with a wrong secret: HTTP $STATUS $(body)"
WRONG_RID=$RID
gw POST /auth/token -H @"$TMP/client-auth-header" -H "traceparent: 00-$TRACE_ID-$TOKEN_PARENT-01" \
  --data-urlencode grant_type=client_credentials --data-urlencode audience=players-api
[[ $STATUS == 200 ]] || fail "token with a traceparent: HTTP $STATUS $(body)"
TRACED_TOKEN=$(jq -r .access_token "$TMP/body")
TOKEN_RID=$RID
trace_squad=80 # below the squad numbers `accepts` uses
gw POST /players -H "Authorization: Bearer $TRACED_TOKEN" -H 'Content-Type: application/json' \
  -H "traceparent: 00-$TRACE_ID-$WRITE_PARENT-01" \
  -d "{\"firstName\":\"Trace\",\"lastName\":\"Able\",\"squadNumber\":$trace_squad,\"position\":\"Goalkeeper\"}"
[[ $STATUS == 201 ]] || fail "write with a traceparent: HTTP $STATUS $(body)"
WRITE_RID=$RID
# No traceparent: the gateway starts the trace, and logs it.
gw DELETE "/players/squadnumber/$trace_squad" -H "Authorization: Bearer $TRACED_TOKEN"
[[ $STATUS == 204 ]] || fail "delete without a traceparent: HTTP $STATUS $(body)"
DELETE_RID=$RID
upstream_of "$DELETE_RID" >/dev/null
GATEWAY_TRACEPARENT=$(grep -F "\"request_id\":\"$DELETE_RID\"" "$ACCESS_LOG" | jq -r .traceparent)
[[ $GATEWAY_TRACEPARENT =~ ^00-[0-9a-f]{32}-[0-9a-f]{16}-01$ ]] ||
  fail "the gateway logged traceparent '$GATEWAY_TRACEPARENT' for a request that had none"
pass "the gateway started trace ${GATEWAY_TRACEPARENT:3:32} for a request without a traceparent"
# check_traces: what the receiver holds, checked in Python; retried while batches arrive (10 s).
check_traces() {
  python3 - "$SPANS" "$TRACE_ID" "$TOKEN_PARENT" "$WRITE_PARENT" "$TOKEN_RID" "$WRITE_RID" \
    "$DELETE_RID" "$GATEWAY_TRACEPARENT" "$TMP/client-secret" "$TRACED_TOKEN" \
    "$WRONG_PARENT" "$WRONG_RID" "$WRONG_SECRET" <<'PY'
import json, sys
(spans_file, trace_id, token_parent, write_parent, token_rid, write_rid, delete_rid,
 gateway_traceparent, secret_file, token, wrong_parent, wrong_rid, wrong_secret) = sys.argv[1:]
text = open(spans_file).read()
spans = [json.loads(line) for line in text.splitlines() if line]
problems = []

def server_span(service, trace, parent, rid):
    found = [s for s in spans if s["service"] == service and s["trace_id"] == trace
             and s["kind"] == "SPAN_KIND_SERVER" and s["attributes"].get("request_id") == rid]
    if not found:
        problems.append(f"no {service} server span for request {rid} in trace {trace}")
        return None
    span = found[0]
    if span["parent_span_id"] != parent:
        problems.append(f"{service} span {span['name']}: parent {span['parent_span_id']}, expected {parent}")
    return span

def children(span):
    return {s["name"]: s for s in spans
            if span and s["trace_id"] == span["trace_id"] and s["parent_span_id"] == span["span_id"]}

def expect(span, name, operation, status):
    if span is None:
        return
    a = span["attributes"]
    got = (span["name"], a.get("operation"), str(a.get("http.response.status_code")))
    if got != (name, operation, str(status)):
        problems.append(f"server span {got}, expected {(name, operation, str(status))}")

token_span = server_span("auth-server", trace_id, token_parent, token_rid)
expect(token_span, "POST issueToken", "issueToken", 200)
if token_span and "sign access token" not in children(token_span):
    problems.append(f"the token request's span has no signing child: {sorted(children(token_span))}")
wrong_span = server_span("auth-server", trace_id, wrong_parent, wrong_rid)
expect(wrong_span, "POST issueToken", "issueToken", 401)
if wrong_span and "argon2id verify" not in children(wrong_span):
    problems.append(f"the wrong secret's span has no argon2id child: {sorted(children(wrong_span))}")
write_span = server_span("resource-api", trace_id, write_parent, write_rid)
expect(write_span, "POST createPlayer", "createPlayer", 201)
insert = children(write_span).get("INSERT players")
if write_span and (insert is None or insert["attributes"].get("db.system.name") != "sqlite"):
    problems.append(f"the write's span has no 'INSERT players' sqlite child: {sorted(children(write_span))}")
gateway_trace, gateway_parent = gateway_traceparent[3:35], gateway_traceparent[36:52]
delete_span = server_span("resource-api", gateway_trace, gateway_parent, delete_rid)
expect(delete_span, "DELETE deletePlayer", "deletePlayer", 204)
if delete_span and "DELETE players" not in children(delete_span):
    problems.append(f"the delete's span has no 'DELETE players' child: {sorted(children(delete_span))}")
if not any(s["service"] == "resource-api" and s["name"] == "GET issuer document"
           and s["kind"] == "SPAN_KIND_CLIENT" for s in spans):
    problems.append("no resource-api span for its fetch of the issuer's metadata and JWKS")
secret = open(secret_file).read().strip()
for what, value in (("the client secret", secret), ("the wrong secret", wrong_secret),
                    ("the access token", token),
                    ("the token's signature", token.rsplit(".", 1)[-1]),
                    ("a Basic credential", "Basic "), ("a Bearer credential", "Bearer ")):
    if value in text:
        problems.append(f"{what} appears in the exported spans")
if problems:
    print("; ".join(problems))
    sys.exit(1)
trace = [s for s in spans if s["trace_id"] == trace_id]
print(f"{len(trace)} spans in trace {trace_id}: " + ", ".join(
    sorted(f"{s['service']}/{s['name']}" for s in trace)))
PY
}
for attempt in $(seq 50); do
  if result=$(check_traces 2>&1); then break; fi
  ((attempt < 50)) || fail "traces: $result"
  sleep 0.2
done
note "$result"
pass "auth-server's span of the token request is a child of the caller's span $TOKEN_PARENT, with signing under it"
pass "a wrong secret's token request (401) is in the trace too, with argon2id under it"
pass "resource-api's span of the write is in the same trace, a child of $WRITE_PARENT, with its INSERT under it"
pass "a request without traceparent is traced under the id the gateway started and logged"
pass "the resource-api's fetch of the issuer's keys is a span; no span holds the secret or the token"

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
expect "$STATUS $(header WWW-Authenticate)" \
  "401 Bearer realm=\"players-api\", resource_metadata=\"$GW/.well-known/oauth-protected-resource\"" \
  "/players without a token: 401, a Bearer challenge naming the API's RFC 9728 metadata"
gw GET /scouting/players
expect "$STATUS $(jq length "$TMP/body")" "200 26" "GET /scouting/players (prefix stripped) lists the 26 seeded players"

step "RFC 9728: each API's protected-resource metadata at the public address its challenges name"
# metadata_of PREFIX NAME: the challenge of a write without a token at PREFIX names a metadata URL
# on the gateway; that URL answers with the API's public URL as `resource` and the issuer.
metadata_of() {
  local prefix=$1 name=$2 url
  gw POST "$prefix/players" -H 'Content-Type: application/json' -d '{}'
  url=$(header WWW-Authenticate | sed -nE 's/.*resource_metadata="([^"]+)".*/\1/p')
  [[ $url == "$GW/.well-known/oauth-protected-resource$prefix" ]] ||
    fail "$name: the challenge names '$url' ($(header WWW-Authenticate))"
  gw GET "${url#"$GW"}"
  [[ $STATUS == 200 ]] || fail "$name: GET $url answered $STATUS $(body)"
  expect "$(jq -c '[.resource, .authorization_servers, .scopes_supported, .bearer_methods_supported]' "$TMP/body")" \
    "[\"$GW$prefix\",[\"$GW\"],[\"players:write\"],[\"header\"]]" \
    "$name: the challenge names $url; it gives resource $GW$prefix and the issuer $GW"
}
metadata_of "" "players API"
metadata_of /scouting "scouting API (under /scouting: the path-suffixed well-known URL)"
gw GET /.well-known/oauth-authorization-server
expect "$STATUS $(jq -r .issuer "$TMP/body")" "200 $GW" \
  "/.well-known/oauth-authorization-server still reaches the issuer"

# ---------------------------------------------------------------------------------------------
step "token exchange (RFC 8693) through the gateway: a players-api token becomes a scouting-api one"
# What the players API does for a caller: its own client exchanges the caller's token at the
# issuer's public URL; the scouting API accepts the result for the same subject, with `act`.
gw POST /auth/token -u "players-api:$EXCHANGE_SECRET" \
  --data-urlencode grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
  --data-urlencode "subject_token=${PLAYERS_TOKEN[auth-1]}" \
  --data-urlencode subject_token_type=urn:ietf:params:oauth:token-type:access_token \
  --data-urlencode audience=scouting-api
[[ $STATUS == 200 ]] || fail "token exchange: HTTP $STATUS $(body)"
EXCHANGED=$(jq -r .access_token "$TMP/body")
expect "$(jq -r .issued_token_type "$TMP/body") $(jwt_part "$EXCHANGED" 1 | jq -c '[.sub, .aud, .client_id, .act]')" \
  "urn:ietf:params:oauth:token-type:access_token [\"$CLIENT_ID\",\"scouting-api\",\"players-api\",{\"sub\":\"players-api\"}]" \
  "the exchanged token keeps the subject $CLIENT_ID, is for scouting-api, and names players-api in act"
accepts /scouting "$EXCHANGED" "/scouting accepts the exchanged token (its audit lines name the actor)"
grep -qE '(actor="players-api"|"actor":"players-api")' "$TMP/scouting-api.log" ||
  fail "the scouting API's audit line does not name the actor: $(grep -m1 'player created' "$TMP/scouting-api.log")"
pass "the scouting API logged actor players-api for subject $CLIENT_ID"
gw POST /auth/token -u "players-api:$EXCHANGE_SECRET" \
  --data-urlencode grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
  --data-urlencode "subject_token=${SCOUTING_TOKEN[auth-1]}" \
  --data-urlencode subject_token_type=urn:ietf:params:oauth:token-type:access_token
expect "$STATUS $(jq -r .error "$TMP/body")" "400 invalid_request" \
  "a subject token meant for another API (scouting-api) is refused: invalid_request"

# ---------------------------------------------------------------------------------------------
step "registered APIs: a resource URI from an API's RFC 9728 metadata names it at the token endpoint"
gw GET /.well-known/oauth-protected-resource/scouting
SCOUTING_RESOURCE=$(jq -r .resource "$TMP/body")
gw POST /auth/token -H @"$TMP/client-auth-header" \
  --data-urlencode grant_type=client_credentials --data-urlencode "resource=$SCOUTING_RESOURCE"
[[ $STATUS == 200 ]] || fail "token for resource $SCOUTING_RESOURCE: HTTP $STATUS $(body)"
BY_RESOURCE=$(jq -r .access_token "$TMP/body")
expect "$(jq -r .expires_in "$TMP/body") $(jwt_part "$BY_RESOURCE" 1 | jq -c '[.aud, .scope]')" \
  '120 ["scouting-api","players:write"]' \
  "resource=$SCOUTING_RESOURCE gives a scouting-api token, living scouting-api's own 120 s"
gw POST /auth/token -H @"$TMP/client-auth-header" \
  --data-urlencode grant_type=client_credentials --data-urlencode "resource=$GW/billing"
expect "$STATUS $(jq -r .error "$TMP/body")" "400 invalid_target" \
  "a resource URI no API registered: 400 invalid_target"

# ---------------------------------------------------------------------------------------------
step "the players API calls the scouting API for its caller (token exchange inside the service)"
gw POST /players -H "Authorization: Bearer ${PLAYERS_TOKEN[auth-2]}" -H 'Content-Type: application/json' \
  -d '{"firstName":"Scout","lastName":"Ed","squadNumber":50,"position":"Midfielder"}'
[[ $STATUS == 201 ]] || fail "POST /players (50) answered $STATUS $(body)"
gw POST /players/squadnumber/50/scouting -H "Authorization: Bearer ${PLAYERS_TOKEN[auth-2]}"
[[ $STATUS == 201 ]] || fail "POST /players/squadnumber/50/scouting answered $STATUS $(body)"
REFERRED=$(header Location)
[[ $REFERRED == "$GW/scouting/players/"* ]] || fail "the referral's Location '$REFERRED' is not under $GW/scouting/players/"
gw GET "${REFERRED#"$GW"}"
expect "$STATUS $(jq -r .squadNumber "$TMP/body")" "200 50" \
  "the players API referred player 50: the scouting API has it at its Location, $REFERRED"
grep 'player created' "$TMP/scouting-api.log" | grep -E 'squad_number(=|":)50' |
  grep -E "(sub=$CLIENT_ID|\"sub\":\"$CLIENT_ID\")" | grep -qE '(actor="?players-api|"actor":"players-api")' ||
  fail "the scouting API did not log player 50 created for $CLIENT_ID by players-api: $(grep 'squad_number.50' "$TMP/scouting-api.log" | head -n 2)"
pass "the scouting API logged player 50 created for subject $CLIENT_ID with actor players-api"
gw POST /players/squadnumber/50/scouting -H "Authorization: Bearer ${PLAYERS_TOKEN[auth-2]}"
expect "$STATUS $(jq -r .error "$TMP/body")" "409 conflict" "referring it again: 409 (the scouting API has it)"
gw POST /players/squadnumber/50/scouting -H "Authorization: Bearer ${SCOUTING_TOKEN[auth-2]}"
expect "$STATUS" "401" "a scouting-api token at the players API: 401"

# ---------------------------------------------------------------------------------------------
step "DPoP through the gateway: proofs name the public URLs, not the addresses behind it"
# The token request's proof names $GW/auth/token (the issuer's), the write's $GW/players (the
# players API's public_url); behind the gateway both services see other addresses.
DPOP_RESPONSE=$(DPOP=1 secretless token "$DPOP_CLIENT" "$GW")
[[ $(jq -r .token_type <<<"$DPOP_RESPONSE") == DPoP ]] ||
  fail "a DPoP token request through the gateway answered $DPOP_RESPONSE"
DPOP_TOKEN=$(jq -r .access_token <<<"$DPOP_RESPONSE")
[[ $(jwt_part "$DPOP_TOKEN" 1 | jq -r '.cnf.jkt | length') == 43 ]] ||
  fail "the DPoP token has no cnf.jkt: $(jwt_part "$DPOP_TOKEN" 1)"
pass "$DPOP_CLIENT (private_key_jwt, dpop_bound) got a DPoP-bound token through the gateway"
DPOP_PLAYER='{"firstName":"Proof","lastName":"Holder","squadNumber":88,"position":"Defender"}'
dpop_write() { # dpop_write URL: POST URL with the bound token and a proof for URL; prints the status
  secretless call "$DPOP_CLIENT" POST "$1" "$DPOP_TOKEN" -H 'Content-Type: application/json' \
    -d "$DPOP_PLAYER" -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' --max-time 10
}
STATUS=$(dpop_write "$GW/players") || STATUS=000
[[ $STATUS == 201 ]] || fail "POST $GW/players with a DPoP proof answered $STATUS $(body)"
pass "POST /players through the gateway with Authorization: DPoP and a proof for $GW/players: 201"
# The API's own address, with a proof naming it: the API expects its public URL, so refused.
STATUS=$(dpop_write "http://127.0.0.1:$PLAYERS_PORT/players") || STATUS=000
expect "$STATUS $(header WWW-Authenticate | grep -o 'error="[a-z_]*"')" '401 error="invalid_dpop_proof"' \
  "a proof for the API's address behind the gateway: 401 invalid_dpop_proof"
gw DELETE /players/squadnumber/88 -H "Authorization: Bearer $DPOP_TOKEN"
expect "$STATUS $(header WWW-Authenticate | cut -d' ' -f1)" "401 DPoP" \
  "the bound token as a plain bearer token: 401 with a DPoP challenge"
STATUS=$(secretless call "$DPOP_CLIENT" DELETE "$GW/players/squadnumber/88" "$DPOP_TOKEN" \
  -o "$TMP/body" -w '%{http_code}' --max-time 10) || STATUS=000
expect "$STATUS" 204 "DELETE /players/squadnumber/88 with a fresh proof: 204"

# ---------------------------------------------------------------------------------------------
step "throttling shared through Redis: wrong secrets spread over both replicas count as one"
# throttle.max_failures is 5: with per-replica counts the 6th and 7th would still be checked.
declare -A GUESSED_ON=()
for i in 1 2 3 4 5; do
  gw POST /auth/token -u "throttle-probe-$$:wrong-$i" -d grant_type=client_credentials
  [[ $STATUS == 401 ]] || fail "wrong secret $i: HTTP $STATUS"
  GUESSED_ON[$(replica_name "$(upstream_of "$RID")")]=1
done
[[ -n ${GUESSED_ON[auth-1]:-} && -n ${GUESSED_ON[auth-2]:-} ]] || fail "the guesses did not reach both replicas"
pass "5 wrong secrets, answered 401 by auth-1 and auth-2"
declare -A THROTTLED_ON=()
for i in 6 7 8; do
  gw POST /auth/token -u "throttle-probe-$$:wrong-$i" -d grant_type=client_credentials
  expect "$STATUS $(jq -r .error "$TMP/body")" "429 temporarily_unavailable" "wrong secret $i: throttled"
  THROTTLED_ON[$(replica_name "$(upstream_of "$RID")")]=1
done
note "throttled by: ${!THROTTLED_ON[*]}"
if command -v redis-cli >/dev/null; then
  redis-cli -u "$REDIS_URL" --scan --pattern "$REDIS_PREFIX*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null
fi

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
