#!/usr/bin/env bash
# Copies the repository's models (models/*/*.onnx) into a worker's model cache, named by their
# blake2-256 as the cache expects, so that `--inference` on a dev chain runs them without
# downloading from the presets' source URIs. Usage: scripts/lib/seed-models.sh <model-dir>
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:?usage: seed-models.sh <model-dir>}
mkdir -p "$dir"
for model in "$root"/models/*/*.onnx; do
  hash=$(b2sum -l 256 "$model" | cut -d' ' -f1)
  if [ ! -f "$dir/$hash.onnx" ]; then
    cp "$model" "$dir/.seed-$hash"
    mv -f "$dir/.seed-$hash" "$dir/$hash.onnx"
  fi
done
