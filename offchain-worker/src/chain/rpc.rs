//! [`Chain`] over a node's JSON-RPC WebSocket, for the standalone `opg-worker`.
//!
//! Runtime API calls go through `state_call` and decode with the runtime's own types. When the
//! connection drops (node restart, network), requests fail with [`ChainError::Connection`] and
//! the next [`Chain::next_head`] reconnects with backoff, so the worker resumes from chain state.

use std::time::Duration;

use async_trait::async_trait;
use codec::{Decode, Encode};
use jsonrpsee::{
	core::client::{ClientT, Error as RpcError, Subscription, SubscriptionClientT},
	rpc_params,
	ws_client::{WsClient, WsClientBuilder},
};
use opg_primitives::{channel::ChannelId, JobId, ReleaseId, VerificationMode};
use opg_runtime::{AccountId, Balance, Header, Nonce, UncheckedExtrinsic};
use polkadot_sdk::{
	sp_core::{bytes, crypto::Ss58Codec, H256},
	sp_runtime::traits::Header as _,
};
use tokio::sync::Mutex;

use super::{
	channel_key, decode_channel, decode_endpoint, endpoint_key, Chain, ChainError, ChannelRecord,
	Head, Job, Release, SigningContext, WorkerRecord, WorkerTee,
};

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A node reached over `ws://` or `wss://`.
pub struct RpcChain {
	url: String,
	state: Mutex<Connection>,
}

#[derive(Default)]
struct Connection {
	client: Option<std::sync::Arc<WsClient>>,
	heads: Option<Subscription<Header>>,
	backoff: Duration,
}

impl RpcChain {
	/// A client for `url`; connects on first use.
	pub fn new(url: impl Into<String>) -> Self {
		RpcChain { url: url.into(), state: Mutex::new(Connection::default()) }
	}

	/// Connects now, so that a wrong URL fails at start-up rather than in the loop.
	pub async fn connect(&self) -> Result<(), ChainError> {
		self.client().await.map(|_| ())
	}

	async fn client(&self) -> Result<std::sync::Arc<WsClient>, ChainError> {
		let mut state = self.state.lock().await;
		if let Some(client) = state.client.as_ref().filter(|c| c.is_connected()) {
			return Ok(client.clone());
		}
		state.heads = None;
		let client = WsClientBuilder::default()
			.request_timeout(Duration::from_secs(30))
			.max_request_size(16 * 1024 * 1024)
			.build(&self.url)
			.await
			.map_err(|e| ChainError::Connection(format!("{}: {e}", self.url)))?;
		let client = std::sync::Arc::new(client);
		state.client = Some(client.clone());
		Ok(client)
	}

	async fn request<R: serde::de::DeserializeOwned>(
		&self,
		method: &str,
		params: jsonrpsee::core::params::ArrayParams,
	) -> Result<R, ChainError> {
		let client = self.client().await?;
		client.request(method, params).await.map_err(|e| match e {
			RpcError::Call(e) => ChainError::Request(format!("{method}: {}", e.message())),
			RpcError::ParseError(e) =>
				ChainError::Decode { what: "RPC response", error: e.to_string() },
			e => ChainError::Connection(format!("{method}: {e}")),
		})
	}

	/// `state_call` of a runtime API function, decoded as `R`.
	async fn runtime_call<R: Decode>(
		&self,
		function: &'static str,
		args: impl Encode,
		at: H256,
	) -> Result<R, ChainError> {
		let raw: String = self
			.request("state_call", rpc_params![function, bytes::to_hex(&args.encode(), false), at])
			.await?;
		let raw = bytes::from_hex(&raw)
			.map_err(|e| ChainError::Decode { what: function, error: e.to_string() })?;
		R::decode(&mut &raw[..])
			.map_err(|e| ChainError::Decode { what: function, error: e.to_string() })
	}

	async fn wait_backoff(&self) {
		let delay = {
			let mut state = self.state.lock().await;
			state.backoff = (state.backoff * 2).clamp(Duration::from_millis(500), MAX_BACKOFF);
			state.backoff
		};
		tokio::time::sleep(delay).await;
	}
}

#[async_trait]
impl Chain for RpcChain {
	async fn next_head(&self) -> Result<Head, ChainError> {
		loop {
			let mut subscription = {
				let mut state = self.state.lock().await;
				state.heads.take()
			};
			if subscription.is_none() {
				let subscribed = match self.client().await {
					Ok(client) => client
						.subscribe::<Header, _>(
							"chain_subscribeNewHeads",
							rpc_params![],
							"chain_unsubscribeNewHeads",
						)
						.await
						.map_err(|e| ChainError::Connection(e.to_string())),
					Err(e) => Err(e),
				};
				match subscribed {
					Ok(s) => {
						tracing::info!(target: "inference", url = %self.url, "following new best blocks");
						subscription = Some(s);
					},
					Err(e) => {
						tracing::warn!(target: "inference", "{e}; retrying");
						self.wait_backoff().await;
						continue;
					},
				}
			}
			let mut heads = subscription.expect("set above");
			match heads.next().await {
				Some(Ok(header)) => {
					let mut state = self.state.lock().await;
					state.heads = Some(heads);
					state.backoff = Duration::ZERO;
					return Ok(Head { number: *header.number(), hash: header.hash() });
				},
				Some(Err(e)) => {
					return Err(ChainError::Decode { what: "header", error: e.to_string() });
				},
				None => {
					tracing::warn!(target: "inference", url = %self.url, "connection to the node lost; reconnecting");
					self.state.lock().await.client = None;
					self.wait_backoff().await;
				},
			}
		}
	}

