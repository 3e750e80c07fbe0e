//! The worker's HTTP API of the direct path (`docs/direct-path.md`): requests paid by the
//! vouchers of on-chain channels, answered at once with a signed receipt.
//!
//! - `GET /v1/models`: the releases this worker serves, with its price (OpenAI's model list,
//!   details in an `opg` field).
//! - `POST /v1/infer`: a tensor release's model on JSON tensors: `{"model": "<release id>",
//!   "inputs": [{"elem": "F32", "shape": [1, 4], "values": [..]}]}`; the answer is `{"model",
//!   "outputs": [..], "opg": {"receipt": "0x.."}}`.
//!
//! The voucher travels in the `OPG-Voucher` header (hex of the SCALE [`SignedVoucher`]); its
//! `request_hash` is blake2-256 of the request's canonical bytes, the SCALE tensors a job's
//! input would be. Each admitted request gets a receipt, in the `OPG-Receipt` header and the
//! body's `opg.receipt` (hex of the SCALE [`SignedReceipt`]), over the output's canonical bytes
//! or, when the model failed, over the SCALE `("opg/error", reason)`. Refusals are OpenAI-style
//! JSON errors (`{"error": {"message", "type", "code"}}`) with their HTTP status, and change
//! nothing: the voucher is checked, the input against the release's spec, before anything runs.
//! The channel and the fee schedule are read from the last finalized block for each request.

use std::{
	future::Future,
	net::SocketAddr,
	sync::Arc,
	time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use codec::{Decode, Encode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, header, Method, Request, Response, StatusCode};
use opg_primitives::{
	channel::{receipt_leaf, Label, Receipt},
	check_tensors, payload_hash, ModelFormat, ReleaseId, Tensor,
};
use pallet_inference::RejectReason;
use pallet_model_hub::ReleaseStatus;
use polkadot_sdk::sp_core::{bytes as hex, H256};
use serde_json::{json, Value};

use crate::{
	chain::{Answer, Chain, Signer},
	channels::{sign_receipt, Charge, Ledger, LedgerError, SignedReceipt, SignedVoucher},
	json::{tensor_from_json, tensor_to_json, JsonTensor},
	worker::{Runner, Worker},
};

/// The API's default port.
pub const DEFAULT_PORT: u16 = 9955;
/// Largest request body, in bytes.
pub const MAX_BODY: usize = 1 << 20;
/// Header of a request's voucher.
pub const VOUCHER_HEADER: &str = "opg-voucher";
/// Header of an answer's receipt.
pub const RECEIPT_HEADER: &str = "opg-receipt";

/// How the API runs.
#[derive(Clone, Debug)]
pub struct ApiConfig {
	/// Address to listen on.
	pub listen: SocketAddr,
	/// Longest a request's model may run.
	pub budget: Duration,
}

/// A refusal, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
	/// HTTP status.
	pub status: u16,
	/// OpenAI's error `type`.
	pub kind: &'static str,
	/// A stable code.
	pub code: &'static str,
	/// What went wrong, for people.
	pub message: String,
}

impl ApiError {
	fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
		let kind = match status {
			401 | 403 => "authentication_error",
			402 => "payment_required",
			404 => "not_found_error",
			429 => "rate_limit_error",
			500..=599 => "server_error",
			_ => "invalid_request_error",
		};
		ApiError { status, kind, code, message: message.into() }
	}

	fn chain(e: impl std::fmt::Display) -> Self {
		ApiError::new(503, "chain_unavailable", format!("reading the chain: {e}"))
	}

	fn body(&self) -> Value {
		json!({ "error": { "message": self.message, "type": self.kind, "code": self.code } })
	}
}

/// The API's state: the chain, the worker key, the voucher ledger and the model runner.
pub struct Api<C: Chain> {
	chain: Arc<C>,
	signer: Arc<dyn Signer>,
	ledger: Arc<Ledger>,
	runner: Runner,
	genesis: H256,
	config: ApiConfig,
	engine: Label,
	device_class: Label,
}

fn label(text: String) -> Label {
	let mut bytes = text.into_bytes();
	bytes.truncate(opg_primitives::channel::MAX_LABEL_LEN as usize);
	bytes.try_into().expect("truncated to the bound")
}

impl<C: Chain> Api<C> {
	/// The API of the worker that signs with `signer`, keeping the vouchers it accepts in
	/// `ledger` (which the worker's job loop redeems from).
	pub async fn new(
		chain: Arc<C>,
		signer: Arc<dyn Signer>,
		runner: Runner,
		ledger: Arc<Ledger>,
		config: ApiConfig,
	) -> Result<Self, String> {
		let at = chain.finalized().await.map_err(|e| e.to_string())?;
		let genesis = chain.signing_context(at).await.map_err(|e| e.to_string())?.genesis;
		let device = runner.device();
		Ok(Api {
			chain,
			signer,
			ledger,
			runner,
			genesis,
			config,
			engine: label(format!("opg-worker/{}", env!("CARGO_PKG_VERSION"))),
			device_class: label(format!("{device}-{}", std::env::consts::ARCH)),
		})
	}

