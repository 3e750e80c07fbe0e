//! `opg-worker`: the inference worker as its own process, for GPU machines that do not run a
//! node. It follows any OPG node over JSON-RPC (`--rpc ws://…`), reconnects when the node goes
//! away, and serves Prometheus metrics on its own port.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use clap::Parser;
use opg_worker::{
	chain::{rpc::RpcChain, Signer},
	exec::Device,
	metrics::Metrics,
	store::{ModelStore, StoreConfig},
	worker::{Worker, WorkerConfig},
};
use polkadot_sdk::sp_core::{sr25519, Pair};

/// OPG inference worker: executes the jobs assigned to its account and answers them with
/// signed extrinsics.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Args {
	#[command(subcommand)]
	command: Option<Command>,

	/// WebSocket RPC endpoint of an OPG node.
	#[arg(long, value_name = "URL", default_value = "ws://127.0.0.1:9944")]
	rpc: String,

	/// Secret URI of the worker key (e.g. `//Alice` on a dev chain). Prefer `--key-file`
	/// elsewhere: command lines are visible to other users.
	#[arg(
		long,
		value_name = "SURI",
		conflicts_with = "key_file",
		required_unless_present = "key_file"
	)]
	key: Option<String>,

	/// File holding the secret URI or seed of the worker key.
	#[arg(long, value_name = "PATH")]
	key_file: Option<PathBuf>,

	/// Where the model cache and the answer journal live.
	#[arg(long, value_name = "PATH", default_value = "opg-worker-data")]
	base_path: PathBuf,

	/// Model cache directory (default: `<base-path>/models`).
	#[arg(long, value_name = "PATH")]
	model_dir: Option<PathBuf>,

	/// Evict least recently used models above this many MiB.
	#[arg(long, value_name = "MIB", default_value_t = 8192)]
	model_cache_mib: u64,

	/// Gateway for `ipfs://` model URIs.
	#[arg(long, value_name = "URL", default_value = "https://ipfs.io")]
	ipfs_gateway: String,

	/// Run models on CUDA (needs a build with the `cuda` feature and an NVIDIA driver).
	#[arg(long)]
	gpu: bool,

	/// CUDA device index used with `--gpu`.
	#[arg(long, value_name = "N", default_value_t = 0, requires = "gpu")]
	device: usize,

	/// Jobs executed at once.
	#[arg(long, value_name = "N", default_value_t = 2)]
	jobs: usize,

	/// Longest a job may execute, in seconds (the job's deadline may allow less).
	#[arg(long, value_name = "SECS", default_value_t = 120)]
	max_execution_secs: u64,

	/// Port of the Prometheus endpoint.
	#[arg(long, value_name = "PORT", default_value_t = 9616)]
	prometheus_port: u16,

	/// Serve metrics on all interfaces instead of localhost.
	#[arg(long)]
	prometheus_external: bool,

	/// Do not serve metrics.
	#[arg(long)]
	no_prometheus: bool,

	/// Also answer TEE-mode jobs as an **insecure** development enclave: a fresh ed25519 key,
	/// attested on chain with documents from the development CA claiming Nitro debug mode's
	/// zero PCRs. Only the `development` chain's policy trusts them; never use it for real work.
	#[arg(long, conflicts_with = "tee_nitro")]
	tee_dev: bool,

	/// Also answer TEE-mode jobs as the AWS Nitro enclave this worker runs in: a fresh ed25519
	/// key, attested with documents from the Nitro Security Module (`/dev/nsm`). Fails at start
	/// outside an enclave.
	#[arg(long)]
	tee_nitro: bool,

	/// Directory of ZK proving keys (`0x<verifying key hash>.pk`, made by `zk-setup`); ZK-mode
	/// jobs of releases whose key is there are proved (default: `<base-path>/zk-keys`).
	#[arg(long, value_name = "PATH")]
	zk_keys: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
	/// Groth16 setup for an integer model (ZK mode): writes its proving key and verifying key.
	///
	/// The verifying key (`.vk`) is what the publisher registers with
	/// `zk.registerVerifyingKey` and references from the release by its hash; workers serving
	/// the release in ZK mode need the proving key (`.pk`) in their `--zk-keys` directory. The
	/// setup's randomness comes from the OS and is dropped at exit: whoever ran it must be
	/// trusted not to have kept it.
	ZkSetup {
		/// The model's ONNX file (an integer MLP: see `scripts/make-zk-model.py`).
		#[arg(long, value_name = "PATH")]
		model: PathBuf,
		/// Where the keys are written.
		#[arg(long, value_name = "PATH", default_value = "zk-keys")]
		out: PathBuf,
	},
}

