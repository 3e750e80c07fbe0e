//! `opg-node`: the OPG collator and full node.
//!
//! Runs as a cumulus collator under a relay chain, or alone with `--dev` (manual seal on a
//! timer with a mocked relay chain). Operators add `--inference`/`--inference-gpu` to run the
//! inference worker in the same process.
#![warn(missing_docs)]

mod chain_spec;
mod cli;
mod command;
mod dev;
mod inference;
mod rpc;
mod service;

fn main() -> polkadot_sdk::sc_cli::Result<()> {
	command::run()
}
