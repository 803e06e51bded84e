#!/usr/bin/env bash
# The filter's own unit and integration tests, compiled to wasm32-wasip1 (32-bit, WASI, panic=abort:
# what Envoy loads) and run by `host-sim wasi-run` as cargo's runner, so no 32-bit or WASI
# difference hides behind native-only tests. identity_demo_pki is compiled out there: it writes
# files, and wasi-run gives a module no file system.
set -euo pipefail
cd "$(dirname "$0")/.."
# The identity tests make certificates with rcgen, whose ring compiles C for the wasm target
# with clang (gcc has no wasm backend).
if ! command -v clang >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
  else
    echo "wasm-unit-tests: clang is required (ring builds C for wasm32-wasip1); install it" >&2
    exit 1
  fi
fi
cargo build -p host-sim
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export CARGO_TARGET_WASM32_WASIP1_RUNNER="$target_dir/debug/host-sim wasi-run"
# Under panic=abort a failing test ends the process before libtest prints what it captured,
# so let the panic message reach stderr as it happens.
export RUST_TEST_NOCAPTURE=1
cargo test -p spiffe-authz --target wasm32-wasip1 --tests --lib
