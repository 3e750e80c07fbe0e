#!/usr/bin/env bash
# The LLM engine against llama.cpp on every tensor type: requantizes the test model with
# llama.cpp's own quantizer (F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K_M, Q5_K_M, Q6_K), then
# runs the ignored test that compares greedy tokens with llama.cpp's (llm/tests/fixtures/,
# from scripts/regen/llamacpp-ref.sh). Not part of CI: it installs node-llama-cpp (≈ 730 MB).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/env.sh
source scripts/lib/env.sh
model=$(bash scripts/lib/llm-model.sh)
derived="$HOME/.cache/opg/models/derived"
bash scripts/lib/llamacpp.sh >/dev/null  # requantize.py loads its libllama
mkdir -p "$derived"
for t in F16 BF16 Q8_0 Q4_0 Q5_0 Q5_1 Q4_K_M Q5_K_M Q6_K; do
  f="$derived/$(basename "$model" .Q4_1.gguf).$t.gguf"
  [ -f "$f" ] || python3 scripts/regen/requantize.py "$model" "$derived" "$t" >/dev/null 2>&1
done
OPG_LLM_DERIVED="$derived" cargo test --release --locked -p opg-llm --test llamacpp -- --ignored --nocapture
