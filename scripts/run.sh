#!/usr/bin/env bash
# The run command: sets the machine up if needed, builds `opg-node` and starts a single-machine
# dev chain (blocks every 3 s, RPC on ws://127.0.0.1:9944). Extra arguments go to the node,
# e.g. `scripts/run.sh --dev-block-time 1000`, or `scripts/run.sh --inference` to run the
# inference worker in the node (the repository's models are seeded into its model cache).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
cargo build --release --locked -p opg-node
models="${OPG_MODEL_DIR:-$HOME/.cache/opg/models}"
bash scripts/seed-models.sh "$models"
cat <<'MSG'

  OPG dev chain starting.
  RPC:              ws://127.0.0.1:9944
  polkadot.js apps: https://polkadot.js.org/apps/?rpc=ws%3A%2F%2F127.0.0.1%3A9944#/explorer
  Submit a job:     scripts/infer.sh (with --inference; see README)
  Stop with Ctrl-C. State is temporary (--tmp).

MSG
exec "$CARGO_TARGET_DIR/release/opg-node" --dev --tmp --rpc-cors all --model-dir "$models" "$@"
