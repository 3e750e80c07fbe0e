//! The in-process inference worker: command-line flags and the service hook.
//!
//! The worker (crate `offchain-worker/`) plugs in through [`start`]. Until it is compiled into
//! the node, asking for it is reported loudly at start-up and the node runs without it.

use std::{path::PathBuf, sync::Arc};

use polkadot_sdk::*;
use prometheus_endpoint::Registry;
use sc_service::SpawnTaskHandle;
use sp_keystore::KeystorePtr;

use crate::service::{ParachainClient, TransactionPool};

/// Inference worker options of `opg-node`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InferenceArgs {
	/// Run the inference worker in this node, on the CPU backend: it executes the jobs assigned
	/// to the worker key and submits the results as signed extrinsics.
	#[arg(long)]
	pub inference: bool,

	/// Run the inference worker on the CUDA backend (implies `--inference`). Needs an NVIDIA
	/// driver and the CUDA toolkit's NVRTC at run time.
	#[arg(long)]
	pub inference_gpu: bool,

	/// CUDA device index used with `--inference-gpu`.
	#[arg(long, value_name = "N", default_value_t = 0, requires = "inference_gpu")]
	pub inference_device: usize,

	/// Directory of the content-addressed model cache (default: `<base-path>/models`).
	#[arg(long, value_name = "PATH")]
	pub model_dir: Option<PathBuf>,

	/// Key that signs results: a public key (hex or SS58) of an `infr` key in the node's
	/// keystore, or a secret URI such as `//Alice` (dev chains only).
	#[arg(long, value_name = "KEY")]
	pub inference_key: Option<String>,
}

impl InferenceArgs {
	/// Whether the operator asked for the worker.
	pub fn enabled(&self) -> bool {
		self.inference || self.inference_gpu
	}

	/// Backend in words, for logs.
	pub fn backend(&self) -> String {
		if self.inference_gpu {
			format!("CUDA device {}", self.inference_device)
		} else {
			"CPU".into()
		}
	}
}

/// What the worker gets from the node it runs in.
#[allow(dead_code)] // Read by the worker once it is compiled in.
pub struct NodeHandles {
	/// Client: block notifications and runtime API calls (jobs assigned to the worker).
	pub client: Arc<ParachainClient>,
	/// Pool that takes the worker's signed extrinsics.
	pub transaction_pool: Arc<TransactionPool>,
	/// Keystore holding the worker key.
	pub keystore: KeystorePtr,
	/// Where the worker spawns its tasks (shut down with the node).
	pub spawn_handle: SpawnTaskHandle,
	/// The node's Prometheus registry, for the worker's metrics.
	pub prometheus_registry: Option<Registry>,
}

/// Starts the in-process worker if the flags ask for it.
pub fn start(args: &InferenceArgs, _node: NodeHandles) -> Result<(), sc_service::Error> {
	if !args.enabled() {
		return Ok(());
	}
	log::error!(
		target: "inference",
		"🧠 --inference{} was given, but no inference worker is compiled into this opg-node \
		 build: this node will NOT execute jobs (backend {}, model dir {:?}, key {:?}).",
		if args.inference_gpu { "-gpu" } else { "" },
		args.backend(),
		args.model_dir,
		args.inference_key.as_deref().map(|_| "<set>"),
	);
	Ok(())
}
