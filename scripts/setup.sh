#!/usr/bin/env bash
# Installs what building and testing OPG needs on a fresh Debian/Ubuntu machine.
# Idempotent and non-interactive: every step first checks whether it is already done.
# Wasm toolchain: rustup's wasm32v1-none + rust-src when rustup can provide them; otherwise (offline
# machines where `rustup target add` cannot reach its servers) Debian's rustc-web with core/alloc
# prebuilt for wasm32v1-none. `scripts/lib/env.sh` then exports the matching variables.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { printf '[setup] %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- system packages -------------------------------------------------------------------------
apt_pkgs=(build-essential clang libclang-dev protobuf-compiler pkg-config libssl-dev git curl ca-certificates time unzip)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Rust host toolchain -----------------------------------------------------------------------
command -v cargo >/dev/null || { log "cargo not found: install rustup first"; exit 1; }

# --- wasm toolchain ------------------------------------------------------------------------------
wasm_target=wasm32v1-none
deb_sysroot=/usr/lib/rustlib/$wasm_target/lib
have_rustup_wasm() {
  command -v rustup >/dev/null || return 1
  rustup target list --installed 2>/dev/null | grep -qx "$wasm_target" || return 1
  rustup component list --installed 2>/dev/null | grep -q '^rust-src'
}
have_deb_wasm() {
  command -v rustup >/dev/null && rustup toolchain list 2>/dev/null | grep -q '^deb' \
    && ls "$deb_sysroot"/libcore-*.rlib >/dev/null 2>&1 && ls "$deb_sysroot"/liballoc-*.rlib >/dev/null 2>&1
}

# OPG_FORCE_DEB_WASM=1 takes the Debian route even where rustup works (to test that route).
use_deb=0
if have_deb_wasm; then
  log "wasm toolchain: Debian rustc-web with prebuilt $wasm_target core/alloc (already set up)"
elif [ "${OPG_FORCE_DEB_WASM:-0}" = 1 ]; then
  use_deb=1
elif have_rustup_wasm; then
  log "wasm toolchain: rustup $wasm_target + rust-src (already installed)"
elif command -v rustup >/dev/null && timeout "${OPG_RUSTUP_TIMEOUT:-45}" rustup target add "$wasm_target" >/dev/null 2>&1 \
     && timeout "${OPG_RUSTUP_TIMEOUT:-45}" rustup component add rust-src >/dev/null 2>&1; then
  log "wasm toolchain: installed rustup $wasm_target + rust-src"
else
  use_deb=1
fi
if [ "${use_deb:-0}" = 1 ]; then
  log "using Debian's rustc-web for $wasm_target"
  deb_pkgs=(rustc-web cargo-web rust-web-src)
  missing=()
  for p in "${deb_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  rustup toolchain list | grep -q '^deb' || rustup toolchain link deb /usr
  # Build core/alloc once from Debian's std sources; copying them into the sysroot makes the
  # target count as installed for substrate-wasm-builder's checks.
  tmp=$(mktemp -d)
  mkdir -p "$tmp/src"
  cat >"$tmp/Cargo.toml" <<'TOML'
[package]
name = "opg-wasm-std"
version = "0.0.0"
edition = "2021"
[lib]
path = "src/lib.rs"
TOML
  cat >"$tmp/src/lib.rs" <<'RS'
#![no_std]
// Only here to make -Zbuild-std compile core and alloc for the target.
extern crate alloc;
pub fn len(v: &alloc::vec::Vec<u8>) -> usize { v.len() }
RS
  (cd "$tmp" && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$tmp/target" cargo +deb build -q --release \
      --target "$wasm_target" -Zbuild-std=core,alloc)
  $SUDO mkdir -p "$deb_sysroot"
  for lib in core alloc compiler_builtins; do
    $SUDO cp "$tmp/target/$wasm_target/release/deps/lib$lib-"*.rlib "$deb_sysroot/"
  done
  rm -rf "$tmp"
  have_deb_wasm || { log "failed to set up the Debian wasm toolchain"; exit 1; }
  log "wasm toolchain: Debian rustc-web ready"
fi

# --- node.js (for the @polkadot/api tests) --------------------------------------------------
if ! command -v node >/dev/null; then
  log "installing nodejs/npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
# --- ONNX conformance data (the onnx wheel ships the backend test models) --------------------
# Pinned: offchain-worker/tests/conformance-baseline.txt lists models of this version's data.
onnx_version=1.23.2
if ! python3 -c "import onnx, sys; sys.exit(onnx.__version__ != '$onnx_version')" 2>/dev/null; then
  command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 || {
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-pip >/dev/null
  }
  log "installing onnx==$onnx_version (pip)"
  python3 -m pip install -q "onnx==$onnx_version" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "onnx==$onnx_version"
fi
# --- onnxruntime: writes the int8 export of the encoder test model (below) -------------------
ort_version=1.32.0
if ! python3 -c "import onnxruntime, sys; sys.exit(onnxruntime.__version__ != '$ort_version')" 2>/dev/null; then
  log "installing onnxruntime==$ort_version (pip)"
  python3 -m pip install -q "onnxruntime==$ort_version" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "onnxruntime==$ort_version"
fi
# --- onnxconverter-common: writes the float16 export of the encoder test model (below) --------
occ_version=1.16.0
if ! python3 -c "import onnxconverter_common as o, sys; sys.exit(o.__version__ != '$occ_version')" 2>/dev/null; then
  log "installing onnxconverter-common==$occ_version (pip)"
  python3 -m pip install -q "onnxconverter-common==$occ_version" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "onnxconverter-common==$occ_version"
fi
# --- the OpenAI Python client: the direct path's proxy test (scripts/client/openai-check.py) --
openai_version=3.51.0
if ! python3 -c "import openai, sys; sys.exit(openai.__version__ != '$openai_version')" 2>/dev/null; then
  log "installing openai==$openai_version (pip)"
  python3 -m pip install -q "openai==$openai_version" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "openai==$openai_version"
fi
# --- the executor's real-model tests: MiniLM-L3 fp32, int8 and fp16, cached outside the clone -
log "encoder test models: $(bash "$here/lib/encoder-model.sh")"
# --- the LLM engine's test models (llm/tests): SmolLM2-135M-Instruct and Gemma 3 270M, cached
# outside the clone
log "LLM test models: $(bash "$here/lib/llm-model.sh") $(bash "$here/lib/llm-model.sh" gemma3)"
log "done"
