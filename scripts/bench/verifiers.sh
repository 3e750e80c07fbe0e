#!/usr/bin/env bash
# Times the proof verifiers as the runtime runs them: compiled for wasm32v1-none (no_std, like
# the runtime blob) and run in Node's wasm engine, next to native timings. Inputs: the real
# Nitro document and the snarkjs Groth16 fixtures. These are estimates before the pallets'
# frame benchmarks (which time the same code in the node's wasm executor).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/env.sh
source scripts/lib/env.sh
out="$CARGO_TARGET_DIR/wasm-bench"
toolchain=()
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32v1-none; then
  # scripts/setup.sh's offline route: Debian's toolchain with prebuilt core/alloc.
  toolchain=("+${WASM_BUILD_TOOLCHAIN:?run scripts/setup.sh first}")
fi
(cd scripts/bench/wasm && cargo "${toolchain[@]}" build --locked --release --target wasm32v1-none --target-dir "$out" -q)
# `--workspace` resolves features as the test build does, so these reuse its crates.
cargo build --locked --release -q --workspace --bin opg-snarkjs --example time-verify
fixtures=verifiers/groth16/tests/fixtures
snarkjs="$CARGO_TARGET_DIR/release/opg-snarkjs"
doc=verifiers/nitro/tests/fixtures/valid-2022-11-09.cbor
now_ms=1668034320000
echo "wasm32v1-none in node $(node --version) (V8); $(nproc) cores"
node scripts/bench/wasm/run.mjs "$out/wasm32v1-none/release/opg_wasm_bench.wasm" "$doc" "$now_ms" \
  "$("$snarkjs" key $fixtures/verification_key.json)" "$("$snarkjs" proof $fixtures/proof.json)" \
  "$("$snarkjs" public $fixtures/public.json)"
"$CARGO_TARGET_DIR/release/examples/time-verify" "$doc" "$now_ms"
