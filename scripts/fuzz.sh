#!/usr/bin/env bash
# Fuzzes the proof verifiers with cargo-fuzz (libFuzzer): any bytes as a Nitro attestation
# document, a Groth16 verifying key, a proof and public inputs. A panic, a wrong acceptance
# (see fuzz/fuzz_targets/) or an input slower than the timeout fails the run.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
# cargo-fuzz is installed from crates.io into ~/.cache/opg/tools once. libFuzzer needs a
# nightly rustc for its instrumentation flags; the stable one is used with RUSTC_BOOTSTRAP=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(nitro_document groth16_key groth16_verify)

tools=${OPG_TOOLS_DIR:-$HOME/.cache/opg/tools}
if ! [ -x "$tools/bin/cargo-fuzz" ]; then
  cargo install --locked --root "$tools" cargo-fuzz
fi
export PATH="$tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${OPG_FUZZ_TARGET_DIR:-$HOME/.cache/opg/fuzz-target}

# Seed corpora: the real Nitro documents and the snarkjs key and proof.
corpus=$CARGO_TARGET_DIR/corpus
mkdir -p "$corpus/nitro_document" "$corpus/groth16_key" "$corpus/groth16_verify"
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

cd fuzz
for target in "${targets[@]}"; do
  echo "[fuzz] $target for ${seconds}s"
  # -timeout: one input taking over 10 s is a failure (documents are at most 16 KiB).
  log="$CARGO_TARGET_DIR/$target.log"
  rc=0
  cargo fuzz run --release "$target" "$corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -max_len=16384 -print_final_stats=1 > "$log" 2>&1 || rc=$?
  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -40 "$log"
    echo "[fuzz] $target FAILED (log: $log; the crashing input is under fuzz/artifacts/$target/)"
    exit 1
  fi
done
echo "[fuzz] no crash, panic or timeout"
