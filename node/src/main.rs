//! `opg-node`: the OPG collator and full node.
//!
//! Runs as a cumulus collator under a relay chain, or alone with `--dev` (manual seal on a
//! timer with a mocked relay chain). Operators add `--inference`/`--inference-gpu` to run the
//! inference worker in the same process.
#![warn(missing_docs)]
// sc-cli's and sc-service's errors are ~176 bytes, and every node function returns them as
// polkadot-sdk's own nodes do; boxing them here alone would only add noise.
#![allow(clippy::result_large_err)]

mod chain_spec;
mod cli;
mod client;
mod command;
mod dev;
mod inference;
mod rpc;
mod service;

fn main() {
	let code = match command::run() {
		Ok(()) => 0,
		Err(e) => {
			eprintln!("Error: {e:?}");
			1
		},
	};
	// The service has shut down and closed its database. Leave without running C++ static
	// destructors: a RocksDB background thread may still take the mutex of RocksDB's static
	// task scheduler, which exit() would destroy under it, aborting a clean shutdown with
	// "pthread lock: Invalid argument" (facebook/rocksdb#11349; seen once in node/tests).
	use std::io::Write;
	let _ = std::io::stdout().flush();
	let _ = std::io::stderr().flush();
	// SAFETY: _exit ends the process at once; everything Rust owns was dropped above and the
	// standard streams are flushed.
	unsafe { libc::_exit(code) }
}
