#!/usr/bin/env bash
# Local relay chain + parachain testnets with zombienet (native provider).
#
#   scripts/zombienet.sh install   # relay binaries and the zombienet CLI, into the cache (once)
#   scripts/zombienet.sh smoke     # builds opg-node, runs zombienet/smoke.zndsl on local.toml
#   scripts/zombienet.sh spawn     # starts zombienet/local.toml and leaves it running
#   scripts/zombienet.sh spawn zombienet/local-gpu.toml   # the GPU variant (--inference-gpu)
#   scripts/zombienet.sh check     # what CI runs: configs, tests and chain specs agree (no relay)
#
# Nothing is downloaded from GitHub: `zombienet setup` and release pages are not reachable
# here, so the relay binaries (`polkadot`, `polkadot-prepare-worker`,
# `polkadot-execute-worker`, one version) are built from crates.io with `cargo install
# --locked`. The version matches the polkadot-sdk release the parachain is built on
# (stable2609: polkadot 41.0.0, whose polkadot-cli and sc-service are the node's). The build
# takes hours on 2 cores; its target directory is kept in the cache, so an interrupted build
# goes on where it stopped. The CLI comes from npm (@zombienet/cli).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="${OPG_CACHE:-$HOME/.cache/opg}"
polkadot_version=41.0.0
zombienet_version=1.3.138
tools="$cache/tools"

install_relay() {
  # The binaries report the node version (1.25.x); the crate version is in cargo's record.
  if [ -x "$tools/bin/polkadot" ] && [ -x "$tools/bin/polkadot-prepare-worker" ] \
    && [ -x "$tools/bin/polkadot-execute-worker" ] \
    && cargo install --list --root "$tools" | grep -q "^polkadot v$polkadot_version:"; then
    echo "[zombienet] polkadot v$polkadot_version ($("$tools/bin/polkadot" --version)) already in $tools/bin"
    return
  fi
  echo "[zombienet] cargo install polkadot $polkadot_version (long: hours on 2 cores; resumable)"
  # The binary embeds the westend and rococo runtimes (`*-native`), whose wasm is built with
  # the same toolchain setup as ours (scripts/lib/env.sh); its own target directory keeps the
  # node's build untouched.
  (
    # shellcheck source=scripts/lib/env.sh
    source "$root/scripts/lib/env.sh"
    unset SKIP_WASM_BUILD WASM_BUILD_WORKSPACE_HINT
    CARGO_TARGET_DIR="$cache/polkadot-target" cargo install polkadot --version "=$polkadot_version" --locked --root "$tools" \
      --bin polkadot --bin polkadot-prepare-worker --bin polkadot-execute-worker
  )
}

install_cli() {
  local dir="$cache/zombienet-$zombienet_version"
  if [ ! -x "$dir/node_modules/.bin/zombienet" ]; then
    echo "[zombienet] npm install @zombienet/cli@$zombienet_version"
    mkdir -p "$dir"
    # @zombienet/utils asks for `toml` from a GitHub fork, which npm cannot fetch here; the
    # registry's toml (same parser API) takes its place.
    cat > "$dir/package.json" <<JSON
{ "private": true, "dependencies": { "@zombienet/cli": "$zombienet_version" }, "overrides": { "toml": "3.0.0" } }
JSON
    (cd "$dir" && npm install --no-audit --no-fund >/dev/null)
  fi
  echo "[zombienet] $("$dir/node_modules/.bin/zombienet" version 2>/dev/null || echo "zombienet $zombienet_version") in $dir"
}

# Puts the relay binaries, a freshly built opg-node and the CLI on PATH. The collator's
# embedded runtime must be the one chain-specs/ was generated from (node/tests/chain_specs.rs).
prepare_network() {
  install_cli
  install_relay
  # shellcheck source=scripts/lib/env.sh
  source "$root/scripts/lib/env.sh"
  local features=()
  if [ "${1:-}" = gpu ]; then features=(--features cuda); fi
  (cd "$root" && cargo build --release --locked --workspace --bins "${features[@]}")
  export PATH="$tools/bin:$CARGO_TARGET_DIR/release:$cache/zombienet-$zombienet_version/node_modules/.bin:$PATH"
  echo "[zombienet] $(polkadot --version), $(opg-node --version)"
  cd "$root"
}

case "${1:-}" in
  install)
    install_cli
    install_relay
    ;;
  check)
    install_cli
    NODE_PATH="$cache/zombienet-$zombienet_version/node_modules" node "$root/zombienet/check.cjs"
    ;;
  smoke)
    prepare_network
    # smoke.js uses the project's @polkadot/api (tests/js), not zombienet's older one.
    bash "$root/scripts/lib/npm-ci.sh" "$root/tests/js"
    start=$(date +%s)
    zombienet --provider native test zombienet/smoke.zndsl
    echo "[zombienet] smoke test passed in $(($(date +%s) - start)) s"
    ;;
  spawn)
    config=${2:-zombienet/local.toml}
    if [[ "$config" == *gpu* ]]; then prepare_network gpu; else prepare_network; fi
    zombienet --provider native spawn "$config"
    ;;
  *)
    echo "usage: scripts/zombienet.sh install | check | smoke | spawn [CONFIG]" >&2
    exit 2
    ;;
esac
