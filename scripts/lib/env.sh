# Sourced by the project's scripts: exports the build environment that scripts/setup.sh prepared.
# Persistent target dir outside the clone, so a fresh clone does not rebuild ~1,400 crates.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/opg/target}"
# Build time on a fresh machine (2 cores), with nothing lost that the project uses:
# - OpenSSL (pulled in by litep2p's WebRTC transport) links the system library that
#   scripts/setup.sh installs instead of compiling its vendored copy (≈ 130 s of one core);
# - the storage benchmark's test runtime is not compiled to wasm (≈ 190 s): only
#   `opg-node benchmark storage` in its PoV-validation mode needs it, and OPG's weights come
#   from `benchmark pallet` (scripts/regen/benchmarks.sh).
export OPENSSL_NO_VENDOR="${OPENSSL_NO_VENDOR:-1}"
export SKIP_FRAME_STORAGE_ACCESS_TEST_RUNTIME_WASM_BUILD="${SKIP_FRAME_STORAGE_ACCESS_TEST_RUNTIME_WASM_BUILD:-1}"
# With the target dir outside the clone, the wasm builder needs to be told where Cargo.lock is,
# or it resolves the runtime's dependencies afresh.
export WASM_BUILD_WORKSPACE_HINT="${WASM_BUILD_WORKSPACE_HINT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
if command -v rustup >/dev/null && rustup toolchain list 2>/dev/null | grep -q '^deb' \
   && ls /usr/lib/rustlib/wasm32v1-none/lib/libcore-*.rlib >/dev/null 2>&1 \
   && ! rustup target list --installed 2>/dev/null | grep -qx wasm32v1-none; then
  export WASM_BUILD_TOOLCHAIN="${WASM_BUILD_TOOLCHAIN:-deb}"
  export WASM_BUILD_STD="${WASM_BUILD_STD:-1}"
  _opg_lld="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin"
  case ":$PATH:" in *":$_opg_lld:"*) ;; *) export PATH="$_opg_lld:$PATH" ;; esac
  unset _opg_lld
fi
