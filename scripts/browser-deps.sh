#!/usr/bin/env bash
# Installs what the browser tests (tests/browser, run by tests/tests/browser.rs)
# need: Debian's Chromium, Node.js, and Playwright's driver (playwright-core,
# pinned in tests/browser/package-lock.json) from the npm registry. No browser
# is downloaded: Playwright drives /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (Debian packages) for the browser tests" >&2
    as_root=()
    [ "$(id -u)" = 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)
