#!/usr/bin/env bash
# Issue 15: "the axum support adds no poem dependency to an axum user's build". Fails if
# poem (or poem-openapi) is anywhere in the normal dependency tree of the example axum API,
# or of token-verifier built with only its `axum` feature. `make lint` runs it, so CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}

check() { # a label, then the cargo tree arguments
  local label=$1
  shift
  local crates
  crates=$("$CARGO" tree -e normal --prefix none --format '{p}' "$@")
  if ! grep -q '^token-verifier ' <<<"$crates"; then
    echo "FAIL: $label: token-verifier is not in the tree; the check would prove nothing" >&2
    exit 1
  fi
  if grep -q '^poem' <<<"$crates"; then
    echo "FAIL: $label pulls in poem:" >&2
    "$CARGO" tree -e normal -i poem "$@" >&2 || true
    exit 1
  fi
  echo "ok: $label: $(sort -u <<<"$crates" | wc -l) crates, no poem"
}

check "axum-api (the example axum API)" -p axum-api
check "token-verifier with --no-default-features --features axum,test-issuer" \
  -p token-verifier --no-default-features --features axum,test-issuer
