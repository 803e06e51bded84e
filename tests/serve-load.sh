#!/usr/bin/env bash
# Load and soak through `host-sim serve` on loopback, with wrk (Debian's package).
#
# Load: one demo upstream; two `serve` listeners with identical settings (plaintext HTTP, same
# worker count), one running the pass-through fixture and one spiffe-authz with a small policy
# set that allows the request; each gets the same wrk run, one after the other, in this run.
# Prints requests/s, p50 and p99 and the spiffe-authz/pass-through ratios; then a TLS run
# (server TLS, client certificate optional: wrk cannot present client certificates) of
# spiffe-authz. Fails on any non-2xx answer or socket error.
#
# Soak: spiffe-authz under wrk (keep-alive rounds and new-connection rounds) until
# SERVE_SOAK_REQUESTS requests were served, with config reloads during the run; samples
# process RSS and every VM's linear memory from /stats after the warm-up round and at the end;
# fails on a lost request (non-2xx, socket error), on any VM memory growth after warm-up, or
# on RSS growth over 64 MiB.
#
# Quick form (CI, tests/run-all.sh): SERVE_LOAD_SECONDS=5, SERVE_SOAK_REQUESTS=20000, and
# SERVE_LOAD_PROFILE=debug there (the dev build cargo test already made; its dependencies are
# optimised, host-sim itself is not, so its figures are lower). Long form, for BENCHMARKS.md:
#   SERVE_LOAD_SECONDS=30 SERVE_SOAK_REQUESTS=1000000 bash tests/serve-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${SERVE_LOAD_SECONDS:-5}
SOAK=${SERVE_SOAK_REQUESTS:-20000}
CONNECTIONS=${SERVE_LOAD_CONNECTIONS:-16}
WORKERS=${SERVE_WORKERS:-2}

if ! command -v wrk >/dev/null; then
  echo "serve-load: installing wrk from Debian's packages"
  (apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }) \
    || { echo "serve-load: wrk is not available; cannot run"; exit 1; }
fi

target=${CARGO_TARGET_DIR:-target}
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
cargo build --quiet -p spiffe-authz --target wasm32-wasip1 --profile wasm-release
(cd tests/fixtures && cargo build --quiet --release --target wasm32-wasip1 --target-dir target)
PROFILE=${SERVE_LOAD_PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --quiet --release -p host-sim
  hs="$target/release/host-sim"
else
  cargo build --quiet -p host-sim
  hs="$target/debug/host-sim"
fi
authz="$target/wasm32-wasip1/wasm-release/spiffe_authz.wasm"
floor=tests/fixtures/target/wasm32-wasip1/release/pass_through.wasm

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# A free loopback port (the kernel picks; tiny race, acceptable for a test script).
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cat > "$work/authz.yaml" <<'YAML'
workload: {namespace: demo, labels: {app: backend}}
mtlsMode: PERMISSIVE
policies:
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: deny-debug, namespace: demo}
  spec:
    action: DENY
    rules: [{to: [{operation: {paths: ["/debug/*"]}}]}]
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: deny-quarantine, namespace: istio-system}
  spec:
    action: DENY
    rules: [{from: [{source: {ipBlocks: ["203.0.113.0/24"]}}]}]
- apiVersion: security.istio.io/v1
  kind: AuthorizationPolicy
  metadata: {name: allow-api-reads, namespace: demo}
  spec:
    selector: {matchLabels: {app: backend}}
    action: ALLOW
    rules: [{to: [{operation: {methods: ["GET", "HEAD"], paths: ["/api/*", "/healthz"]}}]}]
YAML
echo '{}' > "$work/empty.json"

up=$(port)
"$hs" upstream --listen "127.0.0.1:$up" 2>/dev/null & pids+=($!)

start_serve() { # name wasm config port admin [tls args...]
  local name=$1 wasm=$2 config=$3 listen=$4 admin=$5; shift 5
  "$hs" serve --wasm "$wasm" --config "$config" --listen "127.0.0.1:$listen" \
    --upstream "127.0.0.1:$up" --workers "$WORKERS" --admin "127.0.0.1:$admin" --quiet "$@" \
    2>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$admin/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "serve-load: $name did not start:"; cat "$work/$name.log"; exit 1
}

fp=$(port); fa=$(port); ap=$(port); aa=$(port); tp=$(port); ta=$(port)
start_serve floor "$floor" "$work/empty.json" "$fp" "$fa"
start_serve authz "$authz" "$work/authz.yaml" "$ap" "$aa"
"$hs" certs --out "$work/pki" >/dev/null
"$hs" serve-cert --ca-dir "$work/pki/cluster1" --out "$work/pki/serve" \
  --spiffe-id spiffe://cluster.local/ns/demo/sa/backend >/dev/null
