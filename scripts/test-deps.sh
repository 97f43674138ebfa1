#!/usr/bin/env bash
# Installs what the browser and API-description tests need:
# - Debian's Chromium and Node.js, and Playwright's driver (playwright-core,
#   pinned in tests/browser/package-lock.json) from the npm registry, for
#   tests/browser (run by tests/tests/browser.rs). No browser is downloaded:
#   Playwright drives /usr/bin/chromium.
# - schemathesis (pinned), from PyPI, in a virtualenv at target/test-venv,
#   for tests/tests/openapi.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
SCHEMATHESIS=4.32.5
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (Debian packages) for the browser and API tests" >&2
    as_root=()
    [ "$(id -u)" = 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)
venv=target/test-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS"
fi
