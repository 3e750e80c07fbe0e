#!/usr/bin/env python3
"""Trains and writes models/digits-zk/digits-mlp-int8.onnx: an integer-only digit classifier
that the worker can prove in zero knowledge (ZK mode).

The data is scikit-learn's bundled digits set (1797 8x8 images, pixel values 0..16), split 80/20
per class with a seeded generator as in make-digits-model.py. A float MLP 64 -> 32 -> 10 is
trained in numpy (Adam, fixed seed, one BLAS thread), then quantized after training with
power-of-two scales only, so every step is exact integer arithmetic:

    pixels i8 [1,64] (the raw 0..16 values: scale 1/16)
      -> MatMulInteger (W1 i8 [64,32], scale 2^-e1) -> Add b1 (i32) -> Relu
      -> Div 2^k (floor: the value is >= 0) -> Clip [0, 127] -> Cast i8      (hidden, scale 2^-eh)
      -> MatMulInteger (W2 i8 [32,10], scale 2^-e2) -> Add b2 (i32)
      -> logits i32 [1,10]                                                  (argmax = digit)

e1 and e2 are the largest exponents that keep every weight within [-127, 127]; eh is chosen so
that 99.9% of the training set's hidden activations fit 127 (the rest saturate). Biases are
rounded at the accumulator's scale. The script checks that onnxruntime (and the ONNX reference
evaluator) give exactly the logits of a plain numpy integer model on the whole test split.

Needs `pip install onnx==1.23.2 numpy scikit-learn` (onnxruntime for the cross-check). Prints
the float and integer test accuracy, the artifact's blake2-256 and size, and writes
models/digits-zk/reference.json with the quantization and eight test cases.
"""
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[var] = "1"

import json  # noqa: E402
import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402
from onnx_export import save_model  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from training import Adam, softmax, stratified_split  # noqa: E402

SEED = 2027
HIDDEN = 32
EPOCHS = 60
BATCH = 32
LEARNING_RATE = 0.005
CASES = 8
HIDDEN_QUANTILE = 99.9

root = pathlib.Path(__file__).resolve().parent.parent.parent
out = root / "models" / "digits-zk" / "digits-mlp-int8.onnx"
rng = np.random.default_rng(SEED)

# --- data: raw pixels 0..16, stratified 80/20 split ---
digits = load_digits()
pixels = digits.images.reshape(len(digits.images), 64).astype(np.int64)
labels = digits.target.astype(np.int64)
train_idx, test_idx = stratified_split(labels, rng)
x_float = pixels / 16.0


# --- float training ---
params = [
    rng.normal(0, np.sqrt(2.0 / 64), (64, HIDDEN)),
    np.zeros(HIDDEN),
    rng.normal(0, np.sqrt(1.0 / HIDDEN), (HIDDEN, 10)),
    np.zeros(10),
]
adam = Adam(params, LEARNING_RATE)
for epoch in range(EPOCHS):
    order = train_idx[rng.permutation(len(train_idx))]
    for start in range(0, len(order), BATCH):
        batch = order[start : start + BATCH]
        x, y = x_float[batch], labels[batch]
        w1, b1, w2, b2 = params
        pre = x @ w1 + b1
        hidden = np.maximum(pre, 0.0)
        d_logits = softmax(hidden @ w2 + b2)
        d_logits[np.arange(len(batch)), y] -= 1.0
        d_logits /= len(batch)
        d_hidden = (d_logits @ w2.T) * (pre > 0)
        grads = [x.T @ d_hidden, d_hidden.sum(axis=0), hidden.T @ d_logits, d_logits.sum(axis=0)]
        adam.step(grads)
w1, b1, w2, b2 = params
float_accuracy = float(
    (np.argmax(np.maximum(x_float[test_idx] @ w1 + b1, 0) @ w2 + b2, axis=-1) == labels[test_idx]).mean()
)


# --- post-training quantization with power-of-two scales ---
def weight_exponent(w):
    """Largest e with round(w * 2^e) within [-127, 127]."""
    e = 0
    while np.abs(np.round(w * 2.0 ** (e + 1))).max() <= 127:
        e += 1
    while np.abs(np.round(w * 2.0**e)).max() > 127:
        e -= 1
    return e


E_X = 4  # pixels are the float input times 16
e1, e2 = weight_exponent(w1), weight_exponent(w2)
w1_q = np.round(w1 * 2.0**e1).astype(np.int64)
b1_q = np.round(b1 * 2.0 ** (E_X + e1)).astype(np.int64)
acc1_train = pixels[train_idx] @ w1_q + b1_q
top = np.percentile(np.maximum(acc1_train, 0), HIDDEN_QUANTILE)
shift = 0
while top / 2.0**shift > 127:
    shift += 1
