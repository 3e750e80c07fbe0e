//! Command line of `opg-node`.

use std::path::PathBuf;

use opg_worker::cli::WorkerParams;
use polkadot_sdk::*;

/// Sub-commands of the node.
// Parsed once at start; boxing the large sc-cli commands would gain nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
	/// Build a chain specification (`--chain dev|local|PATH`, `--raw` for the raw form).
	BuildSpec(sc_cli::BuildSpecCmd),

	/// Validate blocks.
	CheckBlock(sc_cli::CheckBlockCmd),

	/// Export blocks.
	ExportBlocks(sc_cli::ExportBlocksCmd),

	/// Export the state of a given block into a chain spec.
	ExportState(sc_cli::ExportStateCmd),

	/// Import blocks.
	ImportBlocks(sc_cli::ImportBlocksCmd),

	/// Revert the chain to a previous state.
	Revert(sc_cli::RevertCmd),

	/// Remove the whole chain (parachain and embedded relay chain databases).
	PurgeChain(cumulus_client_cli::PurgeChainCmd),

	/// Export the genesis head data of the parachain (for registering it on the relay chain).
	#[command(alias = "export-genesis-state")]
	ExportGenesisHead(cumulus_client_cli::ExportGenesisHeadCommand),

	/// Export the genesis wasm of the parachain.
	ExportGenesisWasm(cumulus_client_cli::ExportGenesisWasmCommand),

	/// Key management: generate, inspect, insert keys (session keys, the worker key).
	#[command(subcommand)]
	Key(sc_cli::KeySubcommand),

	/// Benchmarks (pallet, storage, block, machine, overhead).
	#[command(subcommand)]
	Benchmark(frame_benchmarking_cli::BenchmarkCmd),
}

const AFTER_HELP_EXAMPLE: &str = color_print::cstr!(
	r#"<bold><underline>Examples:</></>
   <bold>opg-node --dev</>
           Single-machine dev chain: blocks every 3 s, RPC on ws://127.0.0.1:9944.
   <bold>opg-node --dev --inference</>
           Same, with the inference worker (CPU) in the node.
   <bold>opg-node --collator --chain chain-specs/opg-local-raw.json -- --chain westend-local.json</>
           Collator of the local testnet; relay chain arguments follow `--`.
 "#
);

/// Command line of `opg-node`.
#[derive(Debug, clap::Parser)]
#[command(
	propagate_version = true,
	args_conflicts_with_subcommands = true,
	subcommand_negates_reqs = true,
	after_help = AFTER_HELP_EXAMPLE
)]
pub struct Cli {
	/// Sub-command to run; none runs the node.
	#[command(subcommand)]
	pub subcommand: Option<Subcommand>,

	/// Parameters shared by cumulus nodes (`--collator`, `--relay-chain-rpc-url`, ...).
	#[command(flatten)]
	pub run: cumulus_client_cli::RunCmd,

	/// Dev mode: produce (and finalize) a block every `MS` milliseconds with a mocked relay
	/// chain, without connecting to any network. `--dev` alone means 3000 ms.
	#[arg(long, value_name = "MS")]
	pub dev_block_time: Option<u64>,

	/// The in-process inference worker.
	#[command(flatten)]
	pub inference: InferenceArgs,

	/// Disable the hardware benchmarks run at start.
	#[arg(long)]
	pub no_hardware_benchmarks: bool,

	/// Relay chain arguments, after `--`.
	#[arg(raw = true)]
	pub relay_chain_args: Vec<String>,
}

/// Inference worker options of `opg-node`: the `--inference` switch and the worker's own flags,
/// which are `opg-worker`'s too.
#[derive(Debug, Clone, clap::Args)]
pub struct InferenceArgs {
	/// Run the inference worker in this node, on the CPU backend: it executes the jobs assigned
	/// to the worker key and submits the results as signed extrinsics.
	#[arg(long)]
	pub inference: bool,

	/// The worker's flags (`--inference-gpu`, `--inference-device`, `--inference-jobs`,
	/// `--inference-key`, `--model-dir`, `--tee-dev`, `--zk-keys`, …), defined once in
	/// `opg_worker::cli` for both programs.
	#[command(flatten)]
	pub worker: WorkerParams,
}

impl InferenceArgs {
	/// Whether the operator asked for the worker (`--inference-gpu` implies `--inference`).
	pub fn enabled(&self) -> bool {
		self.inference || self.worker.gpu
	}
}

/// Block time of `--dev` when `--dev-block-time` is not given.
pub const DEFAULT_DEV_BLOCK_TIME_MS: u64 = 3000;

impl Cli {
	/// Block time of the dev mode, if the node runs in dev mode.
	pub fn dev_block_time(&self) -> Option<u64> {
		self.dev_block_time
			.or_else(|| self.run.base.shared_params.is_dev().then_some(DEFAULT_DEV_BLOCK_TIME_MS))
	}
}

/// The relay chain part of the command line (after `--`).
#[derive(Debug)]
pub struct RelayChainCli {
	/// Relay chain node arguments.
	pub base: polkadot_cli::RunCmd,
	/// Relay chain id from the parachain's chain spec.
	pub chain_id: Option<String>,
	/// Base path of the embedded relay chain node.
	pub base_path: Option<PathBuf>,
}

impl RelayChainCli {
	/// Parses the relay chain arguments with the parachain's configuration.
	pub fn new<'a>(
		para_config: &sc_service::Configuration,
		relay_chain_args: impl Iterator<Item = &'a String>,
	) -> Self {
		let extension = crate::chain_spec::Extensions::try_get(&*para_config.chain_spec);
		let chain_id = extension.map(|e| e.relay_chain.clone());
		let base_path = para_config.base_path.path().join("polkadot");
		Self {
			base_path: Some(base_path),
			chain_id,
			base: clap::Parser::parse_from(relay_chain_args),
		}
	}
}
