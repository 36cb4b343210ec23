#!/usr/bin/env bash
# `make bench`: release binaries, loopback load with wrk, a ceiling (the least a poem server does
# for the same token request), a peer (node-oidc-provider, one process and a 2-worker cluster)
# side by side, the same issuance on PostgreSQL, a database outage, 100,000 registered clients,
# and bench/results.md. See bench/README.md for every leg, every knob and how to read the figures.
#
# Everything listens on 127.0.0.1 and every load is bounded in time. Every process started here
# is stopped on exit (normal or not) by its pid (with the processes it started, e.g. the peer's
# cluster workers); every PostgreSQL database created here is dropped. The machine's PostgreSQL
# is never stopped: the outage leg cuts a proxy of ours (bench/pgproxy.py). Transient output
# goes to bench/out/.
#
# Knobs (environment): BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 3),
# BENCH_CONNECTIONS (default 64), BENCH_THREADS (wrk threads, default 2), BENCH_READY_SAMPLES
# (starts timed per service, default 3), CRYPTO_LIMIT_SECS (s per in-process measurement,
# default 2), BENCH_SKIP_BUILD=1, BENCH_SKIP_PEER=1, BENCH_SKIP_POSTGRES=1, BENCH_PEER_WORKERS (2),
# BENCH_PEER_SINGLE (1: also the one-process peer), BENCH_ONLY (groups to run, e.g.
# "issuance ceiling"; default all: issuance ceiling peer api secretless eddsa nocache postgres
# outage scale), BENCH_PREMADE_RATE (25000), BENCH_SKIP_POSTGRES=1, BENCH_PG_HOST/BENCH_PG_PORT/BENCH_PG_USER (127.0.0.1, 5432,
# postgres), BENCH_OUTAGE_DURATION (20), BENCH_OUTAGE_DOWN (10), BENCH_OUTAGE_MODES
# ("refuse hang"), BENCH_OUTAGE_TIMEOUT (s, 15), BENCH_MAX_STALE_SECS (unset: the server's
# default), BENCH_SCALE_CLIENTS (100000), BENCH_SCALE_SPREAD (1000), BENCH_SCALE_BACKENDS
# ("sqlite postgres"). RUST_LOG, if set, reaches the servers (default: their own filters).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
export CRYPTO_LIMIT_SECS=${CRYPTO_LIMIT_SECS:-2}
PEER_WORKERS=${BENCH_PEER_WORKERS:-2}
PEER_SINGLE=${BENCH_PEER_SINGLE:-1}
PG_HOST=${BENCH_PG_HOST:-127.0.0.1}
PG_PORT=${BENCH_PG_PORT:-5432}
PG_USER=${BENCH_PG_USER:-postgres}
OUTAGE_DURATION=${BENCH_OUTAGE_DURATION:-20}
OUTAGE_DOWN=${BENCH_OUTAGE_DOWN:-10}
OUTAGE_MODES=${BENCH_OUTAGE_MODES:-refuse hang}
OUTAGE_TIMEOUT=${BENCH_OUTAGE_TIMEOUT:-15}
MAX_STALE_SECS=${BENCH_MAX_STALE_SECS:-}
SCALE_CLIENTS=${BENCH_SCALE_CLIENTS:-100000}
SCALE_SPREAD=${BENCH_SCALE_SPREAD:-1000}
SCALE_BACKENDS=${BENCH_SCALE_BACKENDS:-sqlite postgres}
# Single-use requests signed beforehand for the secretless legs, per second of load.
PREMADE_RATE=${BENCH_PREMADE_RATE:-25000}
ALL_GROUPS="issuance ceiling peer api secretless eddsa nocache postgres outage scale"
ONLY=${BENCH_ONLY:-$ALL_GROUPS}
# want GROUP: true when the group runs in this run (BENCH_ONLY, BENCH_SKIP_PEER).
want() {
  [[ " $ONLY " == *" $1 "* ]] || return 1
  [[ $1 != peer || ${BENCH_SKIP_PEER:-0} != 1 ]] || return 1
  [[ ($1 != postgres && $1 != outage) || ${BENCH_SKIP_POSTGRES:-0} != 1 ]]
}
if [[ ${BENCH_SKIP_POSTGRES:-0} == 1 ]]; then SCALE_BACKENDS=${SCALE_BACKENDS//postgres/}; fi
for group in $ONLY; do
  [[ " $ALL_GROUPS " == *" $group "* ]] || { echo "BENCH_ONLY: unknown group $group (groups: $ALL_GROUPS)" >&2; exit 2; }
done
[[ $PG_HOST == 127.* || $PG_HOST == localhost || $PG_HOST == ::1 ]] ||
  { echo "BENCH_PG_HOST must be a loopback address" >&2; exit 2; }
(( OUTAGE_DOWN > 0 && OUTAGE_DOWN < OUTAGE_DURATION )) ||
  { echo "BENCH_OUTAGE_DOWN must be between 1 and BENCH_OUTAGE_DURATION - 1" >&2; exit 2; }
(( SCALE_SPREAD >= 1 && SCALE_SPREAD <= SCALE_CLIENTS )) ||
  { echo "BENCH_SCALE_SPREAD must be between 1 and BENCH_SCALE_CLIENTS" >&2; exit 2; }

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
# Processes: every one we start is recorded here and stopped on exit, by pid. A process that
# started processes of its own (the peer's cluster primary) has them stopped too, by their pids
# read from /proc before the parent goes.
PIDS=()
# descendants PID: the pids of every process below PID, read from /proc.
descendants() {
  local child
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}
stop_pid() {
  local pid=$1 below p
  kill -0 "$pid" 2>/dev/null || return 0
  below=$(descendants "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for p in $below; do
    kill -0 "$p" 2>/dev/null || continue
    kill -TERM "$p" 2>/dev/null || true
    sleep 0.2
    kill -KILL "$p" 2>/dev/null || true
  done
}
# Stops a process we started and forgets it (so a pid the system reuses later is never touched).
stop_and_forget() {
  local pid=$1 kept=() p
  stop_pid "$pid"
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}
# PostgreSQL databases created by this run, dropped when done (and on exit, whatever happens).
PG_DBS=()
psql_admin() {
  PGCONNECT_TIMEOUT=5 psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" \
    -d postgres "$@"
}
create_db() {
  psql_admin -c "CREATE DATABASE \"$1\"" >/dev/null
  PG_DBS+=("$1")
}
drop_db() {
  local kept=() d
  psql_admin -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null 2>&1 ||
    log "could not drop database $1"
  for d in "${PG_DBS[@]}"; do [[ $d == "$1" ]] || kept+=("$d"); done
  PG_DBS=("${kept[@]}")
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  wait 2>/dev/null || true
  for db in "${PG_DBS[@]}"; do drop_db "$db"; done
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
need ss "apt-get install -y iproute2"
need node "Node.js >= 20.19 (the peer runs on it; apt-get install -y nodejs npm)"
need npm "apt-get install -y npm"
if want postgres || want outage || { want scale && [[ " $SCALE_BACKENDS " == *" postgres "* ]]; }; then
  need psql "apt-get install -y postgresql-client"
fi
if want outage; then need python3 "apt-get install -y python3 (the outage leg's TCP proxy)"; fi
if want scale && [[ " $SCALE_BACKENDS " == *" sqlite "* ]]; then
  need sqlite3 "apt-get install -y sqlite3 (the scale leg inserts its clients with it)"
fi
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
  cargo build --release -p bench-ceiling
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
AUTH_BIN=$TARGET_DIR/release/auth-server
API_BIN=$TARGET_DIR/release/resource-api
LIMIT_BIN=$TARGET_DIR/release/examples/crypto_limit
CEILING_BIN=$TARGET_DIR/release/bench-ceiling
for bin in "$AUTH_BIN" "$API_BIN" "$LIMIT_BIN" "$CEILING_BIN"; do
  [[ -x $bin ]] || die "$bin is missing: build it with cargo build --release"
done

PEER_DIR=$ROOT/bench/peer
if want peer; then
  if [[ ! -d $PEER_DIR/node_modules/oidc-provider ]] ||
    [[ $PEER_DIR/package-lock.json -nt $PEER_DIR/node_modules/.package-lock.json ]]; then
    log "installing the peer (npm ci in bench/peer, versions from package-lock.json)"
    (cd "$PEER_DIR" && npm ci --no-audit --no-fund --loglevel=error) >"$OUT/logs/npm-ci.log" 2>&1 ||
      die "npm ci in bench/peer (see $OUT/logs/npm-ci.log)"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Helpers: ports, readiness, /proc readings, result lines
# A port below the kernel's ephemeral range (where outgoing connections, e.g. wrk's or a
# database pool's, take their local ports), on which no socket of any state exists.
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
  local port low=10000 high=$((EPHEMERAL_LOW - 1))
  ((high > low + 1000)) || { low=20000; high=60000; }
  for _ in $(seq 1 200); do
    port=$((low + RANDOM % (high - low)))
    if [[ -z $(ss -Htan "sport = :$port" 2>/dev/null) ]] &&
      ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}
now_ns() { date +%s%N; }
# Memory and CPU of a service are those of its process and every process below it (the peer's
# cluster: primary and workers); for our servers that is one process.
tree() { echo "$1"; descendants "$1"; }
status_sum() { # FIELD PID: the sum of /proc/*/status FIELD (kB) over the tree
  local field=$1 total=0 p v
  for p in $(tree "$2"); do
    v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
rss_kb() { status_sum VmRSS "$1"; }
hwm_kb() { status_sum VmHWM "$1"; }
# utime + stime over the tree, in clock ticks (fields 14 and 15 of /proc/PID/stat, i.e. the
# 12th and 13th after the command name).
cpu_ticks() {
  local total=0 p v
  for p in $(tree "$1"); do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
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
#
# The log collector reads a named pipe and is started on its own: with a process substitution
# on the service's command line, bash would fork the collector (tee, head, tail and a subshell,
# some 6 MB) as children of the service, and the memory and CPU summed over the service's
# process tree would count them.
spawn() {
  local name=$1 fifo=$OUT/logs/$1.pipe
  rm -f "$fifo"
  mkfifo "$fifo"
  (tee -p >(head -c 1000000 >"$OUT/logs/$name.start.log") <"$fifo" |
    tail -c 4000000 >"$OUT/logs/$name.log") &
  START_NS=$(now_ns)
  env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "${CMD[@]}" >"$fifo" 2>&1 &
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
# Overrides, as variables set for the call: LEG_SECONDS (default BENCH_DURATION), LEG_WARMUP_SECONDS
# (default BENCH_WARMUP; 0: none), LEG_TIMEOUT (wrk's --timeout, default 5s), LEG_DURING (a
# function run in the background during the measured run, e.g. the outage schedule).
leg() {
  local id=$1 service=$2 pid=$3 url=$4
  shift 4
  local seconds=${LEG_SECONDS:-$DURATION} warmup=${LEG_WARMUP_SECONDS:-$WARMUP}
  local wrk_args=(-t"$THREADS" -c"$CONNECTIONS" --timeout "${LEG_TIMEOUT:-5s}" -s "$ROOT/bench/wrk/leg.lua")
  log "leg $id: warm-up ${warmup}s, then ${seconds}s (${CONNECTIONS} connections, ${THREADS} threads)"
  # Single-use requests (LEG_REQUEST_FILE): the warm-up sends its own (LEG_WARMUP_REQUEST_FILE).
  local warmup_env=()
  [[ -z ${LEG_WARMUP_REQUEST_FILE:-} ]] || warmup_env=(LEG_REQUEST_FILE="$LEG_WARMUP_REQUEST_FILE")
  if [[ $warmup != 0 ]]; then
    env "$@" LEG_THREADS="$THREADS" "${warmup_env[@]}" wrk "${wrk_args[@]}" -d"${warmup}s" "$url" \
      >"$OUT/wrk/$id.warmup.txt" 2>&1 ||
      die "wrk warm-up of $id (see $OUT/wrk/$id.warmup.txt)"
  fi
  kill -0 "$pid" 2>/dev/null || die "$service died during the warm-up of $id"
  local cpu0 m0 cpu1 m1 during_pid=
  cpu0=$(cpu_ticks "$pid")
  m0=$(machine_ticks)
  local started_ms=$(($(now_ns) / 1000000))
  if [[ -n ${LEG_DURING:-} ]]; then
    "$LEG_DURING" "$started_ms" &
    during_pid=$!
    PIDS+=("$during_pid")
  fi
  # `times` in the subshell reports the CPU its child (wrk) used.
  (env "$@" LEG_THREADS="$THREADS" wrk "${wrk_args[@]}" -d"${seconds}s" "$url" >"$OUT/wrk/$id.txt" 2>&1 &&
    times >"$OUT/wrk/$id.times") || die "wrk run of $id (see $OUT/wrk/$id.txt)"
  cpu1=$(cpu_ticks "$pid")
  m1=$(machine_ticks)
  if [[ -n $during_pid ]]; then
    wait "$during_pid" || die "$LEG_DURING failed during $id"
    stop_and_forget "$during_pid"
  fi
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
  local server_cpu
  server_cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')
  emit "{\"kind\":\"leg\",\"id\":\"$id\",\"service\":\"$service\",\"wrk\":$json,\
\"started_ms\":$started_ms,\"server_cpu_s\":$server_cpu,\
\"wrk_cpu_s\":$wrk_cpu,\
\"machine_busy_s\":$(awk -v a="$busy0" -v b="$busy1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}'),\
\"machine_total_s\":$(awk -v a="$total0" -v b="$total1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}'),\
\"rss_end_kb\":$rss}"
  # The figures, as the report computes them: 2xx (or the expected status) per second, p99, and
  # server CPU per successful answer.
  node -e '
    const [json, cpu, rss] = process.argv.slice(1);
    const w = JSON.parse(json);
    const ok = w.expect == null ? w.requests - w.non_2xx_3xx : w.expected;
    const bad = w.requests - ok + w.connect_errors + w.read_errors + w.write_errors + w.timeouts;
    console.log(`${Math.round(ok / w.duration_s)} ok/s, p99 ${(w.lat_p99_us / 1000).toFixed(1)} ms, ` +
      `${bad} errors, server CPU ${ok ? Math.round((cpu * 1e6) / ok) : "-"} µs per ok answer, ` +
      `RSS ${(rss / 1024).toFixed(1)} MB` +
      (w.reused ? `; ${w.reused} pre-made requests sent twice (raise BENCH_PREMADE_RATE)` : ""));
  ' "$json" "$server_cpu" "$rss" | while read -r line; do log "leg $id: $line"; done
  sleep 0.5
}

# ---------------------------------------------------------------------------------------------
# Credentials, new each run: the bench client (client credentials), and for the outage leg a
# first-party app allowed the password grant and its user.
random_hex() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-"$1"; }
CLIENT_ID=bench-client
KEYED_ID=bench-keyed
CLIENT_SECRET=$(random_hex 40)
BASIC="Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
TOKEN_BODY='grant_type=client_credentials&scope=players%3Awrite'
FORM=application/x-www-form-urlencoded
APP_ID=bench-app
APP_SECRET=$(random_hex 40)
APP_BASIC="Basic $(printf '%s:%s' "$APP_ID" "$APP_SECRET" | base64 -w0)"
USER_NAME=bench-user
USER_PASSWORD=$(random_hex 24)
PASSWORD_BODY="grant_type=password&username=$USER_NAME&password=$USER_PASSWORD&scope=players%3Awrite"
APP_TABLES="[[clients]]
client_id = \"$APP_ID\"
client_secret = \"$APP_SECRET\"
scopes = [\"players:write\"]
audiences = [\"players-api\"]
grant_types = [\"password\", \"refresh_token\"]

[[users]]
username = \"$USER_NAME\"
password = \"$USER_PASSWORD\"
scopes = [\"players:write\"]"
# The key-encryption key PostgreSQL requires (with SQLite the server keeps one beside its file).
KEK_FILE=$OUT/kek
(umask 077 && head -c 32 /dev/urandom | base64 -w0 >"$KEK_FILE")

# auth_config NAME PORT ALG CACHE [DATABASE_URL]: writes NAME.toml, prints its path. A fresh
# SQLite file unless DATABASE_URL is given; AUTH_EXTRA (top-level keys) and AUTH_EXTRA_TABLES
# (more [[clients]] / [[users]]) are added when set.
auth_config() {
  local name=$1 port=$2 alg=$3 cache=$4 url=${5:-sqlite://$OUT/db/$1.sqlite?mode=rwc}
  local file=$OUT/$name.toml
  cat >"$file" <<EOF
# Written by bench/run.sh for one run. Development mode only lets this file hold its random
# secrets in plain text; nothing on the request path depends on it.
dev = true
bind = "127.0.0.1:$port"
issuer = "http://127.0.0.1:$port"
database_url = "$url"
signing_alg = "$alg"
verified_secret_cache = $cache
${AUTH_EXTRA:-}

[[clients]]
client_id = "$CLIENT_ID"
client_secret = "$CLIENT_SECRET"
scopes = ["players:write"]
audiences = ["players-api"]
grant_types = ["client_credentials"]

${AUTH_EXTRA_TABLES:-}
EOF
  echo "$file"
}

# PostgreSQL: one database per started instance, named after the run and the instance; each
# leg drops its own when it ends (cleanup drops whatever is left).
PG_OK=
pg_available() {
  if [[ -z $PG_OK ]]; then
    if psql_admin -Atc 'SELECT 1' >/dev/null 2>"$OUT/logs/pg-check.log"; then
      PG_OK=1
    else
      PG_OK=0
      log "PostgreSQL at $PG_HOST:$PG_PORT does not answer (see $OUT/logs/pg-check.log): its legs are skipped"
      emit "{\"kind\":\"skipped\",\"what\":\"postgresql\",\"why\":\"PostgreSQL at $PG_HOST:$PG_PORT did not answer\"}"
    fi
  fi
  [[ $PG_OK == 1 ]]
}
pg_name() { local n=${1,,}; echo "bench_${RUN_ID,,}_${n//[^a-z0-9]/_}"; }
LEG_DBS=()
drop_leg_dbs() {
  local db
  for db in "${LEG_DBS[@]}"; do drop_db "$db"; done
  LEG_DBS=()
}

# setting_known KEY VALUE: does this auth-server build accept KEY (its configuration refuses
# unknown keys, before it opens any database)? For settings a leg wants once a feature exists.
# The probe's database does not exist (the command line will not create one), so the command
# fails either way; only an "unknown key" refusal means the build lacks the setting.
setting_known() {
  local file=$OUT/probe-setting.toml log=$OUT/logs/probe-setting-$1.log
  printf 'database_url = "sqlite://%s/db/absent/probe.sqlite"\n%s = %s\n' "$OUT" "$1" "$2" >"$file"
  "$AUTH_BIN" --config "$file" keys list >/dev/null 2>"$log" && return 0
  ! grep -q "unknown key \`$1\`" "$log"
}

# The setups start_service calls: CMD, READY_URL and PORT for instance INDEX (0: the service).
setup_auth() { # uses AUTH_NAME, AUTH_ALG, AUTH_CACHE; AUTH_DB=postgres (AUTH_PG_PORT: a proxy)
  local name=$AUTH_NAME config
  [[ $1 == 0 ]] || name=$AUTH_NAME.ready$1
  PORT=$(free_port)
  if [[ ${AUTH_DB:-sqlite} == postgres ]]; then
    local db
    db=$(pg_name "$name")
    create_db "$db"
    LEG_DBS+=("$db")
    config=$(AUTH_EXTRA="key_encryption_key_file = \"$KEK_FILE\"
${AUTH_EXTRA:-}" auth_config "$name" "$PORT" "$AUTH_ALG" "$AUTH_CACHE" \
      "postgres://$PG_USER@$PG_HOST:${AUTH_PG_PORT:-$PG_PORT}/$db")
  else
    config=$(auth_config "$name" "$PORT" "$AUTH_ALG" "$AUTH_CACHE")
  fi
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
public_url = "http://127.0.0.1:$PORT"
EOF
  CMD=("$API_BIN" --config "$OUT/$name.toml" serve)
  READY_URL=http://127.0.0.1:$PORT/health/ready
}
setup_ceiling() {
  PORT=$(free_port)
  CMD=(env CEILING_BIND="127.0.0.1:$PORT" CEILING_CLIENT_ID="$CLIENT_ID"
    CEILING_CLIENT_SECRET="$CLIENT_SECRET" "$CEILING_BIN")
  READY_URL=http://127.0.0.1:$PORT/health
}
setup_peer() { # PEER_SCRIPT: provider.mjs (one process) or cluster.mjs (PEER_WORKERS workers)
  PORT=$(free_port)
  CMD=(env NODE_ENV=production PEER_PORT="$PORT" PEER_CLIENT_ID="$CLIENT_ID"
    PEER_CLIENT_SECRET="$CLIENT_SECRET" PEER_WORKERS="$PEER_WORKERS" node "$PEER_DIR/$PEER_SCRIPT")
  # It has no readiness endpoint: ready is its discovery document answering.
  READY_URL=http://127.0.0.1:$PORT/.well-known/openid-configuration
}

# token_check NAME TOKEN_URL JWKS_URL: one token request must answer 200 with a JWT whose
# signature verifies against the service's published key; its header and claim names are kept
# (the ceiling must sign what ours signs).
token_check() {
  local name=$1 token_url=$2 jwks_url=$3 body code token checked
  body=$(curl -s -w '\n%{http_code}' -H "Authorization: $BASIC" -H "Content-Type: $FORM" \
    --data "$TOKEN_BODY" "$token_url")
  code=${body##*$'\n'}
  [[ $code == 200 ]] || die "$name: a token request answered $code"
  token=$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' <<<"${body%$'\n'*}")
  [[ -n $token ]] || die "$name: no access_token in the answer"
  checked=$(node "$ROOT/bench/check-token.mjs" "$token" "$jwks_url") ||
    die "$name: its token does not verify against $jwks_url ($checked)"
  emit "{\"kind\":\"token_check\",\"name\":\"$name\",\"check\":$checked}"
  log "$name: token verified ($checked)"
}

# probe_password BASE_URL: one password-grant request; prints "STATUS MILLISECONDS ERROR"
# (status 0 when no answer came within 30 s).
probe_password() {
  local body=$OUT/probe.$BASHPID.body out code secs error
  out=$(curl -s -o "$body" -w '%{http_code} %{time_total}' --max-time 30 \
    -H "Authorization: $APP_BASIC" -H "Content-Type: $FORM" --data "$PASSWORD_BODY" \
    "$1/auth/token" 2>/dev/null || true)
  read -r code secs <<<"${out:-0 0}"
  error=$(sed -n 's/.*"error":"\([a-z_]*\)".*/\1/p' "$body" 2>/dev/null || true)
  rm -f "$body"
  echo "$((10#${code:-0})) $(awk -v s="${secs:-0}" 'BEGIN{printf "%d", s*1000}') ${error:--}"
}
# probe_ready BASE_URL [BODY_FILE]: prints "STATUS MILLISECONDS" of /health/ready.
probe_ready() {
  local out code secs
  out=$(curl -s -o "${2:-/dev/null}" -w '%{http_code} %{time_total}' --max-time 30 "$1/health/ready" || true)
  read -r code secs <<<"${out:-0 0}"
  echo "$((10#${code:-0})) $(awk -v s="${secs:-0}" 'BEGIN{printf "%d", s*1000}')"
}

# issuance NAME ALG CACHE: one auth-server, its start-up, its token leg (left running; with
# ISSUANCE_LEG=0 only started and checked). AUTH_DB=postgres puts it on PostgreSQL.
issuance() {
  AUTH_NAME=$1 AUTH_ALG=$2 AUTH_CACHE=$3
  start_service "$1" setup_auth
  local pid=$SERVICE_PID port=$SERVICE_PORT
  token_check "$1" "http://127.0.0.1:$port/auth/token" "http://127.0.0.1:$port/.well-known/jwks.json"
  if [[ ${ISSUANCE_LEG:-1} == 1 ]]; then
    leg "issue-$1" "$1" "$pid" "http://127.0.0.1:$port/auth/token" \
      LEG_METHOD=POST LEG_BODY="$TOKEN_BODY" LEG_CTYPE=$FORM LEG_AUTH="$BASIC"
  fi
  AUTH_PORT=$port
  AUTH_PID=$pid
}

# ---------------------------------------------------------------------------------------------
# The outage leg (PostgreSQL through bench/pgproxy.py).
now_ms() { echo $(($(now_ns) / 1000000)); }
sleep_until() { # epoch ms
  local d=$(($1 - $(now_ms)))
  if ((d > 0)); then sleep "$(awk -v d="$d" 'BEGIN{printf "%.3f", d/1000}')"; fi
}
wait_port() { # PORT PID NAME
  for _ in $(seq 1 200); do
    kill -0 "$2" 2>/dev/null || die "$3 exited (log: $OUT/logs/$3.log)"
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  die "$3 does not listen on $1"
}
# Runs in the background during the measured run (LEG_DURING): the database goes away
# (OUTAGE_DURATION - OUTAGE_DOWN) / 2 seconds in, for OUTAGE_DOWN seconds; half-way through the
# outage one password-grant request and one readiness request are timed.
outage_schedule() {
  local started_ms=$1 prefix=$OUT/outage-$OUTAGE_MODE
  local down_at=$((started_ms + (OUTAGE_DURATION - OUTAGE_DOWN) * 500))
  local up_at=$((down_at + OUTAGE_DOWN * 1000))
  sleep_until "$down_at"
  kill -USR1 "$OUTAGE_PROXY_PID"
  now_ms >"$prefix.down_ms"
  sleep_until $((down_at + OUTAGE_DOWN * 500))
  probe_password "$OUTAGE_URL" >"$prefix.password" &
  local password_pid=$!
  probe_ready "$OUTAGE_URL" "$prefix.ready.body" >"$prefix.ready" &
  local ready_pid=$!
  sleep_until "$up_at"
  kill -USR2 "$OUTAGE_PROXY_PID"
  now_ms >"$prefix.up_ms"
  wait "$password_pid" "$ready_pid"
}
outage_leg() {
  local mode=$1 name=auth-outage-$1 proxy_port extra=
  proxy_port=$(free_port)
  CMD=(python3 "$ROOT/bench/pgproxy.py" --listen "$proxy_port" --target "$PG_HOST:$PG_PORT" --mode "$mode")
  spawn "pgproxy-$mode"
  local proxy_pid=$SPAWNED
  wait_port "$proxy_port" "$proxy_pid" "pgproxy-$mode"
  if [[ -n $MAX_STALE_SECS && $MAX_STALE_KNOWN == 1 ]]; then
    extra="max_stale_secs = $MAX_STALE_SECS"
  fi
  AUTH_NAME=$name AUTH_ALG=ES256 AUTH_CACHE=true AUTH_DB=postgres AUTH_PG_PORT=$proxy_port \
    AUTH_EXTRA=$extra AUTH_EXTRA_TABLES=$APP_TABLES READY_SAMPLES=1 \
    start_service "$name" setup_auth
  local pid=$SERVICE_PID url=http://127.0.0.1:$SERVICE_PORT
  token_check "$name" "$url/auth/token" "$url/.well-known/jwks.json"
  local before
  before=$(probe_password "$url")
  [[ $before == 200\ * ]] || die "$name: the password grant answered ${before%% *} before the outage"
  OUTAGE_MODE=$mode OUTAGE_PROXY_PID=$proxy_pid OUTAGE_URL=$url \
    LEG_SECONDS=$OUTAGE_DURATION LEG_TIMEOUT=${OUTAGE_TIMEOUT}s LEG_DURING=outage_schedule \
    leg "outage-$mode" "$name" "$pid" "$url/auth/token" \
    LEG_METHOD=POST LEG_BODY="$TOKEN_BODY" LEG_CTYPE=$FORM LEG_AUTH="$BASIC" LEG_TIMELINE=1
  # Recovery: the same two requests once the database is back (the load has just ended).
  local after_token after_password p_code p_ms p_error r_code r_ms b_code b_ms a_code a_ms a_error
  after_token=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H "Authorization: $BASIC" \
    -H "Content-Type: $FORM" --data "$TOKEN_BODY" "$url/auth/token" || true)
  after_token=$((10#${after_token:-0}))
  after_password=$(probe_password "$url")
  read -r p_code p_ms p_error <"$OUT/outage-$mode.password"
  read -r r_code r_ms <"$OUT/outage-$mode.ready"
  read -r b_code b_ms _ <<<"$before"
  read -r a_code a_ms a_error <<<"$after_password"
  # What readiness said during the outage (its body, at most 300 characters, JSON-escaped).
  local ready_body
  ready_body=$(head -c 300 "$OUT/outage-$mode.ready.body" 2>/dev/null | tr -d '\000-\037' |
    sed 's/\\/\\\\/g; s/"/\\"/g' || true)
  emit "{\"kind\":\"outage\",\"mode\":\"$mode\",\"leg\":\"outage-$mode\",\
\"down_ms\":$(cat "$OUT/outage-$mode.down_ms"),\"up_ms\":$(cat "$OUT/outage-$mode.up_ms"),\
\"down_s\":$OUTAGE_DOWN,\"duration_s\":$OUTAGE_DURATION,\"wrk_timeout_s\":$OUTAGE_TIMEOUT,\
\"max_stale_secs\":\"${extra:+$MAX_STALE_SECS}\",\
\"password_before\":{\"status\":$b_code,\"ms\":$b_ms},\
\"password_during\":{\"status\":$p_code,\"ms\":$p_ms,\"error\":\"$p_error\"},\
\"ready_during\":{\"status\":$r_code,\"ms\":$r_ms,\"body\":\"$ready_body\"},\
\"token_after\":{\"status\":$after_token},\
\"password_after\":{\"status\":$a_code,\"ms\":$a_ms,\"error\":\"$a_error\"}}"
  log "outage ($mode): password grant during the outage: $p_code in $p_ms ms ($p_error);" \
    "ready during: $r_code in $r_ms ms; after: token $after_token, password grant $a_code"
  stop_service "$name" "$pid"
  stop_and_forget "$proxy_pid"
  drop_leg_dbs
}

# ---------------------------------------------------------------------------------------------
# The scale leg: SCALE_CLIENTS clients in the table, then start-up, idle memory and issuance
# spread over SCALE_SPREAD of them.
#
# The clients are inserted directly (one transaction), every one a copy of the bench client's
# row (its argon2id hash of CLIENT_SECRET, made by the server at the first start) under another
# client_id. The columns are those of the `clients` table in
# auth-server/src/storage/migrations/m20261122_000001_create_clients.rs and
# auth-server/src/storage/entities/client.rs. THE SCHEMA MAY GAIN COLUMNS: when a migration
# adds one, update SCALE_CLIENT_COLUMNS and the two INSERTs in insert_scale_clients below (a
# nullable column or one with a default needs nothing; the run warns when the table has
# columns this list lacks, and stops with this message when the insert fails).
SCALE_CLIENT_COLUMNS="client_id secret_hash scopes audiences grant_types created_at updated_at"
SCALE_WIDTH=$(( ${#SCALE_CLIENTS} > 6 ? ${#SCALE_CLIENTS} : 6 ))
scale_client_id() { printf "bench-scale-%0${SCALE_WIDTH}d" "$1"; }
insert_scale_clients() { # BACKEND TARGET (SQLite file or database name)
  local backend=$1 target=$2 columns
  if [[ $backend == sqlite ]]; then
    columns=$(sqlite3 "$target" "SELECT name FROM pragma_table_info('clients') ORDER BY cid" | xargs)
  else
    columns=$(psql -X -At -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$target" -c \
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'clients'
       AND table_schema = current_schema() ORDER BY ordinal_position" | xargs)
  fi
  if [[ $columns != "$SCALE_CLIENT_COLUMNS" ]]; then
    log "WARNING: the clients table has columns ($columns), the scale leg inserts" \
      "($SCALE_CLIENT_COLUMNS): update SCALE_CLIENT_COLUMNS and insert_scale_clients in bench/run.sh"
  fi
  local ok=0
  if [[ $backend == sqlite ]]; then
    sqlite3 -bail "$target" >"$OUT/logs/scale-insert-$backend.log" 2>&1 <<SQL && ok=1
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $SCALE_CLIENTS)
INSERT INTO clients (client_id, secret_hash, scopes, audiences, grant_types, created_at, updated_at)
SELECT printf('bench-scale-%0${SCALE_WIDTH}d', i), t.secret_hash, t.scopes, t.audiences,
       t.grant_types, t.created_at, t.updated_at
FROM n, (SELECT * FROM clients WHERE client_id = '$CLIENT_ID') AS t;
COMMIT;
SQL
  else
    psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$target" \
      >"$OUT/logs/scale-insert-$backend.log" 2>&1 <<SQL && ok=1
BEGIN;
INSERT INTO clients (client_id, secret_hash, scopes, audiences, grant_types, created_at, updated_at)
SELECT 'bench-scale-' || lpad(i::text, $SCALE_WIDTH, '0'), t.secret_hash, t.scopes, t.audiences,
       t.grant_types, t.created_at, t.updated_at
FROM generate_series(1, $SCALE_CLIENTS) AS i,
     (SELECT * FROM clients WHERE client_id = '$CLIENT_ID') AS t;
COMMIT;
ANALYZE clients;
SQL
  fi
  [[ $ok == 1 ]] || die "inserting $SCALE_CLIENTS clients into $backend failed (see" \
    "$OUT/logs/scale-insert-$backend.log): if the clients table gained a column, update" \
    "SCALE_CLIENT_COLUMNS and insert_scale_clients in bench/run.sh"
  local count
  if [[ $backend == sqlite ]]; then
    count=$(sqlite3 "$target" "SELECT count(*) FROM clients")
  else
    count=$(psql -X -At -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$target" -c "SELECT count(*) FROM clients")
  fi
  ((count >= SCALE_CLIENTS + 1)) || die "$backend: $count clients after the insert"
  echo "$count"
}
setup_scale() { # same database each time (SCALE_URL): restarts of one populated instance
  local name=$SCALE_NAME
  case $1 in
    0) ;;
    prepare) name=$SCALE_NAME.prepare ;;
    *) name=$SCALE_NAME.ready$1 ;;
  esac
  PORT=$(free_port)
  local config
  config=$(AUTH_EXTRA=$SCALE_EXTRA auth_config "$name" "$PORT" ES256 true "$SCALE_URL")
  CMD=("$AUTH_BIN" --config "$config" serve)
  READY_URL=http://127.0.0.1:$PORT/health/ready
}
scale_leg() {
  local backend=$1 name=auth-scale-$1 target
  SCALE_NAME=$name
  SCALE_EXTRA=
  if [[ $backend == sqlite ]]; then
    target=$OUT/db/$name.sqlite
    SCALE_URL="sqlite://$target?mode=rwc"
  else
    target=$(pg_name "$name")
    create_db "$target"
    LEG_DBS+=("$target")
    SCALE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$target"
    SCALE_EXTRA="key_encryption_key_file = \"$KEK_FILE\""
  fi
  # A first start creates the schema, the signing key and the bench client's hash.
  setup_scale prepare
  spawn "$name.prepare"
  wait_ready "$name.prepare" "$SPAWNED" "$READY_URL" >/dev/null
  stop_and_forget "$SPAWNED"
  log "scale ($backend): inserting $SCALE_CLIENTS clients in one transaction"
  local t0 count insert_ms
  t0=$(now_ms)
  count=$(insert_scale_clients "$backend" "$target")
  insert_ms=$(($(now_ms) - t0))
  log "scale ($backend): $count clients in the table (insert: $insert_ms ms)"
  start_service "$name" setup_scale
  local pid=$SERVICE_PID url=http://127.0.0.1:$SERVICE_PORT
  # The load: SCALE_SPREAD clients evenly spaced over the table, taken in turn.
  local auth_file=$OUT/$name.auth step=$((SCALE_CLIENTS / SCALE_SPREAD))
  node -e '
    const [n, step, width, secret] = process.argv.slice(1).map((v, i) => (i < 3 ? Number(v) : v));
    const lines = [];
    for (let i = 1; i <= n; i += 1) {
      const id = `bench-scale-${String(i * step).padStart(width, "0")}`;
      lines.push(`Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`);
    }
    console.log(lines.join("\n"));
  ' "$SCALE_SPREAD" "$step" "$SCALE_WIDTH" "$CLIENT_SECRET" >"$auth_file"
  local first code
  first=$(head -n 1 "$auth_file")
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $first" -H "Content-Type: $FORM" \
    --data "$TOKEN_BODY" "$url/auth/token")
  [[ $code == 200 ]] || die "$name: a token request for $(scale_client_id "$step") answered $code"
  emit "{\"kind\":\"scale\",\"backend\":\"$backend\",\"service\":\"$name\",\"leg\":\"scale-$backend\",\
\"clients\":$count,\"spread\":$SCALE_SPREAD,\"insert_ms\":$insert_ms}"
  leg "scale-$backend" "$name" "$pid" "$url/auth/token" \
    LEG_METHOD=POST LEG_BODY="$TOKEN_BODY" LEG_CTYPE=$FORM LEG_AUTH_FILE="$auth_file"
  stop_service "$name" "$pid"
  drop_leg_dbs
}

# ---------------------------------------------------------------------------------------------
emit "{\"kind\":\"run\",\"id\":\"$RUN_ID\",\"started\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\
\"duration_s\":$DURATION,\"warmup_s\":$WARMUP,\"connections\":$CONNECTIONS,\"threads\":$THREADS,\
\"groups\":\"$(for g in $ONLY; do want "$g" && printf '%s ' "$g"; done)\",\"peer_workers\":$PEER_WORKERS,\
\"rust_log\":\"${RUST_LOG:-}\",\"rust_backtrace_in_shell\":\"${RUST_BACKTRACE:-}\"}"
log "run $RUN_ID; transient output in ${OUT#"$ROOT"/}"
RUN_STARTED_MS=$(now_ms)

# 1. The physical limit, in-process, on one core, while nothing else of ours runs.
log "in-process limit (crypto_limit, ${CRYPTO_LIMIT_SECS}s per measurement)"
"$LIMIT_BIN" | tee "$OUT/crypto_limit.txt" >&2
while read -r _ fields; do
  json=$(awk '{ s=""; for (i=1;i<=NF;i++) { split($i, kv, "="); v=kv[2];
    if (v !~ /^[0-9.]+$/) v="\"" v "\""; s = s (i>1?",":"") "\"" kv[1] "\":" v } print "{" s "}" }' \
    <<<"$fields")
  emit "{\"kind\":\"limit\",\"m\":$json}"
done < <(grep '^limit ' "$OUT/crypto_limit.txt")

# 2. Token issuance, ES256, SQLite, with the verified-secret cache (the default); then, while
#    the machine is the same, the ceiling and the peer (a cluster as its users run it, and one
#    process).
if want issuance || want api || want secretless; then
  KEYED_TABLES=
  if want secretless; then
    # A client with a public key and no secret (private_key_jwt), on the same server.
    node "$ROOT/bench/secretless.mjs" keys "$OUT" "$KEYED_ID" || die "secretless.mjs keys"
    node "$ROOT/bench/secretless.mjs" keys "$OUT" bench-dpop || die "secretless.mjs keys"
    KEYED_TABLES="[[clients]]
client_id = \"$KEYED_ID\"
jwks_file = \"$OUT/$KEYED_ID.jwks.json\"
scopes = [\"players:write\"]
audiences = [\"players-api\"]"
  fi
  AUTH_EXTRA_TABLES=$KEYED_TABLES ISSUANCE_LEG=$(want issuance && echo 1 || echo 0) \
    issuance auth-es256 ES256 true
  ES256_PORT=$AUTH_PORT
  ES256_PID=$AUTH_PID
  ES256_TOKEN_URL=http://127.0.0.1:$ES256_PORT/auth/token
fi

# 2b. private_key_jwt issuance on the same server, right after its client_secret_basic leg.
if want secretless; then
  premade_assertions() { # COUNT FILE
    node "$ROOT/bench/secretless.mjs" assertions "$OUT/$KEYED_ID.pem" "$KEYED_ID" \
      "http://127.0.0.1:$ES256_PORT" "$ES256_TOKEN_URL" "$1" "$2" || die "secretless.mjs assertions"
  }
  premade_assertions 1 "$OUT/premade-check.tsv"
  check=$(curl -s -H "Content-Type: $FORM" --data-binary "$(cut -f4 "$OUT/premade-check.tsv")" \
    "$ES256_TOKEN_URL")
  [[ $check == *'"token_type":"Bearer"'* ]] || die "a private_key_jwt token request answered: $check"
  log "private_key_jwt: one token checked; signing $((PREMADE_RATE * (WARMUP + DURATION))) assertions"
  premade_assertions $((PREMADE_RATE * WARMUP)) "$OUT/premade-assertions-warmup.tsv"
  premade_assertions $((PREMADE_RATE * DURATION)) "$OUT/premade-assertions.tsv"
  LEG_WARMUP_REQUEST_FILE=$OUT/premade-assertions-warmup.tsv \
    leg issue-auth-es256-pkjwt auth-es256 "$ES256_PID" "$ES256_TOKEN_URL" \
    LEG_REQUEST_FILE="$OUT/premade-assertions.tsv" LEG_CTYPE=$FORM
  rm -f "$OUT"/premade-*.tsv
fi

if want ceiling; then
  start_service ceiling setup_ceiling
  ceiling_pid=$SERVICE_PID
  ceiling_port=$SERVICE_PORT
  token_check ceiling "http://127.0.0.1:$ceiling_port/auth/token" "http://127.0.0.1:$ceiling_port/jwks"
  leg issue-ceiling ceiling "$ceiling_pid" "http://127.0.0.1:$ceiling_port/auth/token" \
    LEG_METHOD=POST LEG_BODY="$TOKEN_BODY" LEG_CTYPE=$FORM LEG_AUTH="$BASIC"
  stop_service ceiling "$ceiling_pid"
fi

if want peer; then
  peer_legs=("peer-cluster cluster.mjs")
  [[ $PEER_SINGLE == 1 ]] && peer_legs+=("peer provider.mjs")
  for spec in "${peer_legs[@]}"; do
    read -r peer_name PEER_SCRIPT <<<"$spec"
    start_service "$peer_name" setup_peer
    peer_pid=$SERVICE_PID
    peer_port=$SERVICE_PORT
    token_check "$peer_name" "http://127.0.0.1:$peer_port/token" "http://127.0.0.1:$peer_port/jwks"
    leg "issue-$peer_name" "$peer_name" "$peer_pid" "http://127.0.0.1:$peer_port/token" \
      LEG_METHOD=POST LEG_BODY="$TOKEN_BODY" LEG_CTYPE=$FORM LEG_AUTH="$BASIC"
    stop_service "$peer_name" "$peer_pid"
  done
fi

# 3. The players API, trusting the ES256 auth-server.
if want api; then
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

  # The same writes with a DPoP-bound token, each with a new proof of its key.
  if want secretless; then
    DPOP_KEY=$OUT/bench-dpop.pem
    token_proof=$(node "$ROOT/bench/secretless.mjs" proof "$DPOP_KEY" POST "$ES256_TOKEN_URL")
    DPOP_TOKEN=$(curl -s -H "Authorization: $BASIC" -H "Content-Type: $FORM" -H "DPoP: $token_proof" \
      --data "$TOKEN_BODY" "$ES256_TOKEN_URL" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
    [[ -n $DPOP_TOKEN ]] || die "no DPoP-bound token from the auth-server"
    premade_writes() { # COUNT FILE
      node "$ROOT/bench/secretless.mjs" dpop-writes "$DPOP_KEY" "$API" "$DPOP_TOKEN" 26 "$1" "$2" ||
        die "secretless.mjs dpop-writes"
    }
    premade_writes 1 "$OUT/premade-check.tsv"
    expect_status 204 -X PUT -H "Authorization: DPoP $DPOP_TOKEN" -H 'Content-Type: application/json' \
      -H "DPoP: $(cut -f3 "$OUT/premade-check.tsv")" --data "$(cut -f4 "$OUT/premade-check.tsv")" \
      "$API$(cut -f2 "$OUT/premade-check.tsv")"
    expect_status 401 -X PUT -H "Authorization: Bearer $DPOP_TOKEN" -H 'Content-Type: application/json' \
      --data "$(cut -f4 "$OUT/premade-check.tsv")" "$API$(cut -f2 "$OUT/premade-check.tsv")"
    log "DPoP: one write checked (the token refused as Bearer); signing $((PREMADE_RATE * (WARMUP + DURATION))) proofs"
    premade_writes $((PREMADE_RATE * WARMUP)) "$OUT/premade-writes-warmup.tsv"
    premade_writes $((PREMADE_RATE * DURATION)) "$OUT/premade-writes.tsv"
    LEG_WARMUP_REQUEST_FILE=$OUT/premade-writes-warmup.tsv \
      leg writes-dpop resource-api "$api_pid" "$API/players/squadnumber/1" \
      LEG_REQUEST_FILE="$OUT/premade-writes.tsv" LEG_AUTH="DPoP $DPOP_TOKEN" \
      LEG_CTYPE=application/json
    rm -f "$OUT"/premade-*.tsv
  fi
  stop_service resource-api "$api_pid"
fi
if [[ -n ${ES256_PID:-} ]]; then stop_service auth-es256 "$ES256_PID"; fi

# 4. EdDSA, then ES256 without the verified-secret cache (every request pays argon2id).
if want eddsa; then
  issuance auth-eddsa EdDSA true
  stop_service auth-eddsa "$AUTH_PID"
fi
if want nocache; then
  issuance auth-es256-nocache ES256 false
  stop_service auth-es256-nocache "$AUTH_PID"
fi

# 5. The same ES256 issuance on PostgreSQL (a fresh database per start).
if want postgres && pg_available; then
  AUTH_DB=postgres issuance auth-pg ES256 true
  stop_service auth-pg "$AUTH_PID"
  drop_leg_dbs
fi

# 6. The outage: PostgreSQL through a proxy that goes away in the middle of the load.
if want outage && pg_available; then
  MAX_STALE_KNOWN=0
  setting_known max_stale_secs 60 && MAX_STALE_KNOWN=1
  emit "{\"kind\":\"setting\",\"key\":\"max_stale_secs\",\"known\":$([[ $MAX_STALE_KNOWN == 1 ]] && echo true || echo false),\
\"asked\":\"$MAX_STALE_SECS\"}"
  if [[ -n $MAX_STALE_SECS && $MAX_STALE_KNOWN == 0 ]]; then
    log "BENCH_MAX_STALE_SECS=$MAX_STALE_SECS: this auth-server does not know max_stale_secs; not passed"
  fi
  for mode in $OUTAGE_MODES; do
    outage_leg "$mode"
  done
fi

# 7. Scale: 100,000 registered clients.
if want scale; then
  for backend in $SCALE_BACKENDS; do
    case $backend in
      sqlite) scale_leg sqlite ;;
      postgres) if pg_available; then scale_leg postgres; fi ;;
      *) die "BENCH_SCALE_BACKENDS: sqlite or postgres, not $backend" ;;
    esac
  done
fi

# ---------------------------------------------------------------------------------------------
emit "{\"kind\":\"run_end\",\"wall_s\":$(( ($(now_ms) - RUN_STARTED_MS) / 1000 ))}"
log "writing bench/results.md"
node "$ROOT/bench/report.mjs" "$RESULTS" "$ROOT/bench/results.md"
cp "$ROOT/bench/results.md" "$OUT/results.md"
cat "$ROOT/bench/results.md"
log "done in $(( ($(now_ms) - RUN_STARTED_MS) / 1000 )) s: bench/results.md (raw: ${OUT#"$ROOT"/})"
