# Sourced by scripts/test.sh: every later build of a workspace crate is also a clippy run with
# warnings denied. cargo runs clippy-driver in rustc's place for workspace members only, so the
# ~1,400 dependencies are compiled once, for the tests, rather than a second time in check mode
# by `cargo clippy` (about 15 min of a fresh machine's CI run on 2 cores). clippy-driver compiles
# the members' code as rustc does, without MIR optimisations (LLVM's still run): right for
# tests, not for benchmark figures, which scripts/bench/ builds without this wrapper.
_opg_driver=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)
if [ -z "$_opg_driver" ]; then
  echo "[clippy] clippy-driver not found: install the toolchain's clippy component" >&2
  return 1
fi
export RUSTC_WORKSPACE_WRAPPER="$_opg_driver"
# `cargo clippy -- -D warnings` hands its arguments to the driver in this variable, joined this
# way; the driver records it, so changing it rebuilds the members.
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
unset _opg_driver
