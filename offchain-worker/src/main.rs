//! `opg-worker`: the inference worker as its own process, for GPU machines that do not run a
//! node. It follows any OPG node over JSON-RPC (`--rpc ws://…`), reconnects when the node goes
//! away, and serves Prometheus metrics on its own port.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use clap::Parser;
use opg_worker::{
	chain::{rpc::RpcChain, Signer},
	cli::WorkerParams,
	json::{tensor_from_json, tensor_to_json, JsonTensor},
	metrics::Metrics,
	store::ModelStore,
	worker::Worker,
};
use polkadot_sdk::sp_core::{sr25519, Pair};

/// OPG inference worker: executes the jobs assigned to its account and answers them with
/// signed extrinsics.
#[derive(Debug, Parser)]
#[command(
	version,
	about,
	args_conflicts_with_subcommands = true,
	subcommand_negates_reqs = true,
	// The key has no default here (no keystore): one of the two is required.
	group(clap::ArgGroup::new("worker_key").required(true).args(["key", "key_file"]))
)]
struct Args {
	#[command(subcommand)]
	command: Option<Command>,

	/// WebSocket RPC endpoint of an OPG node.
	#[arg(long, value_name = "URL", default_value = "ws://127.0.0.1:9944")]
	rpc: String,

	/// Where the model cache and the answer journal live.
	#[arg(long, value_name = "PATH", default_value = "opg-worker-data")]
	base_path: PathBuf,

	/// The worker's flags, the same as `opg-node`'s (`--inference-gpu`, `--inference-jobs`,
	/// `--model-dir`, …; the older `--gpu`, `--device`, `--jobs`, `--key` and `--key-file` are
	/// aliases).
	#[command(flatten)]
	worker: WorkerParams,

	/// Port of the Prometheus endpoint.
	#[arg(long, value_name = "PORT", default_value_t = 9616)]
	prometheus_port: u16,

	/// Serve metrics on all interfaces instead of localhost.
	#[arg(long)]
	prometheus_external: bool,

	/// Do not serve metrics.
	#[arg(long)]
	no_prometheus: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
	/// Groth16 setup for an integer model (ZK mode): writes its proving key and verifying key.
	///
	/// The verifying key (`.vk`) is what the publisher registers with
	/// `zk.registerVerifyingKey(key, model's blake2-256)` and references from the release by
	/// its hash; workers serving the release in ZK mode need the proving key (`.pk`) in their
	/// `--zk-keys` directory. The setup's randomness comes from the OS and is dropped at exit:
	/// whoever ran it must be trusted not to have kept it.
	ZkSetup {
		/// The model's ONNX file (an integer MLP: see `scripts/regen/make-zk-model.py`).
		#[arg(long, value_name = "PATH")]
		model: PathBuf,
		/// Where the keys are written.
		#[arg(long, value_name = "PATH", default_value = "zk-keys")]
		out: PathBuf,
	},
	/// Runs a GGUF language model on a prompt exactly as an LLM job would, and prints the
	/// text (or JSON with token ids and timings): for publishers testing a release and
	/// operators sizing machines.
	Generate(GenerateArgs),
	/// Runs an ONNX model on an input exactly as a tensor job would (same executor, same
	/// canonical encoding), and prints the outputs, the output hash a result would carry and
	/// the timings, as JSON: for publishers testing a release and operators sizing machines.
	Run(RunArgs),
	/// Prints what a release of a GGUF file declares, as JSON: its blake2-256 and size, and the
	/// LLM spec (architecture, trained context, vocabulary, tokenizer hash, template
	/// overheads) that workers check the file against. A release may declare a shorter
	/// context and larger overheads, never the reverse.
	Inspect {
		/// The model's GGUF file.
		#[arg(long, value_name = "FILE.gguf")]
		model: PathBuf,
	},
}

