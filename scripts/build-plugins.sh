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
    name=${name//_/-}
    # Only this workspace's plugins: a crate built elsewhere into the same
    # target folder (tests share it with scaffolded crates) is not one.
    [ -d "plugins/$name" ] || continue
    cp "$built" "plugins/dist/$name.wasm"
done
ls -l plugins/dist
