#!/usr/bin/env bash
# The style gates, run first by scripts/test.sh (and on their own before a commit):
#   rustfmt   the house style (.rustfmt.toml; nightly rustfmt, whose options it uses)
#   taplo     the TOML manifests' format (.taplo.toml; npm @taplo/cli, pinned in scripts/lib/taplo)
#   clippy    every crate and target, the CUDA backend included, warnings denied
# `scripts/lint.sh fix` rewrites what rustfmt and taplo would refuse, then checks clippy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/env.sh
source scripts/lib/env.sh
mode=${1:-check}
case $mode in check) check=(--check) ;; fix) check=() ;; *) echo "usage: lint.sh [check|fix]" >&2; exit 2 ;; esac

# The standalone crates (fuzz targets, the wasm benchmark) have workspaces of their own.
manifests=(Cargo.toml fuzz/Cargo.toml scripts/bench/wasm/Cargo.toml)
if ! rustup run nightly rustfmt --version >/dev/null 2>&1; then
  echo "[lint] rustfmt: a nightly toolchain with rustfmt is needed (.rustfmt.toml uses unstable options)" >&2
  exit 1
fi
echo "[lint] rustfmt ($(rustup run nightly rustfmt --version))"
for m in "${manifests[@]}"; do
  cargo +nightly fmt --all --manifest-path "$m" -- "${check[@]}"
done

bash scripts/lib/npm-ci.sh scripts/lib/taplo
echo "[lint] taplo $(scripts/lib/taplo/node_modules/.bin/taplo --version)"
if [ "$mode" = fix ]; then
  RUST_LOG=warn scripts/lib/taplo/node_modules/.bin/taplo fmt
else
  RUST_LOG=warn scripts/lib/taplo/node_modules/.bin/taplo fmt --check
fi

# Release profile: build scripts and proc-macros are shared with the test build (which runs
# next), and this one check-mode pass also stands for the CUDA backend's compile check.
echo "[lint] cargo clippy --workspace --all-targets --features opg-worker/cuda"
cargo clippy --release --locked --workspace --all-targets --features opg-worker/cuda -q -- -D warnings
echo "[lint] ok"
