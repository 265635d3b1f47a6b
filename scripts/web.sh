#!/usr/bin/env bash
# Builds the web page into dist/ (release wasm + wasm-bindgen, offline once the crates
# are fetched) and serves it on http://127.0.0.1:8080 (a secure context, so WebGPU is
# allowed). `--build-only` stops after the build.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# The CLI must match the wasm-bindgen version in Cargo.lock.
if ! wasm-bindgen --version 2>/dev/null | grep -q '0.2.130'; then
  cargo install wasm-bindgen-cli --version 0.2.130
fi
cargo build --release --target wasm32-unknown-unknown --bin flow-playground
rm -rf dist && mkdir -p dist
wasm-bindgen --target web --no-typescript --out-dir dist \
  target/wasm32-unknown-unknown/release/flow-playground.wasm
sed -e '/data-trunk/d' \
    -e 's#</body>#  <script type="module">import init from "./flow-playground.js"; init();</script>\n</body>#' \
    index.html > dist/index.html
echo "built dist/ ($(du -h dist/flow-playground_bg.wasm | cut -f1) wasm, $(gzip -9 -c dist/flow-playground_bg.wasm | wc -c) bytes gzipped)"
[ "${1:-}" = "--build-only" ] && exit 0
echo "serving on http://127.0.0.1:8080"
cd dist && exec python3 -m http.server 8080 --bind 127.0.0.1
