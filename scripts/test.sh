#!/usr/bin/env bash
# The test command: sets the machine up if needed, runs the style gates (scripts/lint.sh),
# builds, and runs the whole test suite (runtime, pallets and their benchmarks, worker, node
# process tests, chain-spec checks, the verifiers in wasm, the @polkadot/api client tests,
# the zombienet configurations). Ends with a table of how long each step took.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

steps=()
start=$(date +%s)
# step NAME CMD...: runs CMD and records its wall time for the closing table.
step() {
  local name=$1 t0 rc=0
  shift
  t0=$(date +%s)
  echo "[test] ── $name"
  "$@" || rc=$?
  steps+=("$(printf '%-44s %6d s' "$name" $(($(date +%s) - t0)))")
  return $rc
}
table() {
  local rc=$?
  echo "[test] step                                             time"
  for s in "${steps[@]}"; do echo "[test] $s"; done
  printf '[test] %-44s %6d s\n' total $(($(date +%s) - start))
  [ $rc -eq 0 ] || echo "[test] FAILED (exit $rc)"
}
trap table EXIT

step "setup (scripts/setup.sh)" bash scripts/setup.sh
# shellcheck source=scripts/lib/env.sh
source scripts/lib/env.sh
export RUST_BACKTRACE=1

step "style gates (scripts/lint.sh)" bash scripts/lint.sh

# Doc-tests are skipped: no crate has examples, and rustdoc would rebuild the runtime.
step "build the workspace's tests" \
  cargo test --release --workspace --locked --lib --bins --tests --no-run
step "cargo test --workspace" cargo test --release --workspace --locked --lib --bins --tests

step "build the pallets' benchmark tests" \
  cargo test --release --locked -p pallet-model-hub -p pallet-inference -p pallet-tee -p pallet-zk --lib \
  --features pallet-model-hub/runtime-benchmarks,pallet-inference/runtime-benchmarks,pallet-tee/runtime-benchmarks,pallet-zk/runtime-benchmarks \
  --no-run
step "pallets' benchmark tests (mock runtime)" \
  cargo test --release --locked -p pallet-model-hub -p pallet-inference -p pallet-tee -p pallet-zk --lib \
  --features pallet-model-hub/runtime-benchmarks,pallet-inference/runtime-benchmarks,pallet-tee/runtime-benchmarks,pallet-zk/runtime-benchmarks \
  benchmark

# The proof verifiers as the runtime will run them: no_std, wasm32v1-none, on the real Nitro
# document and the snarkjs proof (run.mjs fails unless both verify); prints wasm timings.
step "verifiers in wasm (scripts/bench/verifiers.sh)" bash scripts/bench/verifiers.sh

step "@polkadot/api tests (scripts/lib/js-test.sh)" bash scripts/lib/js-test.sh

# The full zombienet smoke test needs relay binaries that take hours to build
# (scripts/zombienet.sh smoke); CI checks the configs, tests and chain specs agree.
step "zombienet configurations" bash scripts/zombienet.sh check
echo "[test] all tests passed"
