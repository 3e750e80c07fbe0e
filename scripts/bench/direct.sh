#!/usr/bin/env bash
# The direct path against the on-chain path, on one fresh `opg-node --dev --inference` (one
# CPU worker, //Alice, 1 s blocks unless OPG_DEV_BLOCK_MS): the demo MLP's round trip through
# the worker's HTTP API (scripts/client/direct.mjs, voucher and receipt checked) and through
# on-chain jobs (scripts/client/load.mjs); SmolLM2's time to first token and decode speed
# through the OpenAI client and opg-client proxy, against a chat job on chain
# (scripts/client/infer.mjs --chat); the direct path's throughput with 1, 2 and 4 clients at
# once. Prints each side's figures.
#   scripts/bench/direct.sh [--requests 200] [--chats 20]
# Expects the node to be built (scripts/run.sh or scripts/test.sh build it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/lib/env.sh
source "$root/scripts/lib/env.sh"
requests=200 chats=20
while [ $# -gt 0 ]; do
  case $1 in
    --requests) requests=$2; shift 2 ;;
    --chats) chats=$2; shift 2 ;;
    *) echo "usage: $0 [--requests N] [--chats N]" >&2; exit 2 ;;
  esac
done
node_bin="$CARGO_TARGET_DIR/release/opg-node"
[ -x "$node_bin" ] || { echo "[direct] $node_bin not built" >&2; exit 1; }
bash "$root/scripts/lib/npm-ci.sh" "$root/scripts/client"
base=$(mktemp -d)
# shellcheck source=scripts/lib/devnode.sh
source "$root/scripts/lib/devnode.sh"
proxy_pid=""
trap '[ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null; stop_node; rm -rf "$base"' EXIT
bash "$root/scripts/lib/seed-models.sh" "$base/models" >/dev/null
api_port=$(free_port)
start_node bench --no-prometheus --inference --model-dir "$base/models" --inference-api-port "$api_port" \
  --inference-api-advertise "http://127.0.0.1:$api_port"
ws="ws://127.0.0.1:$rpc_port"
echo "[direct] $(nproc) cores, blocks every ${OPG_DEV_BLOCK_MS:-1000} ms"

echo "[direct] demo MLP, direct path ($requests requests): $(node "$root/scripts/client/direct.mjs" --ws "$ws" \
  --api "http://127.0.0.1:$api_port" --requests "$requests" --json | python3 -c '
import json, sys; r = json.load(sys.stdin); print(json.dumps(r["latencyMs"]))')"
# Throughput under concurrent clients: 1, 2 and 4 requesters at once, a channel each.
for clients in 1 2 4; do
  echo "[direct] demo MLP, direct path, $clients client(s) at once ($((requests / 2)) requests each): $(node \
    "$root/scripts/client/direct.mjs" --ws "$ws" --api "http://127.0.0.1:$api_port" --clients "$clients" --fresh \
    --requests $((requests / 2)) --json | python3 -c '
import json, sys; r = json.load(sys.stdin)
print(json.dumps({"requestsPerSecond": round(r["requestsPerSecond"]), "p50Ms": round(r["latencyMs"]["p50"], 2), "p95Ms": round(r["latencyMs"]["p95"], 2)}))')"
done
echo "[direct] demo MLP... on chain (40 jobs): $(node "$root/scripts/client/load.mjs" --ws "$ws" --jobs 40 --json \
  | python3 -c 'import json, sys; r = json.load(sys.stdin); print(json.dumps(r["latencySeconds"]))')"

proxy_port=$(free_port)
node "$root/scripts/client/opg-client.mjs" proxy --ws "$ws" --account //Charlie --port "$proxy_port" \
  --state "$base/opg-client.json" >"$base/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 1 60); do grep -q "proxy on" "$base/proxy.log" && break; sleep 0.5; done
echo "[direct] SmolLM2 chat, direct path through the proxy ($chats streamed requests, 32 tokens at most):"
echo "[direct]   $(python3 "$root/scripts/bench/chat-latency.py" "http://127.0.0.1:$proxy_port/v1" 2 --requests "$chats")"
on_chain=()
for i in 1 2 3 4 5; do
  on_chain+=("$(node "$root/scripts/client/infer.mjs" --ws "$ws" --chat "What is the capital of France?" \
    --max-tokens 32 --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["seconds"])')")
done
echo "[direct] SmolLM2 chat, on-chain jobs (5, answer only when settled): ${on_chain[*]} s"
