#!/usr/bin/env bash
# Runs hoard offline: embedded sled storage in data/, Hokm and Pig loaded, listening
# on 127.0.0.1:7878. Extra arguments go to `hoard serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh >/dev/null
exec cargo run --release -p hoard -- serve --config configs/offline.toml "$@"