	/// The vouchers this API accepted.
	pub fn ledger(&self) -> &Arc<Ledger> {
		&self.ledger
	}

	async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
		let path = req.uri().path().to_owned();
		let result = match (req.method(), path.as_str()) {
			(&Method::GET, "/v1/models") => self.models().await,
			(&Method::POST, "/v1/infer") => self.infer(req).await,
			(_, "/v1/models" | "/v1/infer") => Err((
				ApiError::new(405, "method_not_allowed", format!("{path} takes another method")),
				None,
			)),
			_ => Err((ApiError::new(404, "not_found", format!("no endpoint {path}")), None)),
		};
		match result {
			Ok((body, receipt)) => respond(200, &body, receipt.as_ref()),
			Err((e, receipt)) => {
				let mut body = e.body();
				if let Some(r) = &receipt {
					body["opg"] = json!({ "receipt": hex::to_hex(&r.encode(), false) });
				}
				respond(e.status, &body, receipt.as_ref())
			},
		}
	}

	async fn models(&self) -> Reply {
		let at = self.chain.finalized().await.map_err(|e| (ApiError::chain(e), None))?;
		let me = self.signer.account();
		let worker = self
			.chain
			.worker(at, &me)
			.await
			.map_err(|e| (ApiError::chain(e), None))?
			.ok_or_else(|| {
				(ApiError::new(503, "not_registered", "this worker is not registered"), None)
			})?;
		let mut data = Vec::new();
		for id in worker.releases.iter() {
			let Some(release) =
				self.chain.release(at, *id).await.map_err(|e| (ApiError::chain(e), None))?
			else {
				continue;
			};
			let modes: Vec<String> = opg_primitives::VerificationMode::ALL
				.into_iter()
				.filter(|m| release.params.modes.contains(*m) && worker.modes.contains(*m))
				.map(|m| format!("{m:?}"))
				.collect();
			data.push(json!({
				"id": id.to_string(),
				"object": "model",
				"owned_by": "opg",
				"opg": {
					"release": id,
					"version": String::from_utf8_lossy(&release.params.version),
					"format": format!("{:?}", release.params.format),
					"modes": modes,
					"price": worker.price.to_string(),
					"prompt_per_1k": worker.token_prices.prompt_per_1k.to_string(),
					"completion_per_1k": worker.token_prices.completion_per_1k.to_string(),
				},
			}));
		}
		Ok((json!({ "object": "list", "data": data }), None))
	}

	async fn infer(&self, req: Request<Incoming>) -> Reply {
		let refuse = |e: ApiError| (e, None);
		let voucher = voucher_of(&req).map_err(refuse)?;
		let body = read_body(req).await.map_err(refuse)?;
		#[derive(serde::Deserialize)]
		struct InferRequest {
			model: Value,
			inputs: Vec<JsonTensor>,
		}
		let request: InferRequest = serde_json::from_slice(&body)
			.map_err(|e| refuse(ApiError::new(400, "invalid_json", e.to_string())))?;
		let id = release_id(&request.model).map_err(refuse)?;
		let tensors = request
			.inputs
			.iter()
			.map(tensor_from_json)
			.collect::<Result<Vec<Tensor>, _>>()
			.map_err(|e| refuse(ApiError::new(400, "invalid_input", e)))?;
		let input = tensors.encode();

		let at = self.chain.finalized().await.map_err(|e| refuse(ApiError::chain(e)))?;
		let release = self.served_release(at, id).await.map_err(refuse)?;
		if release.params.format == ModelFormat::Gguf {
			return Err(refuse(ApiError::new(
				400,
				"wrong_endpoint",
				format!("release {id} is an LLM: use /v1/chat/completions"),
			)));
		}
		check_tensors(&input, &release.params.inputs).map_err(|e| {
			refuse(ApiError::new(
				400,
				"invalid_input",
				format!("the inputs do not fit release {id}: {e:?}"),
			))
		})?;

		let channel = voucher.voucher.channel;
		let record = self
			.chain
			.channel(at, channel)
			.await
			.map_err(|e| refuse(ApiError::chain(e)))?
			.ok_or_else(|| {
				refuse(ApiError::new(
					404,
					"unknown_channel",
					format!("channel {channel} is not open on chain (or not finalized yet)"),
				))
			})?;
		let mode = record.mode;
		if mode != opg_primitives::VerificationMode::Vanilla {
			// A TEE answer needs the enclave's signature on its receipt too: not served yet.
			return Err(refuse(ApiError::new(
				501,
				"mode_not_served",
				format!("channel {channel} is {mode:?}: this API serves Vanilla channels only"),
			)));
		}
		self.ledger.update(channel, record);
		let me = self.signer.account();
		let price = self
			.chain
			.worker(at, &me)
			.await
			.map_err(|e| refuse(ApiError::chain(e)))?
			.map(|w| w.price)
			.ok_or_else(|| {
				refuse(ApiError::new(503, "not_registered", "this worker is not registered"))
			})?;
		let burn = self
			.chain
			.verification_fee(at, mode, input.len() as u32)
			.await
			.map_err(|e| refuse(ApiError::chain(e)))?;
		let admission = self
			.ledger
			.admit(self.genesis, id, voucher, &input, Charge { pay: price, burn })
			.map_err(|e| {
				refuse(match e {
					LedgerError::Voucher(v) => ApiError::new(v.status(), v.code(), v.to_string()),
					LedgerError::Io(m) => ApiError::new(503, "ledger_unavailable", m),
				})
			})?;

		let answer = self.runner.run(release, input.clone(), self.config.budget).await;
		self.ledger.finish(admission);
		let (response_bytes, outcome) = match answer {
			Answer::Output { output, .. } => {
				let outputs = Vec::<Tensor>::decode(&mut &output[..]).map_err(|e| {
					refuse(ApiError::new(
						500,
						"bad_output",
						format!("the output does not decode: {e}"),
					))
				});
				(output, outputs)
			},
			Answer::Reject(reason) => {
				let e = match reason {
					RejectReason::BadInput => ApiError::new(
						400,
						"model_cannot_take_input",
						"the model cannot take this input",
					),
					RejectReason::ModelUnavailable =>
						ApiError::new(503, "model_unavailable", "the model file is not available"),
					_ => ApiError::new(500, "execution_failed", "the model failed on this input"),
				};
				((b"opg/error", reason).encode(), Err((e, None)))
			},
		};
		let receipt = Receipt {
			channel,
			seq: admission.seq,
			release: id,
			request_hash: payload_hash(&input),
			response_hash: payload_hash(&response_bytes),
			engine: self.engine.clone(),
			device_class: self.device_class.clone(),
			unix_ms: SystemTime::now()
				.duration_since(UNIX_EPOCH)
				.map(|d| d.as_millis() as u64)
				.unwrap_or_default(),
		};
		let signed = sign_receipt(self.signer.as_ref(), self.genesis, receipt)
			.map_err(|e| refuse(ApiError::new(500, "signing_failed", e.to_string())))?;
		if let Err(e) = self.ledger.add_receipt(admission, receipt_leaf(&signed.receipt)) {
			tracing::error!(target: "inference", channel, seq = admission.seq, "keeping the receipt: {e}");
		}
		let receipt_hex = hex::to_hex(&signed.encode(), false);
		match outcome {
			Ok(outputs) => Ok((
				json!({
					"object": "opg.infer",
					"model": id.to_string(),
					"outputs": outputs.iter().map(tensor_to_json).collect::<Vec<_>>(),
					"opg": { "receipt": receipt_hex },
				}),
				Some(signed),
			)),
			Err((e, _)) => Err((e, Some(signed))),
		}
	}

	/// An active release this worker serves.
	async fn served_release(
		&self,
		at: H256,
		id: ReleaseId,
	) -> Result<crate::chain::Release, ApiError> {
		let not_found = || {
			ApiError::new(
				404,
				"model_not_found",
				format!("this worker does not serve release {id}"),
			)
		};
		let me = self.signer.account();
		let worker = self.chain.worker(at, &me).await.map_err(ApiError::chain)?;
		if !worker.is_some_and(|w| w.releases.contains(&id)) {
			return Err(not_found());
		}
		match self.chain.release(at, id).await.map_err(ApiError::chain)? {
			Some(release) if release.status == ReleaseStatus::Active => Ok(release),
			_ => Err(not_found()),
		}
	}
}

