#!/usr/bin/env bash
# Submits an inference job with @polkadot/api and prints the decoded output
# (scripts/client/infer.mjs; installs its npm packages on first use). Examples:
#   scripts/infer.sh                 # classify the first digit of models/digits/reference.json
#   scripts/infer.sh --case 3 --json
#   scripts/infer.sh --release 0 --values 5.1,3.5,1.4,0.2 --shape 1,4 --ws ws://127.0.0.1:9944
#   scripts/infer.sh --chat "What is the capital of France?"   # SmolLM2 on the dev chain
#   scripts/infer.sh --chat "Write a haiku" --temperature 0.7 --seed 7 --max-tokens 48
#   scripts/infer.sh --embed "The cat sits outside." --compare "A cat is sitting out of doors."
set -euo pipefail
cd "$(dirname "$0")/client"
bash ../lib/npm-ci.sh .
exec node infer.mjs "$@"
