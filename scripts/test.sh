#!/usr/bin/env bash
# Builds the plugins and installs the browser tests' Chromium and Playwright
# and the API tests' schemathesis (scripts/test-deps.sh),
# then runs every test: unit tests, the plugins' own rule
# tests and the guest SDK's, and the integration tests in tests/ (real host on port 0, real
# compiled plugins, real storage; the browser client in headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh
scripts/test-deps.sh
cargo test --manifest-path plugins/Cargo.toml -p hokm -p tabletop -p roguelike -p starter -p hoard-sdk
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --no-fail-fast
fi
