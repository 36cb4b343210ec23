#!/usr/bin/env bash
# `make bench`: release binaries, loopback load with wrk, a peer (node-oidc-provider) side by
# side, and bench/results.md. See bench/README.md for how to read the figures.
#
# Everything listens on 127.0.0.1 and every load is bounded in time. Every process started here
# is stopped on exit (normal or not) by its pid. Transient output goes to bench/out/.
#
# Knobs (environment): BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 3),
# BENCH_CONNECTIONS (default 64), BENCH_THREADS (wrk threads, default 2), BENCH_READY_SAMPLES
# (starts timed per service, default 3), CRYPTO_LIMIT_SECS (s per in-process measurement,
# default 2), BENCH_SKIP_BUILD=1, BENCH_SKIP_PEER=1. RUST_LOG, if set, reaches the servers
# (default: their own filters).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
export CRYPTO_LIMIT_SECS=${CRYPTO_LIMIT_SECS:-2}

RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/out/$RUN_ID
mkdir -p "$OUT/logs" "$OUT/wrk" "$OUT/db"
# Keep the last five runs' raw output.
find "$ROOT/bench/out" -mindepth 1 -maxdepth 1 -type d -name '2*T*Z' | sort | head -n -5 |
  while read -r old; do rm -rf -- "$old"; done
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Processes: every one we start is recorded here and stopped on exit, by pid.
PIDS=()
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
# Stops a process we started and forgets it (so a pid the system reuses later is never touched).
stop_and_forget() {
  local pid=$1 kept=() p
  stop_pid "$pid"
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  wait 2>/dev/null || true
  if [[ $status -ne 0 ]]; then
    log "stopped early (status $status); logs in ${OUT#"$ROOT"/}/logs"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Tools
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required: $2"; }
need cargo "the Rust toolchain (rustup)"
need curl "apt-get install -y curl"
need node "Node.js >= 20.19 (the peer runs on it; apt-get install -y nodejs npm)"
need npm "apt-get install -y npm"
if ! command -v wrk >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing wrk from Debian's packages"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } \
      >"$OUT/logs/apt-wrk.log" 2>&1 || die "apt-get install wrk (see $OUT/logs/apt-wrk.log)"
  else
    die "wrk is required: sudo apt-get install -y wrk"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Build
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  log "building release binaries (cargo build --release)"
  cargo build --release --bins -p auth-server -p resource-api
  cargo build --release -p auth-server --example crypto_limit
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
AUTH_BIN=$TARGET_DIR/release/auth-server
API_BIN=$TARGET_DIR/release/resource-api
LIMIT_BIN=$TARGET_DIR/release/examples/crypto_limit
for bin in "$AUTH_BIN" "$API_BIN" "$LIMIT_BIN"; do
  [[ -x $bin ]] || die "$bin is missing: build it with cargo build --release"
done

PEER_DIR=$ROOT/bench/peer
if [[ ${BENCH_SKIP_PEER:-0} != 1 ]]; then
  if [[ ! -d $PEER_DIR/node_modules/oidc-provider ]] ||
    [[ $PEER_DIR/package-lock.json -nt $PEER_DIR/node_modules/.package-lock.json ]]; then
    log "installing the peer (npm ci in bench/peer, versions from package-lock.json)"
    (cd "$PEER_DIR" && npm ci --no-audit --no-fund --loglevel=error) >"$OUT/logs/npm-ci.log" 2>&1 ||
      die "npm ci in bench/peer (see $OUT/logs/npm-ci.log)"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Helpers: ports, readiness, /proc readings, result lines
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}
now_ns() { date +%s%N; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# utime + stime of a process, in clock ticks (the fields after the command name).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0; }
# All CPUs: busy ticks (everything but idle and iowait) and total ticks.
machine_ticks() { awk '/^cpu / {t=0; for (i=2;i<=NF;i++) t+=$i; print t-$5-$6, t}' /proc/stat; }
emit() { printf '%s\n' "$1" >>"$RESULTS"; }

# wait_ready NAME PID URL: waits for 200 (30 s at most); prints the ms since START_NS.
wait_ready() {
  local name=$1 pid=$2 url=$3 code
  local deadline=$(($(now_ns) + 30000000000))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      sleep 0.2
      tail -n 20 "$OUT/logs/$name.start.log" >&2 || true
      die "$name exited before it was ready (log: $OUT/logs/$name.start.log)"
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)
    if [[ $code == 200 ]]; then
      echo $((($(now_ns) - START_NS) / 1000000))
      return 0
    fi
    [[ $(now_ns) -lt $deadline ]] || die "$name not ready after 30 s ($url answered $code)"
    sleep 0.005
  done
}