start_serve authz-tls "$authz" "$work/authz.yaml" "$tp" "$ta" \
  --tls-cert "$work/pki/serve/cert-chain.pem" --tls-key "$work/pki/serve/key.pem" \
  --client-ca "$work/pki/root-cert.pem" --client-certificate optional

# wrk's report -> $work/res-LABEL "rps p50_ms p99_ms total"; fails on non-2xx or socket errors.
run_wrk() { # label url seconds [wrk args...]
  local label=$1 url=$2 secs=$3; shift 3
  local out="$work/wrk-$label.txt"
  wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --timeout 10s --latency "$@" "$url" >"$out" 2>&1
  if grep -qE 'Non-2xx|Socket errors' "$out"; then
    echo "serve-load: $label: errors under load:"; cat "$out"; exit 1
  fi
  python3 - "$out" >"$work/res-$label" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(\w+)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {total}")
PY
}

echo "serve-load: wrk -t1 -c$CONNECTIONS -d${SECONDS_EACH}s, $WORKERS workers, $(nproc) cores, host-sim $PROFILE build"
run_wrk floor "http://127.0.0.1:$fp/api/items" "$SECONDS_EACH"
run_wrk authz "http://127.0.0.1:$ap/api/items" "$SECONDS_EACH"
run_wrk authz-tls "https://localhost:$tp/api/items" "$SECONDS_EACH"
read -r f_rps f_p50 f_p99 f_n < "$work/res-floor"
read -r a_rps a_p50 a_p99 a_n < "$work/res-authz"
read -r t_rps t_p50 t_p99 t_n < "$work/res-authz-tls"
python3 - "$f_rps" "$f_p50" "$f_p99" "$a_rps" "$a_p50" "$a_p99" "$t_rps" "$t_p50" "$t_p99" <<'PY'
import sys
f_rps, f50, f99, a_rps, a50, a99, t_rps, t50, t99 = map(float, sys.argv[1:])
print(f"| module | requests/s | p50 ms | p99 ms |")
print(f"|---|---|---|---|")
print(f"| pass-through (floor), plaintext | {f_rps:.0f} | {f50:.3f} | {f99:.3f} |")
print(f"| spiffe-authz, plaintext | {a_rps:.0f} | {a50:.3f} | {a99:.3f} |")
print(f"| spiffe-authz, TLS (no client cert) | {t_rps:.0f} | {t50:.3f} | {t99:.3f} |")
print(f"| ratio spiffe-authz / floor (plaintext) | {a_rps/f_rps:.3f} | {a50/f50:.3f} | {a99/f99:.3f} |")
PY
# Mutual TLS under load needs a client that presents a certificate: oha does (`cargo install
# oha`), wrk does not. Same pair as above, both listeners requiring a client certificate, and
# spiffe-authz's ALLOW rule also requiring the frontend's principal.
if command -v oha >/dev/null; then
  sed 's|rules: \[{to: \[{operation: {methods|rules: [{from: [{source: {principals: ["cluster.local/ns/demo/sa/frontend"]}}], to: [{operation: {methods|' \
    "$work/authz.yaml" > "$work/authz-mtls.yaml"
  grep -q principals "$work/authz-mtls.yaml"
  mtls=(--tls-cert "$work/pki/serve/cert-chain.pem" --tls-key "$work/pki/serve/key.pem"
        --client-ca "$work/pki/root-cert.pem" --client-certificate required)
  mfp=$(port); mfa=$(port); map=$(port); maa=$(port)
  start_serve floor-mtls "$floor" "$work/empty.json" "$mfp" "$mfa" "${mtls[@]}"
  start_serve authz-mtls "$authz" "$work/authz-mtls.yaml" "$map" "$maa" "${mtls[@]}"
  run_oha() { # label url
    oha -z "${SECONDS_EACH}s" -c "$CONNECTIONS" --no-tui --output-format json \
      --cacert "$work/pki/root-cert.pem" --cert "$work/pki/workloads/demo.frontend/cert-chain.pem" \
      --key "$work/pki/workloads/demo.frontend/key.pem" "$2" > "$work/oha-$1.json"
    python3 - "$work/oha-$1.json" > "$work/res-$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
codes = r.get("statusCodeDistribution", {})
# oha counts the requests still in flight when -z ends as errors; they are not failures.
errors = {k: v for k, v in r.get("errorDistribution", {}).items() if k != "aborted due to deadline"}
if errors or set(codes) - {"200"}:
    sys.exit(f"errors under load: codes {codes}, errors {errors}")
m = r["metrics"]
print(f'{m["requests_per_sec"]:.0f} {m["latency_ms"]["p50"]:.3f} {m["latency_ms"]["p99"]:.3f}')
PY
  }
  run_oha floor-mtls "https://localhost:$mfp/api/items"
  run_oha authz-mtls "https://localhost:$map/api/items"
  read -r mf_rps mf_p50 mf_p99 < "$work/res-floor-mtls"
  read -r ma_rps ma_p50 ma_p99 < "$work/res-authz-mtls"
  echo "mTLS (oha -c$CONNECTIONS -z${SECONDS_EACH}s, client certificate required, demo/frontend):"
  python3 - "$mf_rps" "$mf_p50" "$mf_p99" "$ma_rps" "$ma_p50" "$ma_p99" <<'PY'
