#!/usr/bin/env bash
# Runs the @polkadot/api tests (tests/js) against a fresh `opg-node --dev` on free ports.
# Expects the node to be built (scripts/test.sh builds it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/env.sh
source "$root/scripts/env.sh"
node_bin="$CARGO_TARGET_DIR/release/opg-node"
[ -x "$node_bin" ] || { echo "[js-test] $node_bin not built" >&2; exit 1; }

cd "$root/tests/js"
# npm ci is skipped when the lock file has not changed since the last install.
stamp=node_modules/.opg-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rpc_port=$(free_port); p2p_port=$(free_port)
base=$(mktemp -d)
log="$base/node.log"
"$node_bin" --dev --dev-block-time 1000 --base-path "$base" --rpc-port "$rpc_port" --port "$p2p_port" \
  --no-hardware-benchmarks --no-telemetry --no-prometheus >"$log" 2>&1 &
pid=$!
cleanup() {
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  rm -rf "$base"
}
trap cleanup EXIT
for _ in $(seq 1 240); do
  curl -sf -H 'Content-Type: application/json' -d '{"id":1,"jsonrpc":"2.0","method":"system_health","params":[]}' \
    "http://127.0.0.1:$rpc_port" >/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "[js-test] node died" >&2; exit 1; }
  sleep 0.5
done
OPG_WS="ws://127.0.0.1:$rpc_port" node --test --test-concurrency=1 --test-reporter=spec || { tail -50 "$log"; exit 1; }
