#!/usr/bin/env bash
# The contract in openapi/, used the way our users use it, against both services live on
# loopback: TypeScript and Python SDKs generated from the committed specs (into a temporary
# folder, never committed) drive the whole flow, the Postman collection runs under newman,
# and schemathesis fuzzes both services from the same specs. Two more legs:
# - "openapi lint (@redocly/cli)": both committed specs against Redocly's `recommended` rules;
#   any error fails the leg (warnings are printed and allowed).
# - "browser: Swagger UI authorize + try it out (Playwright, Chromium)": starts both services a
#   second time exactly as `make run` does (deploy/dev/*.toml, ports 9000 and 9001, from a fresh
#   working directory so their `data/` SQLite files are new), then browser/swagger-authorize.mjs
#   drives Debian's headless Chromium through the players API's Swagger UI: Authorize with the
#   development client (a cross-origin token request, CORS preflight included), POST /players
#   through "Try it out", 201 on the page and on the network. Fails at once, saying so, when
#   9000 or 9001 is taken (e.g. by a running `make run`). On failure it prints the network log
#   (preflights and CORS errors) and leaves a screenshot in the temporary folder (KEEP_TMP=1).
# - "interop: openid-client" and "interop: authlib": standard OAuth clients with no code of ours
#   (interop/openid-client.mjs, interop/authlib_client.py) against the same live services, as two
#   clients registered with public keys only (interop/keys.mjs makes them): private_key_jwt,
#   a DPoP-bound token with the server's nonces, writes with DPoP proofs, introspection.
# Each leg prints `==== leg: NAME ====`; a failed leg fails the run (the others still run and
# are reported). Everything started here is stopped by process id, however the script ends.
#
#   bash tests/contract/run.sh          (make test-contract)
#
# Installs its tools with pinned versions: npm packages from package-lock.json into
# tests/contract/node_modules (playwright-core among them, never a browser of Playwright's
# own), Python packages from requirements.txt into tests/contract/.venv (both gitignored;
# reinstalled when the pin files change), and, as root, Debian's `chromium` package when
# /usr/bin/chromium is missing (apt-get). Needs cargo, node 20.19+ or 22.12+ with npm,
# python3 >= 3.11 and curl.
#
# Environment: CONTRACT_FUZZ_SECS (schemathesis time per service, default 60),
# CONTRACT_FUZZ_EXAMPLES (per operation, default 50), CONTRACT_SEED (a schemathesis seed, to
# replay a run), KEEP_TMP=1 (keep the logs, configs and generated SDKs).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CONTRACT=$ROOT/tests/contract
BIN=$ROOT/target/debug
VENV=$CONTRACT/.venv
FUZZ_SECS=${CONTRACT_FUZZ_SECS:-60}
FUZZ_EXAMPLES=${CONTRACT_FUZZ_EXAMPLES:-50}

# The development clients of deploy/dev/auth-server.toml (public, development-only secrets).
WRITER_ID=foobarbaz
WRITER_SECRET=dev-secret-change-me
READER_ID=reader
READER_SECRET=reader-secret
EXCHANGER_ID=players-api
EXCHANGER_SECRET=players-api-secret

# Nothing from the caller's environment configures the services but the files written here.
while read -r name; do unset "$name"; done < <(compgen -e | grep -E '^(AUTH|API)_' || true)

# ---------------------------------------------------------------------------------------------
# Reporting: setup legs stop the run when they fail; test legs are counted.

declare -a PASSED_LEGS=() FAILED_LEGS=()
leg() { printf '\n==== leg: %s ====\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
  printf '    FAIL  %s\n' "$*"
  exit 1
}
# run_leg NAME FUNCTION: runs a test leg, records its outcome, carries on either way.
run_leg() {
  local name=$1 started=$SECONDS
  leg "$name"
  if ("$2"); then
    PASSED_LEGS+=("$name")
    printf -- '---- leg passed: %s (%ds)\n' "$name" $((SECONDS - started))
  else
    FAILED_LEGS+=("$name")
    printf -- '---- leg FAILED: %s (%ds)\n' "$name" $((SECONDS - started))
  fi
}

# ---------------------------------------------------------------------------------------------
# Processes: each one started here is recorded by pid and stopped by pid.

TMP=$(mktemp -d "${TMPDIR:-/tmp}/contract-test.XXXXXX")
declare -A PID=()
declare -a STARTED=()

start() { # start NAME COMMAND...: in the background, output to $TMP/NAME.log
  local name=$1
  shift
  "$@" >"$TMP/$name.log" 2>&1 &
  PID[$name]=$!
  STARTED+=("$name")
}