type Reply = Result<(Value, Option<SignedReceipt>), (ApiError, Option<SignedReceipt>)>;

fn respond(status: u16, body: &Value, receipt: Option<&SignedReceipt>) -> Response<Full<Bytes>> {
	let mut response = Response::builder()
		.status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
		.header(header::CONTENT_TYPE, "application/json");
	if let Some(r) = receipt {
		response = response.header(RECEIPT_HEADER, hex::to_hex(&r.encode(), false));
	}
	response
		.body(Full::new(Bytes::from(body.to_string())))
		.expect("a valid status and headers")
}

fn voucher_of(req: &Request<Incoming>) -> Result<SignedVoucher, ApiError> {
	let value = req.headers().get(VOUCHER_HEADER).ok_or_else(|| {
		ApiError::new(402, "voucher_required", "send a voucher in the OPG-Voucher header")
	})?;
	let bytes = value
		.to_str()
		.ok()
		.and_then(|v| hex::from_hex(v).ok())
		.ok_or_else(|| ApiError::new(400, "bad_voucher", "OPG-Voucher is not hex"))?;
	SignedVoucher::decode(&mut &bytes[..])
		.ok()
		.ok_or_else(|| ApiError::new(400, "bad_voucher", "OPG-Voucher is not a signed voucher"))
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
	match Limited::new(req.into_body(), MAX_BODY).collect().await {
		Ok(collected) => Ok(collected.to_bytes()),
		Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
			413,
			"request_too_large",
			format!("the body is over {MAX_BODY} bytes"),
		)),
		Err(e) => Err(ApiError::new(400, "bad_body", e.to_string())),
	}
}

