#!/usr/bin/env bash
# Builds and runs Flow Playground natively; arguments go to the program
# (e.g. `bash scripts/run.sh train --dataset checkerboard`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --quiet -- "$@"
