//! The worker's command-line flags, defined once for both programs that run it: `opg-worker`
//! flattens [`WorkerParams`] into its command line, and `opg-node` flattens it next to its own
//! `--inference` switch (the way sc-cli's `params/*.rs` structs are shared by its commands).
//!
//! The names are the node's (`--inference-gpu`, `--inference-jobs`, `--model-dir`, …). The
//! standalone worker's older spellings (`--gpu`, `--device`, `--jobs`, `--key`, `--key-file`)
//! are aliases, so every flag either program had keeps working, in both.

use std::{
	path::{Path, PathBuf},
	time::Duration,
};

use crate::{
	exec::Device,
	store::StoreConfig,
	tee::{Enclave, NsmAttester},
	worker::WorkerConfig,
};

/// Default of `--inference-jobs`.
pub const DEFAULT_JOBS: usize = 2;
/// Default of `--model-cache-mib`.
pub const DEFAULT_MODEL_CACHE_MIB: u64 = 8192;
/// Default of `--max-model-mib`.
pub const DEFAULT_MAX_MODEL_MIB: u64 = 8192;
/// Default of `--ipfs-gateway`.
pub const DEFAULT_IPFS_GATEWAY: &str = "https://ipfs.io";
/// Default of `--max-execution-secs`.
pub const DEFAULT_MAX_EXECUTION_SECS: u64 = 120;
/// Default of `--max-job-memory-mib` (the executor's [`crate::exec::DEFAULT_JOB_MEMORY`]).
pub const DEFAULT_MAX_JOB_MEMORY_MIB: u64 = (crate::exec::DEFAULT_JOB_MEMORY >> 20) as u64;

/// Default of `--redeem-every`: 10 minutes at 6 s blocks.
pub const DEFAULT_REDEEM_EVERY: u32 = 100;

