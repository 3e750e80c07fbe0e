#!/usr/bin/env python3
"""Trains and writes models/digits/digits-cnn.onnx, a small handwritten-digit classifier.

The data is scikit-learn's bundled digits set (UCI optdigits: 1797 8x8 images, pixel values
0..16), scaled to [0, 1] and split 80/20 per class with a seeded generator. The network is
trained in plain numpy (Adam, fixed seed, single-threaded BLAS) so a rerun writes the same bytes:

    pixels f32 [1,1,8,8] -> Conv 3x3 (8 channels, pad 1) -> Relu -> MaxPool 2x2/2 -> Flatten
        -> Gemm (128 -> 10) -> Softmax -> probabilities f32 [1,10]

Needs `pip install onnx==1.23.2 numpy scikit-learn`. Prints the artifact's blake2-256, its size
and the test accuracy of the exported model under the ONNX reference evaluator, and writes
models/digits/reference.json with eight test cases for the worker's executor tests.
"""
import os

# One BLAS thread: the reductions then run in a fixed order, so the weights are reproducible.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[var] = "1"

import json  # noqa: E402
import pathlib  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402
from onnx_export import save_model  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from training import Adam, softmax, stratified_split  # noqa: E402

SEED = 2026
CHANNELS = 8
EPOCHS = 30
BATCH = 32
LEARNING_RATE = 0.01
CASES = 8

root = pathlib.Path(__file__).resolve().parent.parent.parent
out = root / "models" / "digits" / "digits-cnn.onnx"
rng = np.random.default_rng(SEED)

# --- data: scaled pixels, stratified 80/20 split (our own, independent of sklearn's splitters) ---
digits = load_digits()
images = (digits.images.astype(np.float64) / 16.0)[:, None, :, :]  # [N, 1, 8, 8]
labels = digits.target.astype(np.int64)
train_idx, test_idx = stratified_split(labels, rng)


# --- model, float64 while training ---
def im2col(x):
    """[B, 1, 8, 8] -> [B, 64, 9]: the 3x3 neighbourhood (zero padding 1) of every pixel."""
    p = np.pad(x[:, 0], ((0, 0), (1, 1), (1, 1)))
    cols = np.stack([p[:, dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)], axis=-1)
    return cols.reshape(len(x), 64, 9)


def forward(x, params):
    wc, bc, wf, bf = params
    cols = im2col(x)  # [B, 64, 9]
    conv = cols @ wc.reshape(CHANNELS, 9).T + bc  # [B, 64, C]
    act = np.maximum(conv, 0.0)
    # [B, 64, C] -> [B, C, 8, 8] -> 2x2 windows [B, C, 4, 4, 4]
    act = act.transpose(0, 2, 1).reshape(len(x), CHANNELS, 4, 2, 4, 2)
    win = act.transpose(0, 1, 2, 4, 3, 5).reshape(len(x), CHANNELS, 4, 4, 4)
    pooled = win.max(axis=-1)
    flat = pooled.reshape(len(x), CHANNELS * 16)  # channel-major, as ONNX Flatten
    logits = flat @ wf.T + bf  # Gemm with transB=1
    return logits, (cols, conv, win, pooled, flat)


def gradients(x, y, params):
    wc, bc, wf, bf = params
    logits, (cols, conv, win, pooled, flat) = forward(x, params)
    n = len(x)
    d_logits = softmax(logits)
    d_logits[np.arange(n), y] -= 1.0
    d_logits /= n
    g_wf = d_logits.T @ flat
    g_bf = d_logits.sum(axis=0)
    d_pooled = (d_logits @ wf).reshape(n, CHANNELS, 4, 4)
    # route the gradient to the first maximum of each window (ties are measure-zero after ReLU>0)
    arg = win.argmax(axis=-1)
    d_win = np.zeros_like(win)
    np.put_along_axis(d_win, arg[..., None], d_pooled[..., None], axis=-1)
    d_act = d_win.reshape(n, CHANNELS, 4, 4, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, CHANNELS, 64)
    d_conv = d_act.transpose(0, 2, 1) * (conv > 0)  # [B, 64, C]
    g_wc = np.einsum("bpc,bpk->ck", d_conv, cols).reshape(CHANNELS, 1, 3, 3)
    g_bc = d_conv.sum(axis=(0, 1))
    return g_wc, g_bc, g_wf, g_bf, logits


