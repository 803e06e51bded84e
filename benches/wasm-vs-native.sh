#!/usr/bin/env bash
# The engine alone, natively and in wasm32-wasip1 under host-sim's wasmtime, on the same
# policies and requests (benches/bin/decide_speed.rs); prints a Markdown table with the
# ratio per point and the geometric mean. Figures go to BENCHMARKS.md "Plugin".
#
# Usage: bash benches/wasm-vs-native.sh [cargo profile for the wasm build, default release]
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-release}"
target="${CARGO_TARGET_DIR:-target}"

cargo build --quiet --release -p benches --bin decide-speed
cargo build --quiet --profile "$profile" -p benches --bin decide-speed --target wasm32-wasip1
cargo build --quiet --release -p host-sim

native=$(mktemp)
wasm=$(mktemp)
trap 'rm -f "$native" "$wasm"' EXIT
"$target/release/decide-speed" >"$native"
"$target/release/host-sim" wasi-run "$target/wasm32-wasip1/$profile/decide-speed.wasm" >"$wasm"

echo "| shape | request | rules | native ns | wasm ns | wasm/native |"
echo "|---|---|---:|---:|---:|---:|"
paste "$native" "$wasm" | awk -F'\t' '
  $1 != $5 || $2 != $6 || $3 != $7 { print "mismatched lines: " $0 > "/dev/stderr"; exit 1 }
  { r = $8 / $4; s += log(r); n++
    printf "| %s | %s | %s | %d | %d | %.2f |\n", $1, $2, $3, $4, $8, r }
  END { printf "\ngeometric mean wasm/native over %d points: %.2f\n", n, exp(s / n) }'
