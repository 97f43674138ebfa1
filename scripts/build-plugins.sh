#!/usr/bin/env bash
# Builds every plugin under plugins/ into a WASM component in plugins/dist/.
# Installs the wasm32-wasip2 target first if this machine lacks it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml
mkdir -p plugins/dist
for built in plugins/target/wasm32-wasip2/release/*.wasm; do
    name=$(basename "$built" .wasm)
    cp "$built" "plugins/dist/${name//_/-}.wasm"
done
ls -l plugins/dist
