#!/usr/bin/env bash
# Regenerates llm/tests/fixtures/llamacpp-*.json: llama.cpp's token ids and greedy tokens on
# the test model (scripts/lib/llm-model.sh fetches it), or on the GGUF files named, from npm
# node-llama-cpp@3.21.1, whose prebuilt binaries install offline. Installed once under
# ~/.cache/opg (≈ 730 MB).
# --cases FILE: the texts and prompts (default llm/tests/fixtures/cases.json, written for
# SmolLM2's chat format; cases-gemma3.json has raw prompts for base models).
#   scripts/regen/llamacpp-ref.sh [--cases FILE] [MODEL.gguf ...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cases="$root/llm/tests/fixtures/cases.json"
if [ "${1:-}" = --cases ]; then cases=$(realpath "$2"); shift 2; fi
models=("$@")
[ ${#models[@]} -gt 0 ] || models=("$(bash "$root/scripts/lib/llm-model.sh")")
ref=$(bash "$root/scripts/lib/llamacpp.sh")
cp "$root/scripts/regen/llamacpp-ref.mjs" "$ref/"
for model in "${models[@]}"; do
  node "$ref/llamacpp-ref.mjs" "$model" "$cases" \
    "$root/llm/tests/fixtures/llamacpp-$(basename "$model" .gguf).json"
done
