#!/usr/bin/env bash
# The test command: sets the machine up if needed, builds, and runs the whole test suite
# (runtime, node process tests, chain-spec checks, the @polkadot/api client test).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
export RUST_BACKTRACE=1

start=$(date +%s)
echo "[test] cargo test --release --workspace (target: $CARGO_TARGET_DIR)"
# Doc-tests are skipped: no crate has examples, and rustdoc would rebuild the runtime.
cargo test --release --workspace --locked --lib --bins --tests
echo "[test] rust tests took $(( $(date +%s) - start )) s"

echo "[test] benchmark test suites of the protocol pallets (mock runtime)"
cargo test --release --locked -p pallet-model-hub -p pallet-inference -p pallet-tee -p pallet-zk --lib \
  --features pallet-model-hub/runtime-benchmarks,pallet-inference/runtime-benchmarks,pallet-tee/runtime-benchmarks,pallet-zk/runtime-benchmarks \
  benchmark

# The CUDA backend must keep compiling on GPU-less machines (burn 0.21 loads CUDA at run time).
echo "[test] cargo check -p opg-worker --features cuda"
cargo check --release --locked -p opg-worker --features cuda --tests

# The proof verifiers as the runtime will run them: no_std, wasm32v1-none, on the real Nitro
# document and the snarkjs proof (run.mjs fails unless both verify); prints wasm timings.
echo "[test] verifiers in wasm (scripts/bench-verifiers.sh)"
bash scripts/bench-verifiers.sh

bash scripts/js-test.sh

# The full zombienet smoke test needs relay binaries that take hours to build
# (scripts/zombienet.sh smoke); CI checks the configs, tests and chain specs agree.
echo "[test] zombienet configurations (scripts/zombienet.sh check)"
bash scripts/zombienet.sh check
echo "[test] all tests passed in $(( $(date +%s) - start )) s"
