#!/usr/bin/env bash
# Proves the ZK demo model (models/digits-zk) with OPG's prover and with EZKL (PyPI `ezkl`) on
# the same ONNX file and input, and prints both side by side: setup, proving time (median of
# RUNS), verification, proof and key sizes, and whether the proved logits are the model's.
# EZKL is installed into a virtualenv under ~/.cache/opg on first use. Not part of the tests:
# EZKL's setup and proof take minutes and over a GiB of key on this model.
#
# usage: scripts/bench/zk.sh [RUNS]   (SKIP_EZKL=1: OPG only)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/env.sh
source scripts/lib/env.sh
runs=${1:-3}
ezkl_version=23.0.5
model=models/digits-zk/digits-mlp-int8.onnx
reference=models/digits-zk/reference.json
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

SKIP_WASM_BUILD=1 cargo build --locked --release -q -p opg-worker --example zk_bench
opg=$("$CARGO_TARGET_DIR/release/examples/zk_bench" "$model" "$reference" "$runs")
ezkl='{}'
if [ -z "${SKIP_EZKL:-}" ]; then
  venv="${OPG_CACHE:-$HOME/.cache/opg}/ezkl-venv"
  if ! "$venv/bin/python" -c "import ezkl; assert ezkl.__version__ == '$ezkl_version'" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "ezkl==$ezkl_version"
  fi
  ezkl=$("$venv/bin/python" scripts/bench/ezkl_digits.py "$work/ezkl" "$runs" | tail -1)
fi
python3 - "$opg" "$ezkl" "$(nproc)" <<'PY'
import json, sys
opg, ezkl, cores = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
rows = [("system", "system", "{}"), ("R1CS constraints", "constraints", "{:,}"), ("Halo2 rows", "logrows", "2^{}"),
        ("setup", "setup_s", "{:.2f} s"), ("prove (median)", "prove_s", "{:.2f} s"),
        ("verify (native)", "verify_ms", "{:.1f} ms"), ("proof", "proof_bytes", "{:,} B"),
        ("public inputs", "public_instances", "{}"), ("proving key", "pk_bytes", "{:,} B"),
        ("verifying key", "vk_bytes", "{:,} B")]
print(f"digits-mlp-int8.onnx (64 -> 32 -> 10, int8), one image, {cores} cores")
for label, key, fmt in rows:
    cells = [fmt.format(s[key]) if key in s else "-" for s in (opg, ezkl)]
    print(f"  {label:<16} {cells[0]:<34} {cells[1]}")
for name, s in (("OPG", opg), ("EZKL", ezkl)):
    if "logits" in s:
        same = [int(v) for v in s["logits"]] == s["reference_logits"]
        print(f"  {name} logits {'==' if same else '!='} the model's (onnxruntime) logits: {s['logits']}")
PY
