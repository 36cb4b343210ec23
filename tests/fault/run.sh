#!/usr/bin/env bash
# The fault leg: the auth-server and the players API as real processes on two hosts made on
# this machine with network namespaces, joined by one veth link, and that link slowed, made
# lossy, cut (black hole, then link down), and restored. What must hold throughout:
#
#   - writes with valid tokens succeed (the API verifies with the keys it has cached);
#   - bad tokens and tokens naming an unknown key are refused (401) within the API's time
#     limits: at most 2 x jwks_timeout_secs + 1 s (an unknown-kid request may wait for a
#     scheduled refresh already under way, then make its own fetch); never a 5xx, never a hang;
#   - a key rotated on the auth-server (`auth-server keys rotate --now` on its database) while
#     the link is down is picked up once the link returns, and old-key tokens keep working.
#
#   bash tests/fault/run.sh          (make test-fault; root: namespaces, tc, nftables)
#
# Addresses: 198.18.0.1/30 (host "auth") and 198.18.0.2/30 (host "api"), from the benchmarking
# range, no default route in either namespace; nothing else is ever contacted. The namespaces
# (and with them the veth pair, qdiscs and nftables rules) and the processes this script starts
# are removed however it ends. KEEP_TMP=1 keeps the logs and configuration.
#
# The faults. This kernel has no sch_netem (CONFIG_NET_SCH_NETEM is not set, and no modules
# can be loaded), so `tc netem` is not available; the leg uses what the kernel has:
#   slow:  MTU 576 and tc tbf at 8 kbit/s on both ends of the link (each full packet takes
#          ~580 ms: a token response or a JWKS takes up to a second or two), in place of netem's delay;
#   lossy: an nftables rule on both ends dropping 25% of the packets at random
#          (`numgen random mod 100 < 25 drop`), in place of netem's loss;
#   cut:   first the same rule at 100% (a black hole: connections hang until the API's own
#          time limit ends them), then `ip link set ... down` (fails at once).
# If `tc qdisc add ... netem` works (a kernel with sch_netem), the slow phase adds netem's
# 200 ms delay with 50 ms jitter as well.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
# BIN=DIR runs binaries built elsewhere (no build step); by default, cargo build's target/debug.
BIN=${BIN:-}

NS_AUTH=fault-auth-$$
NS_API=fault-api-$$
VETH_AUTH=fva$$ # interface names are at most 15 characters
VETH_API=fvb$$
AUTH_IP=198.18.0.1
API_IP=198.18.0.2
AUTH_URL=http://$AUTH_IP:9000
ISSUER=http://localhost:9000   # the tokens' iss; nothing is fetched from it
API_URL=http://$API_IP:9001
CLIENT_ID=fault-test
JWKS_TIMEOUT=2                    # the API's jwks_timeout_secs
BOUND_MS=$((2 * JWKS_TIMEOUT * 1000 + 1000))

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

# ---------------------------------------------------------------------------------------------
# Hosts and processes: every process is recorded by pid and stopped by pid; the namespaces go
# last, taking the link, its qdiscs and rules with them.

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fault-test.XXXXXX")
declare -A PID=()

