#!/usr/bin/env bash
# Prints the folder of the reference llama.cpp (npm node-llama-cpp@3.21.1, whose prebuilt
# binaries install offline), installing it once under ~/.cache/opg (≈ 730 MB). For the LLM
# scripts that compare with llama.cpp; not used by CI.
set -euo pipefail
ref="$HOME/.cache/opg/llm/llamacpp"
if [ ! -d "$ref/node_modules/node-llama-cpp" ]; then
  mkdir -p "$ref"
  echo '{"name":"opg-llamacpp-ref","private":true,"type":"module"}' >"$ref/package.json"
  echo "[llamacpp] npm i node-llama-cpp@3.21.1 (≈ 730 MB)" >&2
  (cd "$ref" && npm i -E --no-audit --no-fund node-llama-cpp@3.21.1 >/dev/null)
fi
echo "$ref"