/// The inference worker's flags, shared by `opg-worker` and `opg-node`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerParams {
	/// Key that signs results: a secret URI (e.g. `//Alice` on a dev chain), or, in
	/// `opg-node`, the public key (hex or SS58) of an `infr` key in the node's keystore.
	/// `opg-node` takes a secret URI on development chains only, and without this flag uses
	/// the keystore's only `infr` key (or `//Alice` on a development chain). `opg-worker`
	/// needs this flag or `--inference-key-file`. Command lines are visible to other users:
	/// prefer the keystore or a key file.
	#[arg(
		long = "inference-key",
		visible_alias = "key",
		value_name = "KEY",
		conflicts_with = "key_file"
	)]
	pub key: Option<String>,

	/// File holding what `--inference-key` would be given (a secret URI or seed, or in
	/// `opg-node` a public key as well).
	#[arg(long = "inference-key-file", visible_alias = "key-file", value_name = "PATH")]
	pub key_file: Option<PathBuf>,

	/// Run models on CUDA: needs a build with the `cuda` feature, an NVIDIA driver and the
	/// CUDA toolkit's NVRTC at run time. In `opg-node` it implies `--inference`.
	#[arg(long = "inference-gpu", visible_alias = "gpu")]
	pub gpu: bool,

	/// CUDA device index used with `--inference-gpu`.
	#[arg(
		long = "inference-device",
		visible_alias = "device",
		value_name = "N",
		default_value_t = 0,
		requires = "gpu"
	)]
	pub device: usize,

	/// Jobs executed at once.
	#[arg(
		long = "inference-jobs",
		visible_alias = "jobs",
		value_name = "N",
		default_value_t = DEFAULT_JOBS
	)]
	pub jobs: usize,

	/// Longest a job may execute, in seconds (the job's deadline may allow less).
	#[arg(long, value_name = "SECS", default_value_t = DEFAULT_MAX_EXECUTION_SECS)]
	pub max_execution_secs: u64,

	/// Most MiB one job's live tensors (input and intermediates; not the weights) may take. A
	/// job that needs more is rejected as input this worker cannot take, not run out of memory.
	#[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_JOB_MEMORY_MIB)]
	pub max_job_memory_mib: u64,

	/// Threads an LLM job's matrix products run on (0: one per core). Results are the same
	/// bits for any count.
	#[arg(long, value_name = "N", default_value_t = 0)]
	pub llm_threads: usize,

	/// Directory of the content-addressed model cache (default: `<base-path>/models`).
	#[arg(long, value_name = "PATH")]
	pub model_dir: Option<PathBuf>,

	/// Evict least recently used models above this many MiB.
	#[arg(long, value_name = "MIB", default_value_t = DEFAULT_MODEL_CACHE_MIB)]
	pub model_cache_mib: u64,

	/// Refuse any model file larger than this many MiB, whatever its release declares (the
	/// download is cut off there too). LLM files are large: a 7B model in Q4 is ≈ 4 GiB.
	#[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_MODEL_MIB)]
	pub max_model_mib: u64,

	/// Gateway for `ipfs://` model URIs.
	#[arg(long, value_name = "URL", default_value = DEFAULT_IPFS_GATEWAY)]
	pub ipfs_gateway: String,

	/// Let releases name `file://` models: regular files under this directory only. Off by
	/// default: a release's URI is chosen by whoever publishes it.
	#[arg(long, value_name = "DIR")]
	pub allow_file_uri: Option<PathBuf>,

	/// Let model downloads reach loopback, private and link-local hosts (a model server on the
	/// operator's own network). Off by default: a release could otherwise point the worker at
	/// its cloud's metadata service or its LAN.
	#[arg(long)]
	pub allow_private_model_hosts: bool,

	/// Also answer TEE-mode jobs as an **insecure** development enclave: a fresh ed25519 key,
	/// attested on chain with documents from the development CA claiming Nitro debug mode's
	/// zero PCRs. Only the `development` chain's policy trusts them; never use it for real work.
	#[arg(long, conflicts_with = "tee_nitro")]
	pub tee_dev: bool,

	/// Also answer TEE-mode jobs as the AWS Nitro enclave this worker runs in: a fresh ed25519
	/// key, attested with documents from the Nitro Security Module (`/dev/nsm`). Fails at start
	/// outside an enclave.
	#[arg(long)]
	pub tee_nitro: bool,

	/// Directory of ZK proving keys (`0x<verifying key hash>.pk`, made by `opg-worker
	/// zk-setup`); ZK-mode jobs of releases whose key is there are proved (default:
	/// `<base-path>/zk-keys`).
	#[arg(long, value_name = "PATH")]
	pub zk_keys: Option<PathBuf>,

	/// Port of the direct path's HTTP API (`GET /v1/models`, `POST /v1/infer`, paid by channel
	/// vouchers: `docs/direct-path.md`); 0 turns it off. A port already taken is logged and the
	/// worker goes on without it.
	#[arg(long, value_name = "PORT", default_value_t = crate::api::DEFAULT_PORT)]
	pub inference_api_port: u16,

	/// Let the HTTP API listen on every interface, not only on localhost.
	#[arg(long)]
	pub inference_api_external: bool,

	/// Blocks between two redemptions of one channel's latest voucher (a closing channel is
	/// redeemed at once). Each redemption commits a batch that holds one of the channel's
	/// `MaxOpenBatches` (12) places for the dispute window (an hour): below 50 blocks at 6 s,
	/// a busy channel runs out of places.
	#[arg(long, value_name = "BLOCKS", default_value_t = DEFAULT_REDEEM_EVERY)]
	pub redeem_every: u32,

	/// The HTTP API's URL as clients reach it (`https://worker.example.com`): advertised on
	/// chain as this worker's endpoint (`Inference::set_endpoint`), where clients look it up.
	#[arg(long, value_name = "URL")]
	pub inference_api_advertise: Option<String>,
}

impl WorkerParams {
	/// The HTTP API's settings, `None` when it is off.
	pub fn api_config(&self) -> Option<crate::api::ApiConfig> {
		if self.inference_api_port == 0 {
			return None;
		}
		let ip = if self.inference_api_external {
			std::net::Ipv4Addr::UNSPECIFIED
		} else {
			std::net::Ipv4Addr::LOCALHOST
		};
		Some(crate::api::ApiConfig {
			listen: (ip, self.inference_api_port).into(),
			budget: std::time::Duration::from_secs(self.max_execution_secs),
			max_connections: crate::api::MAX_CONNECTIONS,
		})
	}

	/// Device the models run on.
	pub fn device(&self) -> Device {
		if self.gpu {
			Device::Cuda(self.device)
		} else {
			Device::Cpu
		}
	}

	/// The worker key as given: `--inference-key`, or the trimmed contents of
	/// `--inference-key-file`; `None` when neither is given.
	pub fn key(&self) -> Result<Option<String>, String> {
		match (&self.key, &self.key_file) {
			(Some(key), _) => Ok(Some(key.clone())),
			(None, Some(path)) => std::fs::read_to_string(path)
				.map(|key| Some(key.trim().to_string()))
				.map_err(|e| format!("reading {}: {e}", path.display())),
			(None, None) => Ok(None),
		}
	}