# spawn NAME: starts CMD in the background as NAME and records its pid in SPAWNED. Its output
# goes into a pipe, as a log collector would read it; kept are its first MB (NAME.start.log) and
# its last 4 MB (NAME.log). RUST_BACKTRACE is removed from its environment, as in production:
# with it set, every error value from josekit (anyhow) captures a backtrace, which makes each
# forged-signature rejection about a third dearer.
spawn() {
  local name=$1
  START_NS=$(now_ns)
  env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "${CMD[@]}" \
    > >(tee -p >(head -c 1000000 >"$OUT/logs/$name.start.log") |
      tail -c 4000000 >"$OUT/logs/$name.log") 2>&1 &
  SPAWNED=$!
  PIDS+=("$SPAWNED")
}

# start_service NAME SETUP: SETUP INDEX sets CMD (an array), READY_URL and PORT for a fresh
# instance (its own port and new database). Start-up is timed READY_SAMPLES times, each on a new
# database, because one start on a shared disk can wait seconds for an fsync: the first
# READY_SAMPLES-1 instances are stopped once ready, the last one (index 0) stays up as the
# service: its pid is SERVICE_PID, its port SERVICE_PORT.
READY_SAMPLES=${BENCH_READY_SAMPLES:-3}
start_service() {
  local name=$1 setup=$2 i samples=() ms
  for ((i = READY_SAMPLES - 1; i >= 1; i--)); do
    "$setup" "$i"
    spawn "$name.ready$i"
    ms=$(wait_ready "$name.ready$i" "$SPAWNED" "$READY_URL")
    samples+=("$ms")
    stop_and_forget "$SPAWNED"
  done
  "$setup" 0
  spawn "$name"
  local pid=$SPAWNED
  ms=$(wait_ready "$name" "$pid" "$READY_URL")
  samples+=("$ms")
  sleep 1 # let start-up work (first key fetch, maintenance tasks) settle before "idle"
  local idle median
  idle=$(rss_kb "$pid")
  median=$(printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  log "$name ready in ${median} ms (median of: ${samples[*]}), idle RSS $((idle / 1024)) MB (pid $pid)"
  emit "{\"kind\":\"service\",\"name\":\"$name\",\"ready_ms\":$median,\
\"ready_samples_ms\":[$(IFS=,; echo "${samples[*]}")],\"rss_idle_kb\":$idle}"
  SERVICE_PID=$pid
  SERVICE_PORT=$PORT
}

stop_service() {
  local name=$1 pid=$2
  emit "{\"kind\":\"service_end\",\"name\":\"$name\",\"rss_hwm_kb\":$(hwm_kb "$pid")}"
  stop_and_forget "$pid"
}

# leg ID SERVICE_NAME PID URL [LEG_* assignments...]: a warm-up, then the measured run.
leg() {
  local id=$1 service=$2 pid=$3 url=$4
  shift 4
  local wrk_args=(-t"$THREADS" -c"$CONNECTIONS" --timeout 5s -s "$ROOT/bench/wrk/leg.lua")
  log "leg $id: warm-up ${WARMUP}s, then ${DURATION}s (${CONNECTIONS} connections, ${THREADS} threads)"
  env "$@" wrk "${wrk_args[@]}" -d"${WARMUP}s" "$url" >"$OUT/wrk/$id.warmup.txt" 2>&1 ||
    die "wrk warm-up of $id (see $OUT/wrk/$id.warmup.txt)"
  kill -0 "$pid" 2>/dev/null || die "$service died during the warm-up of $id"
  local cpu0 m0 cpu1 m1
  cpu0=$(cpu_ticks "$pid")
  m0=$(machine_ticks)
  # `times` in the subshell reports the CPU its child (wrk) used.
  (env "$@" wrk "${wrk_args[@]}" -d"${DURATION}s" "$url" >"$OUT/wrk/$id.txt" 2>&1 &&
    times >"$OUT/wrk/$id.times") || die "wrk run of $id (see $OUT/wrk/$id.txt)"
  cpu1=$(cpu_ticks "$pid")
  m1=$(machine_ticks)
  local rss
  rss=$(rss_kb "$pid")
  kill -0 "$pid" 2>/dev/null || die "$service died during $id"
  local json
  json=$(sed -n 's/^WRK_JSON //p' "$OUT/wrk/$id.txt")
  [[ -n $json ]] || die "no summary from wrk for $id (see $OUT/wrk/$id.txt)"
  local wrk_cpu
  wrk_cpu=$(tail -n 1 "$OUT/wrk/$id.times" |
    awk '{ s=0; for (i=1;i<=2;i++) { split($i, a, /[ms]/); s += a[1]*60 + a[2] } printf "%.2f", s }')
  local busy0 total0 busy1 total1
  read -r busy0 total0 <<<"$m0"
  read -r busy1 total1 <<<"$m1"
  emit "{\"kind\":\"leg\",\"id\":\"$id\",\"service\":\"$service\",\"wrk\":$json,\
\"server_cpu_s\":$(awk -v a="$cpu0" -v b="$cpu1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}'),\
\"wrk_cpu_s\":$wrk_cpu,\
\"machine_busy_s\":$(awk -v a="$busy0" -v b="$busy1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}'),\
\"machine_total_s\":$(awk -v a="$total0" -v b="$total1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}'),\
\"rss_end_kb\":$rss}"
  local rps p99
  rps=$(sed -n 's/.*"rps":\([0-9.]*\).*/\1/p' <<<"$json")
  p99=$(sed -n 's/.*"lat_p99_us":\([0-9]*\).*/\1/p' <<<"$json")
  log "leg $id: ${rps%.*} req/s, p99 $((p99 / 1000)) ms, RSS $((rss / 1024)) MB"
  sleep 0.5
}

