#!/usr/bin/env python3
"""Executor benchmark: OPG's burn interpreter vs onnxruntime on the same ONNX files and inputs.

Models: the demo MLP; an MNIST-sized MLP and LeNet CNN at batch 1 and 32 (seeded random
weights); a ResNet-18-class CNN at 224x224 (built here with the torch exporter's graph: Conv
with folded BatchNorm, Relu, MaxPool, residual Add, GlobalAveragePool, Gemm) and its int8
quantize_dynamic export (ConvInteger); and the real
encoder paraphrase-MiniLM-L3-v2, fp32 and its int8 quantize_dynamic export
(scripts/lib/encoder-model.sh), at batch 1 x 11 tokens and 8 x 128 tokens. Each runs in
onnxruntime and in `opg-worker`'s bench example; outputs must agree (rtol 1e-3 / atol 1e-4; the
int8 encoder's within 0.06, onnxruntime's AVX2 u8s8 kernel being inexact, see
offchain-worker/tests/encoders.rs; the sentence embedding is compared); the script prints latency, the ratio, and each side's
peak memory, then where the executor's time goes on the large models (by operator).

  pip install onnx onnxruntime numpy
  python3 scripts/bench/executor.py [--runs 100] [--rounds 5] [--device cpu|cuda:0] [--threads N]
                                    [--only SUBSTRING]

Each round times onnxruntime and then the executor, `--runs` runs each (a tenth of that on the
large models); a side's figure is its best round's median, so a round slowed by a noisy
neighbour on a shared VM does not decide the ratio (the worst round's median is printed too).
Each side runs in its own process, whose peak resident memory (VmHWM) is reported.
`--threads` sets onnxruntime's intra-op threads (default: all cores, like the executor's pool).
Figures are machine-specific: quote them with the machine they came from.
"""
import argparse, json, os, resource, subprocess, sys, tempfile, time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mlp(sizes, batch, seed):
    rng = np.random.default_rng(seed)
    inits, nodes, x = [], [], "x"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        w = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(b, np.float32), f"b{i}")]
        nodes += [helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"h{i}"])]
        x = f"h{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"]))
            x = f"r{i}"
    nodes.append(helper.make_node("Softmax", [x], ["y"], axis=-1))
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, sizes[0]])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, sizes[-1]])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), [(batch, sizes[0])]


def cnn(batch, seed):
    """LeNet-style: conv 32 -> relu -> pool -> conv 64 -> relu -> pool -> fc 128 -> relu -> fc 10."""
    rng = np.random.default_rng(seed)
    def p(name, *shape):
        fan = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(fan)).astype(np.float32), name)
    inits = [p("c1w", 32, 1, 3, 3), p("c1b", 32), p("c2w", 64, 32, 3, 3), p("c2b", 64),
             p("f1w", 64 * 5 * 5, 128), p("f1b", 128), p("f2w", 128, 10), p("f2b", 10)]
    n = helper.make_node
    nodes = [n("Conv", ["x", "c1w", "c1b"], ["c1"]), n("Relu", ["c1"], ["r1"]),
             n("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             n("Conv", ["p1", "c2w", "c2b"], ["c2"]), n("Relu", ["c2"], ["r2"]),
             n("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
             n("Flatten", ["p2"], ["f"]), n("Gemm", ["f", "f1w", "f1b"], ["g1"]), n("Relu", ["g1"], ["r3"]),
             n("Gemm", ["r3", "f2w", "f2b"], ["g2"]), n("Softmax", ["g2"], ["y"], axis=-1)]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, 28, 28])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), [(batch, 1, 28, 28)]


def resnet18(batch, seed):
    """ResNet-18 as torch exports it in eval mode: BatchNorm folded into each Conv's bias."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    n = helper.make_node

    def conv(x, cin, cout, k, stride, relu=True):
        i = len(inits)
        w = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"w{i}"),
                      numpy_helper.from_array((rng.standard_normal(cout) * 0.01).astype(np.float32), f"b{i}")])
        y = f"c{i}"
        nodes.append(n("Conv", [x, f"w{i}", f"b{i}"], [y], kernel_shape=[k, k], strides=[stride, stride],
                       pads=[k // 2] * 4))
        if relu:
            nodes.append(n("Relu", [y], [y + "r"]))
            y += "r"
        return y

    x = conv("x", 3, 64, 7, 2)
    nodes.append(n("MaxPool", [x], ["p0"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = "p0", 64
    for cout, stride in [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]:
        h = conv(x, cin, cout, 3, stride)
        h = conv(h, cout, cout, 3, 1, relu=False)
        skip = x if stride == 1 and cin == cout else conv(x, cin, cout, 1, stride, relu=False)
        nodes += [n("Add", [h, skip], [h + "s"]), n("Relu", [h + "s"], [h + "o"])]
        x, cin = h + "o", cout
    w = (rng.standard_normal((1000, 512)) / np.sqrt(512)).astype(np.float32)
    inits += [numpy_helper.from_array(w, "fcw"), numpy_helper.from_array(np.zeros(1000, np.float32), "fcb")]
    nodes += [n("GlobalAveragePool", [x], ["gap"]), n("Flatten", ["gap"], ["flat"]),
              n("Gemm", ["flat", "fcw", "fcb"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "resnet18", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 224, 224])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 1000])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def quantized_dynamic(model):
    """`model` as onnxruntime's quantize_dynamic writes it: Conv becomes ConvInteger (uint8
    weights, exact in onnxruntime too), Gemm becomes MatMulInteger, each fed by
    DynamicQuantizeLinear."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "fp32.onnx"), os.path.join(d, "int8.onnx")
        onnx.save(model, src)
        quantize_dynamic(src, dst, weight_type=QuantType.QUInt8)
        return onnx.load(dst)


