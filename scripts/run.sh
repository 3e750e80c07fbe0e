#!/usr/bin/env bash
# The run command: sets the machine up if needed, builds the node and starts a single-machine
# dev chain (blocks every 3 s, RPC on ws://127.0.0.1:9944) with its in-process inference worker
# serving the preset releases as the preset worker Alice, on the CPU. `scripts/infer.sh` in
# another terminal then submits a job and prints the settled answer. Extra arguments go to the
# node, e.g. `scripts/run.sh --dev-block-time 1000`, or `scripts/run.sh --inference-gpu` (the
# CUDA backend: builds with the `cuda` feature). `scripts/run.sh --no-worker` starts the chain
# alone (jobs assigned to Alice then wait for an answer until they expire).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# shellcheck source=scripts/lib/env.sh
source scripts/lib/env.sh

worker=(--inference)
features=()
backend=CPU
args=()
for arg in "$@"; do
  case $arg in
    --no-worker) worker=() ;;
    --inference) ;;
    --inference-gpu) features=(--features opg-node/cuda); backend=CUDA; args+=("$arg") ;;
    *) args+=("$arg") ;;
  esac
done
# `--workspace` resolves features as scripts/test.sh's build does: after the tests, this
# builds nothing.
cargo build --release --locked --workspace --bins "${features[@]}"
models="${OPG_MODEL_DIR:-$HOME/.cache/opg/models}"
bash scripts/lib/seed-models.sh "$models"
if [ ${#worker[@]} -gt 0 ]; then
  status="Alice's worker runs in the node ($backend); submit a job with scripts/infer.sh"
else
  status="no worker (--no-worker): jobs assigned to Alice wait until they expire"
fi
cat <<MSG

  OPG dev chain starting.
  RPC:              ws://127.0.0.1:9944
  polkadot.js apps: https://polkadot.js.org/apps/?rpc=ws%3A%2F%2F127.0.0.1%3A9944#/explorer
  Inference:        $status
  Stop with Ctrl-C. State is temporary (--tmp).

MSG
exec "$CARGO_TARGET_DIR/release/opg-node" --dev --tmp --rpc-cors all --model-dir "$models" \
  "${worker[@]}" "${args[@]}"