# A client's configuration for an auth-server (fresh database each time).
CLIENT_ID=bench-client
CLIENT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-40)
BASIC="Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
TOKEN_BODY='grant_type=client_credentials&scope=players%3Awrite'
FORM=application/x-www-form-urlencoded

auth_config() { # NAME PORT ALG CACHE
  local file=$OUT/$1.toml
  cat >"$file" <<EOF
# Written by bench/run.sh for one run: a fresh SQLite database, one client.
bind = "127.0.0.1:$2"
issuer = "http://127.0.0.1:$2"
database_url = "sqlite://$OUT/db/$1.sqlite?mode=rwc"
signing_alg = "$3"
verified_secret_cache = $4

[[clients]]
client_id = "$CLIENT_ID"
client_secret = "$CLIENT_SECRET"
scopes = ["players:write"]
audiences = ["players-api"]
grant_types = ["client_credentials"]
EOF
  echo "$file"
}

# The setups start_service calls: CMD, READY_URL and PORT for instance INDEX (0: the service).
setup_auth() { # uses AUTH_NAME, AUTH_ALG, AUTH_CACHE
  local name=$AUTH_NAME
  [[ $1 == 0 ]] || name=$AUTH_NAME.ready$1
  PORT=$(free_port)
  local config
  config=$(auth_config "$name" "$PORT" "$AUTH_ALG" "$AUTH_CACHE")
  CMD=("$AUTH_BIN" --config "$config" serve)
  READY_URL=http://127.0.0.1:$PORT/health/ready
}
setup_api() { # uses ISSUER_PORT
  local name=resource-api
  [[ $1 == 0 ]] || name=resource-api.ready$1
  PORT=$(free_port)
  cat >"$OUT/$name.toml" <<EOF
# Written by bench/run.sh for one run: a fresh SQLite database.
bind = "127.0.0.1:$PORT"
issuer = "http://127.0.0.1:$ISSUER_PORT"
audience = "players-api"
database_url = "sqlite://$OUT/db/$name.sqlite?mode=rwc"
EOF
  CMD=("$API_BIN" --config "$OUT/$name.toml" serve)
  READY_URL=http://127.0.0.1:$PORT/health/ready
}
setup_peer() {
  PORT=$(free_port)
  CMD=(env NODE_ENV=production PEER_PORT="$PORT" PEER_CLIENT_ID="$CLIENT_ID"
    PEER_CLIENT_SECRET="$CLIENT_SECRET" node "$PEER_DIR/provider.mjs")
  # It has no readiness endpoint: ready is its discovery document answering.
  READY_URL=http://127.0.0.1:$PORT/.well-known/openid-configuration
}

