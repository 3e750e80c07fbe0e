#!/usr/bin/env bash
# Regenerates chain-specs/ (dev and local, plain and raw) from the runtime's genesis presets,
# with the built `opg-node`. CI checks that the committed raw specs still match the runtime
# (node/tests/chain_specs.rs), so run this after every runtime change.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/env.sh
source scripts/lib/env.sh
[ "${OPG_SKIP_BUILD:-0}" = 1 ] || cargo build --release --locked --workspace --bins
node_bin="$CARGO_TARGET_DIR/release/opg-node"
mkdir -p chain-specs
for chain in dev local; do
  "$node_bin" build-spec --chain "$chain" --disable-default-bootnode 2>/dev/null >"chain-specs/opg-$chain.json"
  "$node_bin" build-spec --chain "chain-specs/opg-$chain.json" --raw --disable-default-bootnode 2>/dev/null \
    >"chain-specs/opg-$chain-raw.json"
  echo "chain-specs/opg-$chain.json, chain-specs/opg-$chain-raw.json"
done
