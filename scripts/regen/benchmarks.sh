#!/usr/bin/env bash
# Benchmarks the OPG pallets against the wasm runtime and regenerates their weights.rs.
# The runtime is built with `runtime-benchmarks` in its own target directory so that the main
# build cache (and the wasm the node embeds) is untouched; `opg-node benchmark pallet --runtime`
# runs that wasm. Only the wasm is needed, so the native crate is checked, not compiled; the
# wasm itself is always built in release mode.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash scripts/setup.sh
# shellcheck source=scripts/lib/env.sh
source scripts/lib/env.sh
steps=${STEPS:-20}
repeat=${REPEAT:-10}
bench_target=${OPG_BENCH_TARGET_DIR:-$HOME/.cache/opg/bench-target}

cargo build --release --locked --workspace --bins
node_bin="$CARGO_TARGET_DIR/release/opg-node"
CARGO_TARGET_DIR="$bench_target" cargo check --locked -p opg-runtime --features runtime-benchmarks
# A debug outer build leaves the (release-compiled) wasm uncompacted.
wasm="$bench_target/debug/wbuild/opg-runtime/opg_runtime.wasm"

# PALLETS="tee zk" scripts/regen/benchmarks.sh reruns a subset.
for pallet in ${PALLETS:-model-hub inference tee zk}; do
  name="pallet_${pallet//-/_}"
  "$node_bin" benchmark pallet \
    --runtime "$wasm" --genesis-builder=runtime --genesis-builder-preset development \
    --pallet "$name" --extrinsic '*' --steps "$steps" --repeat "$repeat" \
    --wasm-execution compiled --heap-pages 4096 \
    --template scripts/regen/weight-template.hbs \
    --output "pallets/$pallet/src/weights.rs"
done
echo "weights written: pallets/*/src/weights.rs"