params = [
    rng.normal(0, np.sqrt(2.0 / 9), (CHANNELS, 1, 3, 3)),
    np.zeros(CHANNELS),
    rng.normal(0, np.sqrt(1.0 / (CHANNELS * 16)), (10, CHANNELS * 16)),
    np.zeros(10),
]
adam = Adam(params, LEARNING_RATE)

started = time.perf_counter()
x_train, y_train = images[train_idx], labels[train_idx]
for epoch in range(EPOCHS):
    order = rng.permutation(len(train_idx))
    correct = 0
    for start in range(0, len(order), BATCH):
        batch = order[start : start + BATCH]
        *grads, logits = gradients(x_train[batch], y_train[batch], params)
        correct += int((logits.argmax(axis=-1) == y_train[batch]).sum())
        adam.step(grads)
train_seconds = time.perf_counter() - started
print(f"trained {EPOCHS} epochs on {len(train_idx)} images in {train_seconds:.1f} s "
      f"(last-epoch train accuracy {correct / len(train_idx):.4f})")

wc, bc, wf, bf = (p.astype(np.float32) for p in params)

# --- ONNX export ---
nodes = [
    helper.make_node("Conv", ["pixels", "conv_w", "conv_b"], ["conv"], name="conv",
                     kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
    helper.make_node("Relu", ["conv"], ["conv_relu"], name="relu"),
    helper.make_node("MaxPool", ["conv_relu"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1),
    helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1),
]
data, digest = save_model(
    nodes,
    "digits-cnn",
    [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 1, 8, 8])],
    [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
    {"conv_w": wc, "conv_b": bc, "fc_w": wf, "fc_b": bf},
    out,
    producer_name="opg make-digits-model.py",
)

# --- evaluation of the exported model with the ONNX project's reference evaluator ---
evaluator = ReferenceEvaluator(onnx.load_from_string(data))


def run_reference(index):
    x = (digits.images[index].astype(np.float32) / np.float32(16.0)).reshape(1, 1, 8, 8)
    (y,) = evaluator.run(None, {"pixels": x})
    return x, y


correct = 0
outputs = {}
for index in test_idx:
    x, y = run_reference(index)
    outputs[int(index)] = (x, y)
    correct += int(int(y.argmax()) == labels[index])
accuracy = correct / len(test_idx)

cases = []
for index in test_idx[:CASES]:
    x, y = outputs[int(index)]
    cases.append({
        "index": int(index),
        "label": int(labels[index]),
        "pixels": x.ravel().tolist(),
        "probabilities": y.ravel().tolist(),
        "predicted": int(y.argmax()),
    })

# Optional cross-check against onnxruntime, where it is installed.
try:
    import onnxruntime
except ImportError:
    onnxruntime = None
if onnxruntime is not None:
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    for case in cases:
        x = np.array(case["pixels"], dtype=np.float32).reshape(1, 1, 8, 8)
        (y,) = session.run(None, {"pixels": x})
        diff = float(np.abs(y.ravel() - np.array(case["probabilities"], dtype=np.float32)).max())
        assert diff <= 1e-5, f"onnxruntime disagrees on index {case['index']}: {diff}"
    print(f"onnxruntime {onnxruntime.__version__} agrees with the reference evaluator on {len(cases)} cases")

ref = out.parent / "reference.json"
ref.write_text(json.dumps({
    "model": out.name,
    "blake2_256": digest,
    "size": len(data),
    "input": "pixels",
    "output": "probabilities",
    "test_accuracy": accuracy,
    "test_size": len(test_idx),
    "cases": cases,
}, indent=1) + "\n")

print(f"{out.relative_to(root)}: {len(data)} bytes, blake2-256 {digest}")
print(f"test accuracy (ReferenceEvaluator, {len(test_idx)} images): {accuracy:.4f}")
print(f"{ref.relative_to(root)}: {len(cases)} cases, labels {[c['label'] for c in cases]}")