fn zk_setup(model: &std::path::Path, out: &std::path::Path) -> Result<(), String> {
	let onnx = std::fs::read(model).map_err(|e| format!("reading {}: {e}", model.display()))?;
	let report = opg_worker::zk::setup(&onnx, out).map_err(|e| e.to_string())?;
	println!(
		"model          {} (blake2-256 {:?})",
		model.display(),
		opg_worker::store::blake2_256(&onnx)
	);
	println!("constraints    {}", report.constraints);
	println!("setup          {:.1} s", report.took.as_secs_f64());
	println!(
		"verifying key  {} ({} bytes)",
		report.verifying_key.display(),
		std::fs::metadata(&report.verifying_key).map(|m| m.len()).unwrap_or(0)
	);
	println!(
		"proving key    {} ({} bytes)",
		report.proving_key.display(),
		std::fs::metadata(&report.proving_key).map(|m| m.len()).unwrap_or(0)
	);
	println!("key hash       {:?}", report.key_hash);
	Ok(())
}

fn signer(args: &Args) -> Result<sr25519::Pair, String> {
	let suri = match (&args.key, &args.key_file) {
		(Some(suri), _) => suri.clone(),
		(None, Some(path)) => std::fs::read_to_string(path)
			.map_err(|e| format!("reading {}: {e}", path.display()))?
			.trim()
			.to_string(),
		(None, None) => return Err("no worker key: pass --key or --key-file".into()),
	};
	sr25519::Pair::from_string(&suri, None).map_err(|e| format!("invalid worker key: {e:?}"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
	// Logs on stderr, like opg-node's, so stdout stays free for the caller.
	tracing_subscriber::fmt()
		.with_writer(std::io::stderr)
		.with_env_filter(
			tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
		)
		.init();
	match run(Args::parse()).await {
		Ok(()) => std::process::ExitCode::SUCCESS,
		Err(e) => {
			tracing::error!("{e}");
			std::process::ExitCode::FAILURE
		},
	}
}

async fn run(args: Args) -> Result<(), String> {
	if let Some(Command::ZkSetup { model, out }) = &args.command {
		return zk_setup(model, out);
	}
	// Before anything connects: outside an enclave there is nothing to serve TEE jobs with.
	let nsm = if args.tee_nitro { Some(opg_worker::tee::NsmAttester::open()?) } else { None };
	opg_worker::tune_allocator();
	let signer: Arc<dyn Signer> = Arc::new(signer(&args)?);
	let device = if args.gpu { Device::Cuda(args.device) } else { Device::Cpu };
	if args.gpu && !cfg!(feature = "cuda") {
		return Err("--gpu needs opg-worker built with `--features cuda`".into());
	}
	let mut store_config =
		StoreConfig::new(args.model_dir.clone().unwrap_or_else(|| args.base_path.join("models")));
	store_config.max_cache_bytes = args.model_cache_mib << 20;
	store_config.ipfs_gateway = args.ipfs_gateway.clone();
	let store = Arc::new(ModelStore::open(store_config).map_err(|e| e.to_string())?);

	let metrics = if args.no_prometheus {
		None
	} else {
		let registry = prometheus_endpoint::Registry::new_custom(Some("opg".into()), None)
			.map_err(|e| e.to_string())?;
		let metrics = Metrics::register(&registry, store.clone()).map_err(|e| e.to_string())?;
		let ip = if args.prometheus_external { [0, 0, 0, 0] } else { [127, 0, 0, 1] };
		let addr = SocketAddr::from((ip, args.prometheus_port));
		tokio::spawn(async move {
			if let Err(e) = prometheus_endpoint::init_prometheus(addr, registry).await {
				tracing::error!("Prometheus endpoint on {addr}: {e}");
			}
		});
		tracing::info!("metrics on http://{addr}/metrics");
		Some(metrics)
	};

	let chain = Arc::new(RpcChain::new(args.rpc.clone()));
	if let Err(e) = chain.connect().await {
		// Not fatal: the node may be starting; the worker keeps trying.
		tracing::warn!("{e}; will keep trying");
	}
	let mut config = WorkerConfig::new(args.base_path.join("worker"));
	config.device = device;
	config.concurrency = args.jobs.max(1);
	config.max_execution = Duration::from_secs(args.max_execution_secs.max(1));
	let mut worker =
		Worker::new(chain, signer, store, metrics, config).map_err(|e| e.to_string())?;
	if args.tee_dev {
		tracing::warn!("⚠️ --tee-dev: TEE results are signed by an INSECURE development enclave");
		worker = worker.with_enclave(opg_worker::tee::Enclave::dev());
	}
	if let Some(nsm) = nsm {
		worker = worker.with_enclave(opg_worker::tee::Enclave::new(nsm));
	}
	let zk_keys = args.zk_keys.clone().unwrap_or_else(|| args.base_path.join("zk-keys"));
	worker = worker.with_provers(opg_worker::zk::Provers::new(zk_keys));
	worker.run(shutdown_signal()).await;
	Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
	let terminate = async {
		match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
			Ok(mut signal) => {
				signal.recv().await;
			},
			Err(_) => std::future::pending().await,
		}
	};
	tokio::select! {
		_ = tokio::signal::ctrl_c() => {},
		_ = terminate => {},
	}
	tracing::info!("shutting down");
}
