#!/usr/bin/env bash
# The main job: build the spiffe-authz .wasm, load it in host-sim with the demo plugin
# configuration, replay the demo traffic and print every decision.
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add wasm32-wasip1 >/dev/null
cargo build --quiet -p spiffe-authz --target wasm32-wasip1 --profile wasm-release
cargo build --quiet --release -p host-sim
exec target/release/host-sim run \
  --wasm target/wasm32-wasip1/wasm-release/spiffe_authz.wasm \
  --config envoy-configs/demo/plugin-config.yaml \
  --node envoy-configs/demo/node.json \
  --requests envoy-configs/demo/traffic.jsonl "$@"
