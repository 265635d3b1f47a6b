#!/usr/bin/env bash
# Sets up a fresh machine for the tests, then runs all of them: formatting, clippy
# (native and wasm32), and the test suite in release mode (the learning tests train
# real models).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -q wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

# Software Vulkan (Mesa's lavapipe) for the GPU tests: a real adapter without a GPU.
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq mesa-vulkan-drivers >/dev/null
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

echo "== cargo fmt --check"
cargo fmt --check
echo "== clippy (native)"
cargo clippy --release --all-targets -- -D warnings
echo "== clippy (wasm32 library and web entry)"
cargo clippy --release --lib --bins --target wasm32-unknown-unknown -- -D warnings
echo "== cargo test --release"
cargo test --release

echo "== the web page in headless Chromium (WebGPU on SwiftShader, and WebGL2)"
bash scripts/web.sh --build-only
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
node web/tests/page.mjs dist target/web-shots