cleanup() {
  local status=$?
  set +e
  for name in "${!PID[@]}"; do
    kill -TERM "${PID[$name]}" 2>/dev/null
  done
  for name in "${!PID[@]}"; do
    for _ in $(seq 50); do kill -0 "${PID[$name]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${PID[$name]}" 2>/dev/null
    wait "${PID[$name]}" 2>/dev/null
  done
  ip netns del "$NS_API" 2>/dev/null
  ip netns del "$NS_AUTH" 2>/dev/null
  if ((status != 0)); then
    for log in "$TMP"/*.log; do
      [[ -f $log ]] || continue
      printf '\n---- last lines of %s ----\n' "$(basename "$log")"
      tail -n 20 "$log"
    done
  fi
  if [[ ${KEEP_TMP:-} == 1 ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
  printf '\n%d passed, %d failed\n' "$passed" "$((failed + (status != 0 && failed == 0 ? 1 : 0)))"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

on_auth() { ip netns exec "$NS_AUTH" "$@"; }
on_api() { ip netns exec "$NS_API" "$@"; }
# spawn_on NS COMMAND... &: a service in the background whose $! is the service itself. A
# function run with & is a subshell, and without `exec` $! would be that subshell: stopping it
# would leave the service running (and its namespace alive) after the test.
spawn_on() {
  local ns=$1
  shift
  exec ip netns exec "$ns" "$@"
}

# ---------------------------------------------------------------------------------------------
# Requests. Every request to the API is made on the API's host (to its own address), so that
# only the API's traffic to the auth-server crosses the faulty link. STATUS and MS are set;
# every status is recorded, to check at the end that no request ever got a 5xx.

ALL_STATUSES=()
# api_call METHOD PATH [CURL ARGS...]
api_call() {
  local method=$1 path=$2 out
  shift 2
  out=$(on_api curl -sS --max-time 20 -o "$TMP/body" -w '%{http_code} %{time_total}' \
    -X "$method" "$@" "$API_URL$path" 2>"$TMP/curl-error") || out="000 ${out#* }"
  STATUS=${out%% *}
  MS=$(awk -v s="${out#* }" 'BEGIN { printf "%d", s * 1000 }')
  ALL_STATUSES+=("$STATUS")
}

# token HOST: a client-credentials token for players-api, asked for on HOST (api: across the
# link; auth: on the auth-server's own host); sets TOKEN, TOKEN_MS
token() {
  local out
  out=$("on_$1" curl -sS --max-time 20 -o "$TMP/token" -w '%{http_code} %{time_total}' \
    -H @"$TMP/client-auth-header" --data-urlencode grant_type=client_credentials \
    --data-urlencode audience=players-api "$AUTH_URL/auth/token" 2>"$TMP/curl-error") ||
    fail "token from the $1 host: $(cat "$TMP/curl-error")"
  [[ ${out%% *} == 200 ]] || fail "token from the $1 host: HTTP ${out%% *} $(cat "$TMP/token")"
  TOKEN=$(jq -r .access_token "$TMP/token")
  TOKEN_MS=$(awk -v s="${out#* }" 'BEGIN { printf "%d", s * 1000 }')
}

kid_of() { # kid_of TOKEN
  local part=${1%%.*}
  part=$(tr '_-' '/+' <<<"$part")
  while ((${#part} % 4)); do part+='='; done
  base64 -d <<<"$part" | jq -r .kid
}

# with_kid TOKEN KID: the token with its header's kid replaced (the signature no longer fits,
# but the key is looked up first: an unknown kid makes the API try to refetch the JWKS)
with_kid() {
  local header=${1%%.*} rest=${1#*.} part
  part=$(tr '_-' '/+' <<<"$header")
  while ((${#part} % 4)); do part+='='; done
  header=$(base64 -d <<<"$part" | jq -c --arg k "$2" '.kid = $k' | base64 -w0 | tr '/+' '_-' | tr -d '=')
  printf '%s.%s' "$header" "$rest"
}

squad=29
# write TOKEN: create a player with this token (201), then delete it (204); sets MS (the POST's)
write() {
  squad=$((squad % 99 + 1 < 30 ? 30 : squad % 99 + 1))
  api_call POST /players -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
    -d "{\"firstName\":\"Fault\",\"lastName\":\"Line\",\"squadNumber\":$squad,\"position\":\"Goalkeeper\"}"
  local post=$STATUS post_ms=$MS
  [[ $post == 201 ]] || { STATUS=$post; MS=$post_ms; return 0; }
  api_call DELETE "/players/squadnumber/$squad" -H "Authorization: Bearer $1"
  [[ $STATUS == 204 ]] || fail "DELETE /players/squadnumber/$squad answered $STATUS $(cat "$TMP/body")"
  STATUS=$post
  MS=$post_ms
}

# refused TOKEN WHAT: a write with this token is answered 401 invalid_token within the bound
refused() {
  api_call POST /players -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
    -d '{"firstName":"Fault","lastName":"Forged","squadNumber":99,"position":"Striker"}'
  [[ $STATUS == 401 ]] || fail "$2: answered $STATUS after $MS ms, expected 401: $(cat "$TMP/body")"
  ((MS <= BOUND_MS)) || fail "$2: 401 after $MS ms, over the $BOUND_MS ms bound"
}

unknown=0
# phase NAME N: N writes with the current valid token, N refusals of a malformed token and
# N of tokens naming made-up kids; prints the figures, fails on any unexpected answer
phase() {
  local name=$1 n=$2 max_write=0 max_bad=0 max_unknown=0
  for _ in $(seq "$n"); do
    write "$VALID"
    [[ $STATUS == 201 ]] || fail "$name: a write with a valid token answered $STATUS after $MS ms: $(cat "$TMP/body")"
    ((MS > max_write)) && max_write=$MS
    refused "not-a-jwt" "$name: a malformed token"
    ((MS > max_bad)) && max_bad=$MS
    unknown=$((unknown + 1))
    refused "$(with_kid "$VALID" "made-up-kid-$unknown")" "$name: a token naming an unknown key"
    ((MS > max_unknown)) && max_unknown=$MS
  done
  pass "$name: $n writes with a valid token: 201 (max ${max_write} ms)"
  pass "$name: $n malformed tokens: 401 (max ${max_bad} ms); $n unknown-kid tokens: 401 (max ${max_unknown} ms, bound $BOUND_MS ms)"
  FIGURES+=("$(printf '%-22s write max %5d ms   malformed max %5d ms   unknown kid max %5d ms' \
    "$name" "$max_write" "$max_bad" "$max_unknown")")
}
FIGURES=()

# faults on both ends of the link
link_dev() { [[ $1 == auth ]] && echo "$VETH_AUTH" || echo "$VETH_API"; }
slow_link() { # MTU 576 and 8 kbit/s: each full packet takes ~580 ms; a JWKS or a token response is 1-3 packets
  for host in auth api; do
    "on_$host" ip link set "$(link_dev $host)" mtu 576
    if ((NETEM)); then
      "on_$host" tc qdisc add dev "$(link_dev $host)" root handle 1: netem delay 200ms 50ms
      "on_$host" tc qdisc add dev "$(link_dev $host)" parent 1: handle 2: tbf rate 8kbit burst 600 latency 5s
    else
      "on_$host" tc qdisc add dev "$(link_dev $host)" root tbf rate 8kbit burst 600 latency 5s
    fi
  done
}
clear_qdiscs() {
  for host in auth api; do
    "on_$host" tc qdisc del dev "$(link_dev $host)" root 2>/dev/null || true
    "on_$host" ip link set "$(link_dev $host)" mtu 1500
  done
}
drop_percent() { # drop_percent P: drop P% of the packets leaving each end of the link
  for host in auth api; do
    "on_$host" nft -f - <<EOF
table inet fault
delete table inet fault
table inet fault {
  chain out {
    type filter hook output priority 0; policy accept;
    oifname "$(link_dev $host)" $( (($1 >= 100)) || echo "numgen random mod 100 < $1") drop
  }
}
EOF
  done
}
clear_drops() {
  for host in auth api; do "on_$host" nft delete table inet fault 2>/dev/null || true; done
}

wait_ready() { # wait_ready HOST URL NAME
  for _ in $(seq 300); do
    "on_$1" curl -fsS -o /dev/null --max-time 2 "$2" 2>/dev/null && return 0
    kill -0 "${PID[$3]}" 2>/dev/null || fail "$3 exited: $(tail -n 5 "$TMP/$3.log")"
    sleep 0.1
  done
  fail "$3 not ready at $2 after 30 s"
}

# =============================================================================================

step "tools: root, ip, tc, curl, jq; nftables from Debian's packages if missing"
((EUID == 0)) || fail "the fault leg makes network namespaces: run it as root"
for tool in ip tc curl jq base64; do
  command -v "$tool" >/dev/null || fail "$tool is required"
done
if ! command -v nft >/dev/null; then
  note "installing nftables"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nftables >/dev/null
fi
pass "$(ip -V), $(nft --version), $(curl --version | head -n 1 | cut -d' ' -f1-2)"

if [[ -z $BIN ]]; then
  step "build: cargo build --bins"
  cargo build --bins --quiet
  BIN=$ROOT/target/debug
fi
[[ -x $BIN/auth-server && -x $BIN/resource-api ]] || fail "binaries missing in $BIN"
pass "$BIN/auth-server and $BIN/resource-api"

step "hosts: namespaces $NS_AUTH ($AUTH_IP) and $NS_API ($API_IP), one veth link, no default route"
ip netns add "$NS_AUTH"
ip netns add "$NS_API"
ip link add "$VETH_AUTH" netns "$NS_AUTH" type veth peer name "$VETH_API" netns "$NS_API"
on_auth ip addr add "$AUTH_IP/30" dev "$VETH_AUTH"
on_api ip addr add "$API_IP/30" dev "$VETH_API"
for host in auth api; do
  "on_$host" ip link set lo up
  "on_$host" ip link set "$(link_dev $host)" up
  if "on_$host" ip route show default | grep -q .; then fail "$host has a default route"; fi
done
NETEM=0
if on_auth tc qdisc add dev "$VETH_AUTH" root netem delay 1ms 2>/dev/null; then
  NETEM=1
  on_auth tc qdisc del dev "$VETH_AUTH" root
fi
on_api curl -sS -o /dev/null --max-time 2 "http://$AUTH_IP:1" 2>/dev/null || true # ARP warm-up
pass "link up; netem $( ((NETEM)) && echo available || echo 'not in this kernel: tbf and nftables stand in')"

step "configuration in $TMP"
(
  umask 077
  head -c 32 /dev/urandom | base64 >"$TMP/key-encryption-key"
  head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$TMP/client-secret"
  printf 'Authorization: Basic %s\n' \
    "$(printf '%s:%s' "$CLIENT_ID" "$(cat "$TMP/client-secret")" | base64 -w0)" >"$TMP/client-auth-header"
)
# The issuer (`iss`, compared as a string) stays a localhost URL: outside development mode the
# auth-server refuses a plain-http issuer off localhost, and this test has no TLS. Everything
# still crosses the link: clients post to $AUTH_URL, and the API fetches its keys from there
# (jwks_url below). Secrets come from files, as in production. Keys: JWKS max-age 2 s, so that
# the API's scheduled refreshes run (and fail) all through the faults; each instance re-reads
# its key table every second.
cat >"$TMP/auth-server.toml" <<EOF
bind = "$AUTH_IP:9000"
issuer = "$ISSUER"
database_url = "sqlite://$TMP/auth.sqlite?mode=rwc"
key_encryption_key_file = "$TMP/key-encryption-key"
jwks_max_age_secs = 2
key_refresh_secs = 1

[[clients]]
client_id = "$CLIENT_ID"
client_secret_file = "$TMP/client-secret"
scopes = ["players:write"]
audiences = ["players-api"]
grant_types = ["client_credentials"]
EOF
# allow_insecure_jwks_url: the verifier fetches keys over plain http only from loopback unless
# told otherwise, since whoever can rewrite the JWKS in transit can mint tokens. Here the
# issuer is across a private link between two namespaces that this script alone creates, with
# no TLS in the test; it is set for that reason, and only here.
cat >"$TMP/resource-api.toml" <<EOF
bind = "$API_IP:9001"
issuer = "$ISSUER"
jwks_url = "$AUTH_URL/.well-known/jwks.json"
public_url = "$API_URL"
audience = "players-api"
database_url = "sqlite://$TMP/players.sqlite?mode=rwc"
allow_insecure_jwks_url = true
jwks_timeout_secs = $JWKS_TIMEOUT
jwks_cooldown_secs = 2
jwks_min_interval_ms = 500
EOF
pass "auth-server.toml and resource-api.toml (allow_insecure_jwks_url = true: a private test link)"

step "services: the auth-server on the auth host, the players API on the api host"
spawn_on "$NS_AUTH" env RUST_LOG=info "$BIN/auth-server" --config "$TMP/auth-server.toml" \
  >"$TMP/auth-server.log" 2>&1 &
PID[auth-server]=$!
wait_ready auth "$AUTH_URL/health/ready" auth-server
spawn_on "$NS_API" env RUST_LOG=info "$BIN/resource-api" --config "$TMP/resource-api.toml" \
  >"$TMP/resource-api.log" 2>&1 &
PID[resource-api]=$!
wait_ready api "$API_URL/health/ready" resource-api
# The recorded pids are the services themselves, so that stopping them by pid stops them.
for name in auth-server resource-api; do
  [[ $(cat "/proc/${PID[$name]}/comm" 2>/dev/null) == "$name" ]] ||
    fail "the pid recorded for $name ($(cat "/proc/${PID[$name]}/comm" 2>/dev/null)) is not the service"
done
pass "auth-server (pid ${PID[auth-server]}) and resource-api (pid ${PID[resource-api]}) ready: the API fetched the JWKS across the link"

# ---------------------------------------------------------------------------------------------
step "healthy link"
token api
VALID=$TOKEN
OLD_KID=$(kid_of "$VALID")
pass "a token across the link in $TOKEN_MS ms (kid $(cut -c1-12 <<<"$OLD_KID")…)"
phase "healthy" 3

step "slow link: $( ((NETEM)) && echo 'netem delay 200 ms ± 50 ms, ')MTU 576, tbf 8 kbit/s on both ends"
slow_link
token api
pass "a token across the slow link in $TOKEN_MS ms"
sleep 3 # past the JWKS max-age: the API's scheduled refreshes now cross the slow link
phase "slow" 3
clear_qdiscs

step "lossy link: 25% of the packets dropped at random on both ends (nftables numgen)"
drop_percent 25
sleep 3 # past the JWKS max-age: the API's scheduled refreshes now cross the lossy link
phase "lossy" 4
clear_drops

step "cut, black hole: every packet dropped on both ends (connections hang)"
drop_percent 100
sleep 3 # scheduled refreshes now fail; the keys must stay
phase "cut (black hole)" 3

step "cut, link down: ip link set $VETH_API down (connections fail at once)"
on_api ip link set "$VETH_API" down
clear_drops
sleep 3
phase "cut (link down)" 3

step "key rotation on the auth host while the link is down: auth-server keys rotate --now"
rotated=$(on_auth env RUST_LOG=warn "$BIN/auth-server" --config "$TMP/auth-server.toml" keys rotate --now)
NEW_KID=$(awk '{print $1; exit}' <<<"$rotated")
[[ -n $NEW_KID && $NEW_KID != "$OLD_KID" ]] || fail "no new kid from keys rotate: $rotated"
pass "new active key $(cut -c1-12 <<<"$NEW_KID")…"
NEW_TOKEN=
for _ in $(seq 30); do # the server re-reads its keys every second
  token auth
  if [[ $(kid_of "$TOKEN") == "$NEW_KID" ]]; then NEW_TOKEN=$TOKEN; break; fi
  sleep 0.2
done
[[ -n $NEW_TOKEN ]] || fail "the auth-server did not sign with the new key within 6 s"
pass "a token signed with the new key (asked for on the auth host itself)"
refused "$NEW_TOKEN" "a new-key token while the link is down"
pass "the API cannot know the new key yet: 401 in $MS ms, not a 5xx"
write "$VALID"
[[ $STATUS == 201 ]] || fail "an old-key write while the link is down answered $STATUS"
pass "old-key writes still succeed (201 in $MS ms)"

step "restored: link up, no faults"
on_api ip link set "$VETH_API" up
restored_at=$(date +%s%N)
picked=0
for _ in $(seq 40); do
  write "$NEW_TOKEN"
  if [[ $STATUS == 201 ]]; then picked=1; break; fi
  [[ $STATUS == 401 ]] || fail "a new-key write after the restore answered $STATUS"
  ((MS <= BOUND_MS)) || fail "a new-key write after the restore took $MS ms, over the $BOUND_MS ms bound"
  sleep 0.5
done
((picked)) || fail "the rotated key was not picked up within 20 s of the link's return"
pickup_ms=$((($(date +%s%N) - restored_at) / 1000000))
pass "the rotated key picked up: a new-key write answered 201, $pickup_ms ms after the link returned"
FIGURES+=("$(printf '%-22s rotated key picked up %d ms after the link returned' restored "$pickup_ms")")
write "$VALID"
[[ $STATUS == 201 ]] || fail "an old-key write after the restore answered $STATUS"
pass "old-key tokens keep working (the old key is still published)"
token api
write "$TOKEN"
[[ $STATUS == 201 && $(kid_of "$TOKEN") == "$NEW_KID" ]] || fail "a fresh token across the link: write answered $STATUS"
pass "a fresh token across the restored link ($TOKEN_MS ms) writes"

# ---------------------------------------------------------------------------------------------
step "no request answered 5xx or left unanswered; no panic in either log"
bad=0
for s in "${ALL_STATUSES[@]}"; do
  [[ $s == 5* || $s == 000 ]] && bad=$((bad + 1))
done
((bad == 0)) || fail "$bad of ${#ALL_STATUSES[@]} API requests were answered 5xx or not at all"
pass "${#ALL_STATUSES[@]} API requests, none 5xx or unanswered"
if grep -l 'panicked' "$TMP"/*.log; then fail "a service panicked"; fi
failed_fetches=$(grep -c 'could not' "$TMP/resource-api.log" || true)
pass "no panic; the API logged $failed_fetches failed key fetches while the link was down or lossy"

step "figures (bound for a refusal: $BOUND_MS ms = 2 x jwks_timeout_secs + 1 s)"
printf '          %s\n' "${FIGURES[@]}"