/// `opg-worker run`: an ONNX model run exactly as a tensor job runs it.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("tensors").required(true).args(["input", "input_scale"])))]
struct RunArgs {
	/// The model's ONNX file.
	#[arg(long, value_name = "FILE.onnx")]
	model: PathBuf,
	/// The input tensors as JSON, in the model's input order:
	/// `[{"elem": "F32", "shape": [1, 4], "values": [5.1, 3.5, 1.4, 0.2]}]` (elem: F32, F64,
	/// F16, I8, U8, I32, I64, Bool).
	#[arg(long, value_name = "FILE.json")]
	input: Option<PathBuf>,
	/// The input as a job carries it: the canonical SCALE bytes, in a file (raw, or as 0x hex).
	#[arg(long, value_name = "FILE")]
	input_scale: Option<PathBuf>,
	/// `cpu`, or `cuda:N` (a `--features cuda` build).
	#[arg(long, value_name = "DEVICE", default_value = "cpu")]
	device: String,
	/// Times to run it (the timings report the fastest and the median).
	#[arg(long, value_name = "N", default_value_t = 1)]
	runs: u32,
	/// Also report where the time goes: milliseconds per run by operator, over all runs.
	#[arg(long)]
	profile: bool,
}

fn run_onnx(a: &RunArgs) -> Result<(), String> {
	use codec::{Decode, Encode};
	let device = match a.device.as_str() {
		"cpu" => opg_worker::exec::Device::Cpu,
		d => match d.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
			Some(i) => opg_worker::exec::Device::Cuda(i),
			None => return Err(format!("--device {d}: cpu or cuda:N")),
		},
	};
	let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
	let inputs: opg_primitives::Tensors = match (&a.input, &a.input_scale) {
		(Some(path), _) => {
			let json: Vec<JsonTensor> = serde_json::from_slice(&read(path)?)
				.map_err(|e| format!("{}: {e}", path.display()))?;
			json.iter().map(tensor_from_json).collect::<Result<_, _>>()?
		},
		(None, Some(path)) => {
			let raw = read(path)?;
			let text = String::from_utf8_lossy(&raw);
			let bytes = match text.trim().strip_prefix("0x") {
				Some(hex) => (0..hex.len())
					.step_by(2)
					.map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
					.collect::<Result<Vec<u8>, _>>()
					.map_err(|_| format!("{}: not hex", path.display()))?,
				None => raw,
			};
			let mut input = &bytes[..];
			let tensors = opg_primitives::Tensors::decode(&mut input)
				.map_err(|e| format!("{}: not canonical tensors: {e}", path.display()))?;
			if !input.is_empty() {
				return Err(format!("{}: trailing bytes after the tensors", path.display()));
			}
			tensors
		},
		(None, None) => unreachable!("clap requires one of --input and --input-scale"),
	};
	let t0 = std::time::Instant::now();
	let bytes = read(&a.model)?;
	let artifact = opg_worker::store::blake2_256(&bytes);
	// From the path, so that external data next to the model is found.
	let model = opg_worker::onnx::Model::load(&a.model)
		.map_err(|e| format!("{}: {e}", a.model.display()))?;
	let engine = opg_worker::exec::Engine::from_model(model, device)
		.map_err(|e| format!("{}: {e}", a.model.display()))?;
	let load = t0.elapsed();
	let mut times = Vec::new();
	let mut outputs = Vec::new();
	// Operator -> (nodes run, milliseconds), over all runs.
	let mut by_op: std::collections::BTreeMap<String, (u64, f64)> = Default::default();
	for _ in 0..a.runs.max(1) {
		let t = std::time::Instant::now();
		if a.profile {
			let (out, nodes) = engine.run_profiled(&inputs).map_err(|e| e.to_string())?;
			outputs = out;
			for (op, d) in nodes {
				let e = by_op.entry(op).or_default();
				e.0 += 1;
				e.1 += d.as_secs_f64() * 1e3;
			}
		} else {
			outputs = engine.run(&inputs).map_err(|e| e.to_string())?;
		}
		times.push(t.elapsed().as_secs_f64() * 1e3);
	}
	times.sort_by(f64::total_cmp);
	let runs = times.len() as f64;
	let mut profile: Vec<_> = by_op.into_iter().collect();
	profile.sort_by(|x, y| y.1 .1.total_cmp(&x.1 .1));
	let total: f64 = profile.iter().map(|p| p.1 .1).sum::<f64>().max(f64::MIN_POSITIVE);
	let profile: Vec<_> = profile
		.iter()
		.map(|(op, (n, ms))| {
			serde_json::json!({
				"op": op,
				"nodes_per_run": *n as f64 / runs,
				"ms_per_run": ms / runs,
				"share": ms / total,
			})
		})
		.collect();
	let payload = outputs.encode();
	let v = serde_json::json!({
		"model": format!("{artifact:?}"),
		"device": device.to_string(),
		"outputs": outputs.iter().map(tensor_to_json).collect::<Vec<_>>(),
		"output_bytes": payload.len(),
		"output_hash": format!("{:?}", opg_primitives::payload_hash(&payload)),
		"timings": {
			"load_ms": load.as_secs_f64() * 1e3,
			"runs": times.len(),
			"fastest_ms": times[0],
			"median_ms": times[times.len() / 2],
		},
	});
	let mut v = v;
	if a.profile {
		v["profile"] = serde_json::Value::Array(profile);
	}
	println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
	Ok(())
}