	/// The model store's configuration; the cache defaults to `<base_path>/models`.
	pub fn store_config(&self, base_path: &Path) -> StoreConfig {
		let dir = self.model_dir.clone().unwrap_or_else(|| base_path.join("models"));
		let mut config = StoreConfig::new(dir);
		config.max_cache_bytes = self.model_cache_mib.saturating_mul(1 << 20);
		config.max_model_bytes = self.max_model_mib.saturating_mul(1 << 20);
		config.ipfs_gateway = self.ipfs_gateway.clone();
		config.file_root = self.allow_file_uri.clone();
		config.allow_private_hosts = self.allow_private_model_hosts;
		config
	}

	/// The job loop's configuration, with its state (the answer journal) in `state_dir`.
	pub fn worker_config(&self, state_dir: impl Into<PathBuf>) -> WorkerConfig {
		let mut config = WorkerConfig::new(state_dir);
		config.device = self.device();
		config.concurrency = self.jobs.max(1);
		config.llm_threads = self.llm_threads;
		config.max_execution = Duration::from_secs(self.max_execution_secs.max(1));
		config.max_job_memory =
			usize::try_from(self.max_job_memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
		config
	}

	/// Directory of the ZK proving keys; defaults to `<base_path>/zk-keys`.
	pub fn zk_keys_dir(&self, base_path: &Path) -> PathBuf {
		self.zk_keys.clone().unwrap_or_else(|| base_path.join("zk-keys"))
	}

	/// The enclave that signs TEE-mode results, if `--tee-dev` or `--tee-nitro` asks for one.
	/// `--tee-nitro` opens the Nitro Security Module, so it fails outside an AWS Nitro
	/// enclave: call this before anything connects.
	pub fn enclave(&self) -> Result<Option<Enclave>, String> {
		if self.tee_nitro {
			return Ok(Some(Enclave::new(NsmAttester::open()?)));
		}
		Ok(self.tee_dev.then(Enclave::dev))
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use clap::Parser;

	/// A command line made of the worker's flags alone.
	#[derive(Debug, Parser)]
	struct Command {
		#[command(flatten)]
		worker: WorkerParams,
	}

	fn parse(args: &[&str]) -> Result<WorkerParams, clap::Error> {
		Command::try_parse_from(std::iter::once("opg-worker").chain(args.iter().copied()))
			.map(|command| command.worker)
	}

	#[test]
	fn the_old_spellings_are_aliases() {
		let new = parse(&[
			"--inference-gpu",
			"--inference-device",
			"1",
			"--inference-jobs",
			"4",
			"--inference-key",
			"//Alice",
		])
		.unwrap();
		let old = parse(&["--gpu", "--device", "1", "--jobs", "4", "--key", "//Alice"]).unwrap();
		assert_eq!(format!("{new:?}"), format!("{old:?}"));
		assert_eq!(new.device(), Device::Cuda(1));
		assert_eq!(new.jobs, 4);
		assert_eq!(new.key().unwrap().as_deref(), Some("//Alice"));
		let file = parse(&["--key-file", "/k"]).unwrap();
		assert_eq!(file.key_file, parse(&["--inference-key-file", "/k"]).unwrap().key_file);
	}

	#[test]
	fn defaults_are_the_library_defaults() {
		let params = parse(&[]).unwrap();
		let base = Path::new("/base");
		let store = params.store_config(base);
		let library = StoreConfig::new(base.join("models"));
		assert_eq!(store.dir, library.dir);
		assert_eq!(store.max_cache_bytes, library.max_cache_bytes);
		assert_eq!(store.ipfs_gateway, library.ipfs_gateway);
		let worker = params.worker_config(base.join("worker"));
		let library = WorkerConfig::new(base.join("worker"));
		assert_eq!(worker.device, library.device);
		assert_eq!(worker.concurrency, library.concurrency);
		assert_eq!(worker.max_execution, library.max_execution);
		assert_eq!(params.zk_keys_dir(base), base.join("zk-keys"));
		assert_eq!(params.key().unwrap(), None);
		assert!(params.enclave().unwrap().is_none());
	}

	#[test]
	fn conflicting_or_incomplete_flags_are_refused() {
		assert!(parse(&["--inference-device", "1"]).is_err(), "a device without --inference-gpu");
		assert!(parse(&["--tee-dev", "--tee-nitro"]).is_err());
		assert!(parse(&["--key", "//Alice", "--key-file", "/k"]).is_err());
	}
}