# issuance NAME ALG CACHE: one auth-server, its start-up, its token leg (left running).
issuance() {
  AUTH_NAME=$1 AUTH_ALG=$2 AUTH_CACHE=$3
  start_service "$1" setup_auth
  local pid=$SERVICE_PID port=$SERVICE_PORT check
  check=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $BASIC" -H "Content-Type: $FORM" \
    --data "$TOKEN_BODY" "http://127.0.0.1:$port/auth/token")
  [[ $check == 200 ]] || die "$1: a token request answered $check"
  leg "issue-$1" "$1" "$pid" "http://127.0.0.1:$port/auth/token" \
    LEG_METHOD=POST LEG_BODY="$TOKEN_BODY" LEG_CTYPE=$FORM LEG_AUTH="$BASIC"
  AUTH_PORT=$port
  AUTH_PID=$pid
}

# ---------------------------------------------------------------------------------------------
emit "{\"kind\":\"run\",\"id\":\"$RUN_ID\",\"started\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\
\"duration_s\":$DURATION,\"warmup_s\":$WARMUP,\"connections\":$CONNECTIONS,\"threads\":$THREADS,\
\"rust_log\":\"${RUST_LOG:-}\",\"rust_backtrace_in_shell\":\"${RUST_BACKTRACE:-}\"}"
log "run $RUN_ID; transient output in ${OUT#"$ROOT"/}"

# 1. The physical limit, in-process, on one core, while nothing else of ours runs.
log "in-process limit (crypto_limit, ${CRYPTO_LIMIT_SECS}s per measurement)"
"$LIMIT_BIN" | tee "$OUT/crypto_limit.txt" >&2
while read -r _ fields; do
  json=$(awk '{ s=""; for (i=1;i<=NF;i++) { split($i, kv, "="); v=kv[2];
    if (v !~ /^[0-9.]+$/) v="\"" v "\""; s = s (i>1?",":"") "\"" kv[1] "\":" v } print "{" s "}" }' \
    <<<"$fields")
  emit "{\"kind\":\"limit\",\"m\":$json}"
done < <(grep '^limit ' "$OUT/crypto_limit.txt")

# 2. Token issuance, ES256, with the verified-secret cache (the default), and the peer right
#    after it so both see the same machine.
issuance auth-es256 ES256 true
ES256_PORT=$AUTH_PORT
ES256_PID=$AUTH_PID

