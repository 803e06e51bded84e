#!/usr/bin/env bash
# Runs every test of spiffe-authz on a fresh machine: installs the wasm target, builds the
# .wasm users deploy, then runs unit, property and integration tests (the latter load that
# .wasm in host-sim).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1
cargo build -p spiffe-authz --target wasm32-wasip1 --profile wasm-release
cargo test --workspace
