#!/usr/bin/env bash
# Local relay chain + parachain testnets with zombienet (native provider).
#
#   scripts/zombienet.sh install   # relay binaries and the zombienet CLI, into the cache (once)
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
  if [ -x "$tools/bin/polkadot" ] && "$tools/bin/polkadot" --version | grep -q "^polkadot ${polkadot_version%%.*}\." \
    && [ -x "$tools/bin/polkadot-prepare-worker" ] && [ -x "$tools/bin/polkadot-execute-worker" ]; then
    echo "[zombienet] polkadot $("$tools/bin/polkadot" --version | cut -d' ' -f2) already in $tools/bin"
    return
  fi
  echo "[zombienet] cargo install polkadot $polkadot_version (long: hours on 2 cores; resumable)"
  # The binary embeds the westend and rococo runtimes (`*-native`), whose wasm is built with
  # the same toolchain setup as ours (scripts/env.sh); its own target directory keeps the
  # node's build untouched.
  (
    # shellcheck source=scripts/env.sh
    source "$root/scripts/env.sh"
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

case "${1:-}" in
  install)
    install_cli
    install_relay
    ;;
  *)
    echo "usage: scripts/zombienet.sh install" >&2
    exit 2
    ;;
esac
