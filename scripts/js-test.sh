#!/usr/bin/env bash
# Runs the @polkadot/api tests (tests/js) against a fresh `opg-node --dev` on free ports.
# Expects the node to be built (scripts/test.sh builds it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/env.sh
source "$root/scripts/env.sh"
node_bin="$CARGO_TARGET_DIR/release/opg-node"
[ -x "$node_bin" ] || { echo "[js-test] $node_bin not built" >&2; exit 1; }

npm_install() {
  # npm ci is skipped when the lock file has not changed since the last install.
  local stamp=node_modules/.opg-lock-stamp
  if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
  fi
}
(cd "$root/tests/js" && npm_install)
(cd "$root/scripts/client" && npm_install)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pid=""
base=$(mktemp -d)
stop_node() {
  [ -n "$pid" ] || return 0
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  pid=""
}
trap 'stop_node; rm -rf "$base"' EXIT

# start_node <name> [extra node args...]: a fresh dev chain; sets rpc_port, pid and log.
start_node() {
  local name=$1; shift
  rpc_port=$(free_port)
  log="$base/$name.log"
  "$node_bin" --dev --dev-block-time 1000 --base-path "$base/$name" --rpc-port "$rpc_port" --port "$(free_port)" \
    --no-hardware-benchmarks --no-telemetry --no-prometheus "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 240); do
    curl -sf -H 'Content-Type: application/json' -d '{"id":1,"jsonrpc":"2.0","method":"system_health","params":[]}' \
      "http://127.0.0.1:$rpc_port" >/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "[js-test] node died" >&2; exit 1; }
    sleep 0.5
  done
  echo "[js-test] node RPC did not come up" >&2; exit 1
}

# The dApp tests: Alice answers jobs by hand, so no worker runs in this node.
start_node market
(cd "$root/tests/js" && OPG_WS="ws://127.0.0.1:$rpc_port" node --test --test-concurrency=1 --test-reporter=spec) \
  || { tail -50 "$log"; exit 1; }
stop_node

# The client script against a node with the in-process worker: a digit is classified.
bash "$root/scripts/seed-models.sh" "$base/models"
start_node worker --inference --model-dir "$base/models"
for case in 0 7; do
  out=$(node "$root/scripts/client/infer.mjs" --ws "ws://127.0.0.1:$rpc_port" --case "$case" --json) \
    || { echo "$out"; tail -50 "$log"; exit 1; }
  echo "[js-test] infer.mjs --case $case: $out"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["outcome"]=="JobSettled" and r["predicted"]==[r["label"]], r' "$out"
done
stop_node
echo "[js-test] client script: ok"
