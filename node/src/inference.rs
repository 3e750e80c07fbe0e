//! The in-process inference worker: the node's side of [`opg_worker::chain::Chain`] (runtime
//! API calls and the node's own transaction pool) and the keystore signer. Its flags are in
//! [`crate::cli::InferenceArgs`].

use std::{path::PathBuf, sync::Arc, time::Duration};

use async_trait::async_trait;
use codec::{Decode, Encode};
use futures::StreamExt;
use opg_primitives::{channel::ChannelId, JobId, ReleaseId, VerificationMode};
use opg_runtime::{opaque::Block, AccountId, Balance, Nonce, Signature, UncheckedExtrinsic};
use opg_worker::{
	chain::{
		channel_key, decode_channel, decode_endpoint, endpoint_key, Chain, ChainError,
		ChannelRecord, Head, Job, Release, Signer, SigningContext, WorkerRecord, WorkerTee,
	},
	metrics::Metrics,
	store::ModelStore,
	worker::Worker,
};
use pallet_inference::runtime_api::InferenceApi;
use pallet_tee::runtime_api::TeeApi;
use polkadot_sdk::*;
use prometheus_endpoint::Registry;
use sc_client_api::{BlockchainEvents, HeaderBackend, StorageProvider};
use sc_service::SpawnTaskHandle;
use sc_transaction_pool_api::{InPoolTransaction, TransactionPool as _, TransactionSource};
use sp_api::{Core, ProvideRuntimeApi};
use sp_core::{
	crypto::{ByteArray, Ss58Codec},
	sr25519, Pair, H256,
};
use sp_keystore::KeystorePtr;
use sp_runtime::{traits::Header as _, KeyTypeId};
use substrate_frame_rpc_system::SystemApiServer;

use crate::{
	cli::InferenceArgs,
	client::{ParachainClient, TransactionPool},
};

/// Keystore type of worker keys (`opg-node key insert --key-type infr --scheme sr25519`).
pub const INFERENCE_KEY_TYPE: KeyTypeId = KeyTypeId(*b"infr");

/// What the worker gets from the node it runs in.
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
	/// The node's base path (models and the answer journal go below it).
	pub base_path: PathBuf,
	/// Whether the chain is a development chain (allows the `//Alice` default key).
	pub dev_chain: bool,
}

/// Starts the in-process worker if the flags ask for it.
pub fn start(args: &InferenceArgs, node: NodeHandles) -> Result<(), sc_service::Error> {
	if !args.enabled() {
		return Ok(());
	}
	let params = &args.worker;
	let fail = |what: String| sc_service::Error::Other(format!("inference worker: {what}"));
	if params.gpu && !cfg!(feature = "cuda") {
		return Err(fail("--inference-gpu needs opg-node built with `--features cuda`".into()));
	}
	// Outside an AWS Nitro enclave, `--tee-nitro` stops the node here.
	let enclave = params.enclave().map_err(fail)?;
	opg_worker::tune_allocator();
	let key = params.key().map_err(fail)?;
	let signer = signer(key.as_deref(), &node.keystore, node.dev_chain).map_err(fail)?;
	let store_config = params.store_config(&node.base_path);
	let model_dir = store_config.dir.clone();
	let store = Arc::new(ModelStore::open(store_config).map_err(|e| fail(e.to_string()))?);
	let metrics = match &node.prometheus_registry {
		Some(registry) =>
			Some(Metrics::register(registry, store.clone()).map_err(|e| fail(e.to_string()))?),
		None => None,
	};
	let config = params.worker_config(node.base_path.join("inference"));
	let chain = Arc::new(NodeChain::new(node.client, node.transaction_pool));
	let mut worker = Worker::new(chain.clone(), signer.clone(), store, metrics, config)
		.map_err(|e| fail(e.to_string()))?;
	if let Some(enclave) = enclave {
		if params.tee_dev {
			log::warn!(target: "inference", "⚠️ --tee-dev: TEE results are signed by an INSECURE development enclave");
		}
		worker = worker.with_enclave(enclave);
	}
	let channels = node.base_path.join("inference").join("channels");
	let (mut worker, api) =
		opg_worker::api::direct_path(worker, chain, signer, params, &channels).map_err(fail)?;
	if let Some(api) = api {
		node.spawn_handle.spawn("inference-api", Some("inference"), api);
	}
	let zk_keys = params.zk_keys_dir(&node.base_path);
	worker = worker.with_provers(opg_worker::zk::Provers::new(zk_keys));
	log::info!(target: "inference", "🧠 inference worker on {}, models in {}", params.device(), model_dir.display());
	// Stopped with the node's other tasks; answers already sent are in the journal.
	node.spawn_handle.spawn(
		"inference-worker",
		Some("inference"),
		worker.run(std::future::pending()),
	);
	Ok(())
}

