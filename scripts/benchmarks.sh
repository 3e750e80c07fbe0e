#!/usr/bin/env bash
# Benchmarks the OPG pallets against the wasm runtime and regenerates their weights.rs.
# The runtime is built with `runtime-benchmarks` in its own target directory so that the main
# build cache is not invalidated; `opg-node benchmark pallet --runtime` runs it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
steps=${STEPS:-20}
repeat=${REPEAT:-10}
bench_target=${OPG_BENCH_TARGET_DIR:-$HOME/.cache/opg/bench-target}

cargo build --release --locked -p opg-node
CARGO_TARGET_DIR="$bench_target" cargo build --release --locked -p opg-runtime --features runtime-benchmarks
wasm="$bench_target/release/wbuild/opg-runtime/opg_runtime.compact.compressed.wasm"

for pallet in model-hub inference; do
  name="pallet_${pallet//-/_}"
  "$CARGO_TARGET_DIR/release/opg-node" benchmark pallet \
    --runtime "$wasm" --genesis-builder=runtime --genesis-builder-preset development \
    --pallet "$name" --extrinsic '*' --steps "$steps" --repeat "$repeat" \
    --wasm-execution compiled --heap-pages 4096 \
    --template scripts/weight-template.hbs \
    --output "pallets/$pallet/src/weights.rs"
done
echo "weights written: pallets/*/src/weights.rs"
