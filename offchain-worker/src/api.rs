//! The worker's HTTP API of the direct path (`docs/direct-path.md`): requests paid by the
//! vouchers of on-chain channels, answered at once with a signed receipt.
//!
//! - `GET /v1/models`: the releases this worker serves, with its price (OpenAI's model list,
//!   details in an `opg` field).
//! - `POST /v1/infer`: a tensor release's model on JSON tensors: `{"model": "<release id>",
//!   "inputs": [{"elem": "F32", "shape": [1, 4], "values": [..]}]}`; the answer is `{"model",
//!   "outputs": [..], "opg": {"receipt": "0x.."}}`.
//! - `POST /v1/embeddings`: a text-encoder release on token ids, OpenAI's request and response
//!   ([`embeddings`]); `opg.response` is the hex of the SCALE output tensors the receipt is over.
//! - `POST /v1/chat/completions`: an LLM release, OpenAI's request and response ([`openai`]),
//!   `stream: true` as server-sent events whose last chunk carries the usage and the receipt. The
//!   answer's `opg.response` is the hex of the SCALE [`ChatResponse`] the receipt is over.
//! - `GET /v1/channels/{id}`: where a channel stands for this worker (sequence, cumulative amounts,
//!   what the answers earned, and the latest voucher, signed by the requester): a client that lost
//!   its place continues from there.
//!
//! The voucher travels in the `OPG-Voucher` header (hex of the SCALE [`SignedVoucher`]); its
//! `request_hash` is blake2-256 of the request's canonical bytes: the SCALE tensors a job's
//! input would be, or the SCALE [`ChatRequest`] of a chat. Its pay covers the request's most:
//! the worker's price, and for a chat the token budget (prompt bound and `max_tokens`) at its
//! token prices; what a chat did not generate is credited to the next voucher. Each admitted
//! request gets a receipt, in the `OPG-Receipt` header and the body's `opg.receipt` (hex of the
//! SCALE [`SignedReceipt`]), over the output's canonical bytes or, when the model failed, over
//! the SCALE `("opg/error", reason)`. Refusals are OpenAI-style
//! JSON errors (`{"error": {"message", "type", "code"}}`) with their HTTP status, and change
//! nothing: the voucher is checked, the input against the release's spec, before anything runs.
//! The channel and the fee schedule are read from the last finalized block for each request.

