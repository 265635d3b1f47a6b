#!/usr/bin/env bash
# Builds the web page into dist/ with Trunk (release wasm, wasm-opt -Oz; offline once the
# crates are fetched) and serves it on http://127.0.0.1:8080 (a secure context, so
# WebGPU is allowed). `--build-only` stops after the build.
#
# Installs what a fresh machine lacks: the wasm32 target, wasm-bindgen-cli matching
# Cargo.lock, trunk, and web/'s npm packages (binaryen 132's wasm-opt; Debian's
# binaryen breaks the page).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
if ! wasm-bindgen --version 2>/dev/null | grep -q '0.2.130'; then
  # Without --locked: its lockfile names a crate version the registry lacks.
  cargo install wasm-bindgen-cli --version 0.2.130
fi
if ! trunk --version 2>/dev/null | grep -q '0.21.14'; then
  # 0.22 needs a newer rustc. A debug build of the tool installs in a third of the time.
  cargo install trunk --version 0.21.14 --locked --debug
fi
if [ ! -x web/node_modules/.bin/wasm-opt ]; then
  (cd web && npm ci --no-audit --no-fund)
fi
export PATH="$PWD/web/node_modules/.bin:$PATH"

cargo fetch --quiet
trunk build --release
wasm=$(ls dist/*.wasm)
echo "built dist/: $(du -h "$wasm" | cut -f1) wasm, $(gzip -9 -c "$wasm" | wc -c) bytes gzipped"
[ "${1:-}" = "--build-only" ] && exit 0
echo "serving on http://127.0.0.1:8080 (Ctrl+C stops)"
cd dist && exec python3 -m http.server 8080 --bind 127.0.0.1
