#!/usr/bin/env bash
# End-to-end throughput: starts a fresh `opg-node --dev --inference` (one CPU worker, //Alice)
# and runs scripts/client/load.mjs against it, which prints jobs per minute and where a job's
# time goes (chain vs worker, from the worker's Prometheus metrics). Examples:
#   scripts/load.sh                                  # 120 jobs at the preset's capacity (4)
#   scripts/load.sh --jobs 600 --capacity 32 --concurrency 32
#   OPG_DEV_BLOCK_MS=3000 scripts/load.sh            # the default dev block time instead of 1 s
# Expects the node to be built (scripts/run.sh or scripts/test.sh build it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/env.sh
source "$root/scripts/lib/env.sh"
node_bin="$CARGO_TARGET_DIR/release/opg-node"
[ -x "$node_bin" ] || { echo "[load] $node_bin not built: run scripts/run.sh or cargo build --release -p opg-node" >&2; exit 1; }
bash "$root/scripts/lib/npm-ci.sh" "$root/scripts/client"

base=$(mktemp -d)
# shellcheck source=scripts/lib/devnode.sh
source "$root/scripts/lib/devnode.sh"
trap 'stop_node; rm -rf "$base"' EXIT
bash "$root/scripts/lib/seed-models.sh" "$base/models" >/dev/null
prometheus=$(free_port)
start_node load --inference --model-dir "$base/models" --prometheus-port "$prometheus"
echo "[load] node: $(nproc) cores, blocks every ${OPG_DEV_BLOCK_MS:-1000} ms, log $log"
node "$root/scripts/client/load.mjs" --ws "ws://127.0.0.1:$rpc_port" --metrics "http://127.0.0.1:$prometheus/metrics" "$@"
