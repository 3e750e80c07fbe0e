#!/usr/bin/env python3
"""Executor benchmark: OPG's burn interpreter vs onnxruntime on the same ONNX files and inputs.

Builds a few models (the demo MLP, an MNIST-sized MLP and CNN at batch 1 and 32, seeded
random weights), runs each in onnxruntime and in `opg-worker`'s bench example, checks the
outputs agree (rtol 1e-3 / atol 1e-4), and prints a latency / throughput ratio table.

  pip install onnx onnxruntime numpy
  python3 scripts/bench/executor.py [--runs 100] [--rounds 5] [--device cpu|cuda:0] [--threads N]

Each round times onnxruntime and then the executor, `--runs` runs each; a side's figure is
its best round's median, so a round slowed by a noisy neighbour on a shared VM does not
decide the ratio (the spread of the round medians is printed too).
`--threads` sets onnxruntime's intra-op threads (default: all cores, like the executor's pool).
Figures are machine-specific: quote them with the machine they came from.
"""
import argparse, json, os, subprocess, sys, tempfile, time

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


def time_ort(path, feeds, runs, threads):
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
    return out, sum(times) / runs, times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--bench", default=None, help="path of the built bench example")
    args = ap.parse_args()

    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/opg/target"))
    bench = args.bench or os.path.join(target, "release", "examples", "bench")
    if not os.path.exists(bench):
        features = ["--features", "cuda"] if args.device.startswith("cuda") else []
        subprocess.run(["cargo", "build", "--release", "-p", "opg-worker", "--example", "bench", *features],
                       cwd=ROOT, check=True)

    rng = np.random.default_rng(7)
    demo = onnx.load(os.path.join(ROOT, "models", "demo", "mlp-classifier.onnx"))
    cases = [("demo-mlp 4-8-3 b1", demo, [(1, 4)])]
    for b in (1, 32):
        cases.append((f"mlp 784-512-256-10 b{b}",) + mlp([784, 512, 256, 10], b, 1))
        cases.append((f"cnn lenet 28x28 b{b}",) + cnn(b, 2))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, model, shapes) in enumerate(cases):
            path = os.path.join(tmp, f"m{i}.onnx")
            onnx.save(model, path)
            inputs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
            input_files = []
            for j, (arr, spec) in enumerate(zip(inputs, model.graph.input)):
                f = os.path.join(tmp, f"m{i}_in{j}.pb")
                with open(f, "wb") as fh:
                    fh.write(numpy_helper.from_array(arr, spec.name).SerializeToString())
                input_files.append(f)
            feeds = {spec.name: arr for arr, spec in zip(inputs, model.graph.input)}
            out_dir = os.path.join(tmp, f"m{i}_out")
            ort_p50s, ort_means, p50s, means, loads = [], [], [], [], []
            for _ in range(args.rounds):
                ort_out, ort_mean, ort_p50 = time_ort(path, feeds, args.runs, args.threads)
                res = subprocess.run([bench, path, *input_files, "--runs", str(args.runs), "--device", args.device,
                                      "--out", out_dir], check=True, capture_output=True, text=True)
                fig = json.loads(res.stdout.strip().splitlines()[-1])
                ort_p50s.append(ort_p50), ort_means.append(ort_mean)
                p50s.append(fig["p50_ms"]), means.append(fig["mean_ms"]), loads.append(fig["load_ms"])
            ours = np.fromfile(os.path.join(out_dir, "output_0.bin"), dtype=np.float32).reshape(ort_out[0].shape)
            ok = np.allclose(ours, ort_out[0], rtol=1e-3, atol=1e-4)
            batch = shapes[0][0]
            rows.append((name, ort_p50s, p50s, min(ort_means), min(means), min(loads), batch, ok))

    print(f"\nExecutor benchmark ({args.rounds} rounds of {args.runs} runs each, device {args.device}, "
          f"onnxruntime {ort.__version__}, {os.cpu_count()} cores)\n")
    # Best round's median per side; the ranges show how far the other rounds' medians moved.
    print("| model | onnxruntime p50 ms, best (worst) round | burn p50 ms, best (worst) round | ratio (burn/ort) "
          "| onnxruntime best mean ms "
          "| burn best mean ms | burn inferences/s | load ms | outputs match |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    worst = 0.0
    for name, o50s, b50s, o_mean, b_mean, load, batch, ok in rows:
        o50, b50 = min(o50s), min(b50s)
        ratio = b50 / o50
        worst = max(worst, ratio)
        print(f"| {name} | {o50:.3f} ({max(o50s):.3f}) | {b50:.3f} ({max(b50s):.3f}) | {ratio:.2f}x "
              f"| {o_mean:.3f} | {b_mean:.3f} | {batch * 1000 / b50:,.0f} | {load:.1f} | {'yes' if ok else 'NO'} |")
    print(f"\nworst ratio: {worst:.2f}x (goal: <= 1.5x on CPU)")
    if not all(r[-1] for r in rows):
        sys.exit("outputs differ from onnxruntime")


if __name__ == "__main__":
    main()