/// `opg-worker generate`: a GGUF model run exactly as an LLM job runs it.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["prompt", "messages"])))]
struct GenerateArgs {
	/// The model's GGUF file.
	#[arg(long, value_name = "FILE.gguf")]
	model: PathBuf,
	/// The prompt as raw text: the texts of the model's special tokens in it (such as
	/// `<|im_start|>`) become those tokens, and BOS is added where the model asks for it.
	#[arg(long, value_name = "TEXT")]
	prompt: Option<String>,
	/// A chat as JSON, `[{"role": "user", "content": "…"}, …]`, rendered with the model's
	/// chat template.
	#[arg(long, value_name = "FILE.json")]
	messages: Option<PathBuf>,
	#[arg(long, value_name = "N", default_value_t = 128)]
	max_tokens: u32,
	/// 0: greedy.
	#[arg(long, value_name = "T", default_value_t = 0.0)]
	temperature: f32,
	#[arg(long, value_name = "K", default_value_t = 40)]
	top_k: u32,
	#[arg(long, value_name = "P", default_value_t = 0.95)]
	top_p: f32,
	#[arg(long, value_name = "P", default_value_t = 0.05)]
	min_p: f32,
	#[arg(long, value_name = "X", default_value_t = 1.0)]
	repeat_penalty: f32,
	#[arg(long, value_name = "S", default_value_t = 0)]
	seed: u64,
	/// Stop before this text (repeatable).
	#[arg(long, value_name = "TEXT")]
	stop: Vec<String>,
	/// CPU threads (0: one per core).
	#[arg(long, value_name = "N", default_value_t = 0)]
	threads: usize,
	/// Print JSON: the text, token ids, finish reason, counts, engine and timings.
	#[arg(long)]
	json: bool,
}

