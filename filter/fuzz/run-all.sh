#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) on its kept corpus, then minimizes each
# corpus (cmin, as a set-cover merge) so only inputs that add coverage stay in git. Needs nightly and cargo-fuzz.
# Not part of CI: a useful run takes minutes per target. Long form:
#   filter/fuzz/run-all.sh 600
# A crash stops the script with the target's artifact under filter/fuzz/artifacts/<target>/;
# keep the minimized input in filter/fuzz/regressions/<target>/.
set -euo pipefail

seconds="${1:-60}"
targets=(spiffe_id xfcc svid plugin_config config_json request_path decide)
# Safe Rust needs no AddressSanitizer; debug assertions catch integer overflow.
sanitizer="${FUZZ_SANITIZER:-none}"
cd "$(dirname "$0")/.."

for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  echo "== $target: ${seconds}s on $(find "$corpus" -type f | wc -l) inputs"
  # Replay the kept regressions first: each once fixed must stay fixed.
  if [ -d "fuzz/regressions/$target" ]; then
    cargo +nightly fuzz run -s "$sanitizer" -a "$target" "fuzz/regressions/$target" -- -runs=0
  fi
  cargo +nightly fuzz run -s "$sanitizer" -a "$target" "$corpus" -- \
    -max_total_time="$seconds" -print_final_stats=1 2>&1 |
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|Done )' || true
  # grep hides the fuzzer's own exit status: a crash leaves an artifact, so fail on that.
  if compgen -G "fuzz/artifacts/$target/crash-*" >/dev/null; then
    echo "== $target: crash, see fuzz/artifacts/$target/" >&2
    exit 1
  fi
  # Set-cover merge keeps the same features in fewer, smaller inputs than `cargo fuzz cmin`
  # (its plain -merge=1), so the corpus stays small enough to keep in git.
  minimized="$(mktemp -d)"
  cargo +nightly fuzz run -s "$sanitizer" -a "$target" "$minimized" "$corpus" -- -set_cover_merge=1 2>&1 |
    grep -E 'MERGE-OUTER: [0-9]+ new files' || true
  if [ -n "$(ls -A "$minimized")" ]; then
    find "$corpus" -type f -delete
    cp "$minimized"/* "$corpus"/
  fi
  rm -rf "$minimized"
  echo "== $target: $(find "$corpus" -type f | wc -l) inputs, $(find "$corpus" -type f -exec cat {} + | wc -c) bytes after cmin"
done