	async fn finalized(&self) -> Result<H256, ChainError> {
		self.request("chain_getFinalizedHead", rpc_params![]).await
	}

	async fn open_jobs(&self, at: H256, worker: &AccountId) -> Result<Vec<JobId>, ChainError> {
		self.runtime_call("InferenceApi_open_jobs", worker, at).await
	}

	async fn job(&self, at: H256, id: JobId) -> Result<Option<(Job, Option<Vec<u8>>)>, ChainError> {
		type View = Option<(
			Job,
			Option<Vec<u8>>,
			Option<pallet_inference::JobResultOf<opg_runtime::Runtime>>,
		)>;
		let view: View = self.runtime_call("InferenceApi_job", id, at).await?;
		Ok(view.map(|(job, input, _)| (job, input)))
	}

	async fn release(&self, at: H256, id: ReleaseId) -> Result<Option<Release>, ChainError> {
		self.runtime_call("InferenceApi_release", id, at).await
	}

	async fn signing_context(&self, at: H256) -> Result<SigningContext, ChainError> {
		let genesis: H256 = self.request("chain_getBlockHash", rpc_params![0]).await?;
		let version: serde_json::Value =
			self.request("state_getRuntimeVersion", rpc_params![at]).await?;
		let field = |name: &'static str| {
			version[name]
				.as_u64()
				.and_then(|v| u32::try_from(v).ok())
				.ok_or(ChainError::Decode { what: "runtime version", error: format!("no {name}") })
		};
		Ok(SigningContext {
			genesis,
			spec_version: field("specVersion")?,
			tx_version: field("transactionVersion")?,
		})
	}

	async fn next_nonce(&self, who: &AccountId) -> Result<Nonce, ChainError> {
		self.request("system_accountNextIndex", rpc_params![who.to_ss58check()]).await
	}

	async fn submit(&self, xt: UncheckedExtrinsic) -> Result<H256, ChainError> {
		let hex = bytes::to_hex(&xt.encode(), false);
		match self.request("author_submitExtrinsic", rpc_params![hex]).await {
			Err(ChainError::Request(message)) => Err(ChainError::Refused(message)),
			other => other,
		}
	}

	async fn in_pool(&self, hash: H256) -> Result<bool, ChainError> {
		let pending: Vec<String> = self.request("author_pendingExtrinsics", rpc_params![]).await?;
		Ok(pending
			.iter()
			.filter_map(|hex| bytes::from_hex(hex).ok())
			.any(|raw| polkadot_sdk::sp_crypto_hashing::blake2_256(&raw) == hash.0))
	}

	async fn tee_status(&self, at: H256, worker: &AccountId) -> Result<WorkerTee, ChainError> {
		self.runtime_call("TeeApi_worker_status", worker, at).await
	}

	async fn worker(&self, at: H256, who: &AccountId) -> Result<Option<WorkerRecord>, ChainError> {
		self.runtime_call("InferenceApi_worker", who, at).await
	}

	async fn verification_fee(
		&self,
		at: H256,
		mode: VerificationMode,
		bytes: u32,
	) -> Result<Balance, ChainError> {
		self.runtime_call("InferenceApi_verification_fee", (mode, bytes), at).await
	}

	async fn channel(&self, at: H256, id: ChannelId) -> Result<Option<ChannelRecord>, ChainError> {
		let key = bytes::to_hex(&channel_key(id), false);
		let raw: Option<String> = self.request("state_getStorage", rpc_params![key, at]).await?;
		let raw = raw
			.map(|hex| bytes::from_hex(&hex))
			.transpose()
			.map_err(|e| ChainError::Decode { what: "channel record", error: e.to_string() })?;
		decode_channel(raw)
	}

	async fn open_disputes(
		&self,
		at: H256,
		worker: &AccountId,
	) -> Result<Vec<(pallet_inference::DisputeKey, u64, u64)>, ChainError> {
		self.runtime_call("InferenceApi_open_disputes", worker, at).await
	}

	async fn endpoint(&self, at: H256, who: &AccountId) -> Result<Option<Vec<u8>>, ChainError> {
		let key = bytes::to_hex(&endpoint_key(who), false);
		let raw: Option<String> = self.request("state_getStorage", rpc_params![key, at]).await?;
		let raw = raw
			.map(|hex| bytes::from_hex(&hex))
			.transpose()
			.map_err(|e| ChainError::Decode { what: "endpoint", error: e.to_string() })?;
		decode_endpoint(raw)
	}
}
