# Sourced by scripts that need a throwaway `opg-node --dev` on free ports (js-test.sh, load.sh).
# Needs $node_bin and $base (a temporary directory); sets rpc_port, pid and log.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pid=""
stop_node() {
  [ -n "$pid" ] || return 0
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  pid=""
}

# node_log: the node log's last lines without the dev chain's per-block noise, so that what the
# worker did (and why a step failed) shows.
node_log() {
  grep -vE "Starting consensus session|Prepared block for proposing|Consensus with no RPC sender|Imported #|Idle \(" "$log" | tail -60 || true
}

# start_node <name> [extra node args...]: a fresh dev chain, blocks every $OPG_DEV_BLOCK_MS
# (default 1000) ms.
start_node() {
  local name=$1; shift
  rpc_port=$(free_port)
  log="$base/$name.log"
  "$node_bin" --dev --dev-block-time "${OPG_DEV_BLOCK_MS:-1000}" --base-path "$base/$name" --rpc-port "$rpc_port" --port "$(free_port)" \
    --no-hardware-benchmarks --no-telemetry "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 240); do
    curl -sf -H 'Content-Type: application/json' -d '{"id":1,"jsonrpc":"2.0","method":"system_health","params":[]}' \
      "http://127.0.0.1:$rpc_port" >/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "[devnode] node died" >&2; exit 1; }
    sleep 0.5
  done
  echo "[devnode] node RPC did not come up" >&2; exit 1
}