use std::{
	convert::Infallible,
	future::Future,
	net::SocketAddr,
	sync::Arc,
	time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use codec::{Decode, Encode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::{
	body::{Frame, Incoming},
	header, Method, Request, Response, StatusCode,
};
use opg_primitives::{
	channel::{receipt_leaf, ChannelId, Label, Receipt},
	chat::{check_chat_request, ChatError, ChatRequest, ChatResponse, TokenUsage},
	check_tensors, payload_hash, ModelFormat, ReleaseId, Tensor, VerificationMode,
};
use opg_runtime::Balance;
use pallet_inference::RejectReason;
use pallet_model_hub::ReleaseStatus;
use polkadot_sdk::sp_core::{bytes as hex, H256};
use serde_json::{json, Value};

use crate::{
	chain::{Answer, Chain, Release, Signer, WorkerRecord},
	channels::{
		sign_receipt, Admission, Charge, Ledger, LedgerError, SignedReceipt, SignedVoucher,
	},
	embeddings,
	json::{tensor_from_json, tensor_to_json, JsonTensor},
	openai,
	tee::Enclave,
	worker::{Runner, Worker},
};

/// A response body: whole, or a stream of server-sent events.
pub type Body = BoxBody<Bytes, Infallible>;

/// The API's default port.
pub const DEFAULT_PORT: u16 = 9955;
/// Largest request body, in bytes.
pub const MAX_BODY: usize = 1 << 20;
/// Connections served at once by default: past it a new one is answered 503 and closed, so a
/// flood of connections cannot take the worker's memory or file descriptors.
pub const MAX_CONNECTIONS: usize = 256;
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
	/// Connections served at once ([`MAX_CONNECTIONS`]).
	pub max_connections: usize,
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
	/// The enclave, in TEE mode: it signs a TEE channel's receipts too.
	enclave: Option<Arc<Enclave>>,
	/// What requests read of the finalized block, kept until it moves on.
	reads: std::sync::Mutex<BlockReads>,
}

/// What every request reads of the chain that changes only from block to block: the worker's
/// record, the releases and the verification fees at one finalized block. Runtime calls cost
/// more than a small model's run, so they are made once a block. Channels are read for each
/// request (a storage read), and so is the enclave key's status.
#[derive(Default)]
struct BlockReads {
	at: H256,
	worker: Option<Option<WorkerRecord>>,
	releases: std::collections::HashMap<ReleaseId, Option<Release>>,
	fees: std::collections::HashMap<(u8, u32), Balance>,
}

/// Most fees kept for one block (one per request size and mode).
const MAX_KEPT_FEES: usize = 1024;

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
			enclave: None,
			reads: Default::default(),
		})
	}

	/// Serves TEE channels too, their receipts signed by `enclave` as well, while the chain
	/// holds its key as the worker's usable attested key.
	pub fn with_enclave(mut self, enclave: Option<Arc<Enclave>>) -> Self {
		self.enclave = enclave;
		self
	}

	/// The vouchers this API accepted.
	pub fn ledger(&self) -> &Arc<Ledger> {
		&self.ledger
	}

	async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
		let path = req.uri().path().to_owned();
		let result = match (req.method(), path.as_str()) {
			(&Method::GET, "/v1/models") => self.models().await,
			(&Method::GET, p) if p.starts_with("/v1/channels/") =>
				self.position(p).map(|body| (body, None)).map_err(|e| (e, None)),
			(&Method::POST, "/v1/infer") => self.infer(req).await,
			(&Method::POST, "/v1/embeddings") => self.embeddings(req).await,
			(&Method::POST, "/v1/chat/completions") => match self.clone().chat(req).await {
				Ok(response) => return response,
				Err(e) => Err(e),
			},
			(_, p) if p.starts_with("/v1/channels/") =>
				Err((ApiError::new(405, "method_not_allowed", format!("{path} takes GET")), None)),
			(_, "/v1/models" | "/v1/infer" | "/v1/embeddings" | "/v1/chat/completions") => Err((
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

	/// `GET /v1/channels/{id}`: where the channel stands for this worker, so that a client
	/// that lost its place (a crash between sending a voucher and keeping the answer) continues
	/// from the requester-signed voucher the worker holds rather than being refused as a replay.
	fn position(&self, path: &str) -> Result<Value, ApiError> {
		let id = path["/v1/channels/".len()..].parse::<ChannelId>().map_err(|_| {
			ApiError::new(400, "invalid_request", format!("{path}: not a channel id"))
		})?;
		let p = self.ledger.position(id).ok_or_else(|| {
			ApiError::new(
				404,
				"unknown_channel",
				format!("this worker holds nothing of channel {id}"),
			)
		})?;
		Ok(json!({
			"object": "opg.channel",
			"channel": id.to_string(),
			"seq": p.seq.to_string(),
			"cumulative_pay": p.pay.to_string(),
			"cumulative_burn": p.burn.to_string(),
			"owed": p.owed.to_string(),
			"in_flight": p.in_flight,
			"voucher": p.latest.map(|v| hex::to_hex(&v.encode(), false)),
		}))
	}

	async fn models(&self) -> Reply {
		let at = self.chain.finalized().await.map_err(|e| (ApiError::chain(e), None))?;
		let worker = self.registered_worker(at).await.map_err(|e| (e, None))?;
		let mut data = Vec::new();
		for id in worker.releases.iter() {
			let Some(release) = self.release_at(at, *id).await.map_err(|e| (e, None))? else {
				continue;
			};
			let modes: Vec<String> = opg_primitives::VerificationMode::ALL
				.into_iter()
				.filter(|m| release.params.modes.contains(*m) && worker.modes.contains(*m))
				.map(|m| format!("{m:?}"))
				.collect();
			let params = &release.params;
			let endpoint = if params.llm.is_some() {
				"/v1/chat/completions"
			} else if embeddings::encoder_dimension(&params.inputs, &params.outputs).is_ok() {
				"/v1/embeddings"
			} else {
				"/v1/infer"
			};
			data.push(json!({
				"id": id.to_string(),
				"object": "model",
				"owned_by": "opg",
				"opg": {
					"release": id,
					"endpoint": endpoint,
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
		let at = self.chain.finalized().await.map_err(|e| refuse(ApiError::chain(e)))?;
		let (release, worker) = self.served_release(at, id).await.map_err(refuse)?;
		let (outputs, _, signed) =
			self.run_tensors(at, id, release, worker, voucher, &tensors).await?;
		Ok((
			json!({
				"object": "opg.infer",
				"model": id.to_string(),
				"outputs": outputs.iter().map(tensor_to_json).collect::<Vec<_>>(),
				"opg": { "receipt": hex::to_hex(&signed.encode(), false) },
			}),
			Some(signed),
		))
	}

	/// `POST /v1/embeddings`: a text-encoder release on token ids ([`embeddings`]), checked,
	/// admitted and run like `/v1/infer`; the answer is OpenAI's, with the receipt and the
	/// canonical output it is over in `opg`.
	async fn embeddings(&self, req: Request<Incoming>) -> Reply {
		let refuse = |e: ApiError| (e, None);
		let voucher = voucher_of(&req).map_err(refuse)?;
		let body = read_body(req).await.map_err(refuse)?;
		let request = embeddings::parse_embeddings(&body)
			.map_err(|r| refuse(ApiError::new(400, r.code, r.message)))?;
		let id = release_id(&request.model).map_err(refuse)?;
		let at = self.chain.finalized().await.map_err(|e| refuse(ApiError::chain(e)))?;
		let (release, worker) = self.served_release(at, id).await.map_err(refuse)?;
		let (inputs, outputs) = (&release.params.inputs, &release.params.outputs);
		let dim = embeddings::encoder_dimension(inputs, outputs).map_err(|why| {
			refuse(ApiError::new(
				400,
				"wrong_endpoint",
				format!("release {id} is not a text encoder: {why}; use /v1/infer"),
			))
		})?;
		if let Some(asked) = request.dimensions.filter(|d| *d != dim as u64) {
			return Err(refuse(ApiError::new(
				400,
				"unsupported_parameter",
				match dim {
					0 => format!("`dimensions` {asked}: release {id} does not declare its size"),
					_ => format!(
						"`dimensions` {asked}: release {id} gives {dim} and does not shorten them"
					),
				},
			)));
		}
		let (tensors, tokens) = embeddings::encoder_inputs(&request.rows, inputs)
			.map_err(|r| refuse(ApiError::new(400, r.code, r.message)))?;
		let price = worker.price;
		let (outputs, response, signed) =
			self.run_tensors(at, id, release, worker, voucher, &tensors).await?;
		let mut answer =
			embeddings::embeddings_body(&outputs, request.rows.len(), tokens, request.base64)
				.map_err(|m| (ApiError::new(500, "bad_output", m), Some(signed.clone())))?;
		answer["model"] = json!(id.to_string());
		answer["opg"] = opg_field(&signed, &response, price);
		Ok((answer, Some(signed)))
	}

	/// Runs a tensor release on `tensors` once the voucher admits them: the outputs, their
	/// canonical bytes and the receipt over them. A refusal after admission carries the receipt
	/// (over the error).
	async fn run_tensors(
		&self,
		at: H256,
		id: ReleaseId,
		release: Release,
		worker: WorkerRecord,
		voucher: SignedVoucher,
		tensors: &[Tensor],
	) -> Result<(Vec<Tensor>, Vec<u8>, SignedReceipt), (ApiError, Option<SignedReceipt>)> {
		let refuse = |e: ApiError| (e, None);
		if release.params.format == ModelFormat::Gguf {
			return Err(refuse(ApiError::new(
				400,
				"wrong_endpoint",
				format!("release {id} is an LLM: use /v1/chat/completions"),
			)));
		}
		let input = tensors.encode();
		check_tensors(&input, &release.params.inputs).map_err(|e| {
			refuse(ApiError::new(
				400,
				"invalid_input",
				format!("the inputs do not fit release {id}: {e:?}"),
			))
		})?;
		let admission = self.admit(at, id, voucher, &input, worker.price).await.map_err(refuse)?;

		let answer = self.runner.run(release, input.clone(), self.config.budget).await;
		self.ledger.finish(admission);
		let (response_bytes, outcome) = match answer {
			Answer::Output { output, .. } => {
				let outputs = Vec::<Tensor>::decode(&mut &output[..]).map_err(|e| {
					ApiError::new(500, "bad_output", format!("the output does not decode: {e}"))
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
				((b"opg/error", reason).encode(), Err(e))
			},
		};
		let signed = self
			.receipt(admission, id, &input, &response_bytes, admission.reserved)
			.map_err(refuse)?;
		match outcome {
			Ok(outputs) => Ok((outputs, response_bytes, signed)),
			Err(e) => Err((e, Some(signed))),
		}
	}

	/// `POST /v1/chat/completions`: checked and admitted like `/v1/infer`, then answered whole
	/// or, with `stream: true`, as server-sent events.
	async fn chat(
		self: Arc<Self>,
		req: Request<Incoming>,
	) -> Result<Response<Body>, (ApiError, Option<SignedReceipt>)> {
		let refuse = |e: ApiError| (e, None);
		let voucher = voucher_of(&req).map_err(refuse)?;
		let body = read_body(req).await.map_err(refuse)?;
		let completion = openai::parse_chat(&body, rand::random)
			.map_err(|r| refuse(ApiError::new(400, r.code, r.message)))?;
		let id = release_id(&completion.model).map_err(refuse)?;
		let at = self.chain.finalized().await.map_err(|e| refuse(ApiError::chain(e)))?;
		let (release, worker) = self.served_release(at, id).await.map_err(refuse)?;
		if release.params.format != ModelFormat::Gguf {
			return Err(refuse(ApiError::new(
				400,
				"wrong_endpoint",
				format!("release {id} is not an LLM: use /v1/infer (or /v1/embeddings)"),
			)));
		}
		let Some(spec) = release.params.llm.clone() else {
			return Err(refuse(ApiError::new(
				503,
				"model_unavailable",
				format!("release {id} declares no LLM spec"),
			)));
		};
		let input = completion.request.encode();
		let (_, budget) = check_chat_request(&input, &spec)
			.map_err(|e| refuse(chat_refusal(e, &completion.request, spec.context_length)))?;
		// The most the request can cost: what the voucher must cover, as a job's escrow would.
		type Market = pallet_inference::Pallet<opg_runtime::Runtime>;
		let most = Market::max_charge(&worker, Some(budget));
		// What an answer earns, as a settled job would: the price and its tokens (within the
		// budget); a failed one the price alone.
		let (price, prices) = (worker.price, worker.token_prices);
		let earned = move |response: Option<&ChatResponse>| match response {
			Some(r) => {
				let usage = TokenUsage { prompt: r.prompt_tokens, completion: r.completion_tokens };
				Market::billed_charge(price, &prices, budget, usage).min(most)
			},
			None => price,
		};
		let admission = self.admit(at, id, voucher, &input, most).await.map_err(refuse)?;
		let meta = json!({
			"id": format!("chatcmpl-{}-{}", admission.channel, admission.seq),
			"created": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default(),
			"model": id.to_string(),
		});

		if !completion.stream {
			let answer = self.runner.run(release, input.clone(), self.config.budget).await;
			self.ledger.finish(admission);
			let (bytes, outcome) = chat_outcome(answer);
			let earned = earned(outcome.as_ref().ok());
			let signed = self.receipt(admission, id, &input, &bytes, earned).map_err(refuse)?;
			return match outcome {
				Ok(response) => {
					let mut body = meta;
					body["object"] = json!("chat.completion");
					body["system_fingerprint"] = json!(openai::fingerprint(&response));
					body["choices"] = json!([{
						"index": 0,
						"message": {
							"role": "assistant",
							"content": String::from_utf8_lossy(&response.text),
						},
						"logprobs": null,
						"finish_reason": openai::finish_reason(response.finish_reason),
					}]);
					body["usage"] = openai::usage(&response);
					body["opg"] = opg_field(&signed, &bytes, earned);
					Ok(respond(200, &body, Some(&signed)))
				},
				Err(e) => Err((e, Some(signed))),
			};
		}

		// Server-sent events: the role, the text as it is generated, then a last chunk with
		// the finish reason, the usage and the receipt. A client that goes away stops
		// nothing: the answer is made and paid for all the same.
		let (frames, events) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
		let chunk = move |delta: Value, finish: Value| {
			let mut c = meta.clone();
			c["object"] = json!("chat.completion.chunk");
			c["choices"] =
				json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }]);
			c
		};
		let api = self.clone();
		tokio::spawn(async move {
			let send = |event: &Value| {
				let _ = frames.send(Bytes::from(format!("data: {event}\n\n")));
			};
			send(&chunk(json!({ "role": "assistant", "content": "" }), Value::Null));
			let (text, mut pieces) = tokio::sync::mpsc::unbounded_channel::<String>();
			let run =
				api.runner.run_streaming(release, input.clone(), api.config.budget, Some(text));
			tokio::pin!(run);
			let mut sent = String::new();
			let mut forward = |piece: String| {
				send(&chunk(json!({ "content": piece }), Value::Null));
				sent.push_str(&piece);
			};
			let answer = loop {
				tokio::select! {
					biased;
					Some(piece) = pieces.recv() => forward(piece),
					answer = &mut run => break answer,
				}
			};
			while let Ok(piece) = pieces.try_recv() {
				forward(piece);
			}
			api.ledger.finish(admission);
			let (bytes, outcome) = chat_outcome(answer);
			let earned = earned(outcome.as_ref().ok());
			match (api.receipt(admission, id, &input, &bytes, earned), outcome) {
				(Ok(signed), Ok(response)) => {
					let text = String::from_utf8_lossy(&response.text);
					match text.strip_prefix(sent.as_str()) {
						Some("") => {},
						Some(rest) => send(&chunk(json!({ "content": rest }), Value::Null)),
						None => tracing::error!(
							target: "inference",
							"streamed text is not a prefix of the response; the last chunk's \
							 opg.response has the text"
						),
					}
					let mut last =
						chunk(json!({}), json!(openai::finish_reason(response.finish_reason)));
					last["system_fingerprint"] = json!(openai::fingerprint(&response));
					last["usage"] = openai::usage(&response);
					last["opg"] = opg_field(&signed, &bytes, earned);
					send(&last);
				},
				(Ok(signed), Err(e)) => {
					let mut event = e.body();
					event["opg"] = json!({ "receipt": hex::to_hex(&signed.encode(), false) });
					send(&event);
				},
				// Not signed: the model's error if it failed, else the signing error.
				(Err(signing), outcome) => send(&outcome.err().unwrap_or(signing).body()),
			}
			let _ = frames.send(Bytes::from_static(b"data: [DONE]\n\n"));
		});
		let stream = futures::stream::unfold(events, |mut events| async move {
			events.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), events))
		});
		Ok(Response::builder()
			.status(StatusCode::OK)
			.header(header::CONTENT_TYPE, "text/event-stream")
			.header(header::CACHE_CONTROL, "no-cache")
			.body(BodyExt::boxed(StreamBody::new(stream)))
			.expect("a valid status and headers"))
	}

	fn kept<T>(&self, at: H256, get: impl FnOnce(&BlockReads) -> Option<T>) -> Option<T> {
		let reads = self.reads.lock().expect("reads lock");
		if reads.at == at {
			get(&reads)
		} else {
			None
		}
	}

	fn keep(&self, at: H256, put: impl FnOnce(&mut BlockReads)) {
		let mut reads = self.reads.lock().expect("reads lock");
		if reads.at != at {
			*reads = BlockReads { at, ..Default::default() };
		}
		put(&mut reads);
	}

	/// This worker's record at `at`; 503 while it is not registered.
	async fn registered_worker(&self, at: H256) -> Result<WorkerRecord, ApiError> {
		let worker = match self.kept(at, |r| r.worker.clone()) {
			Some(worker) => worker,
			None => {
				let worker =
					self.chain.worker(at, &self.signer.account()).await.map_err(ApiError::chain)?;
				self.keep(at, |r| r.worker = Some(worker.clone()));
				worker
			},
		};
		worker.ok_or_else(|| ApiError::new(503, "not_registered", "this worker is not registered"))
	}

	/// Release `id` at `at`.
	async fn release_at(&self, at: H256, id: ReleaseId) -> Result<Option<Release>, ApiError> {
		if let Some(release) = self.kept(at, |r| r.releases.get(&id).cloned()) {
			return Ok(release);
		}
		let release = self.chain.release(at, id).await.map_err(ApiError::chain)?;
		self.keep(at, |r| {
			r.releases.insert(id, release.clone());
		});
		Ok(release)
	}

	/// The verification fee of `bytes` bytes in `mode` at `at`.
	async fn fee_at(
		&self,
		at: H256,
		mode: VerificationMode,
		bytes: u32,
	) -> Result<Balance, ApiError> {
		if let Some(fee) = self.kept(at, |r| r.fees.get(&(mode.bit(), bytes)).copied()) {
			return Ok(fee);
		}
		let fee = self.chain.verification_fee(at, mode, bytes).await.map_err(ApiError::chain)?;
		self.keep(at, |r| {
			if r.fees.len() >= MAX_KEPT_FEES {
				r.fees.clear();
			}
			r.fees.insert((mode.bit(), bytes), fee);
		});
		Ok(fee)
	}

	/// An active release this worker serves, and the worker's record.
	async fn served_release(
		&self,
		at: H256,
		id: ReleaseId,
	) -> Result<(Release, WorkerRecord), ApiError> {
		let not_found = || {
			ApiError::new(
				404,
				"model_not_found",
				format!("this worker does not serve release {id}"),
			)
		};
		let worker = self.registered_worker(at).await?;
		if !worker.releases.contains(&id) {
			return Err(not_found());
		}
		match self.release_at(at, id).await? {
			Some(release) if release.status == ReleaseStatus::Active => Ok((release, worker)),
			_ => Err(not_found()),
		}
	}

	/// Reads the voucher's channel at `at` and admits the request (`input`, its canonical
	/// bytes) if the voucher pays `pay` and the verification fee of its bytes. Nothing is
	/// recorded unless it is admitted.
	async fn admit(
		&self,
		at: H256,
		id: ReleaseId,
		voucher: SignedVoucher,
		input: &[u8],
		pay: Balance,
	) -> Result<Admission, ApiError> {
		// A receipt whose request the chain cannot take could not be opened if audited.
		let most = <<opg_runtime::Runtime as pallet_inference::Config>::MaxInputLen as
			polkadot_sdk::frame_support::traits::Get<u32>>::get();
		if input.len() > most as usize {
			return Err(ApiError::new(
				413,
				"request_too_large",
				format!(
					"the canonical request is {} bytes; receipts are opened on chain with at most {most}",
					input.len()
				),
			));
		}
		let channel = voucher.voucher.channel;
		let record =
			self.chain.channel(at, channel).await.map_err(ApiError::chain)?.ok_or_else(|| {
				ApiError::new(
					404,
					"unknown_channel",
					format!("channel {channel} is not open on chain (or not finalized yet)"),
				)
			})?;
		let mode = record.mode;
		match mode {
			VerificationMode::Vanilla => {},
			VerificationMode::Tee => self.enclave_ready(at, channel).await?,
			_ =>
				return Err(ApiError::new(
					501,
					"mode_not_served",
					format!(
						"channel {channel} is {mode:?}: the direct path serves Vanilla and TEE"
					),
				)),
		}
		self.ledger.update(channel, record);
		let burn = self.fee_at(at, mode, input.len() as u32).await?;
		self.ledger
			.admit(self.genesis, id, voucher, input, Charge { pay, burn })
			.map_err(|e| match e {
				LedgerError::Voucher(v) => ApiError::new(v.status(), v.code(), v.to_string()),
				LedgerError::Io(m) => ApiError::new(503, "ledger_unavailable", m),
			})
	}

	/// A TEE channel is served only by a worker whose enclave key is, at `at`, its usable
	/// attested key on chain: the key its client will check the receipt against.
	async fn enclave_ready(&self, at: H256, channel: u64) -> Result<(), ApiError> {
		let Some(enclave) = &self.enclave else {
			return Err(ApiError::new(
				501,
				"mode_not_served",
				format!("channel {channel} is TEE: this worker runs no enclave"),
			));
		};
		let status = self
			.chain
			.tee_status(at, &self.signer.account())
			.await
			.map_err(ApiError::chain)?;
		match status.key {
			Some(key) if status.key_usable && key.public == enclave.public() => Ok(()),
			_ => Err(ApiError::new(
				503,
				"enclave_not_attested",
				"this worker's enclave key is not (or no longer) attested on chain: retry shortly",
			)),
		}
	}

	/// Signs the receipt of an admitted request's answer (`response`: its canonical bytes)
	/// and keeps its leaf with what the answer `earned`.
	fn receipt(
		&self,
		admission: Admission,
		id: ReleaseId,
		request: &[u8],
		response: &[u8],
		earned: Balance,
	) -> Result<SignedReceipt, ApiError> {
		let receipt = Receipt {
			channel: admission.channel,
			seq: admission.seq,
			release: id,
			request_hash: payload_hash(request),
			response_hash: payload_hash(response),
			engine: self.engine.clone(),
			device_class: self.device_class.clone(),
			unix_ms: SystemTime::now()
				.duration_since(UNIX_EPOCH)
				.map(|d| d.as_millis() as u64)
				.unwrap_or_default(),
		};
		let signed = self.sign_and_keep(admission, receipt, request, response).map_err(|e| {
			// Not given: the voucher is undone if it can be, so the requester is not charged.
			let again = if self.ledger.withdraw(admission) {
				format!("the voucher was withdrawn: send seq {} again", admission.seq)
			} else {
				"the voucher could not be withdrawn (a later one came, or the ledger could not be \
				 written): this channel is not redeemed again"
					.to_string()
			};
			ApiError::new(e.status, e.code, format!("{}; {again}", e.message))
		})?;
		if let Err(e) = self.ledger.add_receipt(admission, receipt_leaf(&signed.receipt), earned) {
			tracing::error!(
				target: "inference",
				channel = admission.channel, seq = admission.seq,
				"keeping the receipt: {e}"
			);
		}
		Ok(signed)
	}

	/// Signs a receipt (the enclave too on a TEE channel) and keeps the answer for audits.
	fn sign_and_keep(
		&self,
		admission: Admission,
		receipt: Receipt,
		request: &[u8],
		response: &[u8],
	) -> Result<SignedReceipt, ApiError> {
		let mut signed = sign_receipt(self.signer.as_ref(), self.genesis, receipt)
			.map_err(|e| ApiError::new(500, "signing_failed", e.to_string()))?;
		if admission.mode == VerificationMode::Tee {
			// The enclave hashes the bytes itself: it signs only for this request and answer.
			let signature = self
				.enclave
				.as_ref()
				.and_then(|e| e.sign_receipt(self.genesis, &signed.receipt, request, response));
			signed.enclave_signature = Some(signature.ok_or_else(|| {
				ApiError::new(500, "signing_failed", "the enclave did not sign the receipt")
			})?);
		}
		// Kept before it leaves: an audit or a challenge of it must be answered with these
		// bytes. An answer that could not be kept is not sent: its receipt would be one the
		// worker cannot open.
		self.ledger.receipts().keep(&signed, request, response).map_err(|e| {
			tracing::error!(
				target: "inference",
				channel = admission.channel, seq = admission.seq,
				"keeping the answer for audits: {e}"
			);
			ApiError::new(500, "not_kept", format!("the answer could not be kept for audits: {e}"))
		})?;
		Ok(signed)
	}
}

type Reply = Result<(Value, Option<SignedReceipt>), (ApiError, Option<SignedReceipt>)>;

fn respond(status: u16, body: &Value, receipt: Option<&SignedReceipt>) -> Response<Body> {
	let mut response = Response::builder()
		.status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
		.header(header::CONTENT_TYPE, "application/json");
	if let Some(r) = receipt {
		response = response.header(RECEIPT_HEADER, hex::to_hex(&r.encode(), false));
	}
	response
		.body(Full::new(Bytes::from(body.to_string())).boxed())
		.expect("a valid status and headers")
}

/// A chat answer's canonical bytes (the SCALE response, or the error marker) and what the
/// client sees.
fn chat_outcome(answer: Answer) -> (Vec<u8>, Result<ChatResponse, ApiError>) {
	match answer {
		Answer::Output { output, .. } => {
			let response = ChatResponse::decode(&mut &output[..]).map_err(|e| {
				ApiError::new(500, "bad_output", format!("the response does not decode: {e}"))
			});
			(output, response)
		},
		Answer::Reject(reason) => {
			let e = match reason {
				RejectReason::BadInput => ApiError::new(
					400,
					"context_length_exceeded",
					"the rendered prompt and max_tokens exceed the model's context, or its chat \
					 template refuses this order of roles",
				),
				RejectReason::ModelUnavailable =>
					ApiError::new(503, "model_unavailable", "the model file is not available"),
				_ => ApiError::new(500, "execution_failed", "generation failed"),
			};
			((b"opg/error", reason).encode(), Err(e))
		},
	}
}

/// The `opg` field of an answer: the receipt, the canonical response it is over and what the
/// answer earned (the next voucher's pay starts from the total of these).
fn opg_field(signed: &SignedReceipt, response: &[u8], earned: Balance) -> Value {
	json!({
		"receipt": hex::to_hex(&signed.encode(), false),
		"response": hex::to_hex(response, false),
		"charged": earned.to_string(),
	})
}

/// Why a chat request is refused, for people.
fn chat_refusal(e: ChatError, request: &ChatRequest, context: u32) -> ApiError {
	use opg_primitives::chat::{
		MAX_COMPLETION_TOKENS, MAX_MESSAGES, MAX_STOP_LEN, MAX_STOP_STRINGS,
	};
	match e {
		ChatError::EmptyPrompt => ApiError::new(400, "invalid_messages", "the chat is empty"),
		ChatError::TooManyMessages =>
			ApiError::new(400, "invalid_messages", format!("at most {MAX_MESSAGES} messages")),
		ChatError::BadStopStrings => ApiError::new(
			400,
			"invalid_parameter",
			format!("at most {MAX_STOP_STRINGS} stop strings of 1..={MAX_STOP_LEN} bytes"),
		),
		ChatError::BadMaxTokens => ApiError::new(
			400,
			"context_length_exceeded",
			format!(
				"max_tokens {} is over the release's context of {context} tokens (or \
				 {MAX_COMPLETION_TOKENS})",
				request.max_tokens
			),
		),
		ChatError::BadSampling =>
			ApiError::new(400, "invalid_parameter", "a sampling parameter is out of its range"),
		ChatError::NotUtf8 | ChatError::Malformed | ChatError::Inconsistent =>
			ApiError::new(400, "invalid_request", format!("not a valid chat request: {e:?}")),
	}
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
	let mut worker = worker.with_channels(ledger.clone(), params.redeem_every);
	if let Some(url) = &params.inference_api_advertise {
		worker = worker.advertise(url.clone());
	}
	let enclave = worker.enclave();
	let api = params.api_config().map(|config| {
		run(chain, signer, worker.runner(), ledger, enclave, config, std::future::pending())
	});
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
	enclave: Option<Arc<Enclave>>,
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
		Ok(api) => Arc::new(api.with_enclave(enclave)),
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
	let connections = Arc::new(tokio::sync::Semaphore::new(api.config.max_connections.max(1)));
	let refusals = Arc::new(tokio::sync::Semaphore::new(api.config.max_connections.clamp(1, 64)));
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
		let Ok(permit) = connections.clone().try_acquire_owned() else {
			tracing::debug!(target: "inference", %peer, "HTTP API at its connection limit");
			// A short answer, and a graceful close (what the client sent is read, so that it
			// gets the answer rather than a reset), by a bounded number of tasks; past them
			// the connection is dropped.
			if let Ok(refusal) = refusals.clone().try_acquire_owned() {
				tokio::spawn(async move {
					let _refusal = refusal;
					refuse_connection(stream).await;
				});
			}
			continue;
		};
		let api = api.clone();
		tokio::spawn(async move {
			let _permit = permit;
			let service = hyper::service::service_fn(move |req| {
				let api = api.clone();
				async move { Ok::<_, Infallible>(api.handle(req).await) }
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

/// Answers a connection over the limit with a 503 and closes it: the answer, the end of what
/// we send, then what the client sent is read and dropped (at most 64 KiB, one second).
async fn refuse_connection(mut stream: tokio::net::TcpStream) {
	use tokio::io::{AsyncReadExt, AsyncWriteExt};
	let body = ApiError::new(
		503,
		"too_many_connections",
		"the worker serves as many connections as it takes: retry shortly",
	)
	.body()
	.to_string();
	let head = format!(
		"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: \
		 {}\r\nconnection: close\r\n\r\n",
		body.len()
	);
	let drain = async {
		stream.write_all(head.as_bytes()).await?;
		stream.write_all(body.as_bytes()).await?;
		stream.shutdown().await?;
		let mut sink = [0u8; 4096];
		let mut read = 0;
		while read < 64 * 1024 {
			match stream.read(&mut sink).await? {
				0 => break,
				n => read += n,
			}
		}
		Ok::<_, std::io::Error>(())
	};
	let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}