stop() { # stop NAME: TERM, up to 10 s to exit, then KILL
  local pid=${PID[$1]:-}
  [[ -n $pid ]] || return 0
  {
    kill -TERM "$pid" || true
    for _ in $(seq 100); do
      kill -0 "$pid" || break
      sleep 0.1
    done
    if kill -0 "$pid"; then kill -KILL "$pid" || true; fi
    wait "$pid" || true
  } 2>/dev/null
  unset "PID[$1]"
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if ((rc != 0)); then
    for name in "${STARTED[@]}"; do
      printf '\n---- %s.log: errors, then the last lines ----\n' "$name"
      grep -E '^\S+ +ERROR ' "$TMP/$name.log" | tail -n 20
      tail -n 10 "$TMP/$name.log"
    done
  fi
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    stop "${STARTED[i]}"
  done
  if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

wait_ready() { # wait_ready NAME URL: until URL answers 2xx, while NAME lives (60 s)
  for _ in $(seq 600); do
    kill -0 "${PID[$1]}" 2>/dev/null || die "$1 exited while starting (its log is below)"
    curl -fsS -o /dev/null --max-time 2 "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  die "$1 not ready at $2 after 60 s"
}

# sha256 of FILE, to know whether an install matches its pin file.
digest() { sha256sum "$1" | cut -d' ' -f1; }

# =============================================================================================

leg "tools: npm packages (package-lock.json), Python packages (requirements.txt)"
for tool in cargo node npm python3 curl; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
node -e 'const [a, b] = process.versions.node.split(".").map(Number);
  process.exit(a > 22 || (a === 22 && b >= 12) || (a === 20 && b >= 19) ? 0 : 1)' ||
  die "node 20.19+ or 22.12+ is required (@hey-api/openapi-ts, @redocly/cli); this is $(node --version)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  die "python3 >= 3.11 is required (the generated Python SDK); this is $(python3 --version)"

want=$(digest "$CONTRACT/package-lock.json")
if [[ $(cat "$CONTRACT/node_modules/.contract-lock.sha256" 2>/dev/null) != "$want" ]]; then
  note "npm ci in tests/contract"
  (cd "$CONTRACT" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
  echo "$want" >"$CONTRACT/node_modules/.contract-lock.sha256"
fi
want=$(digest "$CONTRACT/requirements.txt")
if [[ ! -x $VENV/bin/schemathesis || $(cat "$VENV/.requirements.sha256" 2>/dev/null) != "$want" ]]; then
  note "pip install -r requirements.txt into tests/contract/.venv"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  timeout 600 "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    -r "$CONTRACT/requirements.txt" || die "pip install failed"
  "$VENV/bin/pip" check --disable-pip-version-check >/dev/null || die "pip check failed"
  echo "$want" >"$VENV/.requirements.sha256"
fi
NODE_BIN=$CONTRACT/node_modules/.bin
note "node $(node --version), openapi-ts $("$NODE_BIN/openapi-ts" --version | tail -n 1)," \
  "tsc $("$NODE_BIN/tsc" --version | cut -d' ' -f2), newman $("$NODE_BIN/newman" --version)"
note "$("$VENV/bin/python" --version), $("$VENV/bin/openapi-python-client" --version)," \
  "$("$VENV/bin/schemathesis" --version)"
# (Redocly's own checks for a newer release and its usage reports are turned off: no traffic
# leaves this machine.)
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
note "redocly $("$NODE_BIN/redocly" --version 2>/dev/null | tail -n 1)," \
  "playwright-core $(node -p 'require("./tests/contract/node_modules/playwright-core/package.json").version')"

leg "build: cargo build --workspace --bins"
cargo build --workspace --bins --quiet || die "cargo build failed"
[[ -x $BIN/auth-server && -x $BIN/resource-api ]] || die "binaries missing in $BIN"

leg "services: auth-server and resource-api on free loopback ports, fresh SQLite databases"
read -r AUTH_PORT API_PORT SCOUTING_PORT <<<"$(free_ports 3)"
AUTH_URL=http://127.0.0.1:$AUTH_PORT
API_URL=http://127.0.0.1:$API_PORT
# A second resource-api, the scouting API: the players API refers players to it for its callers.
SCOUTING_URL=http://127.0.0.1:$SCOUTING_PORT
# Development mode: the clients are deploy/dev's, whose published secrets are written here in
# plain text; outside it the server refuses them.
# The interop legs' clients authenticate with private_key_jwt: their keys, made here.
OPENID_CLIENT_ID=interop-openid-client
AUTHLIB_CLIENT_ID=interop-authlib
node "$CONTRACT/interop/keys.mjs" "$TMP" "$OPENID_CLIENT_ID" ES256 "$AUTHLIB_CLIENT_ID" RS256 ||
  die "could not make the interop clients' keys"
# DPoP proofs must carry a server nonce (the interop leg checks openid-client answers it).
cat >"$TMP/auth-server.toml" <<EOF
dev = true
bind = "127.0.0.1:$AUTH_PORT"
issuer = "$AUTH_URL"
database_url = "sqlite://$TMP/auth-server.sqlite?mode=rwc"
dpop_require_nonce = true

[[clients]]
client_id = "$WRITER_ID"
client_secret = "$WRITER_SECRET"
scopes = ["players:write"]
audiences = ["players-api", "scouting-api"]
grant_types = ["client_credentials"]

[[clients]]
client_id = "$READER_ID"
client_secret = "$READER_SECRET"
scopes = ["players:read"]
audiences = ["players-api"]
grant_types = ["client_credentials"]

# The players API's own client: token exchange (RFC 8693) into scouting-api only.
[[clients]]
client_id = "$EXCHANGER_ID"
client_secret = "$EXCHANGER_SECRET"
scopes = ["players:write"]
audiences = ["players-api"]
grant_types = ["token-exchange"]
exchange_to = ["scouting-api"]

# The interop legs' clients: no secret, their public keys only.
[[clients]]
client_id = "$OPENID_CLIENT_ID"
jwks_file = "$TMP/$OPENID_CLIENT_ID.jwks.json"
scopes = ["players:write"]
audiences = ["players-api"]
dpop_bound = true

[[clients]]
client_id = "$AUTHLIB_CLIENT_ID"
jwks_file = "$TMP/$AUTHLIB_CLIENT_ID.jwks.json"
scopes = ["players:write"]
audiences = ["players-api"]
EOF
cat >"$TMP/resource-api.toml" <<EOF
bind = "127.0.0.1:$API_PORT"
issuer = "$AUTH_URL"
audience = "players-api"
database_url = "sqlite://$TMP/resource-api.sqlite?mode=rwc"
# What DPoP proofs name (htu): the URL the clients call.
public_url = "$API_URL"

# Referrals: the players API exchanges its caller's token as its own client for a scouting one.
[scouting]
url = "$SCOUTING_URL"
audience = "scouting-api"
client_id = "$EXCHANGER_ID"
client_secret = "$EXCHANGER_SECRET"
EOF
cat >"$TMP/scouting-api.toml" <<EOF
bind = "127.0.0.1:$SCOUTING_PORT"
issuer = "$AUTH_URL"
audience = "scouting-api"
database_url = "sqlite://$TMP/scouting-api.sqlite?mode=rwc"
public_url = "$SCOUTING_URL"
EOF
start auth-server env NO_COLOR=1 LOG_FORMAT=compact "$BIN/auth-server" --config "$TMP/auth-server.toml"
wait_ready auth-server "$AUTH_URL/health/ready"
start resource-api env NO_COLOR=1 LOG_FORMAT=compact "$BIN/resource-api" --config "$TMP/resource-api.toml"
wait_ready resource-api "$API_URL/health/ready"
start scouting-api env NO_COLOR=1 LOG_FORMAT=compact "$BIN/resource-api" --config "$TMP/scouting-api.toml"
wait_ready scouting-api "$SCOUTING_URL/health/ready"
note "auth-server  $AUTH_URL (pid ${PID[auth-server]})"
note "resource-api $API_URL (pid ${PID[resource-api]})"
note "scouting-api $SCOUTING_URL (pid ${PID[scouting-api]})"

# What every driver gets: where the services are and who it is.
export AUTH_URL API_URL SCOUTING_URL
export WRITER=$WRITER_ID:$WRITER_SECRET READER=$READER_ID:$READER_SECRET
export EXCHANGER=$EXCHANGER_ID:$EXCHANGER_SECRET

# ---------------------------------------------------------------------------------------------

typescript_sdk() {
  local dir=$TMP/ts
  mkdir -p "$dir/gen" &&
    cp "$CONTRACT/ts/driver.ts" "$CONTRACT/ts/tsconfig.json" "$dir/" &&
    ln -s "$CONTRACT/node_modules" "$dir/node_modules" || return 1 # (for tsc's @types/node)
  for spec in auth:auth-server players:resource-api; do
    echo "    openapi-ts: openapi/${spec#*:}.json -> gen/${spec%%:*}"
    "$NODE_BIN/openapi-ts" -i "$ROOT/openapi/${spec#*:}.json" -o "$dir/gen/${spec%%:*}" \
      >"$TMP/openapi-ts-${spec%%:*}.log" 2>&1 || {
      cat "$TMP/openapi-ts-${spec%%:*}.log"
      return 1
    }
  done
  echo "    tsc --noEmit: the driver type-checks against the generated SDKs"
  (cd "$dir" && timeout 300 "$NODE_BIN/tsc" -p tsconfig.json) || return 1
  SQUAD_NUMBER=77 KEYED_CLIENT=$OPENID_CLIENT_ID KEYED_KEY_FILE=$TMP/$OPENID_CLIENT_ID.pem \
    timeout 120 "$NODE_BIN/tsx" "$dir/driver.ts"
}

python_sdk() {
  local dir=$TMP/python
  mkdir -p "$dir" || return 1
  # openapi-python-client cannot yet generate an operation whose body has two content types
  # (upstream issues #1276 and #1451: invalid code, a NameError on import). The auth-server's
  # OAuth endpoints take the form (the standard) or JSON; this SDK gets the form alone. The
  # TypeScript SDK sends JSON, newman sends the form.
  "$VENV/bin/python" - "$ROOT/openapi/auth-server.json" "$dir/auth-server.form-only.json" <<'EOF' || return 1
import json, sys
spec = json.load(open(sys.argv[1]))
for operation in (op for path in spec["paths"].values() for op in path.values()):
    content = operation.get("requestBody", {}).get("content", {})
    if "application/x-www-form-urlencoded" in content:
        for media_type in [m for m in content if m.startswith("application/json")]:
            del content[media_type]
json.dump(spec, open(sys.argv[2], "w"))
EOF
  local spec package
  for spec in "$dir/auth-server.form-only.json:auth_server_client" \
    "$ROOT/openapi/resource-api.json:players_api_client"; do
    package=${spec##*:}
    echo "    openapi-python-client: ${spec%:*} -> $package"
    printf 'project_name_override: %s\npackage_name_override: %s\n' "${package//_/-}" "$package" \
      >"$dir/$package.yaml"
    (cd "$dir" && PATH=$VENV/bin:$PATH timeout 300 openapi-python-client generate \
      --path "${spec%:*}" --config "$package.yaml" --meta none --output-path "$package" \
      --fail-on-warning) >"$TMP/openapi-python-client-$package.log" 2>&1 || {
      cat "$TMP/openapi-python-client-$package.log"
      return 1
    }
  done
  SQUAD_NUMBER=78 KEYED_CLIENT=$AUTHLIB_CLIENT_ID KEYED_KEY_FILE=$TMP/$AUTHLIB_CLIENT_ID.pem \
    PYTHONPATH=$dir timeout 120 "$VENV/bin/python" "$CONTRACT/python/driver.py"
}

postman() {
  timeout 300 "$NODE_BIN/newman" run "$ROOT/tests/postman/players-api.postman_collection.json" \
    -e "$ROOT/tests/postman/local.postman_environment.json" \
    --env-var "authUrl=$AUTH_URL" --env-var "apiUrl=$API_URL" --env-var squadNumber=79 \
    --color off --disable-unicode --timeout-request 10000
}

# Standard OAuth clients, no code of ours between them and the services: panva's openid-client
# (private_key_jwt, a DPoP handle, the server's nonces) and authlib (PrivateKeyJWT).
interop_openid_client() {
  CLIENT_ID=$OPENID_CLIENT_ID KEY_FILE=$TMP/$OPENID_CLIENT_ID.pem SQUAD_NUMBER=80 \
    timeout 120 node "$CONTRACT/interop/openid-client.mjs"
}

interop_authlib() {
  CLIENT_ID=$AUTHLIB_CLIENT_ID KEY_FILE=$TMP/$AUTHLIB_CLIENT_ID.pem SQUAD_NUMBER=81 \
    timeout 120 "$VENV/bin/python" "$CONTRACT/interop/authlib_client.py"
}

# Redocly's `recommended` ruleset, as is (no config file: nothing is switched off). Warnings are
# allowed and shown (localhost server URLs in the development documents, operation-4xx-response
# on operations that cannot answer a 4xx); an error fails the leg.
openapi_lint() {
  local lint=(timeout 120 "$NODE_BIN/redocly" lint --extends=recommended --format=stylish)
  echo "    redocly lint --extends=recommended openapi/auth-server.json openapi/resource-api.json"
  (cd "$ROOT" && "${lint[@]}" openapi/auth-server.json openapi/resource-api.json) || return 1
  # The rules are live: the same document with one public operation's `security: []` taken
  # away (Redocly's security-defined error) must fail.
  python3 - "$ROOT/openapi/resource-api.json" "$TMP/resource-api.no-security.json" <<'EOF' || return 1
import json, sys
spec = json.load(open(sys.argv[1]))
del spec["paths"]["/players"]["get"]["security"]
json.dump(spec, open(sys.argv[2], "w"))
EOF
  if "${lint[@]}" "$TMP/resource-api.no-security.json" >"$TMP/redocly-canary.log" 2>&1 ||
    ! grep -q 'security-defined' "$TMP/redocly-canary.log"; then
    cat "$TMP/redocly-canary.log"
    echo "    FAIL  redocly passed a document without security on GET /players"
    return 1
  fi
  echo "    (and it fails a copy without security on GET /players: security-defined, as it should)"
}

# make run's development settings: the configuration files as committed, the ports they name.
DEV_AUTH_URL=http://localhost:9000
DEV_API_URL=http://localhost:9001
CHROMIUM=/usr/bin/chromium

install_chromium() { # Debian's chromium package, when /usr/bin/chromium is missing
  [[ -x $CHROMIUM ]] && return 0
  if ((EUID != 0)); then
    echo "    FAIL  $CHROMIUM is missing and installing Debian's chromium needs root (apt-get)"
    return 1
  fi
  echo "    apt-get install chromium (Debian's package; $CHROMIUM is missing)"
  local log=$TMP/apt-chromium.log apt=(apt-get install -y --no-install-recommends chromium)
  # A fresh machine may have no package lists yet: update once, then try again.
  DEBIAN_FRONTEND=noninteractive timeout 900 "${apt[@]}" >"$log" 2>&1 || {
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update >>"$log" 2>&1 &&
      DEBIAN_FRONTEND=noninteractive timeout 900 "${apt[@]}" >>"$log" 2>&1
  } || {
    tail -n 20 "$log"
    echo "    FAIL  apt-get could not install chromium (log above)"
    return 1
  }
  [[ -x $CHROMIUM ]] || {
    echo "    FAIL  chromium installed but $CHROMIUM is missing"
    return 1
  }
}

port_in_use() { # port_in_use PORT: is anything listening on localhost:PORT (IPv4 or IPv6)?
  python3 - "$1" <<'EOF'
import socket, sys
port = int(sys.argv[1])
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    try:
        with socket.create_connection((host, port), timeout=1):
            sys.exit(0)
    except OSError:
        pass
sys.exit(1)
EOF
}

swagger_ui_browser() {
  local port
  for port in 9000 9001; do
    if port_in_use "$port"; then
      echo "    FAIL  port $port on localhost is taken: this leg runs the services on make run's" \
        "ports 9000 and 9001. Stop what listens there (a running \`make run\`?):"
      ss -ltnp "sport = :$port" 2>/dev/null | sed 's/^/      /'
      return 1
    fi
  done
  install_chromium || return 1
  echo "    $("$CHROMIUM" --version 2>/dev/null | grep -i chromium)"

  # This leg runs in its own subshell: what it starts it stops itself, by pid, however it ends.
  trap 'stop dev-resource-api; stop dev-auth-server' EXIT
  trap 'exit 130' INT TERM
  # make run's working directory holds only the data/ it makes; here a new one, so the SQLite
  # files (relative to it) are new and no .env is read.
  local dir=$TMP/browser
  mkdir -p "$dir/run/data" || return 1
  (
    cd "$dir/run" || exit 1
    exec env NO_COLOR=1 LOG_FORMAT=compact "$BIN/auth-server" --config "$ROOT/deploy/dev/auth-server.toml"
  ) >"$TMP/dev-auth-server.log" 2>&1 &
  PID[dev-auth-server]=$!
  (
    cd "$dir/run" || exit 1
    exec env NO_COLOR=1 LOG_FORMAT=compact "$BIN/resource-api" --config "$ROOT/deploy/dev/resource-api.toml"
  ) >"$TMP/dev-resource-api.log" 2>&1 &
  PID[dev-resource-api]=$!
  local name ok=1
  for name in dev-auth-server dev-resource-api; do
    local url=$DEV_AUTH_URL
    [[ $name == dev-resource-api ]] && url=$DEV_API_URL
    # (wait_ready's die only ends this leg's subshell.)
    (wait_ready "$name" "$url/health/ready") || ok=0
    ((ok)) || break
    echo "    $name $url (pid ${PID[$name]}, deploy/dev/${name#dev-}.toml, cwd $dir/run)"
  done
  if ((ok)); then
    DOCS_URL=$DEV_API_URL/docs API_URL=$DEV_API_URL TOKEN_URL=$DEV_AUTH_URL/auth/token \
      CLIENT_ID=$WRITER_ID CLIENT_SECRET=$WRITER_SECRET SCOPE=players:write SQUAD_NUMBER=31 \
      CHROMIUM=$CHROMIUM WORK_DIR=$dir \
      timeout 300 node "$CONTRACT/browser/swagger-authorize.mjs" || ok=0
  fi
  if ((!ok)); then
    for name in dev-auth-server dev-resource-api; do
      printf -- '    ---- %s.log: errors, then the last lines ----\n' "$name"
      { grep -E '^\S+ +ERROR ' "$TMP/$name.log" | tail -n 20; tail -n 10 "$TMP/$name.log"; } |
        sed 's/^/    /'
    done
  fi
  stop dev-resource-api
  stop dev-auth-server
  ((ok))
}

# The checks every response must pass; the resource-api also rejects every schema-violating
# request (negative_data_rejection). The auth-server does not: poem-openapi reads a JSON number
# or boolean where its OAuth bodies declare a string (a form body has only strings anyway).
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
# fuzz NAME SPEC URL [schemathesis options...]
fuzz() {
  local name=$1 spec=$2 url=$3
  shift 3
  local seed=()
  [[ -z ${CONTRACT_SEED:-} ]] || seed=(--seed "$CONTRACT_SEED")
  local log=$TMP/schemathesis-$name.out
  # Run from $TMP: schemathesis writes its report directory where it runs.
  (cd "$TMP" && timeout $((FUZZ_SECS + 120)) "$VENV/bin/schemathesis" run "$spec" --url "$url" \
    --max-examples "$FUZZ_EXAMPLES" --max-time "$FUZZ_SECS" --request-timeout 10 \
    --generation-database none --report-dir "$TMP/schemathesis-$name" --no-color \
    "${seed[@]}" "$@") | tee "$log"
  ((PIPESTATUS[0] == 0)) || return 1
  # A run whose time ran out before the first case passes with nothing tested: not here.
  local generated
  generated=$(grep -oE '^ +[0-9]+ generated' "$log" | tr -dc '0-9')
  if ((${generated:-0} == 0)); then
    echo "    FAIL  schemathesis generated no test case"
    return 1
  fi
}

schemathesis_auth_server() {
  fuzz auth-server "$ROOT/openapi/auth-server.json" "$AUTH_URL" --checks "$CHECKS" \
    --auth "$WRITER"
}

schemathesis_resource_api() {
  local token
  token=$(curl -fsS --max-time 10 -u "$WRITER" -d grant_type=client_credentials \
    -d audience=players-api "$AUTH_URL/auth/token" |
    "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
    return 1
  fuzz resource-api "$ROOT/openapi/resource-api.json" "$API_URL" \
    --checks "$CHECKS,negative_data_rejection" --header "Authorization: Bearer $token"
}

run_leg "openapi lint (@redocly/cli)" openapi_lint
run_leg "typescript sdk (@hey-api/openapi-ts)" typescript_sdk
run_leg "python sdk (openapi-python-client)" python_sdk
run_leg "postman collection (newman)" postman
run_leg "interop: openid-client (private_key_jwt, DPoP with nonces)" interop_openid_client
run_leg "interop: authlib (PrivateKeyJWT)" interop_authlib
run_leg "browser: Swagger UI authorize + try it out (Playwright, Chromium)" swagger_ui_browser
# The fuzzers come last: they create, change and delete players at random.
run_leg "schemathesis: auth-server" schemathesis_auth_server
run_leg "schemathesis: resource-api" schemathesis_resource_api

leg "summary"
for name in "${PASSED_LEGS[@]}"; do printf '    ok    %s\n' "$name"; done
for name in "${FAILED_LEGS[@]}"; do printf '    FAIL  %s\n' "$name"; done
printf 'contract: %d passed, %d failed\n' "${#PASSED_LEGS[@]}" "${#FAILED_LEGS[@]}"
((${#FAILED_LEGS[@]} == 0))
