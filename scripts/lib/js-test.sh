#!/usr/bin/env bash
# Runs the @polkadot/api tests (tests/js) against a fresh `opg-node --dev` on free ports.
# Expects the node to be built (scripts/test.sh builds it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/lib/env.sh
source "$root/scripts/lib/env.sh"
node_bin="$CARGO_TARGET_DIR/release/opg-node"
[ -x "$node_bin" ] || { echo "[js-test] $node_bin not built" >&2; exit 1; }

bash "$root/scripts/lib/npm-ci.sh" "$root/tests/js"
bash "$root/scripts/lib/npm-ci.sh" "$root/scripts/client"

base=$(mktemp -d)
# shellcheck source=scripts/lib/devnode.sh
source "$root/scripts/lib/devnode.sh"
trap 'stop_node; rm -rf "$base"' EXIT

# The dApp tests: Alice answers jobs by hand, so no worker runs in this node.
start_node market --no-prometheus
(cd "$root/tests/js" && OPG_WS="ws://127.0.0.1:$rpc_port" node --test --test-concurrency=1 --test-reporter=spec) \
  || { node_log; exit 1; }
stop_node

# The client script against a node with the in-process worker: a digit is classified.
bash "$root/scripts/lib/seed-models.sh" "$base/models"
api_port=$(free_port)
start_node worker --no-prometheus --inference --tee-dev --model-dir "$base/models" --inference-api-port "$api_port" \
  --inference-api-advertise "http://127.0.0.1:$api_port" --redeem-every 2
# The direct path first: a channel, then requests straight to the worker's HTTP API, each paid
# by a voucher and answered with a receipt the client verifies. The chain then audits receipts
# of the committed batches at random and the requester challenges an honest one: the worker
# opens them all from what it kept.
out=$(node "$root/scripts/client/direct.mjs" --ws "ws://127.0.0.1:$rpc_port" --api "http://127.0.0.1:$api_port" \
  --requests 5 --await-redemption 60 --await-audits 60 --challenge 2 --json) || { echo "$out"; node_log; exit 1; }