e_h = E_X + e1 - shift  # hidden activations are the float ones times 2^e_h
w2_q = np.round(w2 * 2.0**e2).astype(np.int64)
b2_q = np.round(b2 * 2.0 ** (e_h + e2)).astype(np.int64)


def integer_model(x):
    """The exact integer semantics the ONNX graph and the ZK circuit share."""
    acc1 = x @ w1_q + b1_q
    hidden = np.clip(np.maximum(acc1, 0) >> shift, 0, 127)
    return hidden @ w2_q + b2_q


int_logits = integer_model(pixels[test_idx])
int_accuracy = float((int_logits.argmax(axis=-1) == labels[test_idx]).mean())
assert np.abs(int_logits).max() < 2**31

# --- ONNX export ---
nodes = [
    helper.make_node("MatMulInteger", ["pixels", "w1"], ["acc1"], name="fc1"),
    helper.make_node("Add", ["acc1", "b1"], ["pre1"], name="bias1"),
    helper.make_node("Relu", ["pre1"], ["relu1"], name="relu1"),
    helper.make_node("Div", ["relu1", "scale1"], ["down1"], name="requantize1"),
    helper.make_node("Clip", ["down1", "zero", "max_i8"], ["clip1"], name="saturate1"),
    helper.make_node("Cast", ["clip1"], ["hidden"], name="to_i8", to=TensorProto.INT8),
    helper.make_node("MatMulInteger", ["hidden", "w2"], ["acc2"], name="fc2"),
    helper.make_node("Add", ["acc2", "b2"], ["logits"], name="bias2"),
]
data, digest = save_model(
    nodes,
    "digits-mlp-int8",
    [helper.make_tensor_value_info("pixels", TensorProto.INT8, [1, 64])],
    [helper.make_tensor_value_info("logits", TensorProto.INT32, [1, 10])],
    {
        "w1": w1_q.astype(np.int8),
        "b1": b1_q.astype(np.int32),
        "scale1": np.array(2**shift, dtype=np.int32),
        "zero": np.array(0, dtype=np.int32),
        "max_i8": np.array(127, dtype=np.int32),
        "w2": w2_q.astype(np.int8),
        "b2": b2_q.astype(np.int32),
    },
    out,
    producer_name="opg make-zk-model.py",
)

# --- the exported file computes exactly the integer model ---
evaluator = ReferenceEvaluator(onnx.load_from_string(data))
for index in test_idx:
    x = pixels[index].reshape(1, 64).astype(np.int8)
    (y,) = evaluator.run(None, {"pixels": x})
    assert np.array_equal(y.ravel(), integer_model(pixels[index : index + 1]).ravel()), index
try:
    import onnxruntime
except ImportError:
    onnxruntime = None
if onnxruntime is not None:
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    for index in test_idx:
        (y,) = session.run(None, {"pixels": pixels[index].reshape(1, 64).astype(np.int8)})
        assert y.dtype == np.int32
        assert np.array_equal(y.ravel(), integer_model(pixels[index : index + 1]).ravel()), index
    print(f"onnxruntime {onnxruntime.__version__}: identical logits on all {len(test_idx)} test images")

cases = []
for index in test_idx[:CASES]:
    logits = integer_model(pixels[index : index + 1]).ravel()
    cases.append({
        "index": int(index),
        "label": int(labels[index]),
        "pixels": pixels[index].tolist(),
        "logits": logits.tolist(),
        "predicted": int(logits.argmax()),
    })
(out.parent / "reference.json").write_text(json.dumps({
    "model": out.name,
    "blake2_256": digest,
    "size": len(data),
    "float_test_accuracy": round(float_accuracy, 4),
    "int_test_accuracy": round(int_accuracy, 4),
    "test_images": len(test_idx),
    "quantization": {"w1_exponent": e1, "w2_exponent": e2, "hidden_shift": shift, "hidden_exponent": e_h},
    "cases": cases,
}, indent=1) + "\n")
print(f"float accuracy {float_accuracy:.4f}, integer accuracy {int_accuracy:.4f} on {len(test_idx)} test images")
print(f"quantization: W1 2^-{e1}, W2 2^-{e2}, hidden shift {shift} (scale 2^-{e_h})")
print(f"wrote {out.relative_to(root)}: {len(data)} bytes, blake2-256 {digest}")