fn release_id(model: &Value) -> Result<ReleaseId, ApiError> {
	let parsed = match model {
		Value::String(s) => s.parse().ok(),
		Value::Number(n) => n.as_u64().and_then(|n| ReleaseId::try_from(n).ok()),
		_ => None,
	};
	parsed.ok_or_else(|| ApiError::new(400, "invalid_model", "`model` is a release id, e.g. \"1\""))
}

/// Sets a worker up for the direct path: opens its voucher ledger in `dir` (a file that does
/// not decode is an error: it holds unredeemed payments), has the worker redeem from it, and
/// returns the worker with the API to spawn, unless `--inference-api-port 0` turned it off. The
/// API serves until the process ends.
pub fn direct_path<C: Chain>(
	worker: Worker<C>,
	chain: Arc<C>,
	signer: Arc<dyn Signer>,
	params: &crate::cli::WorkerParams,
	dir: &std::path::Path,
) -> Result<(Worker<C>, Option<impl Future<Output = ()> + Send + 'static>), String> {
	let ledger = Arc::new(
		Ledger::open(dir, signer.account())
			.map_err(|e| format!("voucher ledger in {}: {e}", dir.display()))?,
	);
	let worker = worker.with_channels(ledger.clone(), params.redeem_every);
	let api = params
		.api_config()
		.map(|config| run(chain, signer, worker.runner(), ledger, config, std::future::pending()));
	Ok((worker, api))
}

/// Starts the API of a worker and serves it until `shutdown` resolves. Failures to start (the
/// port taken, the chain unreachable) are logged: the worker's job loop goes on without the
/// API.
pub async fn run<C: Chain>(
	chain: Arc<C>,
	signer: Arc<dyn Signer>,
	runner: Runner,
	ledger: Arc<Ledger>,
	config: ApiConfig,
	shutdown: impl Future<Output = ()>,
) {
	let listen = config.listen;
	let listener = match tokio::net::TcpListener::bind(listen).await {
		Ok(listener) => listener,
		Err(e) => {
			tracing::error!(target: "inference", %listen, "HTTP API not started: {e}");
			return;
		},
	};
	let api = match Api::new(chain, signer, runner, ledger, config).await {
		Ok(api) => Arc::new(api),
		Err(e) => {
			tracing::error!(target: "inference", "HTTP API not started: {e}");
			return;
		},
	};
	tracing::info!(target: "inference", %listen, "🌐 HTTP API (direct path) listening");
	serve(api, listener, shutdown).await;
}

/// Serves `api` on `listener` until `shutdown` resolves; connections already open finish.
pub async fn serve<C: Chain>(
	api: Arc<Api<C>>,
	listener: tokio::net::TcpListener,
	shutdown: impl Future<Output = ()>,
) {
	tokio::pin!(shutdown);
	loop {
		let (stream, peer) = tokio::select! {
			_ = &mut shutdown => break,
			accepted = listener.accept() => match accepted {
				Ok(accepted) => accepted,
				Err(e) => {
					tracing::warn!(target: "inference", "HTTP API accept: {e}");
					tokio::time::sleep(Duration::from_millis(100)).await;
					continue;
				},
			},
		};
		let api = api.clone();
		tokio::spawn(async move {
			let service = hyper::service::service_fn(move |req| {
				let api = api.clone();
				async move { Ok::<_, std::convert::Infallible>(api.handle(req).await) }
			});
			let io = hyper_util::rt::TokioIo::new(stream);
			// A client that does not send its headers in time loses its connection.
			if let Err(e) = hyper::server::conn::http1::Builder::new()
				.timer(hyper_util::rt::TokioTimer::new())
				.header_read_timeout(Duration::from_secs(10))
				.serve_connection(io, service)
				.await
			{
				tracing::debug!(target: "inference", %peer, "HTTP connection: {e}");
			}
		});
	}
}
