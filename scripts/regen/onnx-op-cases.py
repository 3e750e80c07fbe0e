#!/usr/bin/env python3
"""Writes offchain-worker/tests/ops/: one small ONNX model per operator case, each with an
input set and onnxruntime's outputs for it, in the ONNX backend-test layout
(`<case>/model.onnx`, `<case>/test_data_set_0/{input,output}_N.pb`). The conformance test
(offchain-worker/tests/conformance.rs) runs every case and needs all of them to match, so CI
checks the executor against onnxruntime without installing it.

  pip install onnx==1.23.2 onnxruntime==1.32.0 numpy
  python3 scripts/regen/onnx-op-cases.py

Inputs come from a seeded generator, so the files are reproducible.
"""
import os, shutil

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "offchain-worker", "tests", "ops")
rng = np.random.default_rng(24)
def elem(a):
    return helper.np_dtype_to_tensor_dtype(a.dtype)
cases = []


def case(name, op, inputs, n_out=1, opset=17, consts=None, exact=None, order=None, evaluator=False,
         external=None, **attrs):
    """A one-node model of `op` on `inputs` (name -> array); `consts` become initializers.
    The node takes them in `order` (names, "" for an omitted input), by default inputs then
    constants. `exact(inputs, consts)`, where given, is the mathematically exact output,
    which replaces onnxruntime's when the two differ (the script says so). With `evaluator`
    the reference is the ONNX reference evaluator's, for what onnxruntime does not run.
    `external` saves the constants as external data: "dir" next to model.onnx (weights.bin),
    "bundle" as a tar of both (bundle.tar), the way a release publishes such a model."""
    consts = consts or {}
    inputs = {k: v for k, v in inputs.items() if v is not None}
    names = order or list(inputs) + list(consts)
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, [n if n else "" for n in names], outs, **attrs)
    g = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info(k, elem(v), v.shape) for k, v in inputs.items()],
        [helper.make_empty_tensor_value_info(o) for o in outs],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    if evaluator:
        exact = lambda i, c: ReferenceEvaluator(m).run(None, i)
    cases.append((name, m, inputs, (lambda: exact(inputs, consts)) if exact else None, evaluator, external))


