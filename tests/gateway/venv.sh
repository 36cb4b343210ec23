# shellcheck shell=bash
# Sourced by the validation scripts: `ensure_venv` makes $VENV hold exactly requirements.txt
# (rebuilt when that file changes). The venv lives under target/, which git ignores.
VENV=${GATEWAY_TEST_VENV:-target/gateway-test-venv}

ensure_venv() {
  local requirements=tests/gateway/requirements.txt want
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [[ ! -x $VENV/bin/python || $(cat "$VENV/.requirements.sha256" 2>/dev/null) != "$want" ]]; then
    echo "    installing tests/gateway/requirements.txt into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
    "$VENV/bin/pip" check --disable-pip-version-check >/dev/null
    echo "$want" >"$VENV/.requirements.sha256"
  fi
}
