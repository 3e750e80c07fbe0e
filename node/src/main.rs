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

fn main() -> polkadot_sdk::sc_cli::Result<()> {
	command::run()
}
