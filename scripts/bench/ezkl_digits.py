#!/usr/bin/env python3
"""Proves the ZK demo model (models/digits-zk/digits-mlp-int8.onnx) with EZKL, for comparison
with OPG's Groth16 prover: prints one JSON line with setup time, proving time (median of the
runs), verification time, proof size and key sizes.

Settings chosen to match what OPG proves: the input and output are committed by a hash inside
the circuit (`hashed` visibility, Poseidon in EZKL, blake2s in OPG) and the weights are fixed
constants. EZKL's SRS is generated locally with `gen_srs` (insecure, like a single-party
Groth16 setup; fine for timing). Run by scripts/bench/zk.sh in its own virtualenv with
`pip install ezkl`.

usage: ezkl_digits.py WORKDIR [RUNS]
"""
import json
import pathlib
import statistics
import sys
import time

import ezkl

root = pathlib.Path(__file__).resolve().parent.parent.parent
model = root / "models" / "digits-zk" / "digits-mlp-int8.onnx"
reference = json.loads((root / "models" / "digits-zk" / "reference.json").read_text())
work = pathlib.Path(sys.argv[1])
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
work.mkdir(parents=True, exist_ok=True)
paths = {name: str(work / name) for name in
         ["settings.json", "model.compiled", "kzg.srs", "vk.key", "pk.key", "input.json", "witness.json", "proof.json"]}

args = ezkl.PyRunArgs()
args.input_visibility = "hashed"
args.output_visibility = "hashed"
args.param_visibility = "fixed"
# The model is integer-valued: no fractional bits are needed to represent it exactly.
args.input_scale = 0
args.param_scale = 0
assert ezkl.gen_settings(str(model), paths["settings.json"], py_run_args=args)

case = reference["cases"][0]
pathlib.Path(paths["input.json"]).write_text(json.dumps({"input_data": [[float(v) for v in case["pixels"]]]}))
assert ezkl.compile_circuit(str(model), paths["model.compiled"], paths["settings.json"])
logrows = json.loads(pathlib.Path(paths["settings.json"]).read_text())["run_args"]["logrows"]
ezkl.gen_srs(paths["kzg.srs"], logrows)

started = time.perf_counter()
ezkl.gen_witness(paths["input.json"], paths["model.compiled"], paths["witness.json"])
assert ezkl.setup(paths["model.compiled"], paths["vk.key"], paths["pk.key"], srs_path=paths["kzg.srs"])
setup_s = time.perf_counter() - started

prove_s = []
for _ in range(runs):
    started = time.perf_counter()
    ezkl.gen_witness(paths["input.json"], paths["model.compiled"], paths["witness.json"])
    ezkl.prove(paths["witness.json"], paths["model.compiled"], paths["pk.key"], paths["proof.json"],
               srs_path=paths["kzg.srs"])
    prove_s.append(time.perf_counter() - started)

started = time.perf_counter()
assert ezkl.verify(paths["proof.json"], paths["settings.json"], paths["vk.key"], srs_path=paths["kzg.srs"])
verify_s = time.perf_counter() - started

proof = json.loads(pathlib.Path(paths["proof.json"]).read_text())
proof_bytes = proof.get("proof")
proof_len = len(bytes.fromhex(proof_bytes[2:] if proof_bytes.startswith("0x") else proof_bytes)) \
    if isinstance(proof_bytes, str) else len(proof_bytes)
witness = json.loads(pathlib.Path(paths["witness.json"]).read_text())
outputs = witness.get("pretty_elements", {}).get("rescaled_outputs", [[]])[0]
print(json.dumps({
    "system": f"EZKL {ezkl.__version__} (Halo2, KZG)",
    "logrows": logrows,
    "setup_s": round(setup_s, 3),
    "prove_s": round(statistics.median(prove_s), 3),
    "verify_ms": round(verify_s * 1000, 1),
    "proof_bytes": proof_len,
    "public_instances": sum(len(i) for i in proof.get("instances", [])),
    "pk_bytes": pathlib.Path(paths["pk.key"]).stat().st_size,
    "vk_bytes": pathlib.Path(paths["vk.key"]).stat().st_size,
    "logits": [float(v) for v in outputs],
    "reference_logits": case["logits"],
}))
