#!/usr/bin/env bash
# Fuzzes with cargo-fuzz (libFuzzer): the proof verifiers (any bytes as a Nitro attestation
# document, a Groth16 verifying key, a proof and public inputs) and the worker's executor (any
# bytes as an ONNX model and its input shapes, loaded and run). A panic, a crash, a wrong
# acceptance (see fuzz/fuzz_targets/), an input slower than the timeout or memory past the
# limit fails the run.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
# cargo-fuzz is installed from crates.io into ~/.cache/opg/tools once. libFuzzer needs a
# nightly rustc for its instrumentation flags; the stable one is used with RUSTC_BOOTSTRAP=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(nitro_document groth16_key groth16_verify onnx_model)

tools=${OPG_TOOLS_DIR:-$HOME/.cache/opg/tools}
if ! [ -x "$tools/bin/cargo-fuzz" ]; then
  cargo install --locked --root "$tools" cargo-fuzz
fi
export PATH="$tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${OPG_FUZZ_TARGET_DIR:-$HOME/.cache/opg/fuzz-target}

# Seed corpora: the real Nitro documents and the snarkjs key and proof.
corpus=$CARGO_TARGET_DIR/corpus
mkdir -p "$corpus/nitro_document" "$corpus/groth16_key" "$corpus/groth16_verify" "$corpus/onnx_model"
cp verifiers/nitro/tests/fixtures/*.cbor "$corpus/nitro_document/"
snarkjs() {
  cargo run -q --release --locked -p opg-groth16 --bin opg-snarkjs -- "$@" \
    | sed 's/^0x//' | xxd -r -p
}
fixtures=verifiers/groth16/tests/fixtures
CARGO_TARGET_DIR=${OPG_MAIN_TARGET_DIR:-$HOME/.cache/opg/target} snarkjs key "$fixtures/verification_key.json" \
  > "$corpus/groth16_key/circom"
{
  CARGO_TARGET_DIR=${OPG_MAIN_TARGET_DIR:-$HOME/.cache/opg/target} snarkjs proof "$fixtures/proof.json"
  CARGO_TARGET_DIR=${OPG_MAIN_TARGET_DIR:-$HOME/.cache/opg/target} snarkjs public "$fixtures/public.json"
} > "$corpus/groth16_verify/circom"

# The executor's seeds: the committed models and the ONNX project's backend test models that
# the conformance test runs (from the `onnx` wheel scripts/setup.sh installs), each behind a
# rank byte of 0 (declared shapes).
seed_model() { { printf '\x00'; cat "$1"; } > "$corpus/onnx_model/$2"; }
for f in models/*/*.onnx; do seed_model "$f" "$(basename "$(dirname "$f")")"; done
onnx_data=$(python3 -c 'import onnx, os; print(os.path.dirname(onnx.__file__))' 2>/dev/null || true)
for folder in simple pytorch-operator pytorch-converted; do
  for f in "$onnx_data/backend/test/data/$folder"/*/model.onnx; do
    [ -f "$f" ] && seed_model "$f" "$folder-$(basename "$(dirname "$f")")"
  done
done

cd fuzz
for target in "${targets[@]}"; do
  echo "[fuzz] $target for ${seconds}s"
  # -timeout: one input taking over 10 s is a failure (documents are at most 16 KiB; models
  # up to 1 MiB). -rss_limit_mb: the executor target's memory limit is 256 MiB of tensors.
  log="$CARGO_TARGET_DIR/$target.log"
  max_len=16384
  [ "$target" = onnx_model ] && max_len=1048576
  rc=0
  cargo fuzz run --release "$target" "$corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -max_len="$max_len" -rss_limit_mb=2048 \
    -print_final_stats=1 > "$log" 2>&1 || rc=$?
  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -40 "$log"
    echo "[fuzz] $target FAILED (log: $log; the crashing input is under fuzz/artifacts/$target/)"
    exit 1
  fi
done
echo "[fuzz] no crash, panic or timeout"