def token_feeds(rng, batch, tokens):
    """Token ids of `batch` texts of `tokens` tokens ([CLS] … [SEP], ids from the vocabulary)."""
    ids = rng.integers(1000, 29000, (batch, tokens)).astype(np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def ort_worker(path, feeds_file, runs, threads, out_file):
    """Run in a child process: times onnxruntime, saves its outputs, prints JSON figures."""
    feeds = dict(np.load(feeds_file))
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    out = sess.run(None, feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    np.savez(out_file, *out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mean_ms": sum(times) / runs, "p50_ms": times[len(times) // 2], "peak_mib": peak}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--only", default=None, help="run only the models whose name contains this")
    ap.add_argument("--bench", default=None, help="path of the built bench example")
    ap.add_argument("--ort-worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ort_worker:
        path, feeds, runs, threads, out = args.ort_worker
        return ort_worker(path, feeds, int(runs), int(threads), out)

    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/opg/target"))
    bench = args.bench or os.path.join(target, "release", "examples", "bench")
    worker = os.path.join(target, "release", "opg-worker")
    features = ["--features", "cuda"] if args.device.startswith("cuda") else []
    if not os.path.exists(bench):
        subprocess.run(["cargo", "build", "--release", "-p", "opg-worker", "--example", "bench", *features],
                       cwd=ROOT, check=True)
    if not os.path.exists(worker):
        subprocess.run(["cargo", "build", "--release", "-p", "opg-worker", "--bin", "opg-worker", *features],
                       cwd=ROOT, check=True)
    models = subprocess.run(["bash", os.path.join(ROOT, "scripts/lib/encoder-model.sh")], check=True,
                            capture_output=True, text=True).stdout.strip()

    rng = np.random.default_rng(7)
    demo = onnx.load(os.path.join(ROOT, "models", "demo", "mlp-classifier.onnx"))

    def floats(model, shapes):
        return {spec.name: rng.standard_normal(s).astype(np.float32) for spec, s in zip(model.graph.input, shapes)}

    # (name, model or file, feeds, heavy, output tolerance (atol))
    cases = [("demo-mlp 4-8-3 b1", demo, floats(demo, [(1, 4)]), False, 1e-4)]
    for b in (1, 32):
        m, shapes = mlp([784, 512, 256, 10], b, 1)
        cases.append((f"mlp 784-512-256-10 b{b}", m, floats(m, shapes), False, 1e-4))
        m, shapes = cnn(b, 2)
        cases.append((f"cnn lenet 28x28 b{b}", m, floats(m, shapes), False, 1e-4))
    m = resnet18(1, 3)
    cases.append(("resnet-18 224x224 b1", m, floats(m, [(1, 3, 224, 224)]), True, 1e-4))
    q = quantized_dynamic(m)
    cases.append(("resnet-18 int8 (ConvInteger) b1", q, floats(q, [(1, 3, 224, 224)]), True, 1e-3))
    for kind, file, atol in [("fp32", "paraphrase-MiniLM-L3-v2.onnx", 1e-4),
                             ("int8", "paraphrase-MiniLM-L3-v2.int8.onnx", 0.06)]:
        path = os.path.join(models, file)
        cases.append((f"minilm-l3 {kind} 1x11 tokens", path, token_feeds(rng, 1, 11), False, atol))
        cases.append((f"minilm-l3 {kind} 8x128 tokens", path, token_feeds(rng, 8, 128), True, atol))
    if args.only:
        cases = [c for c in cases if args.only in c[0]]

    rows, profiles = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, model, feeds, heavy, atol) in enumerate(cases):
            if isinstance(model, str):
                path = model
            else:
                path = os.path.join(tmp, f"m{i}.onnx")
                onnx.save(model, path)
            input_files = []
            for j, (key, arr) in enumerate(feeds.items()):
                f = os.path.join(tmp, f"m{i}_in{j}.pb")
                with open(f, "wb") as fh:
                    fh.write(numpy_helper.from_array(arr, key).SerializeToString())
                input_files.append(f)
            np.savez(os.path.join(tmp, f"m{i}_feeds.npz"), **feeds)
            runs = max(args.runs // 10, 5) if heavy else args.runs
            out_dir = os.path.join(tmp, f"m{i}_out")
            ort_p50s, ort_means, p50s, means, loads, ort_peak, peak = [], [], [], [], [], 0.0, 0.0
            for _ in range(args.rounds):
                res = subprocess.run([sys.executable, __file__, "--ort-worker", path, os.path.join(tmp, f"m{i}_feeds.npz"),
                                      str(runs), str(args.threads), os.path.join(tmp, f"m{i}_ort.npz")],
                                     check=True, capture_output=True, text=True)
                o = json.loads(res.stdout.strip().splitlines()[-1])
                res = subprocess.run([bench, path, *input_files, "--runs", str(runs), "--device", args.device,
                                      "--out", out_dir], check=True, capture_output=True, text=True)
                fig = json.loads(res.stdout.strip().splitlines()[-1])
                ort_p50s.append(o["p50_ms"]), ort_means.append(o["mean_ms"])
                p50s.append(fig["p50_ms"]), means.append(fig["mean_ms"]), loads.append(fig["load_ms"])
                ort_peak, peak = max(ort_peak, o["peak_mib"]), max(peak, fig["peak_mib"])
            ort_out = np.load(os.path.join(tmp, f"m{i}_ort.npz"))
            ok = True
            # The int8 encoder: its sentence embedding (the last output), whose tolerance allows
            # for onnxruntime's inexact u8s8 products and for rounding flips they cause.
            outputs = range(len(ort_out.files))
            if atol > 1e-4:
                outputs = [len(ort_out.files) - 1]
            for k in outputs:
                want = ort_out[f"arr_{k}"]
                ours = np.fromfile(os.path.join(out_dir, f"output_{k}.bin"), dtype=want.dtype).reshape(want.shape)
                ok &= bool(np.allclose(ours, want, rtol=1e-3, atol=atol))
            batch = next(iter(feeds.values())).shape[0]
            rows.append((name, ort_p50s, p50s, min(ort_means), min(means), min(loads), batch, ok, ort_peak, peak))
            if heavy:
                json_in = os.path.join(tmp, f"m{i}_in.json")
                elem = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
                with open(json_in, "w") as fh:
                    json.dump([{"elem": elem[a.dtype], "shape": list(a.shape), "values": a.ravel().tolist()}
                               for a in feeds.values()], fh)
                res = subprocess.run([worker, "run", "--model", path, "--input", json_in, "--runs", str(runs),
                                      "--device", args.device, "--profile"], check=True, capture_output=True, text=True)
                profiles.append((name, json.loads(res.stdout)["profile"]))

    print(f"\nExecutor benchmark ({args.rounds} rounds of {args.runs} runs each, a tenth on the large models, "
          f"device {args.device}, onnxruntime {ort.__version__}, {os.cpu_count()} cores)\n")
    # Best round's median per side; the ranges show how far the other rounds' medians moved.
    print("| model | onnxruntime p50 ms, best (worst) round | burn p50 ms, best (worst) round | ratio (burn/ort) "
          "| onnxruntime best mean ms | burn best mean ms | burn inferences/s | load ms "
          "| peak MiB ort / burn | outputs match |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    worst = 0.0
    for name, o50s, b50s, o_mean, b_mean, load, batch, ok, ort_peak, peak in rows:
        o50, b50 = min(o50s), min(b50s)
        ratio = b50 / o50
        worst = max(worst, ratio)
        print(f"| {name} | {o50:.3f} ({max(o50s):.3f}) | {b50:.3f} ({max(b50s):.3f}) | {ratio:.2f}x "
              f"| {o_mean:.3f} | {b_mean:.3f} | {batch * 1000 / b50:,.0f} | {load:.1f} "
              f"| {ort_peak:.0f} / {peak:.0f} | {'yes' if ok else 'NO'} |")
    print(f"\nworst ratio: {worst:.2f}x (goal: <= 1.5x on CPU, <= 1.0x on the encoder at batch 1)")
    for name, profile in profiles:
        top = ", ".join(f"{p['op']} {p['ms_per_run']:.2f} ms ({100 * p['share']:.0f}%)" for p in profile[:6])
        print(f"\nwhere the executor's time goes, {name}: {top}")
    if not all(r[7] for r in rows):
        sys.exit("outputs differ from onnxruntime")


if __name__ == "__main__":
    main()
