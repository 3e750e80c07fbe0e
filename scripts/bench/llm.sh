#!/usr/bin/env bash
# LLM generation speed, ours against llama.cpp's, on the same GGUF, prompt, greedy decoding
# and thread count, in one go on this machine: prefill and decode tokens/s, the ratio, peak
# memory (max RSS of each process), over several rounds.
#   scripts/bench/llm.sh [--model FILE.gguf] [--prompt TEXT] [--threads N] [--tokens N] [--rounds N]
# The default prompt is SmolLM2's chat format (the default model's); give a base model such
# as Gemma 3 270M (scripts/lib/llm-model.sh gemma3) plain text.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/env.sh
source scripts/lib/env.sh
model="" threads=$(nproc) tokens=128 rounds=3
prompt=$'<|im_start|>user\nWrite a long story about a lighthouse keeper who finds a message in a bottle.<|im_end|>\n<|im_start|>assistant\n'
while [ $# -gt 0 ]; do
  case $1 in
    --model) model=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: llm.sh [--model FILE.gguf] [--prompt TEXT] [--threads N] [--tokens N] [--rounds N]" >&2; exit 2 ;;
  esac
done
[ -n "$model" ] || model=$(bash scripts/lib/llm-model.sh)
ref=$(bash scripts/lib/llamacpp.sh)
cp scripts/bench/llm-llamacpp.mjs "$ref/"
# Benchmarks build without the CI's clippy wrapper (scripts/lib/clippy.sh): rustc's own codegen.
env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS cargo build --release --locked -q -p opg-worker --bin opg-worker
worker="$CARGO_TARGET_DIR/release/opg-worker"
echo "model $(basename "$model"), $threads threads, up to $tokens tokens, greedy; $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
printf '%-6s %-10s %12s %12s %12s %10s\n' round engine "prefill t/s" "decode t/s" "tokens" "RSS MiB"
for r in $(seq "$rounds"); do
  ours=$( { /usr/bin/time -f '%M' "$worker" generate --model "$model" --prompt "$prompt" --max-tokens "$tokens" \
    --threads "$threads" --json 2>"$CARGO_TARGET_DIR/llm-bench.rss"; } )
  rss_ours=$(tail -1 "$CARGO_TARGET_DIR/llm-bench.rss")
  theirs=$( { /usr/bin/time -f '%M' node "$ref/llm-llamacpp.mjs" "$model" "$prompt" "$tokens" "$threads" \
    2>"$CARGO_TARGET_DIR/llm-bench.rss"; } )
  rss_theirs=$(tail -1 "$CARGO_TARGET_DIR/llm-bench.rss")
  python3 - "$r" "$ours" "$theirs" "$rss_ours" "$rss_theirs" <<'PY'
import json, sys
r, o, t, ro, rt = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ot = o["timings"]
print(f'{r:<6} {"opg-llm":<10} {ot["prefill_tokens_per_s"]:12.1f} {ot["decode_tokens_per_s"]:12.1f} {o["completion_tokens"]:12d} {ro/1024:10.0f}')
print(f'{r:<6} {"llama.cpp":<10} {t["prefill_tokens_per_s"]:12.1f} {t["decode_tokens_per_s"]:12.1f} {t["completion_tokens"]:12d} {rt/1024:10.0f}')
a, b = o["token_ids"], t["token_ids"]
same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
print(f'{r:<6} {"ratio":<10} {ot["prefill_tokens_per_s"]/t["prefill_tokens_per_s"]:11.2f}x {ot["decode_tokens_per_s"]/t["decode_tokens_per_s"]:11.2f}x   same first tokens: {same} of {max(len(a), len(b))}')
PY
done