/// The worker key: see `--inference-key`.
fn signer(
	key: Option<&str>,
	keystore: &KeystorePtr,
	dev_chain: bool,
) -> Result<Arc<dyn Signer>, String> {
	let in_keystore = |public: sr25519::Public| -> Result<Arc<dyn Signer>, String> {
		if !keystore.has_keys(&[(public.to_raw_vec(), INFERENCE_KEY_TYPE)]) {
			return Err(format!("no `infr` key {} in the keystore", public.to_ss58check()));
		}
		Ok(Arc::new(KeystoreSigner { keystore: keystore.clone(), public }))
	};
	match key {
		Some(key) => match public_key(key) {
			Some(public) => in_keystore(public),
			None => {
				if !dev_chain {
					return Err("a secret URI as --inference-key is for development chains; \
						insert the key into the keystore and pass its public key"
						.into());
				}
				let pair = sr25519::Pair::from_string(key, None).map_err(|e| {
					format!("--inference-key is neither a public key nor a secret URI: {e:?}")
				})?;
				Ok(Arc::new(pair))
			},
		},
		None => match keystore.sr25519_public_keys(INFERENCE_KEY_TYPE).as_slice() {
			[public] => in_keystore(*public),
			[] if dev_chain => {
				log::warn!(target: "inference", "no `infr` key in the keystore: signing with //Alice (development chain)");
				Ok(Arc::new(sr25519::Pair::from_string("//Alice", None).expect("a valid dev URI")))
			},
			[] => Err("no `infr` key in the keystore; insert one or pass --inference-key".into()),
			_ => Err("several `infr` keys in the keystore; choose one with --inference-key".into()),
		},
	}
}

/// A public key given as SS58 or as 32 bytes of hex.
fn public_key(key: &str) -> Option<sr25519::Public> {
	if let Ok(public) = sr25519::Public::from_ss58check(key) {
		return Some(public);
	}
	let raw = sp_core::bytes::from_hex(key).ok()?;
	sr25519::Public::try_from(raw.as_slice()).ok()
}

/// Signs with a key held in the node's keystore.
struct KeystoreSigner {
	keystore: KeystorePtr,
	public: sr25519::Public,
}

impl Signer for KeystoreSigner {
	fn account(&self) -> AccountId {
		self.public.into()
	}

	fn sign(&self, payload: &[u8]) -> Result<Signature, ChainError> {
		match self.keystore.sr25519_sign(INFERENCE_KEY_TYPE, &self.public, payload) {
			Ok(Some(signature)) => Ok(signature.into()),
			Ok(None) => Err(ChainError::Signing("the key left the keystore".into())),
			Err(e) => Err(ChainError::Signing(e.to_string())),
		}
	}
}

/// The chain as this node sees it.
struct NodeChain {
	client: Arc<ParachainClient>,
	pool: Arc<TransactionPool>,
	system: substrate_frame_rpc_system::System<TransactionPool, ParachainClient, Block>,
	heads: tokio::sync::Mutex<Option<sc_client_api::ImportNotifications<Block>>>,
}

impl NodeChain {
	fn new(client: Arc<ParachainClient>, pool: Arc<TransactionPool>) -> Self {
		let system = substrate_frame_rpc_system::System::new(client.clone(), pool.clone());
		NodeChain { client, pool, system, heads: tokio::sync::Mutex::new(None) }
	}
}

fn api_error(e: impl std::fmt::Display) -> ChainError {
	ChainError::Request(e.to_string())
}