echo "[js-test] direct.mjs --requests 5: $out"
python3 -c '
import json, sys
r = json.loads(sys.argv[1])
assert r["requests"] == 5 and r["receiptsVerified"] == 5 and len(r["outputs"][0]) == 3, r
# The worker redeemed the last voucher on chain: paid and burned exactly what it authorised.
assert r["redeemed"]["seq"] == 5 and r["redeemed"]["pay"] == r["paid"] and r["redeemed"]["burn"] == r["burned"], r
a = r["audits"]
assert a["drawn"] and set(a["drawn"]) <= set(a["opened"]) and not a["lost"], a
assert r["challenge"]["seq"] == 2 and r["challenge"]["outcome"].startswith("failed"), r["challenge"]
' "$out"
# A TEE channel: the worker answers once its (dev) enclave key is attested on chain, and every
# receipt carries the enclave's signature, checked against that key.
out=$(node "$root/scripts/client/direct.mjs" --ws "ws://127.0.0.1:$rpc_port" --api "http://127.0.0.1:$api_port" \
  --mode Tee --dev-worker-suri //Alice --fresh --requests 3 --json) || { echo "$out"; node_log; exit 1; }
echo "[js-test] direct.mjs --mode Tee: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.pop("outputs"); print(json.dumps(r))' "$out")"
python3 -c '
import json, sys
r = json.loads(sys.argv[1])
assert r["mode"] == "Tee" and r["enclaveSigned"] and r["receiptsVerified"] == 3, r
' "$out"
# The OpenAI Python client, unchanged, through the client proxy: it opens channels to the
# worker for SmolLM2 (release 2) and MiniLM-L3 (release 3, texts tokenized by the proxy) found
# on chain with the endpoint it advertises, pays each request by voucher and verifies every
# receipt.
proxy_port=$(free_port)
node "$root/scripts/client/opg-client.mjs" proxy --ws "ws://127.0.0.1:$rpc_port" --account //Charlie \
  --port "$proxy_port" --state "$base/opg-client.json" --keep-evidence "$base/evidence" >"$base/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 1 60); do
  grep -q "proxy on" "$base/proxy.log" && break
  kill -0 "$proxy_pid" 2>/dev/null || { cat "$base/proxy.log"; exit 1; }
  sleep 0.5
done
out=$(python3 "$root/scripts/client/openai-check.py" "http://127.0.0.1:$proxy_port/v1" 2 3) \
  || { echo "$out"; cat "$base/proxy.log"; node_log; kill "$proxy_pid"; exit 1; }
echo "[js-test] openai-check.py through opg-client proxy: $out"
kill "$proxy_pid"
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["channels"]
# Two channels (chat, embeddings), two answers on each; what they earned is owed, nothing is
# still reserved.
assert len(s) == 2, s
for p in s.values():
    assert p["seq"] == "2" and p["reserved"] == "0" and 0 < int(p["owed"]) <= int(p["pay"]), p
' "$base/opg-client.json"
# A client that lost its place (its state one voucher behind the worker's, as after a crash
# between sending a voucher and keeping the answer) continues: from the chain's position if the
# worker has redeemed that voucher already, else from the worker's copy of its own voucher
# (`GET /v1/channels/{id}`); either way its next answer is paid and verified.
python3 - "$base/opg-client.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for p in s["channels"].values():
    p["seq"] = str(int(p["seq"]) - 1)
json.dump(s, open(sys.argv[1], "w"))
PY
out=$(node "$root/scripts/client/opg-client.mjs" chat --ws "ws://127.0.0.1:$rpc_port" --account //Charlie \
  --state "$base/opg-client.json" --model 2 --max-tokens 8 --json "Say hi" 2>"$base/resync.log") \
  || { echo "$out"; cat "$base/resync.log"; node_log; exit 1; }
echo "[js-test] opg-client chat after losing its place: $out ($(cat "$base/resync.log"))"
python3 -c 'import json, sys; r = json.loads(sys.argv[1]); assert r["receiptVerified"] and r["usage"]["completion_tokens"] > 0, r' "$out"
# Any answer's kept evidence challenges its receipt on chain; the honest worker opens it.
evidence=$(ls "$base"/evidence/*.json | head -1)
out=$(node "$root/scripts/client/opg-client.mjs" challenge --ws "ws://127.0.0.1:$rpc_port" --account //Dave \
  --evidence "$evidence" --await 60) || { echo "$out"; node_log; exit 1; }
echo "[js-test] opg-client challenge $(basename "$evidence"): $out"
python3 -c 'import json, sys; r = json.loads(sys.argv[1]); assert r["outcome"].startswith("failed"), r' "$out"
for case in 0 7; do
  out=$(node "$root/scripts/client/infer.mjs" --ws "ws://127.0.0.1:$rpc_port" --case "$case" --json) \
    || { echo "$out"; node_log; exit 1; }
  echo "[js-test] infer.mjs --case $case: $out"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["outcome"]=="JobSettled" and r["predicted"]==[r["label"]], r' "$out"
done
# A chat with the preset's SmolLM2: greedy, so the answer is known; paid per token.
out=$(node "$root/scripts/client/infer.mjs" --ws "ws://127.0.0.1:$rpc_port" \
  --chat "What is the capital of France?" --max-tokens 16 --json) || { echo "$out"; node_log; exit 1; }
echo "[js-test] infer.mjs --chat: $out"
python3 -c '
import json, sys
r = json.loads(sys.argv[1])
assert r["outcome"] == "JobSettled" and "Paris" in r["answer"], r
assert 0 < r["completionTokens"] <= 16 and r["promptTokens"] > 0, r
assert int(r["workerPayment"]) > 0 and int(r["verificationFeeBurned"]) > 0 and int(r["refund"]) > 0, r
' "$out"
# Sentence embeddings from the preset's MiniLM-L3: the client's WordPiece ids are the
# tokenizers library's, and a paraphrase is closer than an unrelated text.
node "$root/scripts/client/wordpiece.mjs" --check "$root/offchain-worker/tests/encoder-reference.json"
out=$(node "$root/scripts/client/infer.mjs" --ws "ws://127.0.0.1:$rpc_port" --embed "The cat sits outside." \
  --compare "A cat is sitting out of doors." --compare "The new movie is awesome." --json) \
  || { echo "$out"; node_log; exit 1; }
echo "[js-test] infer.mjs --embed: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["embedding"]=r["embedding"][:4]; print(json.dumps(r))' "$out")"
python3 -c '
import json, sys
r = json.loads(sys.argv[1])
assert r["outcome"] == "JobSettled" and len(r["embedding"]) == 384, r["outcome"]
same, other = r["cosine"]
assert same > other + 0.4, (same, other)
assert int(r["workerPayment"]) > 0 and int(r["verificationFeeBurned"]) > 0, r
' "$out"
# The load script, briefly: jobs from several accounts at the worker's capacity all settle.
out=$(node "$root/scripts/client/load.mjs" --ws "ws://127.0.0.1:$rpc_port" --jobs 12 --json) \
  || { echo "$out"; node_log; exit 1; }
echo "[js-test] load.mjs --jobs 12: $out"
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["jobs"]==12 and r["failed"]==0 and r["concurrency"]==4, r' "$out"
stop_node
echo "[js-test] client scripts: ok"
