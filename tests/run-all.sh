#!/usr/bin/env bash
# Runs every test of spiffe-authz on a fresh machine: installs the wasm target, builds the
# .wasm users deploy and the proxy-wasm fixture modules host-sim's conformance tests load, then
# runs unit, property and integration tests (the latter load those .wasm files in host-sim).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1
cargo build -p spiffe-authz --target wasm32-wasip1 --profile wasm-release
# The fixtures are their own cargo workspace; their output path is fixed so tests find them.
(cd tests/fixtures && cargo build --release --target wasm32-wasip1 --target-dir target)
cargo test --workspace --no-fail-fast
# The engine/reference differential at its CI size, 1,000,000 pairs: about 20 s in release on
# two busy cores, several minutes in debug (where `cargo test` runs 100,000).
cargo test --release -p spiffe-authz --test engine_differential
# The filter's own tests again, compiled to wasm32-wasip1 (32-bit, WASI, panic=abort: what
# Envoy loads) and run by host-sim wasi-run as cargo's runner.
bash tests/wasm-unit-tests.sh
# The OCI packaging against a real registry on loopback (installs docker-registry and skopeo
# from Debian's packages when missing; skips with a message only if that is impossible).
bash tests/oci-registry.sh
SERVE_LOAD_PROFILE=debug bash tests/serve-load.sh  # host-sim serve under wrk on loopback: load ratios and a 20k-request soak with reloads (quick form)
