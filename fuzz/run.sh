#!/usr/bin/env bash
# The fuzzing leg (make test-fuzz): builds the cargo-fuzz targets in fuzz/ and runs each for
# FUZZ_SECONDS (default 60) from its committed corpus (fuzz/corpus/<target>/). Fails on the
# first crash, leak, timeout or out-of-memory, leaving the input in fuzz/artifacts/<target>/
# (replay: RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>).
#
# Toolchain: libFuzzer's instrumentation needs -Z flags, and only a stable toolchain is here;
# RUSTC_BOOTSTRAP=1 lets stable rustc accept them (for this build only; nothing else in the
# project uses unstable features). cargo-fuzz is installed from crates.io into
# target/tools/bin when it is not on the PATH.
#
#   bash fuzz/run.sh                    all targets
#   FUZZ_SECONDS=600 bash fuzz/run.sh jwks
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
CARGO_FUZZ_VERSION=0.13.2
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(token_request jws_checks jwks)
export RUSTC_BOOTSTRAP=1

passed=0
failed=0
summary=()
finish() {
  local status=$?
  ((status != 0 && failed == 0)) && failed=1
  echo
  printf '%s\n' "${summary[@]}"
  printf '\n%d passed, %d failed\n' "$passed" "$failed"
}
trap finish EXIT

if ! command -v cargo-fuzz >/dev/null; then
  export PATH=$ROOT/target/tools/bin:$PATH
  if ! command -v cargo-fuzz >/dev/null; then
    echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION into target/tools"
    cargo install --quiet --locked --root "$ROOT/target/tools" "cargo-fuzz@$CARGO_FUZZ_VERSION"
  fi
fi
echo "==> $(cargo fuzz --version), $(rustc --version)"

# A dev build without a sanitizer: our crates forbid `unsafe`, so AddressSanitizer adds little,
# and an optimised, sanitized build of every dependency takes ~10 min of two cores (vs ~3).
# Debug assertions and overflow checks stay on. FUZZ_BUILD="" gives the release+ASan build.
read -r -a BUILD_FLAGS <<<"${FUZZ_BUILD---dev -s none}"
echo "==> build (${BUILD_FLAGS[*]:-release, AddressSanitizer}, libFuzzer)"
start=$(date +%s)
mkdir -p fuzz/corpus-run
# The build's output goes to a log; a failure shows its errors (cargo-fuzz's own message says
# only that the build failed) and is retried once, from where it stopped: a compiler killed
# by a busy machine is not a finding. A second failure fails the leg.
build_log=fuzz/corpus-run/build.log
for attempt in 1 2; do
  if cargo fuzz build "${BUILD_FLAGS[@]}" >"$build_log" 2>&1; then
    break
  fi
  echo "    build attempt $attempt failed; its errors, then its last lines:"
  { grep -E -A12 '^(error|warning: .*(signal|SIGKILL))' "$build_log" || true; } | head -n 80 |
    sed 's/^/      /' || true
  tail -n 15 "$build_log" | sed 's/^/      /'
  ((attempt == 1)) || exit 1
done
echo "    built in $(($(date +%s) - start)) s"

for target in "${TARGETS[@]}"; do
  echo "==> $target: ${SECONDS_PER_TARGET} s from fuzz/corpus/$target ($(ls "fuzz/corpus/$target" | wc -l) seeds)"
  # libFuzzer writes what it finds into the first corpus directory: a scratch copy, so the
  # committed seeds stay as they are.
  rm -rf "fuzz/corpus-run/$target"
  mkdir -p "fuzz/corpus-run/$target"
  log=fuzz/corpus-run/$target.log
  if cargo fuzz run "${BUILD_FLAGS[@]}" "$target" "fuzz/corpus-run/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1; then
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)
    passed=$((passed + 1))
    summary+=("ok    $target: ${runs:-?} runs in ${SECONDS_PER_TARGET} s, ${cov:-cov: ?}, 0 crashes")
    echo "    ${summary[-1]}"
  else
    failed=$((failed + 1))
    tail -n 40 "$log"
    summary+=("FAIL  $target: crashed; the input is in fuzz/artifacts/$target/")
    echo "    ${summary[-1]}"
  fi
done
((failed == 0))