def f32(*shape, scale=2.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# Logic and comparisons.
a, b = rng.random((3, 4)) > 0.5, rng.random((4,)) > 0.5
for op in ["And", "Or", "Xor"]:
    case(op.lower(), op, {"a": a, "b": b})
x = f32(3, 4)
y = x.copy(); y[0] = x[0]; y[1] = -x[1]
for op in ["GreaterOrEqual", "LessOrEqual"]:
    case(f"{op.lower()}_float", op, {"a": x, "b": y})
    case(f"{op.lower()}_int", op, {"a": rng.integers(-3, 3, (2, 3)), "b": rng.integers(-3, 3, (3,))})
case("mod_int", "Mod", {"a": rng.integers(-20, 20, (3, 5)), "b": np.array([3, -3, 7, -7, 5], np.int64)})
case("mod_int_fmod", "Mod", {"a": rng.integers(-20, 20, (3, 5)), "b": np.array([3, -3, 7, -7, 5], np.int64)}, fmod=1)
case("mod_float", "Mod", {"a": f32(3, 5, scale=10), "b": np.array([3, -3, 0.7, -2.5, 5], np.float32)}, fmod=1)
for d in ["LEFT", "RIGHT"]:
    case(f"bitshift_{d.lower()}", "BitShift", {"a": rng.integers(0, 256, (6,)).astype(np.uint8),
                                                "b": np.array([0, 1, 3, 7, 2, 5], np.uint8)}, direction=d)

# Element-wise.
special = np.array([[0.0, np.nan, np.inf, -np.inf], [1.5, -2.0, np.nan, 3.0]], np.float32)
case("isnan", "IsNaN", {"x": special})
case("isinf", "IsInf", {"x": special})
case("isinf_negative", "IsInf", {"x": special}, detect_positive=0)
wide = np.linspace(-8, 8, 33, dtype=np.float32).reshape(3, 11)
case("hardsigmoid", "HardSigmoid", {"x": wide}, alpha=0.3, beta=0.4)
case("hardswish", "HardSwish", {"x": wide})
case("mish", "Mish", {"x": np.concatenate([wide.ravel(), [-100.0, 100.0, 30.0]]).astype(np.float32)}, opset=18)

# Reductions (opset 18: axes are an input).
x = f32(2, 3, 4)
axes = np.array([1, -1], np.int64)
for op in ["ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceProd"]:
    case(op.lower(), op, {"x": x}, opset=18, consts={"axes": axes})
case("reducelogsum", "ReduceLogSum", {"x": np.abs(x) + 0.1}, opset=18, consts={"axes": axes}, keepdims=0)
case("reduceprod_all", "ReduceProd", {"x": f32(3, 4, scale=1.0)}, opset=18, keepdims=0)
case("reducesum_int", "ReduceSum", {"x": rng.integers(-9, 9, (3, 4))}, consts={"axes": np.array([1], np.int64)})
case("reducemax_int", "ReduceMax", {"x": rng.integers(-9, 9, (3, 4))}, opset=18, consts={"axes": np.array([0], np.int64)}, keepdims=0)
ties = np.array([[1, 3, 3, 0], [2, 2, 1, 2], [0, 0, 0, 0]], np.float32)
case("argmax", "ArgMax", {"x": ties}, axis=1)
case("argmax_last", "ArgMax", {"x": ties}, axis=1, select_last_index=1, keepdims=0)
case("argmin", "ArgMin", {"x": ties}, axis=0)
case("argmax_int", "ArgMax", {"x": rng.integers(-5, 5, (2, 3, 4))}, axis=-1)
x = f32(3, 5)
case("cumsum", "CumSum", {"x": x}, consts={"axis": np.array(1, np.int64)})
case("cumsum_exclusive_reverse", "CumSum", {"x": x}, consts={"axis": np.array(0, np.int64)}, exclusive=1, reverse=1)
case("cumsum_int", "CumSum", {"x": rng.integers(-5, 5, (2, 6))}, consts={"axis": np.array(-1, np.int64)})

# Shapes.
case("constantofshape", "ConstantOfShape", {"shape": np.array([2, 3], np.int64)})
case("constantofshape_int", "ConstantOfShape", {"shape": np.array([4], np.int64)},
     value=numpy_helper.from_array(np.array([7], np.int64)))
case("range_int", "Range", {"start": np.array(10, np.int64), "limit": np.array(-3, np.int64), "delta": np.array(-4, np.int64)})
case("range_float", "Range", {"start": np.array(0.1, np.float32), "limit": np.array(7.3, np.float32), "delta": np.array(0.7, np.float32)})

# Indexing.
data = f32(3, 4)
case("gatherelements", "GatherElements", {"x": data, "i": np.array([[0, -1, 2], [1, 1, 0]], np.int64)}, axis=1)
case("gatherelements_axis0", "GatherElements", {"x": data, "i": np.array([[2, 0, 1, 1]], np.int64)}, axis=0)
d3 = f32(2, 3, 4)
case("gathernd", "GatherND", {"x": d3, "i": np.array([[0, 1], [1, -1], [0, 0]], np.int64)})
case("gathernd_batch", "GatherND", {"x": d3, "i": np.array([[[2]], [[0]]], np.int64)}, batch_dims=1)
case("gathernd_int", "GatherND", {"x": rng.integers(0, 9, (3, 3)), "i": np.array([[2, 1], [0, 0]], np.int64)})
case("scatterelements", "ScatterElements", {"x": data, "i": np.array([[1, 0, 3]], np.int64), "u": f32(1, 3)}, axis=1)
case("scatterelements_add", "ScatterElements", {"x": data, "i": np.array([[1, 1], [0, 2]], np.int64), "u": f32(2, 2)},
     opset=18, axis=0, reduction="add")
case("scatternd", "ScatterND", {"x": d3, "i": np.array([[1], [0]], np.int64), "u": f32(2, 3, 4)})
case("scatternd_add", "ScatterND", {"x": d3, "i": np.array([[0, 1], [0, 1]], np.int64), "u": f32(2, 4)}, reduction="add")
case("onehot", "OneHot", {"i": np.array([[1, -1], [0, 5]], np.int64)},
     consts={"depth": np.array(4, np.int64), "values": np.array([-1.0, 2.5], np.float32)}, axis=1)
case("onehot_last_axis", "OneHot", {"i": np.array([0, 2, 3], np.int64)},
     consts={"depth": np.array(3, np.int64), "values": np.array([0, 1], np.int64)})
case("nonzero", "NonZero", {"x": np.array([[0.0, 1.5, 0.0], [-2.0, 0.0, 3.0]], np.float32)})
case("nonzero_bool", "NonZero", {"x": rng.random((2, 3, 2)) > 0.5})
m = f32(2, 4, 5)
case("trilu_upper", "Trilu", {"x": m}, consts={"k": np.array(1, np.int64)})
case("trilu_lower", "Trilu", {"x": m}, consts={"k": np.array(-1, np.int64)}, upper=0)
case("trilu_int", "Trilu", {"x": rng.integers(1, 9, (4, 4))}, upper=0)

# Top-k, blocks, RMS normalization.
ties = np.array([[3, 1, 3, 2, 5, 5], [0, -1, 2, 2, 2, 7]], np.float32)
case("topk", "TopK", {"x": ties}, n_out=2, consts={"k": np.array([3], np.int64)})
case("topk_smallest", "TopK", {"x": ties}, n_out=2, consts={"k": np.array([4], np.int64)}, largest=0)
case("topk_axis0", "TopK", {"x": f32(5, 3)}, n_out=2, consts={"k": np.array([2], np.int64)}, axis=0)
case("topk_int", "TopK", {"x": rng.integers(-9, 9, (2, 3, 5))}, n_out=2, consts={"k": np.array([2], np.int64)})
case("depthtospace_dcr", "DepthToSpace", {"x": f32(1, 8, 2, 3)}, blocksize=2)
case("depthtospace_crd", "DepthToSpace", {"x": f32(2, 8, 2, 3)}, blocksize=2, mode="CRD")
case("spacetodepth", "SpaceToDepth", {"x": f32(2, 3, 4, 6)}, blocksize=2)
case("rmsnormalization", "RMSNormalization", {"x": f32(2, 3, 8)}, opset=23,
     consts={"scale": f32(8, scale=1.0)}, epsilon=1e-5)
case("rmsnormalization_axis", "RMSNormalization", {"x": f32(2, 3, 8)}, opset=23,
     consts={"scale": f32(3, 8, scale=1.0)}, axis=1)

# Resize as torch and TF exporters write it.
img = f32(1, 2, 3, 4)
none = np.array([], np.float32)
up2 = np.array([1, 1, 2, 2], np.float32)
case("resize_nearest_torch", "Resize", {"x": img}, opset=13, consts={"roi": none, "scales": up2},
     mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
case("resize_nearest_default", "Resize", {"x": img}, opset=13, consts={"roi": none, "scales": np.array([1, 1, 1.5, 2.5], np.float32)})
case("resize_linear_half_pixel", "Resize", {"x": img}, opset=13, consts={"roi": none, "scales": up2}, mode="linear")
case("resize_linear_align_corners", "Resize", {"x": img}, opset=13, consts={"roi": none, "scales": up2},
     mode="linear", coordinate_transformation_mode="align_corners")
case("resize_linear_pytorch_sizes", "Resize", {"x": f32(1, 3, 8, 6)}, opset=13,
     consts={"roi": none, "scales": none, "sizes": np.array([1, 3, 5, 4], np.int64)},
     mode="linear", coordinate_transformation_mode="pytorch_half_pixel")
case("resize_nearest_down_ceil", "Resize", {"x": f32(1, 1, 7, 9)}, opset=13,
     consts={"roi": none, "scales": none, "sizes": np.array([1, 1, 3, 4], np.int64)}, nearest_mode="ceil")

# Einsum as exporters write it.
case("einsum_attention", "Einsum", {"q": f32(2, 3, 4, 5), "k": f32(2, 3, 6, 5)}, equation="bhid,bhjd->bhij")
case("einsum_matmul_transposed", "Einsum", {"a": f32(3, 4), "b": f32(5, 4)}, equation="ij,kj->ik")
case("einsum_sum_outer", "Einsum", {"a": f32(3, 4), "b": f32(5)}, equation="ij,k->jk")
case("einsum_ellipsis", "Einsum", {"a": f32(2, 3, 4, 5), "b": f32(5, 6)}, equation="...d,de->...e")
case("einsum_implicit", "Einsum", {"a": f32(3, 4), "b": f32(4, 2)}, equation="ij,jk")
case("einsum_transpose", "Einsum", {"a": f32(2, 3, 4)}, equation="abc->cab")
case("einsum_reduce", "Einsum", {"a": f32(2, 3, 4)}, equation="abc->b")
case("einsum_dot", "Einsum", {"a": f32(7), "b": f32(7)}, equation="i,i->")

# int8 quantization, as onnxruntime's quantize_dynamic / quantize_static write it.
x = f32(4, 6, scale=3.0)
case("quantizelinear_uint8", "QuantizeLinear", {"x": x},
     consts={"s": np.array(0.05, np.float32), "z": np.array(128, np.uint8)})
case("quantizelinear_int8_axis", "QuantizeLinear", {"x": x},
     consts={"s": np.array([0.02, 0.1, 0.03, 0.5, 0.04, 0.06], np.float32), "z": np.array([0, 1, -2, 3, 0, -1], np.int8)})
case("quantizelinear_ties", "QuantizeLinear", {"x": np.array([0.5, 1.5, 2.5, -0.5, -1.5, 300, -300], np.float32)},
     consts={"s": np.array(1.0, np.float32), "z": np.array(0, np.int8)})
case("dequantizelinear", "DequantizeLinear", {"x": rng.integers(0, 256, (3, 4)).astype(np.uint8)},
     consts={"s": np.array(0.07, np.float32), "z": np.array(120, np.uint8)})
case("dequantizelinear_axis", "DequantizeLinear", {"x": rng.integers(-128, 128, (3, 4)).astype(np.int8)},
     consts={"s": np.array([0.5, 0.25, 0.1], np.float32), "z": np.array([0, -3, 4], np.int8)}, axis=0)
case("dynamicquantizelinear", "DynamicQuantizeLinear", {"x": f32(5, 7)}, n_out=3)
case("dynamicquantizelinear_positive", "DynamicQuantizeLinear", {"x": np.abs(f32(3, 4)) + 1}, n_out=3)
case("dynamicquantizelinear_zeros", "DynamicQuantizeLinear", {"x": np.zeros((2, 2), np.float32)}, n_out=3)
# onnxruntime's uint8 x int8 kernel on AVX2 without VNNI adds pairs of products in int16 with
# saturation (vpmaddubsw), so with both operands near their extremes it is not exact. The
# executor computes the exact product; those cases keep it as their reference.
def matmul_exact(i, c):
    a = i["a"].astype(np.int64) - c.get("az", np.array(0)).astype(np.int64)
    b = i["b"].astype(np.int64) - c.get("bz", np.array(0)).astype(np.int64)
    return [(a @ b).astype(np.int32)]
a8 = rng.integers(0, 256, (2, 3, 16)).astype(np.uint8)
b8 = rng.integers(-128, 128, (16, 5)).astype(np.int8)
case("matmulinteger", "MatMulInteger", {"a": a8, "b": b8}, exact=matmul_exact)
case("matmulinteger_zero_points", "MatMulInteger", {"a": a8, "b": b8}, exact=matmul_exact,
     consts={"az": np.array(131, np.uint8), "bz": np.array([0, 1, -2, 5, -7], np.int8)})
case("matmulinteger_small", "MatMulInteger", {"a": (a8 // 4).astype(np.uint8), "b": (b8 // 2).astype(np.int8)},
     exact=matmul_exact)
case("matmulinteger_uint8", "MatMulInteger", {"a": rng.integers(0, 256, (4, 300)).astype(np.uint8),
                                               "b": rng.integers(0, 256, (300, 3)).astype(np.uint8)})

# QLinearMatMul, ConvInteger and QLinearConv. The exact references compute the integer sums
# exactly and requantize them as onnxruntime does (f32 scale a*b/y, round half to even).
def requant(acc, scale, zero, dtype):
    info = np.iinfo(dtype)
    v = acc.astype(np.int32).astype(np.float32) * scale.astype(np.float32)
    v = np.minimum(np.maximum(v, np.float32(info.min - int(zero))), np.float32(info.max - int(zero)))
    return (np.round(v) + int(zero)).astype(dtype)
def out_scale(a, b, y):
    return (np.float32(a) * np.asarray(b, np.float32)) / np.float32(y)
def qlinearmatmul_exact(i, c):
    acc = (i["a"].astype(np.int64) - int(c["az"])) @ (c["b"].astype(np.int64) - c["bz"].astype(np.int64))
    return [requant(acc, out_scale(c["as"], c["bs"], c["ys"]), c["yz"], c["yz"].dtype)]
QMM = ["a", "as", "az", "b", "bs", "bz", "ys", "yz"]
qa = rng.integers(0, 256, (2, 3, 16)).astype(np.uint8)
case("qlinearmatmul_uint8", "QLinearMatMul", {"a": qa}, order=QMM, exact=qlinearmatmul_exact,
     consts={"as": np.array(0.02, np.float32), "az": np.array(128, np.uint8),
             "b": rng.integers(0, 256, (16, 5)).astype(np.uint8), "bs": np.array(0.01, np.float32),
             "bz": np.array(120, np.uint8), "ys": np.array(0.05, np.float32), "yz": np.array(100, np.uint8)})
case("qlinearmatmul_int8_per_column", "QLinearMatMul", {"a": qa}, order=QMM, exact=qlinearmatmul_exact,
     consts={"as": np.array(0.03, np.float32), "az": np.array(130, np.uint8),
             "b": rng.integers(-128, 128, (16, 5)).astype(np.int8),
             "bs": np.array([0.01, 0.02, 0.005, 0.04, 0.03], np.float32),
             "bz": np.zeros(5, np.int8), "ys": np.array(0.2, np.float32), "yz": np.array(3, np.uint8)})
case("qlinearmatmul_saturating", "QLinearMatMul", {"a": qa}, order=QMM, exact=qlinearmatmul_exact,
     consts={"as": np.array(0.5, np.float32), "az": np.array(0, np.uint8),
             "b": rng.integers(0, 256, (16, 5)).astype(np.uint8), "bs": np.array(0.5, np.float32),
             "bz": np.array(0, np.uint8), "ys": np.array(0.001, np.float32), "yz": np.array(10, np.uint8)})

def conv_int(x, w, pads, strides, group):
    """The exact 2-D integer convolution (int64) of centred x (N,C,H,W) by w (M,C/g,kh,kw)."""
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (x.shape[2] - kh) // strides[0] + 1
    ow = (x.shape[3] - kw) // strides[1] + 1
    y = np.zeros((n, m, oh, ow), np.int64)
    og = m // group
    for o in range(m):
        g = o // og
        xs = x[:, g * cg:(g + 1) * cg]
        for i in range(oh):
            for j in range(ow):
                win = xs[:, :, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw]
                y[:, o, i, j] = (win * w[o]).sum(axis=(1, 2, 3))
    return y
def conv_attrs(c):
    return c.get("pads", [0, 0, 0, 0]), c.get("strides", [1, 1]), c.get("group", 1)
def convinteger_exact(pads=(0, 0, 0, 0), strides=(1, 1), group=1):
    def f(i, c):
        x = i["x"].astype(np.int64) - int(c.get("xz", 0))
        w = c["w"].astype(np.int64) - c.get("wz", np.array(0)).astype(np.int64).reshape(-1, 1, 1, 1)
        return [conv_int(x, w, pads, strides, group).astype(np.int32)]
    return f
def qlinearconv_exact(pads=(0, 0, 0, 0), strides=(1, 1), group=1):
    def f(i, c):
        x = i["x"].astype(np.int64) - int(c["xz"])
        w = c["w"].astype(np.int64) - c["wz"].astype(np.int64).reshape(-1, 1, 1, 1)
        acc = conv_int(x, w, pads, strides, group)
        if "b" in c:
            acc = acc + c["b"].astype(np.int64).reshape(1, -1, 1, 1)
        s = np.broadcast_to(out_scale(c["xs"], c["ws"], c["ys"]), (w.shape[0],)).reshape(1, -1, 1, 1)
        return [requant(acc, s, c["yz"], c["yz"].dtype)]
    return f
cx = rng.integers(0, 256, (1, 3, 6, 6)).astype(np.uint8)
cw = rng.integers(0, 256, (4, 3, 3, 3)).astype(np.uint8)
case("convinteger", "ConvInteger", {"x": cx}, order=["x", "w", "xz", "wz"], exact=convinteger_exact((1, 1, 1, 1)),
     consts={"w": cw, "xz": np.array(3, np.uint8), "wz": np.array(120, np.uint8)}, pads=[1, 1, 1, 1])
case("convinteger_strided", "ConvInteger", {"x": cx}, order=["x", "w", "", ""],
     exact=convinteger_exact((0, 1, 1, 0), (2, 2)), consts={"w": cw}, pads=[0, 1, 1, 0], strides=[2, 2])
# 300 channels of 255 x 255 products: over 2^24, so the executor splits the channels.
case("convinteger_deep", "ConvInteger", {"x": rng.integers(200, 256, (1, 300, 2, 2)).astype(np.uint8)},
     order=["x", "w"], exact=convinteger_exact(), consts={"w": rng.integers(200, 256, (2, 300, 1, 1)).astype(np.uint8)})
QCV = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
qx = rng.integers(0, 256, (1, 3, 7, 7)).astype(np.uint8)
case("qlinearconv", "QLinearConv", {"x": qx}, order=QCV + ["b"], exact=qlinearconv_exact((1, 1, 1, 1), (2, 2)),
     consts={"xs": np.array(0.02, np.float32), "xz": np.array(128, np.uint8),
             "w": rng.integers(-64, 64, (4, 3, 3, 3)).astype(np.int8),
             "ws": np.array([0.01, 0.02, 0.004, 0.03], np.float32), "wz": np.zeros(4, np.int8),
             "ys": np.array(0.05, np.float32), "yz": np.array(110, np.uint8),
             "b": rng.integers(-500, 500, (4,)).astype(np.int32)}, pads=[1, 1, 1, 1], strides=[2, 2])
case("qlinearconv_depthwise", "QLinearConv", {"x": rng.integers(0, 256, (1, 4, 5, 5)).astype(np.uint8)}, order=QCV,
     exact=qlinearconv_exact((1, 1, 1, 1), group=4),
     consts={"xs": np.array(0.1, np.float32), "xz": np.array(10, np.uint8),
             "w": rng.integers(0, 256, (4, 1, 3, 3)).astype(np.uint8), "ws": np.array(0.003, np.float32),
             "wz": np.array(128, np.uint8), "ys": np.array(0.5, np.float32), "yz": np.array(0, np.uint8)},
     pads=[1, 1, 1, 1], group=4)
case("qlinearconv_int8", "QLinearConv", {"x": rng.integers(-128, 128, (2, 2, 4, 4)).astype(np.int8)}, order=QCV,
     exact=qlinearconv_exact(),
     consts={"xs": np.array(0.05, np.float32), "xz": np.array(-5, np.int8),
             "w": rng.integers(-128, 128, (3, 2, 2, 2)).astype(np.int8), "ws": np.array(0.01, np.float32),
             "wz": np.array(0, np.int8), "ys": np.array(0.1, np.float32), "yz": np.array(7, np.int8)})

# If, as exporters write it: branches read values of the graph around them by name, return
# an outer value unchanged (through Identity, as onnxruntime requires), nest, and branch on a
# constant (folded at load).
def branch(name, nodes, out, consts=None):
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                             [numpy_helper.from_array(v, k) for k, v in (consts or {}).items()])
then_g = branch("then", [helper.make_node("Add", ["x", "one"], ["t"])], "t", {"one": np.array(1, np.float32)})
else_g = branch("else", [helper.make_node("Mul", ["x", "w"], ["e"])], "e")
xin = f32(2, 3)
for c in [True, False]:
    case(f"if_{'then' if c else 'else'}", "If", {"c": np.array(c), "x": xin}, order=["c"],
         consts={"w": f32(3)}, then_branch=then_g, else_branch=else_g)
case("if_outer_output", "If", {"c": np.array([False]), "x": xin}, order=["c"],
     then_branch=then_g, else_branch=branch("else", [helper.make_node("Identity", ["x"], ["i"])], "i"))
inner = helper.make_node("If", ["c2"], ["n"], then_branch=branch("t2", [helper.make_node("Neg", ["x"], ["u"])], "u"),
                         else_branch=branch("e2", [helper.make_node("Identity", ["x"], ["i2"])], "i2"))
case("if_nested", "If", {"c": np.array(True), "c2": np.array(True), "x": xin}, order=["c"],
     then_branch=branch("then", [inner, helper.make_node("Relu", ["n"], ["r"])], "r"), else_branch=then_g)
case("if_constant", "If", {"x": xin}, order=["k"], consts={"k": np.array(False), "w": f32(3)},
     then_branch=then_g, else_branch=else_g)

# Attention and RotaryEmbedding (opset 23), as the dynamo exporter writes them for encoders
# and decoders: multi-head and grouped-query, 3-D and 4-D, masks, KV cache, causal, softcap.
A23 = dict(opset=23)
case("attention_4d", "Attention", {"q": f32(2, 4, 5, 8), "k": f32(2, 4, 6, 8), "v": f32(2, 4, 6, 8)}, **A23)
case("attention_3d_gqa_causal", "Attention", {"q": f32(1, 5, 32), "k": f32(1, 5, 16), "v": f32(1, 5, 16)},
     q_num_heads=4, kv_num_heads=2, is_causal=1, **A23)
bmask = rng.random((5, 6)) > 0.3
bmask[:, 0] = True
case("attention_bool_mask", "Attention", {"q": f32(2, 2, 5, 8), "k": f32(2, 2, 6, 8), "v": f32(2, 2, 6, 4),
                                          "m": bmask}, **A23)
dead = np.ones((3, 4), bool)
dead[1] = False
case("attention_masked_row", "Attention", {"q": f32(1, 1, 3, 4), "k": f32(1, 1, 4, 4), "v": f32(1, 1, 4, 4),
                                           "m": dead}, **A23)
case("attention_float_mask_short", "Attention", {"q": f32(2, 2, 5, 8), "k": f32(2, 2, 6, 8), "v": f32(2, 2, 6, 8),
                                                 "m": f32(2, 1, 5, 4)}, evaluator=True, **A23)
case("attention_past_causal", "Attention", {"q": f32(1, 4, 2, 8), "k": f32(1, 2, 2, 8), "v": f32(1, 2, 2, 8),
                                            "m": None, "pk": f32(1, 2, 3, 8), "pv": f32(1, 2, 3, 8)},
     order=["q", "k", "v", "", "pk", "pv"], n_out=3, is_causal=1, **A23)
case("attention_softcap_scale", "Attention", {"q": f32(1, 2, 3, 8), "k": f32(1, 2, 4, 8), "v": f32(1, 2, 4, 8)},
     softcap=5.0, scale=0.3, **A23)
case("attention_probabilities", "Attention", {"q": f32(1, 2, 3, 8), "k": f32(1, 2, 4, 8), "v": f32(1, 2, 4, 8)},
     order=["q", "k", "v"], n_out=4, qk_matmul_output_mode=3, **A23)
case("attention_scores", "Attention", {"q": f32(1, 2, 3, 8), "k": f32(1, 2, 4, 8), "v": f32(1, 2, 4, 8)},
     order=["q", "k", "v"], n_out=4, **A23)
case("rotary_4d", "RotaryEmbedding", {"x": f32(1, 2, 3, 8), "c": f32(1, 3, 4), "s": f32(1, 3, 4)}, **A23)
pos = np.array([[0, 1, 2], [5, 6, 7]], np.int64)
case("rotary_3d_positions_interleaved_partial", "RotaryEmbedding", {"x": f32(2, 3, 32), "p": pos},
     order=["x", "c", "s", "p"], consts={"c": f32(10, 4), "s": f32(10, 4)},
     num_heads=2, rotary_embedding_dim=8, interleaved=1, **A23)
case("rotary_3d_positions", "RotaryEmbedding", {"x": f32(2, 3, 32), "p": pos},
     order=["x", "c", "s", "p"], consts={"c": f32(10, 8), "s": f32(10, 8)}, num_heads=2, **A23)

# Zero-size dimensions: an empty KV cache at the first step, empty batches and slices.
case("concat_empty", "Concat", {"a": f32(1, 2, 0, 8), "b": f32(1, 2, 3, 8)}, axis=2)
case("attention_empty_past", "Attention", {"q": f32(1, 2, 3, 8), "k": f32(1, 2, 3, 8), "v": f32(1, 2, 3, 8),
                                           "pk": f32(1, 2, 0, 8), "pv": f32(1, 2, 0, 8)},
     order=["q", "k", "v", "", "pk", "pv"], n_out=3, is_causal=1, **A23)
case("add_empty", "Add", {"a": f32(0, 3), "b": f32(3)})
case("matmul_empty_depth", "MatMul", {"a": f32(2, 0), "b": f32(0, 3)})
case("matmul_empty_rows", "MatMul", {"a": f32(0, 4), "b": f32(4, 3)})
case("matmul_empty_rows_weight", "MatMul", {"a": f32(2, 0, 4)}, consts={"b": f32(4, 3)})
case("reducesum_empty", "ReduceSum", {"x": f32(2, 0), "axes": np.array([1], np.int64)}, keepdims=0, opset=18)
case("shape_empty", "Shape", {"x": f32(0, 3)})
case("gather_empty", "Gather", {"x": f32(3, 4), "i": np.zeros((0,), np.int64)})
case("relu_empty", "Relu", {"x": f32(2, 0, 3)})
case("softmax_empty", "Softmax", {"x": f32(0, 5)})
case("transpose_empty", "Transpose", {"x": f32(2, 0, 3)}, perm=[2, 0, 1])
case("reshape_empty", "Reshape", {"x": f32(2, 0, 3), "s": np.array([0, 3], np.int64)}, allowzero=1)
case("reshape_empty_copy", "Reshape", {"x": f32(2, 0, 3), "s": np.array([3, 0], np.int64)})

# External data, as onnx's own writer stores it: next to the model, and in a release bundle.
case("external_data", "Gemm", {"x": f32(2, 16)}, consts={"w": f32(16, 8), "b": f32(8)}, external="dir")
case("external_bundle", "Gemm", {"x": f32(2, 16)}, consts={"w": f32(16, 8), "b": f32(8)}, external="bundle")


# float16: held as f32 and rounded to float16 after each node typed float16, as onnxruntime's
# CPU kernels do (they compute float16 graphs in f32 around casts).
def f16(*shape, scale=2.0):
    return f32(*shape, scale=scale).astype(np.float16)
ties = np.array([1.0, 1.00048828125, 1.0009765625, 1.00146484375, 65504.0, 65520.0, 1e6, -1e6,
                 6e-8, 3e-8, 1e-8, -0.0, np.inf, np.nan], np.float32)
case("cast_to_half", "Cast", {"x": ties}, to=10)
case("cast_from_half", "Cast", {"x": f16(3, 4)}, to=1)
case("half_add", "Add", {"a": f16(3, 4), "b": f16(4)})
case("half_matmul", "MatMul", {"a": f16(3, 40)}, consts={"b": f16(40, 5)})
case("half_softmax", "Softmax", {"x": f16(2, 7)})
case("half_layernorm", "LayerNormalization", {"x": f16(2, 3, 8)}, consts={"g": f16(8), "b": f16(8)})
case("half_erf", "Erf", {"x": f16(4, 5)})
case("half_constant_of_shape", "ConstantOfShape", {"s": np.array([2, 3], np.int64)},
     value=numpy_helper.from_array(np.array([0.1], np.float16)))


def save(model, folder, external):
    """model.onnx in `folder`; with `external`, its constants in weights.bin (and with
    "bundle", both in bundle.tar under model/, deterministic: no times, owners or modes)."""
    if not external:
        return onnx.save(model, os.path.join(folder, "model.onnx"))
    target = folder if external == "dir" else os.path.join(folder, "model")
    os.makedirs(target, exist_ok=True)
    onnx.save(model, os.path.join(target, "model.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    if external == "bundle":
        import tarfile
        with tarfile.open(os.path.join(folder, "bundle.tar"), "w", format=tarfile.PAX_FORMAT) as tar:
            for f in ["model.onnx", "weights.bin"]:
                info = tar.gettarinfo(os.path.join(target, f), f"model/{f}")
                info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
                with open(os.path.join(target, f), "rb") as fh:
                    tar.addfile(info, fh)
        shutil.rmtree(target)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    for name, model, inputs, exact, evaluator, external in cases:
        if evaluator:
            print(f"{name}: onnxruntime does not run this; the reference is the ONNX reference evaluator")
            outs = exact()
        else:
            try:
                session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
                outs = session.run(None, inputs)
            except Exception as e:
                raise SystemExit(f"case {name}: {e}")
        if exact and not evaluator:
            want = exact()
            if any(not np.array_equal(o, w) for o, w in zip(outs, want)):
                print(f"{name}: onnxruntime is not exact here; the reference is the exact result")
                outs = want
        # The outputs' declared types and shapes are what onnxruntime produced.
        del model.graph.output[:]
        model.graph.output.extend(helper.make_tensor_value_info(f"y{i}", elem(v), v.shape)
                                  for i, v in enumerate(outs))
        onnx.checker.check_model(model, full_check=True)
        d = os.path.join(OUT, name, "test_data_set_0")
        os.makedirs(d)
        save(model, os.path.join(OUT, name), external)
        for i, v in enumerate(inputs.values()):
            onnx.save_tensor(numpy_helper.from_array(v), os.path.join(d, f"input_{i}.pb"))
        for i, v in enumerate(outs):
            onnx.save_tensor(numpy_helper.from_array(v), os.path.join(d, f"output_{i}.pb"))
    print(f"{len(cases)} cases written to {os.path.relpath(OUT, ROOT)} (onnxruntime {ort.__version__})")


main()
