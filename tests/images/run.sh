#!/usr/bin/env bash
# The container images, built and run for real: a private dockerd (Debian's docker.io) with no
# bridge and no iptables, a base image made with debootstrap and imported under the name the
# Dockerfile's runtime stage uses, both services' images built from host-built release binaries
# (deploy/Dockerfile's *-prebuilt targets: the auth-server with the classic builder, the
# resource-api with BuildKit, so both builders are shown to leave the rust: stage alone), then
# both run as deploy/compose.yaml runs them: read-only root filesystem, all capabilities
# dropped, no-new-privileges, the image's uid 10001, secrets (key-encryption key, database
# URLs, a client secret) from read-only files, against this machine's PostgreSQL. Every
# container uses the host's network (`--network host`, on loopback ports): no bridge network,
# ever. It waits for Docker's own health status, gets a token from the auth-server container,
# makes a protected write on the resource-api container, stops both, and removes everything it
# made (containers, images, the base image, its dockerd by process id, its data, its
# databases), however it ends.
#
#   bash tests/images/run.sh            (make test-images)
#
# Needs root (dockerd, debootstrap), PostgreSQL on 127.0.0.1:5432 with trust auth for
# `postgres` (PG_HOST, PG_PORT, PG_USER, PG_ADMIN_DB override) and Debian's archive over HTTP
# (DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR override). Installs docker.io, debootstrap, curl and jq
# from Debian's packages when missing. Skips (exit 0, with the reason) only where no container
# engine can run at all: not root, or a kernel or sandbox without namespaces or cgroups.
# IMAGES_PROFILE=debug builds debug binaries instead of release (faster; users run release).
# KEEP_TMP=1 keeps the logs (the dockerd and its data are removed regardless).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
PG_USER=${PG_USER:-postgres}
PG_ADMIN_DB=${PG_ADMIN_DB:-test}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
PROFILE=${IMAGES_PROFILE:-release}
[[ $PROFILE == release || $PROFILE == debug ]] || { echo "IMAGES_PROFILE must be release or debug" >&2; exit 2; }
DB_PREFIX=images_test_$$
RUN_ID=images-test-$$
AUTH_IMAGE=players-platform/auth-server:$RUN_ID
API_IMAGE=players-platform/resource-api:$RUN_ID
CLIENT_ID=images-test
# Docker's client from the docker.io package, whatever else is on PATH: it speaks the 20.10
# engine's API and builds with BuildKit without a buildx plugin.
DOCKER_CLI=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd

# ---------------------------------------------------------------------------------------------
# Reporting

passed=0
failed=0
STARTED_AT=$SECONDS
step() { printf '\n==> %s   [%ds]\n' "$*" $((SECONDS - STARTED_AT)); }
pass() { passed=$((passed + 1)); printf '    ok    %s\n' "$*"; }
note() { printf '          %s\n' "$*"; }
fail() {
  failed=$((failed + 1))
  printf '    FAIL  %s\n' "$*"
  exit 1
}
skip() {
  printf '\nSKIP images: %s\n' "$*"
  printf 'No container engine can run on this machine, so the images were not built or run.\n'
  exit 0
}
# expect ACTUAL EXPECTED WHAT
expect() {
  if [[ $1 == "$2" ]]; then pass "$3"; else fail "$3: got '$1', expected '$2'"; fi
}

# ---------------------------------------------------------------------------------------------
# What this run made, removed by cleanup in reverse: containers and images (through its own
# dockerd), the dockerd (by process id), mounts and files under $TMP, the databases.

TMP=
DOCKERD_PID=
DOCKER_SOCK=
declare -a CONTAINERS=() IMAGES=() DATABASES=()
POLICY_RC_MADE=0

dk() { "$DOCKER_CLI" --host "unix://$DOCKER_SOCK" "$@"; }

psql_admin() {
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_ADMIN_DB" -v ON_ERROR_STOP=1 -qAtX -c "$1"
}