if [[ ${BENCH_SKIP_PEER:-0} != 1 ]]; then
  start_service peer setup_peer
  peer_pid=$SERVICE_PID
  peer_port=$SERVICE_PORT
  check=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $BASIC" -H "Content-Type: $FORM" \
    --data "$TOKEN_BODY" "http://127.0.0.1:$peer_port/token")
  [[ $check == 200 ]] || die "peer: a token request answered $check"
  leg issue-peer peer "$peer_pid" "http://127.0.0.1:$peer_port/token" \
    LEG_METHOD=POST LEG_BODY="$TOKEN_BODY" LEG_CTYPE=$FORM LEG_AUTH="$BASIC"
  stop_service peer "$peer_pid"
fi

# 3. The players API, trusting the ES256 auth-server.
ISSUER_PORT=$ES256_PORT
start_service resource-api setup_api
api_pid=$SERVICE_PID
api_port=$SERVICE_PORT
API=http://127.0.0.1:$api_port

token() {
  curl -s -H "Authorization: $BASIC" -H "Content-Type: $FORM" --data "$TOKEN_BODY" \
    "http://127.0.0.1:$ES256_PORT/auth/token" |
    sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}
TOKEN=$(token)
OTHER=$(token)
[[ -n $TOKEN && -n $OTHER ]] || die "no token from the auth-server"
# A well-formed token, signed by the right key, whose signature belongs to another token.
FORGED="${TOKEN%.*}.${OTHER##*.}"
[[ $FORGED != "$TOKEN" ]] || die "could not forge a token"

expect_status() { # WANT CURL-ARGS...
  local want=$1 got
  shift
  got=$(curl -s -o /dev/null -w '%{http_code}' "$@")
  [[ $got == "$want" ]] || die "expected $want, got $got from: curl $*"
}
PLAYER_7='{"firstName":"Bench","lastName":"Player 7","squadNumber":7,"position":"Midfielder"}'
expect_status 204 -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data "$PLAYER_7" "$API/players/squadnumber/7"
expect_status 401 -X PUT -H 'Content-Type: application/json' --data "$PLAYER_7" \
  "$API/players/squadnumber/7"
expect_status 401 -X PUT -H 'Authorization: Bearer not.a-token' -H 'Content-Type: application/json' \
  --data "$PLAYER_7" "$API/players/squadnumber/7"
expect_status 401 -X PUT -H "Authorization: Bearer $FORGED" -H 'Content-Type: application/json' \
  --data "$PLAYER_7" "$API/players/squadnumber/7"
expect_status 200 "$API/players"

leg writes resource-api "$api_pid" "$API/players/squadnumber/1" \
  LEG_PLAYERS=1 LEG_AUTH="Bearer $TOKEN"
leg reject-no-token resource-api "$api_pid" "$API/players/squadnumber/1" \
  LEG_PLAYERS=1 LEG_EXPECT=401
leg reject-malformed resource-api "$api_pid" "$API/players/squadnumber/1" \
  LEG_PLAYERS=1 LEG_AUTH="Bearer not.a-token" LEG_EXPECT=401
leg reject-forged resource-api "$api_pid" "$API/players/squadnumber/1" \
  LEG_PLAYERS=1 LEG_AUTH="Bearer $FORGED" LEG_EXPECT=401
leg read-players resource-api "$api_pid" "$API/players"
stop_service resource-api "$api_pid"
stop_service auth-es256 "$ES256_PID"

# 4. EdDSA, then ES256 without the verified-secret cache (every request pays argon2id).
issuance auth-eddsa EdDSA true
stop_service auth-eddsa "$AUTH_PID"
issuance auth-es256-nocache ES256 false
stop_service auth-es256-nocache "$AUTH_PID"

# ---------------------------------------------------------------------------------------------
log "writing bench/results.md"
node "$ROOT/bench/report.mjs" "$RESULTS" "$ROOT/bench/results.md"
cp "$ROOT/bench/results.md" "$OUT/results.md"
cat "$ROOT/bench/results.md"
log "done: bench/results.md (raw: ${OUT#"$ROOT"/})"