fn generate(a: &GenerateArgs) -> Result<(), String> {
	use opg_llm::{generate::GenerateParams, sample::SamplingParams};
	let t0 = std::time::Instant::now();
	let gguf =
		opg_llm::gguf::Gguf::open(&a.model).map_err(|e| format!("{}: {e}", a.model.display()))?;
	let tokenizer = opg_llm::tokenizer::Tokenizer::from_gguf(&gguf).map_err(|e| e.to_string())?;
	let model = opg_llm::model::Model::load(gguf, a.threads).map_err(|e| e.to_string())?;
	let load = t0.elapsed();
	let prompt = match (&a.prompt, &a.messages) {
		(Some(p), _) => tokenizer.encode(p, true, true),
		(None, Some(path)) => {
			let json = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
			let messages: Vec<opg_llm::chat::Message> =
				serde_json::from_slice(&json).map_err(|e| format!("{}: {e}", path.display()))?;
			let chat = opg_llm::chat::ChatTemplate::from_gguf(&model.gguf, &tokenizer)
				.map_err(|e| e.to_string())?;
			chat.encode(&tokenizer, &messages).map_err(|e| e.to_string())?
		},
		(None, None) => unreachable!("clap requires one of --prompt and --messages"),
	};
	let params = GenerateParams {
		max_tokens: a.max_tokens,
		sampling: SamplingParams {
			temperature: a.temperature,
			top_k: a.top_k,
			top_p: a.top_p,
			min_p: a.min_p,
			repeat_penalty: a.repeat_penalty,
			repeat_last_n: 64,
			seed: a.seed,
		},
		stop: a.stop.clone(),
		size_limit: None,
	};
	let out = opg_llm::generate::generate(&model, &tokenizer, &prompt, &params, |_| {})
		.map_err(|e| e.to_string())?;
	let per_s = |n: usize, d: std::time::Duration| n as f64 / d.as_secs_f64().max(1e-9);
	if a.json {
		let v = serde_json::json!({
			"text": out.text,
			"prompt_token_ids": prompt,
			"token_ids": out.tokens,
			"finish_reason": out.finish.as_str(),
			"prompt_tokens": out.prompt_tokens,
			"completion_tokens": out.tokens.len(),
			"engine": opg_llm::ENGINE_VERSION,
			"sampler": opg_llm::sample::SAMPLER_VERSION,
			"device": "cpu",
			"threads": model.threads(),
			"logits_digest": format!("{:016x}", out.logits_digest),
			"timings": {
				"load_ms": load.as_secs_f64() * 1e3,
				"prefill_ms": out.prefill.as_secs_f64() * 1e3,
				"prefill_tokens_per_s": per_s(out.prompt_tokens, out.prefill),
				"decode_ms": out.decode.as_secs_f64() * 1e3,
				"decode_tokens_per_s": per_s(out.tokens.len().saturating_sub(1), out.decode),
			},
		});
		println!("{v}");
	} else {
		println!("{}", out.text);
		eprintln!(
			"[{} prompt + {} generated tokens, {}; load {:.0} ms, prefill {:.1} tok/s, decode {:.1} tok/s, {} threads]",
			out.prompt_tokens,
			out.tokens.len(),
			out.finish.as_str(),
			load.as_secs_f64() * 1e3,
			per_s(out.prompt_tokens, out.prefill),
			per_s(out.tokens.len().saturating_sub(1), out.decode),
			model.threads()
		);
	}
	Ok(())
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

fn inspect(model: &std::path::Path) -> Result<(), String> {
	let bytes = std::fs::read(model).map_err(|e| format!("{}: {e}", model.display()))?;
	let (artifact, size) = (opg_worker::store::blake2_256(&bytes), bytes.len());
	drop(bytes);
	let engine = opg_worker::llm::LlmEngine::open(model, 1)
		.map_err(|e| format!("{}: {e}", model.display()))?;
	let m = engine.measured();
	let v = serde_json::json!({
		"artifact": format!("{artifact:?}"),
		"artifact_size": size,
		"format": "Gguf",
		"llm": {
			"architecture": m.architecture,
			"context_length": m.context_length,
			"vocab_size": m.vocab_size,
			"template_hash": format!("{:?}", m.template_hash),
			"prompt_overhead": m.prompt_overhead,
			"message_overhead": m.message_overhead,
		},
		"engine": opg_worker::llm::engine_version(),
		"device_class": opg_worker::llm::device_class(),
	});
	println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
	Ok(())
}

fn signer(params: &WorkerParams) -> Result<sr25519::Pair, String> {
	let suri = params
		.key()?
		.ok_or("no worker key: pass --inference-key or --inference-key-file")?;
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
	match &args.command {
		Some(Command::ZkSetup { model, out }) => return zk_setup(model, out),
		Some(Command::Generate(g)) => return generate(g),
		Some(Command::Inspect { model }) => return inspect(model),
		Some(Command::Run(r)) => return run_onnx(r),
		None => {},
	}
	let params = &args.worker;
	// Before anything connects: outside an enclave there is nothing to serve TEE jobs with.
	let enclave = params.enclave()?;
	opg_worker::tune_allocator();
	let signer: Arc<dyn Signer> = Arc::new(signer(params)?);
	if params.gpu && !cfg!(feature = "cuda") {
		return Err("--inference-gpu needs opg-worker built with `--features cuda`".into());
	}
	let store = Arc::new(
		ModelStore::open(params.store_config(&args.base_path)).map_err(|e| e.to_string())?,
	);

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
	let config = params.worker_config(args.base_path.join("worker"));
	let mut worker = Worker::new(chain.clone(), signer.clone(), store, metrics, config)
		.map_err(|e| e.to_string())?;
	if let Some(enclave) = enclave {
		if params.tee_dev {
			tracing::warn!(
				"⚠️ --tee-dev: TEE results are signed by an INSECURE development enclave"
			);
		}
		worker = worker.with_enclave(enclave);
	}
	let channels = args.base_path.join("worker").join("channels");
	let (mut worker, api) = opg_worker::api::direct_path(worker, chain, signer, params, &channels)?;
	if let Some(api) = api {
		// Ends with the process, after the job loop's shutdown.
		tokio::spawn(api);
	}
	worker = worker.with_provers(opg_worker::zk::Provers::new(params.zk_keys_dir(&args.base_path)));
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
