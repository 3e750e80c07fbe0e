#!/usr/bin/env python3
"""Writes models/demo/mlp-classifier.onnx, the demo model of dev chains.

A 4 -> 8 -> 3 multilayer perceptron (MatMul, Add, Relu, Softmax; opset 17) with weights from a
seeded generator, so the file and its blake2-256 are reproducible. `pip install onnx numpy`.
Prints the artifact hash and size that the `development` preset registers.
"""
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx_export import save_model

root = pathlib.Path(__file__).resolve().parent.parent.parent
out = root / "models" / "demo" / "mlp-classifier.onnx"

rng = np.random.default_rng(2026)
w1 = rng.normal(0, 0.5, (4, 8)).astype(np.float32)
b1 = rng.normal(0, 0.1, (8,)).astype(np.float32)
w2 = rng.normal(0, 0.5, (8, 3)).astype(np.float32)
b2 = rng.normal(0, 0.1, (3,)).astype(np.float32)

nodes = [
    helper.make_node("MatMul", ["features", "w1"], ["h0"], name="fc1"),
    helper.make_node("Add", ["h0", "b1"], ["h1"], name="fc1_bias"),
    helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
    helper.make_node("MatMul", ["h2", "w2"], ["l0"], name="fc2"),
    helper.make_node("Add", ["l0", "b2"], ["l1"], name="fc2_bias"),
    helper.make_node("Softmax", ["l1"], ["probabilities"], name="softmax", axis=-1),
]
data, digest = save_model(
    nodes,
    "opg-demo-mlp",
    [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 4])],
    [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 3])],
    {"w1": w1, "b1": b1, "w2": w2, "b2": b2},
    out,
    producer_name="opg",
)
print(f"{out.relative_to(root)}: {len(data)} bytes, blake2-256 {digest}")

# Reference outputs from the ONNX project's own evaluator, for the worker's executor tests.
from onnx.reference import ReferenceEvaluator  # noqa: E402
import json  # noqa: E402

evaluator = ReferenceEvaluator(onnx.load_from_string(data))
cases = []
for features in ([5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [0.0, 0.0, 0.0, 0.0], [-1.5, 2.0, -0.5, 4.0]):
    x = np.array([features], dtype=np.float32)
    (y,) = evaluator.run(None, {"features": x})
    cases.append({"features": x.ravel().tolist(), "probabilities": y.ravel().tolist()})
ref = out.parent / "reference.json"
ref.write_text(json.dumps({"input": "features", "output": "probabilities", "cases": cases}, indent=1) + "\n")
print(f"{ref.relative_to(root)}: {len(cases)} cases")