import sys
f, f50, f99, a, a50, a99 = map(float, sys.argv[1:])
print(f"| pass-through (floor), mTLS | {f:.0f} | {f50:.3f} | {f99:.3f} |")
print(f"| spiffe-authz (principals), mTLS | {a:.0f} | {a50:.3f} | {a99:.3f} |")
print(f"| ratio spiffe-authz / floor (mTLS) | {a/f:.3f} | {a50/f50:.3f} | {a99/f99:.3f} |")
PY
  [ "$(curl -s "http://127.0.0.1:$maa/stats" | awk -F': ' '$1=="spiffe_authz.rbac.denied"{print $2}')" = 0 ] \
    || { echo "serve-load: mTLS requests were denied"; exit 1; }
else
  echo "serve-load: oha not installed: no mTLS figure (wrk cannot present a client certificate)"
fi

errors=$(curl -s "http://127.0.0.1:$aa/stats" | awk -F': ' '$1=="host_sim.serve.upstream_rq_failed"{print $2}')
[ "$errors" = "0" ] || { echo "serve-load: upstream failures: $errors"; exit 1; }

# ---- soak ----
stat() { curl -s "http://127.0.0.1:$aa/stats" | awk -F': ' -v k="$1" '$1==k{print $2}'; }
vm_memory() { curl -s "http://127.0.0.1:$aa/stats" | awk -F': ' '$1 ~ /^host_sim\.vm\..*linear_memory_bytes$/{printf "%s ", $2}'; }
echo "serve-load: soak to $SOAK more requests (keep-alive and new connections, reloads mid-run)"
# Warm-up: what the measured part does, once. Wasm memory never shrinks; the plugin's
# per-connection cache (1,024 entries per configuration) fills over new connections and a
# reload briefly holds two configurations, so "flat" is measured after each has happened.
# New connections are counted, not timed, so a slow machine fills the caches too.
fill_connection_caches() {
  local from; from=$(stat host_sim.serve.downstream_cx_total)
  while [ $(( $(stat host_sim.serve.downstream_cx_total) - from )) -lt $((3 * 1024 * WORKERS)) ]; do
    run_wrk soak-warmup-close "http://127.0.0.1:$ap/api/items" 1 -H "Connection: close"
  done
}
run_wrk soak-warmup "http://127.0.0.1:$ap/api/items" 2
fill_connection_caches
curl -sf -X POST "http://127.0.0.1:$aa/reload" >/dev/null
fill_connection_caches
rss0=$(stat host_sim.process.rss_bytes); vm0=$(vm_memory)
start_total=$(stat host_sim.serve.downstream_rq_total)
target_total=$((start_total + SOAK))
round=0
while [ $round -eq 0 ] || [ "$(stat host_sim.serve.downstream_rq_total)" -lt "$target_total" ]; do
  round=$((round + 1))
  if [ $round -eq 1 ]; then
    # Reloads while the first round runs: no request may fail across them.
    ( sleep 0.5; for _ in 1 2 3; do
        curl -sf -X POST "http://127.0.0.1:$aa/reload" >/dev/null || echo "serve-load: reload failed" >&2
        sleep 0.3
      done ) &
    reloader=$!
  fi
  run_wrk "soak-ka-$round" "http://127.0.0.1:$ap/api/items" 3
  run_wrk "soak-close-$round" "http://127.0.0.1:$ap/api/items" 1 -H "Connection: close"
done
wait "$reloader"
rss1=$(stat host_sim.process.rss_bytes); vm1=$(vm_memory)
served=$(( $(stat host_sim.serve.downstream_rq_total) - start_total ))
reloads=$(stat host_sim.serve.reload_ok)
echo "serve-load: soak served $served requests in $round rounds, $reloads reloads, 0 errors"
echo "serve-load: RSS after warm-up $rss0 B, at end $rss1 B; VM linear memory after warm-up [$vm0], at end [$vm1]"
[ "$reloads" -ge 4 ] || { echo "serve-load: expected 4 reloads, got $reloads"; exit 1; }
[ "$vm0" = "$vm1" ] || { echo "serve-load: VM linear memory grew after warm-up"; exit 1; }
[ $((rss1 - rss0)) -le $((64 * 1024 * 1024)) ] || { echo "serve-load: RSS grew by more than 64 MiB"; exit 1; }
echo "serve-load: 2 passed, 0 failed"
