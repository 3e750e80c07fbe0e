#!/usr/bin/env bash
# Regenerates llm/tests/fixtures/llamacpp-*.json: llama.cpp's token ids and greedy tokens on
# the test model (scripts/lib/llm-model.sh fetches it), or on the GGUF files named, from npm
# node-llama-cpp@3.21.1, whose prebuilt binaries install offline. Installed once under
# ~/.cache/opg (≈ 730 MB).
#   scripts/regen/llamacpp-ref.sh [MODEL.gguf ...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
models=("$@")
[ ${#models[@]} -gt 0 ] || models=("$(bash "$root/scripts/lib/llm-model.sh")")
ref=$(bash "$root/scripts/lib/llamacpp.sh")
cp "$root/scripts/regen/llamacpp-ref.mjs" "$ref/"
for model in "${models[@]}"; do
  node "$ref/llamacpp-ref.mjs" "$model" "$root/llm/tests/fixtures/cases.json" \
    "$root/llm/tests/fixtures/llamacpp-$(basename "$model" .gguf).json"
done