# stop_pid PID WHAT SECONDS: SIGTERM, wait, then SIGKILL
stop_pid() {
  local pid=$1 what=$2 secs=$3
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $((secs * 10))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "    $what (pid $pid) ignored SIGTERM for ${secs}s: SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

# Unmounts whatever is still mounted under $TMP (dockerd's own bind mount of its data root,
# overlays of containers that were not removed), deepest first.
unmount_under_tmp() {
  local m
  awk -v t="$TMP/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}

# our_containerd: the pid of the containerd our dockerd started, if it still runs (its pid
# file may outlive it: the pid counts only while its command line names our exec root).
our_containerd() {
  local pid cmdline
  [[ -n $TMP && -s $TMP/exec/containerd/containerd.pid ]] || return 1
  pid=$(cat "$TMP/exec/containerd/containerd.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$TMP/exec/containerd/"* ]] && echo "$pid"
}

# The cgroups made under our dockerd's parent cgroup (empty once its containers are gone).
remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/"$RUN_ID" /sys/fs/cgroup/"$RUN_ID"; do
    [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  return 0
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if ((rc != 0)); then
    [[ $failed -gt 0 ]] || failed=1
    if [[ -n $DOCKER_SOCK ]] && [[ -S $DOCKER_SOCK ]]; then
      for c in "${CONTAINERS[@]}"; do
        printf '\n---- %s: state, health log, last log lines ----\n' "$c"
        dk inspect -f '{{.State.Status}} exit={{.State.ExitCode}} health={{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c" 2>&1
        dk inspect -f '{{if .State.Health}}{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{"\n"}}{{end}}{{end}}' "$c" 2>&1 | tail -n 5
        dk logs --tail 20 "$c" 2>&1
      done
    fi
    for log in "$TMP"/*.log; do
      [[ -s $log ]] || continue
      printf '\n---- last lines of %s ----\n' "${log#"$TMP"/}"
      tail -n 15 "$log"
    done
  fi
  if [[ -n $DOCKERD_PID ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    ((${#CONTAINERS[@]} == 0)) || dk rm -f "${CONTAINERS[@]}" >/dev/null 2>&1
    ((${#IMAGES[@]} == 0)) || dk rmi -f "${IMAGES[@]}" >/dev/null 2>&1
    stop_pid "$DOCKERD_PID" dockerd 30
    wait "$DOCKERD_PID" 2>/dev/null
  fi
  # dockerd stops the containerd it started; if dockerd had to be killed, stop that too.
  if pid=$(our_containerd); then
    stop_pid "$pid" containerd 10
  fi
  remove_cgroups
  for db in "${DATABASES[@]}"; do
    psql_admin "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  done
  ((POLICY_RC_MADE == 0)) || rm -f /usr/sbin/policy-rc.d
  if [[ -n $TMP && -d $TMP ]]; then
    unmount_under_tmp
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
      rm -rf --one-file-system "$TMP/data" "$TMP/exec" "$TMP/rootfs" "$TMP/context"
      echo "kept $TMP"
    else
      rm -rf --one-file-system "$TMP"
    fi
  fi
  printf '\nimages: %d passed, %d failed (%ds)\n' "$passed" "$failed" $((SECONDS - STARTED_AT))
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

# The base image Debian publishes as debian:RELEASE-slim is debootstrap's minbase plus what
# debuerreotype does to it; this does the part that matters for what the images hold.
slim_rootfs() { # slim_rootfs DIR RELEASE
  local r=$1 release=$2
  # apt: the sources of Debian's own images (security updates included), and their settings:
  # no package cache kept after an install, no translations.
  rm -f "$r/etc/apt/sources.list"
  cat >"$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $release $release-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $DEBIAN_SECURITY_MIRROR
Suites: $release-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$r/etc/apt/apt.conf.d/docker-no-languages"
  # dpkg: no documentation, manual pages or translations, now or in later installs (what
  # "-slim" means); copyright files stay.
  cat >"$r/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
  find "$r/usr/share/doc" -xdev -mindepth 2 ! -type d ! -name copyright -delete
  find "$r/usr/share/doc" -xdev -mindepth 1 -type d -empty -delete
  rm -rf "$r"/usr/share/{man,info,locale,lintian,linda}/* \
    "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* \
    "$r"/var/cache/debconf/*-old "$r"/var/log/apt/* \
    "$r"/var/log/{bootstrap.log,dpkg.log,alternatives.log}
  # Nothing of this machine in the image: Docker gives each container its own.
  : >"$r/etc/resolv.conf"
  : >"$r/etc/hostname"
}

# wait_healthy CONTAINER SECONDS: until Docker's health status is healthy
wait_healthy() {
  local c=$1 secs=$2 state health
  for _ in $(seq "$secs"); do
    state=$(dk inspect -f '{{.State.Status}}' "$c")
    [[ $state == running ]] || fail "$c is $state (exit code $(dk inspect -f '{{.State.ExitCode}}' "$c")), not running"
    health=$(dk inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c")
    case $health in
      healthy) return 0 ;;
      unhealthy) fail "$c: Docker reports it unhealthy" ;;
      none) fail "$c has no health check (the image's HEALTHCHECK is missing)" ;;
    esac
    sleep 1
  done
  fail "$c not healthy after ${secs}s (status: $health)"
}

# proc_field PID FIELD: a field of /proc/PID/status (Uid, Gid, CapEff, NoNewPrivs, ...)
proc_field() { awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print; exit }' "/proc/$1/status"; }

# The checks every running service container gets: how Docker says it runs, and how the kernel
# says its process runs.
check_confinement() { # check_confinement CONTAINER
  local c=$1 pid
  expect "$(dk inspect -f '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.NetworkMode}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}}' "$c")" \
    "true host [ALL] [no-new-privileges=true]" "$c: Docker: read-only root, host network, capabilities dropped, no-new-privileges"
  pid=$(dk inspect -f '{{.State.Pid}}' "$c")
  expect "$(proc_field "$pid" Uid | awk '{print $1, $2, $3, $4}') / $(proc_field "$pid" Gid | awk '{print $1}')" \
    "10001 10001 10001 10001 / 10001" "$c: its process (pid $pid) runs as uid 10001, gid 10001 (the image's USER)"
  expect "$(proc_field "$pid" CapEff) $(proc_field "$pid" CapPrm) $(proc_field "$pid" CapBnd)" \
    "0000000000000000 0000000000000000 0000000000000000" "$c: no effective, permitted or bounding capabilities"
  expect "$(proc_field "$pid" NoNewPrivs)" 1 "$c: NoNewPrivs is set"
  expect "$(awk '$5 == "/" { split($6, o, ","); print o[1] }' "/proc/$pid/mountinfo")" ro "$c: / is mounted read-only"
  expect "$(readlink "/proc/$pid/ns/net")" "$(readlink /proc/self/ns/net)" "$c: shares the host's network namespace (no bridge)"
  if dk exec "$c" bash -c ': >/var/lib/app/probe-write' 2>/dev/null; then
    fail "$c: could write to /var/lib/app on a read-only root filesystem"
  fi
  pass "$c: writing to its home (/var/lib/app) is refused"
  dk logs "$c" >"$TMP/$c.out" 2>&1
  head -n 1 "$TMP/$c.out" | jq -e 'type == "object"' >/dev/null ||
    fail "$c: its first log line is not JSON (LOG_FORMAT=json): $(head -n 1 "$TMP/$c.out")"
  pass "$c: logs JSON lines (LOG_FORMAT=json from the image)"
}

# =============================================================================================

step "can this machine run a container engine?"
((EUID == 0)) || skip "starting dockerd needs root, and this runs as uid $EUID"
# Root of a user namespace (a rootless sandbox) is not root enough for dockerd.
read -r ns_uid host_uid map_len </proc/self/uid_map
[[ $ns_uid == 0 && $host_uid == 0 && $map_len == 4294967295 ]] ||
  skip "this runs in a user namespace (uid map: $ns_uid $host_uid $map_len), where dockerd cannot start"
for ns in mnt pid net uts ipc; do
  [[ -e /proc/self/ns/$ns ]] || skip "the kernel has no $ns namespaces (/proc/self/ns/$ns)"
done
grep -qw cgroup /proc/filesystems || grep -qw cgroup2 /proc/filesystems ||
  skip "the kernel has no cgroup filesystem"
[[ -n $(ls -A /sys/fs/cgroup 2>/dev/null) ]] || skip "no cgroup hierarchy is mounted at /sys/fs/cgroup"
if ! err=$(unshare --mount --uts --ipc --net --pid --fork true 2>&1); then
  skip "cannot create namespaces here (a sandbox that forbids it?): $err"
fi
pass "root; mount, pid, net, uts and ipc namespaces can be created; cgroups are mounted"

step "tools: cargo, python3, psql; docker.io, debootstrap, curl and jq from Debian's packages if missing"
for tool in cargo python3 psql; do
  command -v "$tool" >/dev/null || fail "$tool is required"
done
missing=()
[[ -x $DOCKERD && -x $DOCKER_CLI ]] || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v curl >/dev/null || missing+=(curl)
command -v jq >/dev/null || missing+=(jq)
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || skip "${missing[*]} missing and no apt-get to install them"
  note "installing ${missing[*]}"
  # The package must not start a system dockerd (with its bridge and iptables rules): services
  # are not started while policy-rc.d says no. This machine may have one already.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    POLICY_RC_MADE=1
  fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if ((POLICY_RC_MADE)); then
    rm -f /usr/sbin/policy-rc.d
    POLICY_RC_MADE=0
  fi
fi
pass "$("$DOCKERD" --version), debootstrap $(dpkg-query -W -f '${Version}' debootstrap), $(jq --version)"

step "PostgreSQL at $PG_HOST:$PG_PORT"
if ! pg_isready -h "$PG_HOST" -p "$PG_PORT" -q 2>/dev/null; then
  if [[ -d /etc/postgresql ]] && command -v pg_ctlcluster >/dev/null; then
    note "not answering; starting the local cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    for _ in $(seq 30); do pg_isready -h "$PG_HOST" -p "$PG_PORT" -q && break; sleep 1; done
  fi
fi
pass "$(psql_admin 'SHOW server_version') answers"

# ---------------------------------------------------------------------------------------------
step "host binaries: cargo build --$PROFILE (what the *-prebuilt targets take)"
started=$SECONDS
if [[ $PROFILE == release ]]; then
  cargo build --release --locked --quiet -p auth-server -p resource-api
else
  cargo build --locked --quiet -p auth-server -p resource-api
fi
BIN=$ROOT/target/$PROFILE
[[ -x $BIN/auth-server && -x $BIN/resource-api ]] || fail "binaries missing in $BIN"
pass "target/$PROFILE/auth-server ($(du -h "$BIN/auth-server" | cut -f1)) and resource-api ($(du -h "$BIN/resource-api" | cut -f1)) in $((SECONDS - started))s"

# ---------------------------------------------------------------------------------------------
# Short paths: containerd's sockets live under the exec root, and a unix socket path has at
# most 107 bytes.
TMP=$(mktemp -d /tmp/images-test.XXXXXX)
chmod 0755 "$TMP"
DOCKER_SOCK=$TMP/docker.sock

step "dockerd of our own: --bridge=none --iptables=false --ip-masq=false, data and sockets in $TMP"
# Its own configuration file (none of /etc/docker/daemon.json), data root, exec root, pid file,
# socket, trust key, parent cgroup and containerd namespace: it shares nothing with a dockerd
# someone else runs. (dockerd starts its own containerd under the exec root unless one already
# runs at /run/containerd; then the namespace keeps its containers apart.)
cat >"$TMP/daemon.json" <<EOF
{ "deprecated-key-path": "$TMP/key.json", "cgroup-parent": "/$RUN_ID" }
EOF
"$DOCKERD" --config-file "$TMP/daemon.json" --data-root "$TMP/data" --exec-root "$TMP/exec" \
  --pidfile "$TMP/dockerd.pid" --host "unix://$DOCKER_SOCK" \
  --bridge=none --iptables=false --ip-masq=false \
  --containerd-namespace "$RUN_ID" --containerd-plugins-namespace "$RUN_ID-plugins" \
  >"$TMP/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 300); do
  kill -0 "$DOCKERD_PID" 2>/dev/null || fail "dockerd exited while starting (see its log below)"
  dk version >/dev/null 2>&1 && break
  sleep 0.1
done
dk version >/dev/null 2>&1 || fail "dockerd did not answer on $DOCKER_SOCK within 30s"
expect "$(cat "$TMP/dockerd.pid")" "$DOCKERD_PID" "dockerd (pid $DOCKERD_PID) answers; its pid file agrees"
note "engine $(dk version -f '{{.Server.Version}}'), storage driver $(dk info -f '{{.Driver}}'), cgroups v$(dk info -f '{{.CgroupVersion}}')"
networks=$(dk network ls --format '{{.Driver}}' | sort | xargs)
expect "$networks" "host null" "its only networks are host and none: no bridge"

# ---------------------------------------------------------------------------------------------
RUNTIME_FROM=$(awk '$1 == "FROM" && tolower($3) == "as" && $4 == "runtime" { print $2 }' deploy/Dockerfile)
DEBIAN_RELEASE=$(sed -n 's/^ARG DEBIAN_RELEASE=//p' deploy/Dockerfile)
# shellcheck disable=SC2016 # the literal text ${DEBIAN_RELEASE} of the FROM line
BASE_IMAGE=${RUNTIME_FROM//'${DEBIAN_RELEASE}'/$DEBIAN_RELEASE}
[[ -n $DEBIAN_RELEASE && $BASE_IMAGE =~ ^[a-z0-9./-]+:[a-z0-9.-]+$ ]] ||
  fail "cannot read the runtime stage's base image from deploy/Dockerfile (FROM $RUNTIME_FROM)"

step "base image $BASE_IMAGE: debootstrap --variant=minbase $DEBIAN_RELEASE, slimmed, docker import"
started=$SECONDS
# dpkg without an fsync per file, as in Debian's own images: halves debootstrap's time here.
mkdir -p "$TMP/rootfs/etc/dpkg/dpkg.cfg.d"
echo force-unsafe-io >"$TMP/rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
debootstrap --variant=minbase "$DEBIAN_RELEASE" "$TMP/rootfs" "$DEBIAN_MIRROR" >"$TMP/debootstrap.log" 2>&1 ||
  fail "debootstrap failed (see its log below)"
note "debootstrap: $((SECONDS - started))s, $(du -sh --one-file-system "$TMP/rootfs" | cut -f1)"
slim_rootfs "$TMP/rootfs" "$DEBIAN_RELEASE"
# The configuration Debian's image has: a PATH (an imported image has no environment), bash.
imported=$SECONDS
tar -C "$TMP/rootfs" --numeric-owner -c . |
  dk import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
IMAGES+=("$BASE_IMAGE")
note "slimmed to $(du -sh --one-file-system "$TMP/rootfs" | cut -f1), imported in $((SECONDS - imported))s"
rm -rf --one-file-system "$TMP/rootfs"
pass "$BASE_IMAGE imported ($(dk image ls --format '{{.Size}}' "$BASE_IMAGE")) in $((SECONDS - started))s"

# ---------------------------------------------------------------------------------------------
step "images: the *-prebuilt targets, from a context holding bin/ and deploy/probe-ready"
mkdir -p "$TMP/context/bin" "$TMP/context/deploy"
cp "$BIN/auth-server" "$BIN/resource-api" "$TMP/context/bin/"
cp deploy/probe-ready "$TMP/context/deploy/"
# build BUILDKIT(0|1) TARGET TAG: builds with the Dockerfile from the repository; the output
# must show neither the rust: image nor the build stage.
build() {
  local buildkit=$1 target=$2 tag=$3 log=$TMP/build-$2.log started=$SECONDS
  local -a progress=()
  ((buildkit == 0)) || progress=(--progress plain)
  DOCKER_BUILDKIT=$buildkit dk build "${progress[@]}" --network host -f deploy/Dockerfile \
    --target "$target" -t "$tag" "$TMP/context" >"$log" 2>&1 ||
    fail "docker build --target $target failed: $(tail -n 5 "$log")"
  IMAGES+=("$tag")
  if grep -nE 'rust:|\[build[] ]|AS build$' "$log"; then
    fail "building $target touched the rust: image or the build stage (above)"
  fi
  pass "$target built in $((SECONDS - started))s ($( ((buildkit)) && echo BuildKit || echo 'classic builder')), without the rust: image or the build stage"
}
build 0 auth-server-prebuilt "$AUTH_IMAGE"
build 1 resource-api-prebuilt "$API_IMAGE"
dk image ls rust >"$TMP/rust-images"
expect "$(tail -n +2 "$TMP/rust-images" | wc -l)" 0 "no rust: image was pulled or made"
for image in "$AUTH_IMAGE" "$API_IMAGE"; do
  expect "$(dk image inspect -f '{{.Config.User}} {{json .Config.Healthcheck.Test}}' "$image")" \
    '10001:10001 ["CMD","probe-ready"]' "$image: USER 10001:10001, HEALTHCHECK probe-ready"
done
for pair in "$AUTH_IMAGE auth-server" "$API_IMAGE resource-api"; do
  read -r image binary <<<"$pair"
  libs=$(dk run --rm --network host --entrypoint ldd "$image" "/usr/local/bin/$binary")
  if grep -F 'not found' <<<"$libs"; then fail "$image: $binary misses libraries (above)"; fi
  pass "$image: every library $binary links resolves ($(grep -oE 'lib(ssl|crypto)\.so\.[0-9]+' <<<"$libs" | sort -u | xargs))"
done
AUTH_SIZE=$(dk image ls --format '{{.Size}}' "$AUTH_IMAGE")
API_SIZE=$(dk image ls --format '{{.Size}}' "$API_IMAGE")
note "sizes (docker image ls): auth-server $AUTH_SIZE, resource-api $API_SIZE, base $(dk image ls --format '{{.Size}}' "$BASE_IMAGE")"

# ---------------------------------------------------------------------------------------------
step "databases, secrets and configuration (as deploy/compose.yaml mounts them)"
for stale in $(psql_admin "SELECT datname FROM pg_database WHERE datname ~ '^images_test_[0-9]+_(auth|players)$'"); do
  pid=${stale#images_test_}
  kill -0 "${pid%%_*}" 2>/dev/null && continue # a run still going
  psql_admin "DROP DATABASE IF EXISTS $stale WITH (FORCE)" >/dev/null
  note "dropped $stale (a run that died)"
done
for db in "${DB_PREFIX}_auth" "${DB_PREFIX}_players"; do
  psql_admin "CREATE DATABASE $db" >/dev/null
  DATABASES+=("$db")
done
pass "created ${DATABASES[*]}"
read -r AUTH_PORT API_PORT <<<"$(free_ports 2)"
ISSUER=http://127.0.0.1:$AUTH_PORT
SECRETS=$TMP/secrets
mkdir -p "$SECRETS"
(
  umask 077
  head -c 32 /dev/urandom | base64 >"$SECRETS/key-encryption-key"
  head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$SECRETS/client-secret"
  printf 'postgres://%s@%s:%s/%s\n' "$PG_USER" "$PG_HOST" "$PG_PORT" "${DB_PREFIX}_auth" >"$SECRETS/auth-database-url"
  printf 'postgres://%s@%s:%s/%s\n' "$PG_USER" "$PG_HOST" "$PG_PORT" "${DB_PREFIX}_players" >"$SECRETS/players-database-url"
)
# Owned by the services' uid and readable by nobody else, as compose's secrets container
# leaves them; mounted read-only.
chown -R 10001:10001 "$SECRETS"
chmod 0500 "$SECRETS"
chmod 0400 "$SECRETS"/*
# The client the auth-server bootstraps, its secret read from a file.
cat >"$TMP/auth-server.toml" <<EOF
[[clients]]
client_id = "$CLIENT_ID"
client_secret_file = "/run/platform-secrets/client-secret"
scopes = ["players:write"]
audiences = ["players-api"]
EOF
chmod 0644 "$TMP/auth-server.toml"
pass "key-encryption key, client secret and database URLs in $SECRETS (uid 10001, 0400); auth-server.toml"

# The settings of deploy/compose.yaml's services, on the host's network.
CONFINED=(--network host --read-only --cap-drop ALL --security-opt no-new-privileges=true
  -v "$SECRETS:/run/platform-secrets:ro")

step "auth-server container on 127.0.0.1:$AUTH_PORT"
AUTH_C=$RUN_ID-auth-server
CONTAINERS+=("$AUTH_C")
dk run -d --name "$AUTH_C" "${CONFINED[@]}" \
  -v "$TMP/auth-server.toml:/etc/auth-server/auth-server.toml:ro" \
  -e AUTH_CONFIG=/etc/auth-server/auth-server.toml \
  -e AUTH_BIND="127.0.0.1:$AUTH_PORT" \
  -e AUTH_ISSUER="$ISSUER" \
  -e AUTH_DATABASE_URL_FILE=/run/platform-secrets/auth-database-url \
  -e AUTH_KEY_ENCRYPTION_KEY_FILE=/run/platform-secrets/key-encryption-key \
  -e AUTH_KEY_REFRESH_SECS=10 \
  -e AUTH_TRUSTED_PROXIES='["127.0.0.1"]' \
  "$AUTH_IMAGE" >/dev/null
started=$SECONDS
wait_healthy "$AUTH_C" 90
pass "$AUTH_C is healthy (Docker's HEALTHCHECK, probe-ready) after $((SECONDS - started))s"
check_confinement "$AUTH_C"
dk exec "$AUTH_C" auth-server clients list >"$TMP/clients" 2>&1 ||
  fail "auth-server clients list in the container: $(cat "$TMP/clients")"
grep -q "$CLIENT_ID" "$TMP/clients" || fail "clients list does not show $CLIENT_ID: $(cat "$TMP/clients")"
pass "docker exec $AUTH_C auth-server clients list: the CLI works in the container and shows $CLIENT_ID"

step "resource-api container on 127.0.0.1:$API_PORT (keys from the auth-server container)"
API_C=$RUN_ID-resource-api
CONTAINERS+=("$API_C")
dk run -d --name "$API_C" "${CONFINED[@]}" \
  -e API_BIND="127.0.0.1:$API_PORT" \
  -e API_ISSUER="$ISSUER" \
  -e API_AUDIENCE=players-api \
  -e API_JWKS_URL="$ISSUER/.well-known/jwks.json" \
  -e API_DATABASE_URL_FILE=/run/platform-secrets/players-database-url \
  "$API_IMAGE" >/dev/null
started=$SECONDS
wait_healthy "$API_C" 90
pass "$API_C is healthy after $((SECONDS - started))s"
check_confinement "$API_C"

# ---------------------------------------------------------------------------------------------
step "a token from the auth-server container, a protected write on the resource-api container"
status=$(curl -sS --max-time 10 -o "$TMP/token.json" -w '%{http_code}' -u "$CLIENT_ID:$(cat "$SECRETS/client-secret")" \
  --data-urlencode grant_type=client_credentials --data-urlencode audience=players-api \
  "$ISSUER/auth/token") || status=000
[[ $status == 200 ]] || fail "POST /auth/token: HTTP $status $(cat "$TMP/token.json")"
TOKEN=$(jq -r .access_token "$TMP/token.json")
pass "POST /auth/token (client_credentials, secret from a file): 200, $(jq -r '.token_type + ", scope " + .scope' "$TMP/token.json")"
body='{"firstName":"Con","lastName":"Tainer","squadNumber":91,"position":"Goalkeeper"}'
status=$(curl -sS --max-time 10 -o "$TMP/players.json" -D "$TMP/players.headers" -w '%{http_code}' \
  -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$API_PORT/players") || status=000
expect "$status" 401 "POST /players without a token: 401"
status=$(curl -sS --max-time 10 -o "$TMP/players.json" -D "$TMP/players.headers" -w '%{http_code}' \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$body" \
  "http://127.0.0.1:$API_PORT/players") || status=000
[[ $status == 201 ]] || fail "POST /players with the token: HTTP $status $(cat "$TMP/players.json")"
location=$(grep -i '^location:' "$TMP/players.headers" | cut -d' ' -f2- | tr -d '\r')
pass "POST /players with the token: 201, Location $location"
status=$(curl -sS --max-time 10 -o "$TMP/player.json" -w '%{http_code}' "http://127.0.0.1:$API_PORT$location") || status=000
expect "$status $(jq -r '.firstName + " " + .lastName' "$TMP/player.json" 2>/dev/null)" "200 Con Tainer" "GET $location: the player is stored (PostgreSQL)"

# ---------------------------------------------------------------------------------------------
step "stop both (SIGTERM, as docker stop and compose down send it), remove everything"
for c in "$API_C" "$AUTH_C"; do
  started=$SECONDS
  dk stop -t 10 "$c" >/dev/null
  expect "$(dk inspect -f '{{.State.ExitCode}}' "$c")" 0 "$c stopped on SIGTERM in $((SECONDS - started))s, exit code 0"
  # Its whole log (kept with KEEP_TMP=1): JSON lines only, no error, warnings shown.
  dk logs "$c" >"$TMP/$c.out" 2>&1
  jq -e . "$TMP/$c.out" >/dev/null 2>&1 || fail "$c logged lines that are not JSON: $(grep -v '^{' "$TMP/$c.out" | head -n 3)"
  errors=$(jq -c 'select(.level == "ERROR")' "$TMP/$c.out")
  [[ -z $errors ]] || fail "$c logged errors: $errors"
  jq -r 'select(.level == "WARN") | "warning: " + (.fields.message // .message // tostring)' "$TMP/$c.out" |
    while read -r line; do note "$line"; done
  pass "$c: $(wc -l <"$TMP/$c.out") log lines, all JSON, no ERROR"
done
dk rm "${CONTAINERS[@]}" >/dev/null
CONTAINERS=()
dk rmi "${IMAGES[@]}" >/dev/null
IMAGES=()
# The classic builder keeps the layers of every stage it built as untagged images, BuildKit
# its cache.
dk image prune -af >/dev/null
dk builder prune -af >/dev/null
expect "$(dk ps -aq | wc -l) $(dk image ls -aq | wc -l)" "0 0" "no container and no image left in our engine"
stop_pid "$DOCKERD_PID" dockerd 30
wait "$DOCKERD_PID" 2>/dev/null || true
kill -0 "$DOCKERD_PID" 2>/dev/null && fail "dockerd (pid $DOCKERD_PID) still runs"
if pid=$(our_containerd); then fail "dockerd's containerd (pid $pid) still runs"; fi
pass "dockerd (pid $DOCKERD_PID) stopped, and the containerd it started"
remove_cgroups
left=$(ls -d /sys/fs/cgroup/*/"$RUN_ID" /sys/fs/cgroup/"$RUN_ID" 2>/dev/null || true)
[[ -z $left ]] || fail "cgroups left behind: $left"
pass "its cgroups (/$RUN_ID) removed"
DOCKERD_PID=
for db in "${DATABASES[@]}"; do
  psql_admin "DROP DATABASE $db WITH (FORCE)" >/dev/null
done
expect "$(psql_admin "SELECT count(*) FROM pg_database WHERE datname LIKE '${DB_PREFIX}_%'")" 0 "dropped ${DATABASES[*]}"
DATABASES=()
printf '\nimage sizes: auth-server %s, resource-api %s (%s binaries)\n' "$AUTH_SIZE" "$API_SIZE" "$PROFILE"
