#!/usr/bin/env bash
# OCI round trip through a real registry on loopback: package the .wasm in both image formats
# Istio accepts (`host-sim oci`), push each with skopeo to Debian's docker-registry, check the
# registry reports the manifest digest we printed (the WasmPlugin `sha256`), pull it back and
# extract the module the way Istio's agent does, byte-for-byte equal to the built .wasm.
#
# Needs: docker-registry and skopeo (installed here from Debian's packages when missing).
# Skips with a clear message only when they cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM=${SPIFFE_AUTHZ_WASM:-${CARGO_TARGET_DIR:-target}/wasm32-wasip1/wasm-release/spiffe_authz.wasm}
TAG=0.1.0

ensure() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get install -y -qq "$pkg" || { apt-get update -qq && apt-get install -y -qq "$pkg"; }) >/dev/null 2>&1 || true
  fi
  command -v "$cmd" >/dev/null 2>&1
}
if ! ensure docker-registry docker-registry || ! ensure skopeo skopeo; then
  echo "SKIP oci-registry: docker-registry or skopeo is not installed and could not be installed"
  exit 0
fi
[ -f "$WASM" ] || { echo "oci-registry: $WASM not found: build it first (tests/run-all.sh does)" >&2; exit 1; }

cargo build --quiet -p host-sim
HOST_SIM=${CARGO_TARGET_DIR:-target}/debug/host-sim

work=$(mktemp -d)
registry_pid=
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.2
done

"$HOST_SIM" oci --wasm "$WASM" --out "$work/layout" --tag "$TAG" | tee "$work/oci.txt"

passed=0 failed=0
for tag in "$TAG" "$TAG-compat"; do
  ref="docker://127.0.0.1:$port/spiffe-authz:$tag"
  expected=$(awk -v t="$tag" '$1 == t { print $3 }' "$work/oci.txt")
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$work/layout:$tag" "$ref"
  remote=$(skopeo inspect --tls-verify=false --raw "$ref" | sha256sum | cut -d' ' -f1)
  skopeo --insecure-policy copy --quiet --src-tls-verify=false "$ref" "oci:$work/pulled:$tag"
  if [ "sha256:$remote" = "$expected" ] \
    && "$HOST_SIM" oci verify --layout "$work/pulled" --tag "$tag" --wasm "$WASM"; then
    echo "ok   $tag: registry manifest digest sha256:$remote matches; module extracted like Istio"
    passed=$((passed + 1))
  else
    echo "FAIL $tag: expected $expected, registry has sha256:$remote"
    failed=$((failed + 1))
  fi
done
echo "oci-registry: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