#[async_trait]
impl Chain for NodeChain {
	async fn next_head(&self) -> Result<Head, ChainError> {
		let mut heads = self.heads.lock().await;
		let Some(stream) = heads.as_mut() else {
			// First call: act on the current best block at once (jobs opened while the node
			// was down are resumed from there).
			*heads = Some(self.client.import_notification_stream());
			let info = self.client.info();
			return Ok(Head { number: info.best_number, hash: info.best_hash });
		};
		loop {
			match stream.next().await {
				Some(n) if n.is_new_best =>
					return Ok(Head { number: *n.header.number(), hash: n.hash }),
				Some(_) => continue,
				None => {
					// The node is shutting down.
					drop(heads);
					futures::future::pending::<()>().await;
					unreachable!("pending never resolves");
				},
			}
		}
	}

	async fn finalized(&self) -> Result<H256, ChainError> {
		Ok(self.client.info().finalized_hash)
	}

	async fn open_jobs(&self, at: H256, worker: &AccountId) -> Result<Vec<JobId>, ChainError> {
		self.client.runtime_api().open_jobs(at, worker.clone()).map_err(api_error)
	}

	async fn job(&self, at: H256, id: JobId) -> Result<Option<(Job, Option<Vec<u8>>)>, ChainError> {
		let view = self.client.runtime_api().job(at, id).map_err(api_error)?;
		Ok(view.map(|(job, input, _)| (job, input)))
	}

	async fn release(&self, at: H256, id: ReleaseId) -> Result<Option<Release>, ChainError> {
		self.client.runtime_api().release(at, id).map_err(api_error)
	}

	async fn signing_context(&self, at: H256) -> Result<SigningContext, ChainError> {
		let version = self.client.runtime_api().version(at).map_err(api_error)?;
		Ok(SigningContext {
			genesis: self.client.info().genesis_hash,
			spec_version: version.spec_version,
			tx_version: version.transaction_version,
		})
	}

	async fn next_nonce(&self, who: &AccountId) -> Result<Nonce, ChainError> {
		self.system
			.nonce(who.clone())
			.await
			.map_err(|e| ChainError::Request(e.message().to_string()))
	}

	async fn submit(&self, xt: UncheckedExtrinsic) -> Result<H256, ChainError> {
		let opaque = Decode::decode(&mut &xt.encode()[..])
			.map_err(|e| ChainError::Decode { what: "extrinsic", error: e.to_string() })?;
		let at = self.client.info().best_hash;
		// Bounded so that a stuck pool cannot stall the worker.
		let submitted = tokio::time::timeout(
			Duration::from_secs(30),
			self.pool.submit_one(at, TransactionSource::Local, opaque),
		)
		.await
		.map_err(|_| ChainError::Connection("transaction pool did not answer in 30 s".into()))?;
		submitted.map_err(|e| ChainError::Refused(e.to_string()))
	}

	async fn in_pool(&self, hash: H256) -> Result<bool, ChainError> {
		Ok(self.pool.ready_transaction(&hash).is_some() ||
			self.pool.futures().iter().any(|tx| *tx.hash() == hash))
	}

	async fn tee_status(&self, at: H256, worker: &AccountId) -> Result<WorkerTee, ChainError> {
		self.client.runtime_api().worker_status(at, worker.clone()).map_err(api_error)
	}

	async fn worker(&self, at: H256, who: &AccountId) -> Result<Option<WorkerRecord>, ChainError> {
		self.client.runtime_api().worker(at, who.clone()).map_err(api_error)
	}

	async fn verification_fee(
		&self,
		at: H256,
		mode: VerificationMode,
		bytes: u32,
	) -> Result<Balance, ChainError> {
		self.client.runtime_api().verification_fee(at, mode, bytes).map_err(api_error)
	}

	async fn open_disputes(
		&self,
		at: H256,
		worker: &AccountId,
	) -> Result<Vec<(pallet_inference::DisputeKey, u64, u64)>, ChainError> {
		self.client.runtime_api().open_disputes(at, worker.clone()).map_err(api_error)
	}

	async fn channel(&self, at: H256, id: ChannelId) -> Result<Option<ChannelRecord>, ChainError> {
		let key = sp_core::storage::StorageKey(channel_key(id));
		let raw = self.client.storage(at, &key).map_err(api_error)?;
		decode_channel(raw.map(|data| data.0))
	}

	async fn endpoint(&self, at: H256, who: &AccountId) -> Result<Option<Vec<u8>>, ChainError> {
		let key = sp_core::storage::StorageKey(endpoint_key(who));
		let raw = self.client.storage(at, &key).map_err(api_error)?;
		decode_endpoint(raw.map(|data| data.0))
	}
}
