//! The direct path's HTTP API against a scripted chain: a request paid by a voucher is
//! answered with the model's output (a tensor model's, or SmolLM2's chat completion, whole or
//! streamed) and a receipt that verifies; every bad request gets its
//! JSON error and status and changes nothing; the vouchers and receipt leaves are kept for
//! the worker's redemption.

use std::{
	collections::HashMap,
	sync::{Arc, Mutex},
	time::Duration,
};

use async_trait::async_trait;
use codec::{Decode, Encode};
use opg_primitives::{
	channel::{
		batch_root, receipt_leaf, signing_payload, verify_batch_proof, ChannelId, Voucher,
		VOUCHER_TAG,
	},
	chat::{check_chat_request, ChatResponse, FinishReason, LlmSpec, TokenBudget},
	payload_hash, ElemType, JobId, ModeSet, ModelFormat, ReleaseId, Tensor, TensorSpec,
	VerificationMode,
};
use opg_runtime::{AccountId, Balance, Nonce, UncheckedExtrinsic};
use opg_worker::{
	api::{serve, Api, ApiConfig, RECEIPT_HEADER, VOUCHER_HEADER},
	chain::{
		extrinsic_hash, Chain, ChainError, ChannelRecord, Head, Job, Release, Signer,
		SigningContext, WorkerRecord, WorkerTee,
	},
	channels::{verify_enclave_receipt, verify_receipt, Ledger, SignedReceipt, SignedVoucher},
	store::{blake2_256, ModelStore, StoreConfig},
	tee::Enclave,
	worker::{Worker, WorkerConfig},
};
use polkadot_sdk::{
	sp_core::{bytes as hex, sr25519, Pair, H256},
	sp_runtime::Permill,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const GENESIS: H256 = H256::repeat_byte(1);
const RELEASE: ReleaseId = 0;
const PRICE: Balance = 100;
/// The mock's verification fee: 10 plus 1 per byte.
fn fee(bytes: u32) -> Balance {
	10 + bytes as Balance
}

#[derive(Default)]
struct State {
	releases: HashMap<ReleaseId, Release>,
	workers: HashMap<AccountId, WorkerRecord>,
	channels: HashMap<ChannelId, ChannelRecord>,
	/// What `open_disputes` answers.
	disputes: Vec<(pallet_inference::DisputeKey, u64, u64)>,
	/// What the worker submitted, and what of it is still in the pool.
	sent: Vec<UncheckedExtrinsic>,
	pool: Vec<H256>,
	/// Endpoints on chain, and the URL the worker is started to advertise.
	endpoints: HashMap<AccountId, Vec<u8>>,
	advertise: Option<String>,
	/// The API's connection limit, when a test sets one.
	max_connections: Option<usize>,
	/// The API runs an enclave (a dev one), and the key the chain holds as the worker's
	/// attested key, with whether it is usable.
	enclave: Option<Arc<Enclave>>,
	tee_key: Option<([u8; 32], bool)>,
}

struct MockChain {
	state: Mutex<State>,
	heads: tokio::sync::Mutex<mpsc::UnboundedReceiver<Head>>,
}

#[async_trait]
impl Chain for MockChain {
	async fn next_head(&self) -> Result<Head, ChainError> {
		match self.heads.lock().await.recv().await {
			Some(head) => Ok(head),
			None => std::future::pending().await,
		}
	}
	async fn finalized(&self) -> Result<H256, ChainError> {
		Ok(H256::repeat_byte(2))
	}
	async fn open_jobs(&self, _: H256, _: &AccountId) -> Result<Vec<JobId>, ChainError> {
		Ok(vec![])
	}
	async fn job(&self, _: H256, _: JobId) -> Result<Option<(Job, Option<Vec<u8>>)>, ChainError> {
		Ok(None)
	}
	async fn release(&self, _: H256, id: ReleaseId) -> Result<Option<Release>, ChainError> {
		Ok(self.state.lock().unwrap().releases.get(&id).cloned())
	}
	async fn signing_context(&self, _: H256) -> Result<SigningContext, ChainError> {
		Ok(SigningContext { genesis: GENESIS, spec_version: 1, tx_version: 1 })
	}
	async fn next_nonce(&self, _: &AccountId) -> Result<Nonce, ChainError> {
		Ok(self.state.lock().unwrap().sent.len() as Nonce)
	}
	async fn submit(&self, xt: UncheckedExtrinsic) -> Result<H256, ChainError> {
		let mut state = self.state.lock().unwrap();
		let hash = extrinsic_hash(&xt);
		state.pool.push(hash);
		state.sent.push(xt);
		Ok(hash)
	}
	async fn in_pool(&self, hash: H256) -> Result<bool, ChainError> {
		Ok(self.state.lock().unwrap().pool.contains(&hash))
	}
	async fn tee_status(&self, _: H256, _: &AccountId) -> Result<WorkerTee, ChainError> {
		let state = self.state.lock().unwrap();
		Ok(WorkerTee {
			now_ms: 1_000_000,
			key: state.tee_key.map(|(public, _)| pallet_tee::EnclaveKey {
				public,
				measurement: H256::zero(),
				expires_at_ms: 2_000_000,
				attested_at: 1,
			}),
			key_usable: state.tee_key.is_some_and(|(_, usable)| usable),
			challenge: None,
			is_worker: true,
		})
	}
	async fn worker(&self, _: H256, who: &AccountId) -> Result<Option<WorkerRecord>, ChainError> {
		Ok(self.state.lock().unwrap().workers.get(who).cloned())
	}
	async fn verification_fee(
		&self,
		_: H256,
		_: VerificationMode,
		bytes: u32,
	) -> Result<Balance, ChainError> {
		Ok(fee(bytes))
	}
	async fn open_disputes(
		&self,
		_: H256,
		_: &AccountId,
	) -> Result<Vec<(pallet_inference::DisputeKey, u64, u64)>, ChainError> {
		Ok(self.state.lock().unwrap().disputes.clone())
	}
	async fn channel(&self, _: H256, id: ChannelId) -> Result<Option<ChannelRecord>, ChainError> {
		Ok(self.state.lock().unwrap().channels.get(&id).cloned())
	}
	async fn endpoint(&self, _: H256, who: &AccountId) -> Result<Option<Vec<u8>>, ChainError> {
		Ok(self.state.lock().unwrap().endpoints.get(who).cloned())
	}
}

fn account(uri: &str) -> AccountId {
	sr25519::Pair::from_string(uri, None).unwrap().public().into()
}

fn spec(
	name: &str,
	shape: &[u32],
) -> TensorSpec<polkadot_sdk::sp_core::ConstU32<64>, polkadot_sdk::sp_core::ConstU32<8>> {
	TensorSpec {
		name: name.as_bytes().to_vec().try_into().unwrap(),
		elem: ElemType::F32,
		shape: shape.to_vec().try_into().unwrap(),
	}
}

fn channel(mode: VerificationMode, deposit: Balance) -> ChannelRecord {
	pallet_inference::Channel {
		requester: account("//Bob"),
		worker: account("//Alice"),
		release: RELEASE,
		mode,
		deposit,
		redeemed_pay: 0,
		redeemed_burn: 0,
		last_seq: 0,
		closing_at: None,
		batches: Default::default(),
	}
}

/// The demo MLP as release 0, served by Alice at `PRICE`; Bob's Vanilla channel 5 with a
/// deposit of 10,000 and a TEE channel 6.
fn state(dir: &std::path::Path) -> State {
	let model =
		std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/demo/mlp-classifier.onnx"))
			.unwrap();
	let file = dir.join("demo.onnx");
	std::fs::write(&file, &model).unwrap();
	let release = Release {
		repository: 0,
		params: pallet_model_hub::ReleaseParams {
			version: b"1.0.0".to_vec().try_into().unwrap(),
			artifact: blake2_256(&model),
			artifact_size: model.len() as u64,
			format: ModelFormat::Onnx,
			source_uri: format!("file://{}", file.display()).into_bytes().try_into().unwrap(),
			inputs: vec![spec("features", &[1, 4])].try_into().unwrap(),
			outputs: vec![spec("probabilities", &[1, 3])].try_into().unwrap(),
			modes: ModeSet::of(&[VerificationMode::Vanilla, VerificationMode::Tee]),
			zk_verifying_key: None,
			royalty: Permill::zero(),
			llm: None,
		},
		deposit: 0,
		status: pallet_model_hub::ReleaseStatus::Active,
		open_jobs: 0,
	};
	let worker = pallet_inference::Worker {
		stake: 1,
		releases: vec![RELEASE].try_into().unwrap(),
		modes: ModeSet::of(&[VerificationMode::Vanilla, VerificationMode::Tee]),
		price: PRICE,
		capacity: 4,
		hardware: pallet_inference::Hardware::Cpu,
		status: pallet_inference::WorkerStatus::Active,
		open_jobs: 0,
		completed: 0,
		rejected: 0,
		slashed: 0,
		min_timeouts: Default::default(),
		token_prices: Default::default(),
	};
	let mut state = State::default();
	state.releases.insert(RELEASE, release);
	state.workers.insert(account("//Alice"), worker);
	state.channels.insert(5, channel(VerificationMode::Vanilla, 10_000));
	state.channels.insert(6, channel(VerificationMode::Tee, 10_000));
	state
}

/// The LLM release: SmolLM2 as release 3 with the spec its file measures (context 2,048).
const LLM: ReleaseId = 3;
/// Alice's token prices, per 1,000 prompt and completion tokens.
const PROMPT_PER_1K: Balance = 2_000;
const COMPLETION_PER_1K: Balance = 8_000;

/// A model of the test cache (`~/.cache/opg/models/NAME`, which `fetcher` fetches) linked into
/// `dir` as `file`: its path and bytes.
fn linked_model(
	dir: &std::path::Path,
	name: &str,
	file: &str,
	fetcher: &str,
) -> (std::path::PathBuf, Vec<u8>) {
	let cached = std::path::Path::new(&std::env::var("HOME").unwrap())
		.join(".cache/opg/models")
		.join(name);
	assert!(cached.exists(), "{} is missing: {fetcher} fetches it", cached.display());
	let file = dir.join(file);
	std::fs::hard_link(&cached, &file)
		.or_else(|_| std::fs::copy(&cached, &file).map(|_| ()))
		.unwrap();
	let bytes = std::fs::read(&file).unwrap();
	(file, bytes)
}

/// Adds release 3 (SmolLM2, linked from the test cache) served by Alice at token prices, and
/// Bob's Vanilla channel 7 to it with a deposit of 1,000,000.
fn with_llm(
	state: &mut State,
	dir: &std::path::Path,
) -> LlmSpec<polkadot_sdk::sp_core::ConstU32<64>> {
	let (file, bytes) = linked_model(
		dir,
		"SmolLM2-135M-Instruct.Q4_1.gguf",
		"smollm2.gguf",
		"scripts/lib/llm-model.sh",
	);
	let measured = opg_worker::llm::LlmEngine::open(&file, 1).unwrap().measured().clone();
	let spec = LlmSpec {
		architecture: measured.architecture.as_bytes().to_vec().try_into().unwrap(),
		context_length: 2048,
		vocab_size: measured.vocab_size,
		template_hash: measured.template_hash,
		prompt_overhead: measured.prompt_overhead,
		message_overhead: measured.message_overhead,
	};
	let mut release = state.releases[&RELEASE].clone();
	release.params.artifact = blake2_256(&bytes);
	release.params.artifact_size = bytes.len() as u64;
	release.params.format = ModelFormat::Gguf;
	release.params.source_uri =
		format!("file://{}", file.display()).into_bytes().try_into().unwrap();
	release.params.inputs = Default::default();
	release.params.outputs = Default::default();
	release.params.llm = Some(spec.clone());
	state.releases.insert(LLM, release);
	let alice = state.workers.get_mut(&account("//Alice")).unwrap();
	alice.releases = vec![RELEASE, LLM].try_into().unwrap();
	alice.token_prices = pallet_inference::TokenPrices {
		prompt_per_1k: PROMPT_PER_1K,
		completion_per_1k: COMPLETION_PER_1K,
	};
	let mut llm_channel = channel(VerificationMode::Vanilla, 1_000_000);
	llm_channel.release = LLM;
	state.channels.insert(7, llm_channel);
	spec
}

struct Server {
	url: String,
	chain: Arc<MockChain>,
	api: Arc<Api<MockChain>>,
	heads: mpsc::UnboundedSender<Head>,
	_stop: tokio::sync::oneshot::Sender<()>,
	_dir: tempfile::TempDir,
}

/// Blocks between two redemptions of a channel in these tests.
const REDEEM_EVERY: u32 = 5;

async fn start() -> Server {
	start_with(|_, _| {}).await
}

/// Starts the API on the usual state as `change` leaves it.
async fn start_with(change: impl FnOnce(&mut State, &std::path::Path)) -> Server {
	let dir = tempfile::tempdir().unwrap();
	let (heads, rx) = mpsc::unbounded_channel();
	let mut state = state(dir.path());
	change(&mut state, dir.path());
	let chain =
		Arc::new(MockChain { state: Mutex::new(state), heads: tokio::sync::Mutex::new(rx) });
	let mut store_config = StoreConfig::new(dir.path().join("models"));
	store_config.file_root = Some(dir.path().to_path_buf());
	let store = Arc::new(ModelStore::open(store_config).unwrap());
	let key = sr25519::Pair::from_string("//Alice", None).unwrap();
	let signer: Arc<dyn Signer> = Arc::new(key);
	let worker = Worker::new(
		chain.clone(),
		signer.clone(),
		store,
		None,
		WorkerConfig::new(dir.path().join("state")),
	)
	.unwrap();
	let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
	let config = ApiConfig {
		listen: listener.local_addr().unwrap(),
		budget: Duration::from_secs(30),
		max_connections: chain.state.lock().unwrap().max_connections.unwrap_or(64),
	};
	let url = format!("http://{}", config.listen);
	let ledger = Arc::new(Ledger::open(&dir.path().join("channels"), account("//Alice")).unwrap());
	let mut worker = worker.with_channels(ledger.clone(), REDEEM_EVERY);
	if let Some(url) = chain.state.lock().unwrap().advertise.clone() {
		worker = worker.advertise(url);
	}
	let enclave = chain.state.lock().unwrap().enclave.clone();
	let api = Arc::new(
		Api::new(chain.clone(), signer, worker.runner(), ledger, config)
			.await
			.unwrap()
			.with_enclave(enclave),
	);
	tokio::spawn(serve(api.clone(), listener, std::future::pending()));
	let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
	tokio::spawn(worker.run(async move {
		let _ = stopped.await;
	}));
	Server { url, chain, api, heads, _stop: stop, _dir: dir }
}

/// The canonical bytes of the demo input.
fn input(values: [f32; 4]) -> Vec<u8> {
	vec![Tensor {
		elem: ElemType::F32,
		shape: vec![1, 4],
		data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
	}]
	.encode()
}

fn body(values: [f32; 4]) -> Value {
	json!({ "model": "0", "inputs": [{ "elem": "F32", "shape": [1, 4], "values": values }] })
}

fn voucher(
	by: &str,
	channel: ChannelId,
	seq: u64,
	pay: Balance,
	burn: Balance,
	request: &[u8],
) -> String {
	let voucher = Voucher {
		channel,
		seq,
		cumulative_pay: pay,
		cumulative_burn: burn,
		request_hash: payload_hash(request),
	};
	let pair = sr25519::Pair::from_string(by, None).unwrap();
	let signature = Pair::sign(&pair, &signing_payload(VOUCHER_TAG, &GENESIS, &voucher)).into();
	hex::to_hex(&SignedVoucher { voucher, signature }.encode(), false)
}

struct Reply {
	status: u16,
	body: Value,
	receipt: Option<SignedReceipt>,
}

/// Sends a request (blocking client on its own thread).
async fn call(
	method: &'static str,
	url: String,
	voucher: Option<String>,
	body: Option<String>,
) -> Reply {
	tokio::task::spawn_blocking(move || {
		let mut request = ureq::request(method, &url);
		if let Some(v) = &voucher {
			request = request.set(VOUCHER_HEADER, v);
		}
		let response = match body {
			Some(b) => request.set("Content-Type", "application/json").send_string(&b),
			None => request.call(),
		};
		let response = match response {
			Ok(r) | Err(ureq::Error::Status(_, r)) => r,
			Err(e) => panic!("{e}"),
		};
		let status = response.status();
		let receipt = response
			.header(RECEIPT_HEADER)
			.map(|h| SignedReceipt::decode(&mut &hex::from_hex(h).unwrap()[..]).unwrap());
		let body: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
		Reply { status, body, receipt }
	})
	.await
	.unwrap()
}

async fn infer(server: &Server, voucher: Option<String>, body: Value) -> Reply {
	call("POST", format!("{}/v1/infer", server.url), voucher, Some(body.to_string())).await
}

fn assert_error(reply: &Reply, status: u16, code: &str) {
	assert_eq!(reply.status, status, "{}", reply.body);
	assert_eq!(reply.body["error"]["code"], code, "{}", reply.body);
	assert!(reply.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
	assert!(reply.receipt.is_none(), "a refused request gets no receipt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_request_is_answered_with_a_receipt_that_verifies() {
	let server = start().await;
	let values = [5.1, 3.5, 1.4, 0.2];
	let request = input(values);
	let burn = fee(request.len() as u32);
	let reply =
		infer(&server, Some(voucher("//Bob", 5, 1, PRICE, burn, &request)), body(values)).await;
	assert_eq!(reply.status, 200, "{}", reply.body);
	let outputs = reply.body["outputs"].as_array().unwrap();
	assert_eq!(outputs[0]["shape"], json!([1, 3]));
	let probabilities: Vec<f64> = outputs[0]["values"]
		.as_array()
		.unwrap()
		.iter()
		.map(|v| v.as_f64().unwrap())
		.collect();
	assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{probabilities:?}");

	// The receipt binds this request and this answer to Alice, on this chain.
	let receipt = reply.receipt.unwrap();
	assert!(verify_receipt(&receipt, GENESIS, &account("//Alice")));
	assert_eq!(reply.body["opg"]["receipt"], hex::to_hex(&receipt.encode(), false));
	let r = &receipt.receipt;
	assert_eq!((r.channel, r.seq, r.release), (5, 1, RELEASE));
	assert_eq!(r.request_hash, payload_hash(&request));
	let output_tensors: Vec<Tensor> = outputs
		.iter()
		.map(|t| Tensor {
			elem: ElemType::F32,
			shape: vec![1, 3],
			data: t["values"]
				.as_array()
				.unwrap()
				.iter()
				.flat_map(|v| (v.as_f64().unwrap() as f32).to_le_bytes())
				.collect(),
		})
		.collect();
	assert_eq!(r.response_hash, payload_hash(&output_tensors.encode()));
	assert!(r.engine.starts_with(b"opg-worker/") && r.device_class.starts_with(b"cpu-"));

	// The next request continues the sequence; the worker would redeem the second voucher
	// with the root of both receipts.
	let second = input([6.0, 2.9, 4.5, 1.5]);
	let reply = infer(
		&server,
		Some(voucher("//Bob", 5, 2, 2 * PRICE, burn + fee(second.len() as u32), &second)),
		body([6.0, 2.9, 4.5, 1.5]),
	)
	.await;
	assert_eq!(reply.status, 200, "{}", reply.body);
	let due = server.api.ledger().to_redeem();
	assert_eq!(due.len(), 1);
	assert_eq!(due[0].0.voucher.seq, 2);
	assert_eq!(
		due[0].1,
		batch_root(&[
			receipt_leaf(&receipt.receipt),
			receipt_leaf(&reply.receipt.unwrap().receipt)
		])
	);

	// The model list names the release and the price.
	let models = call("GET", format!("{}/v1/models", server.url), None, None).await;
	assert_eq!(models.status, 200);
	assert_eq!(models.body["data"][0]["id"], "0");
	assert_eq!(models.body["data"][0]["opg"]["price"], PRICE.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_its_error_and_changes_nothing() {
	let server = start().await;
	let values = [5.1, 3.5, 1.4, 0.2];
	let request = input(values);
	let burn = fee(request.len() as u32);
	let good = || Some(voucher("//Bob", 5, 1, PRICE, burn, &request));

	assert_error(&infer(&server, None, body(values)).await, 402, "voucher_required");
	assert_error(&infer(&server, Some("0xzz".into()), body(values)).await, 400, "bad_voucher");
	assert_error(&infer(&server, Some("0x00".into()), body(values)).await, 400, "bad_voucher");
	let reply =
		call("POST", format!("{}/v1/infer", server.url), good(), Some("{not json".into())).await;
	assert_error(&reply, 400, "invalid_json");
	let mut wrong_model = body(values);
	wrong_model["model"] = json!("7");
	assert_error(&infer(&server, good(), wrong_model).await, 404, "model_not_found");
	wrong_model = body(values);
	wrong_model["model"] = json!({});
	assert_error(&infer(&server, good(), wrong_model).await, 400, "invalid_model");
	let wrong_shape = json!({ "model": "0", "inputs": [{ "elem": "F32", "shape": [1, 3], "values": [1, 2, 3] }] });
	assert_error(&infer(&server, good(), wrong_shape).await, 400, "invalid_input");
	let unfilled =
		json!({ "model": "0", "inputs": [{ "elem": "F32", "shape": [1, 4], "values": [1] }] });
	assert_error(&infer(&server, good(), unfilled).await, 400, "invalid_input");
	// The voucher's checks.
	let on = |by, channel, seq, pay, burn| Some(voucher(by, channel, seq, pay, burn, &request));
	assert_error(
		&infer(&server, on("//Bob", 9, 1, PRICE, burn), body(values)).await,
		404,
		"unknown_channel",
	);
	assert_error(
		&infer(&server, on("//Bob", 6, 1, PRICE, burn), body(values)).await,
		501,
		"mode_not_served",
	);
	assert_error(
		&infer(&server, on("//Eve", 5, 1, PRICE, burn), body(values)).await,
		401,
		"bad_voucher_signature",
	);
	assert_error(
		&infer(&server, on("//Bob", 5, 2, PRICE, burn), body(values)).await,
		409,
		"voucher_out_of_order",
	);
	assert_error(
		&infer(&server, on("//Bob", 5, 1, PRICE - 1, burn), body(values)).await,
		402,
		"short_payment",
	);
	assert_error(
		&infer(&server, on("//Bob", 5, 1, PRICE, burn - 1), body(values)).await,
		402,
		"short_burn",
	);
	assert_error(
		&infer(&server, on("//Bob", 5, 1, 10_000, burn), body(values)).await,
		402,
		"insufficient_deposit",
	);
	let other = Some(voucher("//Bob", 5, 1, PRICE, burn, &input([0.0; 4])));
	assert_error(&infer(&server, other, body(values)).await, 400, "request_hash_mismatch");
	// A closing channel takes no more requests.
	server.chain.state.lock().unwrap().channels.get_mut(&5).unwrap().closing_at = Some(100);
	assert_error(&infer(&server, good(), body(values)).await, 410, "channel_closing");
	server.chain.state.lock().unwrap().channels.get_mut(&5).unwrap().closing_at = None;
	// Bodies are bounded; unknown paths and methods.
	let huge =
		format!("{{\"model\": \"0\", \"inputs\": [], \"pad\": \"{}\"}}", "x".repeat(1 << 20));
	let reply = call("POST", format!("{}/v1/infer", server.url), good(), Some(huge)).await;
	assert_error(&reply, 413, "request_too_large");
	assert_error(
		&call("GET", format!("{}/v1/infer", server.url), None, None).await,
		405,
		"method_not_allowed",
	);
	assert_error(
		&call("GET", format!("{}/v2/nothing", server.url), None, None).await,
		404,
		"not_found",
	);

	// Nothing was recorded: the first good voucher is still seq 1.
	assert!(server.api.ledger().to_redeem().is_empty());
	let reply = infer(&server, good(), body(values)).await;
	assert_eq!(reply.status, 200, "{}", reply.body);
}

impl Server {
	/// Feeds head `n` and waits until the worker has sent `count` extrinsics in all (at most
	/// 10 s; a little longer when `count` is what was already sent, so that an extrinsic sent
	/// by mistake would be seen); returns them.
	async fn head(&self, n: u32, count: usize) -> Vec<UncheckedExtrinsic> {
		self.heads.send(Head { number: n, hash: H256::repeat_byte(n as u8) }).unwrap();
		let settle = self.chain.state.lock().unwrap().sent.len() == count;
		for i in 0..200 {
			tokio::time::sleep(Duration::from_millis(50)).await;
			let state = self.chain.state.lock().unwrap();
			assert!(state.sent.len() <= count, "head {n}: more extrinsics than expected");
			if state.sent.len() == count && (!settle || i >= 10) {
				return state.sent.clone();
			}
		}
		panic!("head {n}: the worker did not send {count} extrinsics");
	}

	/// What the chain does when a redemption is included: the channel's record moves on and the
	/// pool empties.
	fn include(&self, seq: u64, pay: Balance, burn: Balance) {
		let mut state = self.chain.state.lock().unwrap();
		let record = state.channels.get_mut(&5).unwrap();
		(record.last_seq, record.redeemed_pay, record.redeemed_burn) = (seq, pay, burn);
		state.pool.clear();
	}

	/// A paid request with sequence `seq` and the cumulative amounts after it; returns its
	/// receipt.
	async fn pay(&self, seq: u64, pay: Balance, burn: Balance) -> SignedReceipt {
		let values = [seq as f32, 3.5, 1.4, 0.2];
		let paid = voucher("//Bob", 5, seq, pay, burn, &input(values));
		let reply = infer(self, Some(paid), body(values)).await;
		assert_eq!(reply.status, 200, "{}", reply.body);
		reply.receipt.unwrap()
	}
}

/// The redeem call of a submitted extrinsic.
fn redemption(
	xt: &UncheckedExtrinsic,
) -> (ChannelId, Voucher<Balance>, opg_runtime::Signature, H256) {
	match &xt.function {
		opg_runtime::RuntimeCall::Inference(pallet_inference::Call::redeem {
			channel,
			voucher,
			signature,
			root,
		}) => (*channel, voucher.clone(), signature.clone(), *root),
		other => panic!("not a redemption: {other:?}"),
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_redeems_the_latest_voucher_with_its_batch_root() {
	use polkadot_sdk::sp_runtime::traits::Verify;
	let server = start().await;
	let fee1 = fee(input([0.0; 4]).len() as u32);
	let first = server.pay(1, PRICE, fee1).await;
	let second = server.pay(2, 2 * PRICE, 2 * fee1).await;

	// The next head redeems seq 2 with the root of both receipts, signed by Bob.
	let sent = server.head(1, 1).await;
	let (channel, voucher, signature, root) = redemption(&sent[0]);
	assert_eq!((channel, voucher.seq, voucher.cumulative_pay), (5, 2, 2 * PRICE));
	assert_eq!(root, batch_root(&[receipt_leaf(&first.receipt), receipt_leaf(&second.receipt)]));
	let payload = signing_payload(VOUCHER_TAG, &GENESIS, &voucher);
	assert!(signature.verify(&payload[..], &account("//Bob")));

	// In the pool: not sent again. Included: nothing left to redeem.
	server.head(2, 1).await;
	server.include(2, 2 * PRICE, 2 * fee1);
	server.head(3, 1).await;

	// A new request waits for `REDEEM_EVERY` blocks after the last redemption, then goes in a
	// batch of its own.
	let third = server.pay(3, 3 * PRICE, 3 * fee1).await;
	server.head(4, 1).await;
	let sent = server.head(1 + REDEEM_EVERY, 2).await;
	let (_, voucher, _, root) = redemption(&sent[1]);
	assert_eq!(voucher.seq, 3);
	assert_eq!(root, batch_root(&[receipt_leaf(&third.receipt)]));
	server.include(3, 3 * PRICE, 3 * fee1);

	// A closing channel's last voucher is redeemed at once.
	server.pay(4, 4 * PRICE, 4 * fee1).await;
	server.chain.state.lock().unwrap().channels.get_mut(&5).unwrap().closing_at = Some(100);
	let sent = server.head(2 + REDEEM_EVERY, 3).await;
	assert_eq!(redemption(&sent[2]).1.seq, 4);
	// A channel gone from the chain is forgotten.
	server.chain.state.lock().unwrap().channels.remove(&5);
	server.head(3 + REDEEM_EVERY, 3).await;
	assert!(server.api.ledger().channel_ids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_lost_its_place_reads_it_back_with_its_own_signed_voucher() {
	use polkadot_sdk::sp_runtime::traits::Verify;
	let server = start().await;
	let fee1 = fee(input([0.0; 4]).len() as u32);
	server.pay(1, PRICE, fee1).await;
	server.pay(2, 2 * PRICE, 2 * fee1).await;
	let position = call("GET", format!("{}/v1/channels/5", server.url), None, None).await;
	assert_eq!(position.status, 200, "{}", position.body);
	let b = &position.body;
	assert_eq!((b["seq"].as_str(), b["in_flight"].as_u64()), (Some("2"), Some(0)));
	assert_eq!(b["cumulative_pay"], (2 * PRICE).to_string());
	assert_eq!(b["cumulative_burn"], (2 * fee1).to_string());
	assert_eq!(b["owed"], (2 * PRICE).to_string());
	// The voucher is the requester's own: the client checks its signature before trusting it.
	let hex_voucher = b["voucher"].as_str().unwrap();
	let signed = SignedVoucher::decode(&mut &hex::from_hex(hex_voucher).unwrap()[..]).unwrap();
	assert_eq!((signed.voucher.channel, signed.voucher.seq), (5, 2));
	let payload = signing_payload(VOUCHER_TAG, &GENESIS, &signed.voucher);
	assert!(signed.signature.verify(&payload[..], &account("//Bob")));

	for (method, path, status) in [
		("GET", "/v1/channels/99", 404),
		("GET", "/v1/channels/five", 400),
		("POST", "/v1/channels/5", 405),
	] {
		let reply = call(method, format!("{}{path}", server.url), None, None).await;
		assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
		assert!(reply.body["error"]["code"].is_string(), "{}", reply.body);
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_opens_the_receipts_the_chain_disputes_from_what_it_kept() {
	let server = start().await;
	let fee1 = fee(input([0.0; 4]).len() as u32);
	let mut receipts = Vec::new();
	for seq in 1..=3 {
		receipts.push(server.pay(seq, seq as Balance * PRICE, seq as Balance * fee1).await);
	}
	let sent = server.head(1, 1).await;
	let root = redemption(&sent[0]).3;
	server.include(3, 3 * PRICE, 3 * fee1);
	server.chain.state.lock().unwrap().channels.get_mut(&5).unwrap().batches =
		vec![pallet_inference::Batch { root, first_seq: 1, last_seq: 3, committed_at: 1 }]
			.try_into()
			.unwrap();

	// An audit of seq 2 and a challenge of seq 3's receipt: both opened, with the kept bytes
	// and the proof of each receipt in the committed root.
	let leaf3 = receipt_leaf(&receipts[2].receipt);
	server.chain.state.lock().unwrap().disputes =
		vec![((5, 2, H256::zero()), 1, 3), ((5, 3, leaf3), 1, 3)];
	let sent = server.head(2, 3).await;
	for (xt, seq) in sent[1..].iter().zip([2u64, 3]) {
		let opg_runtime::RuntimeCall::Inference(pallet_inference::Call::open_receipt {
			receipt,
			signature,
			enclave_signature,
			request,
			response,
			proof,
		}) = &xt.function
		else {
			panic!("not an opening: {:?}", xt.function);
		};
		let kept = &receipts[seq as usize - 1];
		assert_eq!(
			(receipt, signature, enclave_signature),
			(&kept.receipt, &kept.signature, &None)
		);
		assert_eq!(payload_hash(request), receipt.request_hash);
		assert_eq!(payload_hash(response), receipt.response_hash);
		assert!(verify_batch_proof(&root, &receipt_leaf(receipt), seq - 1, 3, proof));
	}
	// In the pool: not sent again.
	server.head(3, 3).await;

	// A challenge of a receipt this worker never kept cannot be opened: nothing is sent.
	server.chain.state.lock().unwrap().pool.clear();
	server.chain.state.lock().unwrap().disputes = vec![((5, 1, H256::repeat_byte(9)), 1, 3)];
	server.head(4, 3).await;

	// Once no batch holds them and no dispute names them, the kept answers are dropped.
	let receipts_dir = server._dir.path().join("channels/receipts/5");
	assert_eq!(std::fs::read_dir(&receipts_dir).unwrap().count(), 3);
	{
		let mut state = server.chain.state.lock().unwrap();
		state.disputes.clear();
		state.channels.get_mut(&5).unwrap().batches = Default::default();
	}
	server.head(5, 3).await;
	assert!(!receipts_dir.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_cannot_be_kept_for_audits_is_not_sent_and_its_voucher_is_withdrawn() {
	let server = start().await;
	// A file where channel 5's folder of kept answers would be: keeping any of them fails.
	let blocker = server._dir.path().join("channels/receipts/5");
	std::fs::write(&blocker, b"").unwrap();
	let values = [5.1, 3.5, 1.4, 0.2];
	let request = input(values);
	let burn = fee(request.len() as u32);
	let paid = || Some(voucher("//Bob", 5, 1, PRICE, burn, &request));
	let reply = infer(&server, paid(), body(values)).await;
	assert_error(&reply, 500, "not_kept");
	let message = reply.body["error"]["message"].as_str().unwrap();
	assert!(message.contains("send seq 1 again"), "{message}");

	// Nothing of it is left: no voucher to redeem, nothing owed, nothing running.
	let ledger = server.api.ledger();
	assert!(ledger.to_redeem().is_empty());
	let position = ledger.position(5).unwrap();
	assert_eq!((position.seq, position.owed, position.in_flight), (0, 0, 0));
	assert!(position.latest.is_none());

	// Once the disk takes it again, the same voucher is answered and redeemed.
	std::fs::remove_file(&blocker).unwrap();
	let reply = infer(&server, paid(), body(values)).await;
	assert_eq!(reply.status, 200, "{}", reply.body);
	let receipt = reply.receipt.unwrap();
	assert!(ledger.receipts().get(5, 1).unwrap().is_some());
	assert_eq!(ledger.to_redeem()[0].1, batch_root(&[receipt_leaf(&receipt.receipt)]));
}

/// What `prompt` and `completion` tokens cost at Alice's prices, with her per-request price.
fn chat_price(prompt: u32, completion: u32) -> Balance {
	PRICE + (PROMPT_PER_1K * prompt as Balance + COMPLETION_PER_1K * completion as Balance) / 1000
}

fn france(stream: bool, max_tokens: u32) -> Value {
	json!({
		"model": "3",
		"messages": [
			{"role": "system", "content": "Answer in one short sentence."},
			{"role": "user", "content": "What is the capital of France?"}
		],
		"max_tokens": max_tokens,
		"temperature": 0,
		"seed": 7,
		"stream": stream,
	})
}

/// The canonical request of `body` and its token budget under `spec`.
fn chat_request(
	body: &Value,
	spec: &LlmSpec<polkadot_sdk::sp_core::ConstU32<64>>,
) -> (Vec<u8>, TokenBudget) {
	let parsed =
		opg_worker::openai::parse_chat(body.to_string().as_bytes(), || unreachable!()).unwrap();
	let bytes = parsed.request.encode();
	let (_, budget) = check_chat_request(&bytes, spec).unwrap();
	(bytes, budget)
}

/// Sends a request and returns the status and the raw body.
async fn call_raw(url: String, voucher: Option<String>, body: String) -> (u16, String) {
	tokio::task::spawn_blocking(move || {
		let mut request = ureq::post(&url).set("Content-Type", "application/json");
		if let Some(v) = &voucher {
			request = request.set(VOUCHER_HEADER, v);
		}
		let response = match request.send_string(&body) {
			Ok(r) | Err(ureq::Error::Status(_, r)) => r,
			Err(e) => panic!("{e}"),
		};
		(response.status(), response.into_string().unwrap())
	})
	.await
	.unwrap()
}

/// Checks an answer's `opg` field: a receipt by Alice over this request and the canonical
/// response given, which decodes. Returns the response and what the answer charged.
fn checked(opg: &Value, channel: ChannelId, seq: u64, request: &[u8]) -> (ChatResponse, Balance) {
	let receipt_bytes = hex::from_hex(opg["receipt"].as_str().unwrap()).unwrap();
	let receipt = SignedReceipt::decode(&mut &receipt_bytes[..]).unwrap();
	assert!(verify_receipt(&receipt, GENESIS, &account("//Alice")));
	let response_bytes = hex::from_hex(opg["response"].as_str().unwrap()).unwrap();
	let r = &receipt.receipt;
	assert_eq!((r.channel, r.seq, r.release), (channel, seq, LLM));
	assert_eq!(r.request_hash, payload_hash(request));
	assert_eq!(r.response_hash, payload_hash(&response_bytes));
	let response = ChatResponse::decode(&mut &response_bytes[..]).unwrap();
	(response, opg["charged"].as_str().unwrap().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_completion_is_answered_whole_or_streamed_and_paid_for_its_tokens() {
	let mut spec = None;
	let server = start_with(|state, dir| spec = Some(with_llm(state, dir))).await;
	let spec = spec.unwrap();
	let url = format!("{}/v1/chat/completions", server.url);

	// Whole: the voucher covers the most the request can cost.
	let body = france(false, 16);
	let (request, budget) = chat_request(&body, &spec);
	let most = chat_price(budget.prompt, budget.completion);
	let burn = fee(request.len() as u32);
	let (status, text) =
		call_raw(url.clone(), Some(voucher("//Bob", 7, 1, most, burn, &request)), body.to_string())
			.await;
	assert_eq!(status, 200, "{text}");
	let answer: Value = serde_json::from_str(&text).unwrap();
	assert_eq!(answer["object"], "chat.completion");
	assert_eq!(answer["model"], "3");
	assert_eq!(answer["choices"][0]["message"]["role"], "assistant");
	let content = answer["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
	assert!(content.contains("Paris"), "{content}");
	let (response, charged) = checked(&answer["opg"], 7, 1, &request);
	assert_eq!(response.text, content.as_bytes());
	assert_eq!(answer["usage"]["prompt_tokens"], response.prompt_tokens);
	assert_eq!(answer["usage"]["completion_tokens"], response.completion_tokens);
	assert!(response.prompt_tokens <= budget.prompt && response.completion_tokens <= 16);
	assert_eq!(
		answer["choices"][0]["finish_reason"],
		if response.finish_reason == FinishReason::Stop { "stop" } else { "length" }
	);
	// Paid for the tokens it generated, not for the budget.
	assert_eq!(charged, chat_price(response.prompt_tokens, response.completion_tokens));
	assert!(charged < most);

	// Streamed: the same request (greedy, same seed) gives the same text in pieces, then a
	// last chunk with the usage and the receipt. The next voucher owes what the first answer
	// charged plus this one's most: one less is refused.
	let body = france(true, 16);
	let (request, budget) = chat_request(&body, &spec);
	let most2 = chat_price(budget.prompt, budget.completion);
	let burn2 = burn + fee(request.len() as u32);
	let short = voucher("//Bob", 7, 2, charged + most2 - 1, burn2, &request);
	let (status, text) = call_raw(url.clone(), Some(short), body.to_string()).await;
	assert_eq!(status, 402, "{text}");
	let (status, text) = call_raw(
		url.clone(),
		Some(voucher("//Bob", 7, 2, charged + most2, burn2, &request)),
		body.to_string(),
	)
	.await;
	assert_eq!(status, 200, "{text}");
	let events: Vec<&str> = text
		.split("\n\n")
		.filter(|e| !e.is_empty())
		.map(|e| e.strip_prefix("data: ").unwrap())
		.collect();
	assert_eq!(*events.last().unwrap(), "[DONE]");
	let chunks: Vec<Value> = events[..events.len() - 1]
		.iter()
		.map(|e| serde_json::from_str(e).unwrap())
		.collect();
	assert!(chunks
		.iter()
		.all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]));
	assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
	assert!(chunks.len() > 3, "streamed in pieces: {text}");
	let streamed: String = chunks
		.iter()
		.filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
		.collect();
	assert_eq!(streamed, content);
	let last = chunks.last().unwrap();
	assert!(last["choices"][0]["finish_reason"].is_string());
	let (response2, charged2) = checked(&last["opg"], 7, 2, &request);
	assert_eq!(response2.token_ids, response.token_ids, "the same tokens, streamed or not");
	assert_eq!(last["usage"]["completion_tokens"], response2.completion_tokens);
	assert_eq!(charged2, charged);

	// The worker redeems the second voucher, over both receipts.
	let due = server.api.ledger().to_redeem();
	let channel7 = due.iter().find(|(v, _)| v.voucher.channel == 7).unwrap();
	assert_eq!(channel7.0.voucher.seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_chat_request_gets_its_error_and_changes_nothing() {
	let mut spec = None;
	let server = start_with(|state, dir| spec = Some(with_llm(state, dir))).await;
	let spec = spec.unwrap();
	let url = format!("{}/v1/chat/completions", server.url);
	let body = france(false, 8);
	let (request, budget) = chat_request(&body, &spec);
	let most = chat_price(budget.prompt, budget.completion);
	let burn = fee(request.len() as u32);
	let good = || Some(voucher("//Bob", 7, 1, most, burn, &request));
	let error = |(status, text): (u16, String)| {
		let body: Value = serde_json::from_str(&text).unwrap();
		assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{text}");
		(status, body["error"]["code"].as_str().unwrap().to_owned())
	};
	let code = |status: u16, code: &str| (status, code.to_owned());

	assert_eq!(
		error(call_raw(url.clone(), None, body.to_string()).await),
		code(402, "voucher_required")
	);
	let mut changed = body.clone();
	changed["n"] = json!(2);
	assert_eq!(
		error(call_raw(url.clone(), good(), changed.to_string()).await),
		code(400, "unsupported_parameter")
	);
	changed = body.clone();
	changed["max_tokens"] = json!(4000);
	assert_eq!(
		error(call_raw(url.clone(), good(), changed.to_string()).await),
		code(400, "context_length_exceeded")
	);
	changed = body.clone();
	changed["model"] = json!("0");
	assert_eq!(
		error(call_raw(url.clone(), good(), changed.to_string()).await),
		code(400, "wrong_endpoint")
	);
	changed = body.clone();
	changed["temperature"] = json!(1);
	// Another request than the voucher's.
	assert_eq!(
		error(call_raw(url.clone(), good(), changed.to_string()).await),
		code(400, "request_hash_mismatch")
	);
	// The budget, not less.
	let short = Some(voucher("//Bob", 7, 1, most - 1, burn, &request));
	assert_eq!(
		error(call_raw(url.clone(), short, body.to_string()).await),
		code(402, "short_payment")
	);
	// A chat on the tensor endpoint.
	let reply = infer(&server, good(), json!({ "model": "3", "inputs": [] })).await;
	assert_error(&reply, 400, "wrong_endpoint");
	// Nothing was recorded: the first voucher is still seq 1.
	assert!(server.api.ledger().to_redeem().iter().all(|(v, _)| v.voucher.channel != 7));
	let (status, text) = call_raw(url, good(), body.to_string()).await;
	assert_eq!(status, 200, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_advertises_its_endpoint_until_the_chain_holds_it() {
	const URL: &str = "http://127.0.0.1:9955";
	let server = start_with(|state, _| state.advertise = Some(URL.into())).await;
	let sent = server.head(1, 1).await;
	match &sent[0].function {
		opg_runtime::RuntimeCall::Inference(pallet_inference::Call::set_endpoint { endpoint }) =>
			assert_eq!(&endpoint[..], URL.as_bytes()),
		other => panic!("not set_endpoint: {other:?}"),
	}
	// In the pool: not sent again, however long it waits there.
	server.head(2, 1).await;
	server.head(2 + REDEEM_EVERY + 5, 1).await;
	// Dropped from the pool: sent again once `retry_after` blocks have passed.
	server.chain.state.lock().unwrap().pool.clear();
	server.head(2 + REDEEM_EVERY + 6, 2).await;
	// Included: the chain holds it, nothing more is sent.
	{
		let mut state = server.chain.state.lock().unwrap();
		state.endpoints.insert(account("//Alice"), URL.as_bytes().to_vec());
		state.pool.clear();
	}
	server.head(40, 2).await;
	server.head(60, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_connection_limit_the_api_answers_503_and_serves_again_once_one_closes() {
	let server = start_with(|state, _| state.max_connections = Some(2)).await;
	let address = server.url.trim_start_matches("http://").to_owned();
	// Two clients connect and send nothing.
	let idle: Vec<std::net::TcpStream> =
		(0..2).map(|_| std::net::TcpStream::connect(&address).unwrap()).collect();
	tokio::time::sleep(Duration::from_millis(200)).await;
	let models = format!("{}/v1/models", server.url);
	let refused = call("GET", models.clone(), None, None).await;
	assert_eq!(refused.status, 503, "{}", refused.body);
	assert_eq!(refused.body["error"]["code"], "too_many_connections");
	// One goes away: its place is free again.
	drop(idle);
	tokio::time::sleep(Duration::from_millis(200)).await;
	let served = call("GET", models, None, None).await;
	assert_eq!(served.status, 200, "{}", served.body);
}

/// The text-encoder release: paraphrase-MiniLM-L3-v2 (the dev chain's preset, linked from the
/// test cache) as release 4, served by Alice at `PRICE`; Bob's Vanilla channel 8 to it.
const ENCODER: ReleaseId = 4;

fn with_encoder(state: &mut State, dir: &std::path::Path) {
	let (file, bytes) = linked_model(
		dir,
		"paraphrase-MiniLM-L3-v2.embed.onnx",
		"minilm.onnx",
		"scripts/lib/encoder-model.sh",
	);
	let ids = |name: &str| TensorSpec {
		name: name.as_bytes().to_vec().try_into().unwrap(),
		elem: ElemType::I64,
		shape: vec![0, 0].try_into().unwrap(),
	};
	let mut release = state.releases[&RELEASE].clone();
	release.params.artifact = blake2_256(&bytes);
	release.params.artifact_size = bytes.len() as u64;
	release.params.source_uri =
		format!("file://{}", file.display()).into_bytes().try_into().unwrap();
	release.params.inputs = vec![ids("input_ids"), ids("attention_mask")].try_into().unwrap();
	release.params.outputs = vec![spec("sentence_embedding", &[0, 384])].try_into().unwrap();
	state.releases.insert(ENCODER, release);
	state.workers.get_mut(&account("//Alice")).unwrap().releases =
		vec![RELEASE, ENCODER].try_into().unwrap();
	let mut encoder_channel = channel(VerificationMode::Vanilla, 10_000);
	encoder_channel.release = ENCODER;
	state.channels.insert(8, encoder_channel);
}

/// The reference's padded batch (four texts, WordPiece ids of the tokenizers library) and
/// onnxruntime's embeddings of it.
fn reference_batch() -> (Vec<Vec<i64>>, Vec<u8>, Vec<Vec<f32>>) {
	let reference: Value = serde_json::from_str(include_str!("encoder-reference.json")).unwrap();
	let case = &reference["cases"][4];
	let padded: Vec<Vec<i64>> = serde_json::from_value(case["input_ids"].clone()).unwrap();
	let mask: Vec<Vec<i64>> = serde_json::from_value(case["attention_mask"].clone()).unwrap();
	let rows = padded
		.iter()
		.zip(&mask)
		.map(|(ids, mask)| {
			ids.iter().zip(mask).filter(|(_, m)| **m == 1).map(|(i, _)| *i).collect()
		})
		.collect();
	let tensor = |rows: &Vec<Vec<i64>>| Tensor {
		elem: ElemType::I64,
		shape: vec![rows.len() as u32, rows[0].len() as u32],
		data: rows.iter().flatten().flat_map(|x| x.to_le_bytes()).collect(),
	};
	let canonical = vec![tensor(&padded), tensor(&mask)].encode();
	let want = serde_json::from_value(case["embeddings"]["fp32"].clone()).unwrap();
	(rows, canonical, want)
}

async fn embed(server: &Server, voucher: Option<String>, body: Value) -> Reply {
	call("POST", format!("{}/v1/embeddings", server.url), voucher, Some(body.to_string())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_of_token_ids_are_onnxruntimes_with_a_receipt_over_the_padded_batch() {
	let server = start_with(with_encoder).await;
	let (rows, canonical, want) = reference_batch();
	let burn = fee(canonical.len() as u32);
	let body = json!({ "model": "4", "input": rows });
	let reply = embed(&server, Some(voucher("//Bob", 8, 1, PRICE, burn, &canonical)), body).await;
	assert_eq!(reply.status, 200, "{}", reply.body);
	assert_eq!(reply.body["object"], "list");
	assert_eq!(reply.body["model"], "4");
	let tokens: usize = rows.iter().map(Vec::len).sum();
	assert_eq!(reply.body["usage"], json!({ "prompt_tokens": tokens, "total_tokens": tokens }));

	// The receipt is over the padded id tensors the client built, and the output given.
	let receipt = reply.receipt.unwrap();
	assert!(verify_receipt(&receipt, GENESIS, &account("//Alice")));
	let r = &receipt.receipt;
	assert_eq!((r.channel, r.seq, r.release), (8, 1, ENCODER));
	assert_eq!(r.request_hash, payload_hash(&canonical));
	let opg = &reply.body["opg"];
	let response = hex::from_hex(opg["response"].as_str().unwrap()).unwrap();
	assert_eq!(r.response_hash, payload_hash(&response));
	assert_eq!(opg["charged"], PRICE.to_string());
	let outputs = Vec::<Tensor>::decode(&mut &response[..]).unwrap();
	assert_eq!(outputs[0].shape, vec![4, 384]);
	let signed: Vec<f32> = outputs[0]
		.data
		.chunks_exact(4)
		.map(|b| f32::from_le_bytes(b.try_into().unwrap()))
		.collect();

	// Each vector is the signed output's row, and onnxruntime's within tolerance.
	let data = reply.body["data"].as_array().unwrap();
	assert_eq!(data.len(), 4);
	for (i, item) in data.iter().enumerate() {
		assert_eq!(
			(item["object"].as_str(), item["index"].as_u64()),
			(Some("embedding"), Some(i as u64))
		);
		let got: Vec<f32> = serde_json::from_value(item["embedding"].clone()).unwrap();
		assert_eq!(got, signed[i * 384..][..384]);
		for (g, w) in got.iter().zip(&want[i]) {
			assert!((g - w).abs() <= 1e-4 + 1e-3 * w.abs(), "row {i}: got {g}, onnxruntime {w}");
		}
	}

	// base64, as OpenAI's Python client asks by default: the same bits; `dimensions` equal to
	// the release's is taken.
	let one = vec![rows[0].clone()];
	let (tensors, _) =
		opg_worker::embeddings::encoder_inputs(&one, &server_release_inputs()).unwrap();
	let second = tensors.encode();
	let body =
		json!({ "model": 4, "input": rows[0], "encoding_format": "base64", "dimensions": 384 });
	let pay = 2 * PRICE;
	let reply = embed(
		&server,
		Some(voucher("//Bob", 8, 2, pay, burn + fee(second.len() as u32), &second)),
		body,
	)
	.await;
	assert_eq!(reply.status, 200, "{}", reply.body);
	use base64::Engine;
	let packed = base64::engine::general_purpose::STANDARD
		.decode(reply.body["data"][0]["embedding"].as_str().unwrap())
		.unwrap();
	let alone: Vec<f32> = packed
		.chunks_exact(4)
		.map(|b| f32::from_le_bytes(b.try_into().unwrap()))
		.collect();
	for (g, w) in alone.iter().zip(&want[0]) {
		assert!((g - w).abs() <= 1e-4 + 1e-3 * w.abs(), "alone: got {g}, onnxruntime {w}");
	}
	assert_eq!(server.api.ledger().to_redeem()[0].0.voucher.seq, 2);

	// The model list says which endpoint serves each release.
	let models = call("GET", format!("{}/v1/models", server.url), None, None).await;
	let endpoints: Vec<(&str, &str)> = models.body["data"]
		.as_array()
		.unwrap()
		.iter()
		.map(|m| (m["id"].as_str().unwrap(), m["opg"]["endpoint"].as_str().unwrap()))
		.collect();
	assert_eq!(endpoints, vec![("0", "/v1/infer"), ("4", "/v1/embeddings")]);
}

/// The encoder release's input specs, as the tests' state declares them.
fn server_release_inputs(
) -> Vec<TensorSpec<polkadot_sdk::sp_core::ConstU32<64>, polkadot_sdk::sp_core::ConstU32<8>>> {
	let dir = tempfile::tempdir().unwrap();
	let mut state = state(dir.path());
	with_encoder(&mut state, dir.path());
	state.releases[&ENCODER].params.inputs.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_embeddings_request_gets_its_error_and_changes_nothing() {
	let server = start_with(with_encoder).await;
	let (rows, canonical, _) = reference_batch();
	let burn = fee(canonical.len() as u32);
	let good = || Some(voucher("//Bob", 8, 1, PRICE, burn, &canonical));
	let with = |key: &str, value: Value| {
		let mut body = json!({ "model": "4", "input": rows });
		body[key] = value;
		body
	};

	assert_error(&embed(&server, None, with("user", json!("x"))).await, 402, "voucher_required");
	let text = with("input", json!(["The cat sits outside."]));
	assert_error(&embed(&server, good(), text).await, 400, "text_input_unsupported");
	assert_error(&embed(&server, good(), with("input", json!([[]]))).await, 400, "invalid_input");
	assert_error(&embed(&server, good(), with("input", json!([-1]))).await, 400, "invalid_input");
	let over = vec![vec![101]; opg_worker::embeddings::MAX_INPUTS + 1];
	assert_error(&embed(&server, good(), with("input", json!(over))).await, 400, "invalid_input");
	assert_error(
		&embed(&server, good(), with("dimensions", json!(128))).await,
		400,
		"unsupported_parameter",
	);
	assert_error(
		&embed(&server, good(), with("encoding_format", json!("int8"))).await,
		400,
		"invalid_parameter",
	);
	assert_error(&embed(&server, good(), with("model", json!("9"))).await, 404, "model_not_found");
	// The demo MLP is not a text encoder; the encoder is not an LLM.
	let demo = Some(voucher("//Bob", 5, 1, PRICE, burn, &canonical));
	assert_error(&embed(&server, demo, with("model", json!("0"))).await, 400, "wrong_endpoint");
	let chat = json!({ "model": "4", "messages": [{ "role": "user", "content": "hi" }] });
	let reply =
		call("POST", format!("{}/v1/chat/completions", server.url), good(), Some(chat.to_string()))
			.await;
	assert_error(&reply, 400, "wrong_endpoint");
	// The voucher must be over the padded batch the worker builds, and pay the price.
	let unpadded = Some(voucher("//Bob", 8, 1, PRICE, burn, &rows.encode()));
	assert_error(
		&embed(&server, unpadded, with("user", json!("x"))).await,
		400,
		"request_hash_mismatch",
	);
	let short = Some(voucher("//Bob", 8, 1, PRICE - 1, burn, &canonical));
	assert_error(&embed(&server, short, with("user", json!("x"))).await, 402, "short_payment");
	assert_error(
		&call("GET", format!("{}/v1/embeddings", server.url), None, None).await,
		405,
		"method_not_allowed",
	);

	// Nothing was recorded: the first good voucher is still seq 1.
	assert!(server.api.ledger().to_redeem().is_empty());
	let reply = embed(&server, good(), with("user", json!("x"))).await;
	assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tee_channel_is_answered_only_while_the_enclave_key_is_attested_and_signed_by_it() {
	let enclave = Arc::new(Enclave::dev());
	let key = enclave.public();
	let server = start_with(|state, _| state.enclave = Some(enclave.clone())).await;
	let values = [5.1, 3.5, 1.4, 0.2];
	let request = input(values);
	let burn = fee(request.len() as u32);
	let tee = || Some(voucher("//Bob", 6, 1, PRICE, burn, &request));
	let set_key = |k: Option<([u8; 32], bool)>| server.chain.state.lock().unwrap().tee_key = k;

	// Not attested on chain, another key, or an expired one: refused before anything runs.
	assert_error(&infer(&server, tee(), body(values)).await, 503, "enclave_not_attested");
	set_key(Some(([9; 32], true)));
	assert_error(&infer(&server, tee(), body(values)).await, 503, "enclave_not_attested");
	set_key(Some((key, false)));
	assert_error(&infer(&server, tee(), body(values)).await, 503, "enclave_not_attested");
	assert!(server.api.ledger().to_redeem().is_empty());

	// Attested: the receipt carries the worker's signature and the enclave's over the same
	// payload; it verifies against the attested key only.
	set_key(Some((key, true)));
	let reply = infer(&server, tee(), body(values)).await;
	assert_eq!(reply.status, 200, "{}", reply.body);
	let receipt = reply.receipt.unwrap();
	assert!(verify_receipt(&receipt, GENESIS, &account("//Alice")));
	assert!(verify_enclave_receipt(&receipt, GENESIS, &key));
	assert!(!verify_enclave_receipt(&receipt, GENESIS, &[9; 32]));
	assert!(!verify_enclave_receipt(&receipt, H256::repeat_byte(7), &key), "another chain");
	let mut altered = receipt.clone();
	altered.receipt.response_hash = H256::repeat_byte(3);
	assert!(!verify_enclave_receipt(&altered, GENESIS, &key));
	assert_eq!(receipt.receipt.request_hash, payload_hash(&request));

	// The enclave signs only a receipt over the bytes it is given.
	assert!(enclave.sign_receipt(GENESIS, &receipt.receipt, &request, b"other").is_none());

	// A Vanilla channel's receipt has no enclave signature, the same worker answering.
	let vanilla =
		infer(&server, Some(voucher("//Bob", 5, 1, PRICE, burn, &request)), body(values)).await;
	assert_eq!(vanilla.status, 200, "{}", vanilla.body);
	let vanilla = vanilla.receipt.unwrap();
	assert!(vanilla.enclave_signature.is_none());
	assert!(!verify_enclave_receipt(&vanilla, GENESIS, &key));
}
