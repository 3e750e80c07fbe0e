# Sourced by the project's scripts: exports the build environment that scripts/setup.sh prepared.
# Persistent target dir outside the clone, so a fresh clone does not rebuild ~1,400 crates.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/opg/target}"
# With the target dir outside the clone, the wasm builder needs to be told where Cargo.lock is,
# or it resolves the runtime's dependencies afresh.
export WASM_BUILD_WORKSPACE_HINT="${WASM_BUILD_WORKSPACE_HINT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
if command -v rustup >/dev/null && rustup toolchain list 2>/dev/null | grep -q '^deb' \
   && ls /usr/lib/rustlib/wasm32v1-none/lib/libcore-*.rlib >/dev/null 2>&1 \
   && ! rustup target list --installed 2>/dev/null | grep -qx wasm32v1-none; then
  export WASM_BUILD_TOOLCHAIN="${WASM_BUILD_TOOLCHAIN:-deb}"
  export WASM_BUILD_STD="${WASM_BUILD_STD:-1}"
  _opg_lld="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin"
  case ":$PATH:" in *":$_opg_lld:"*) ;; *) export PATH="$_opg_lld:$PATH" ;; esac
  unset _opg_lld
fi
