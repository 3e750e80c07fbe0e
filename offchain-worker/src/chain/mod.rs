//! What the worker needs from a chain, and how it signs its answers.
//!
//! [`Chain`] is implemented twice: inside `opg-node` (runtime API calls and the node's own
//! transaction pool) and by [`rpc::RpcChain`] over JSON-RPC for the standalone `opg-worker`.
//! Both sign with [`signed_extrinsic`], so an answer is encoded exactly as the runtime expects.

pub mod rpc;

pub use crate::{channels::ChannelRecord, tee::WorkerTee};

use async_trait::async_trait;
use codec::{Decode, Encode};
use opg_primitives::{channel::ChannelId, Evidence, JobId, ReleaseId, VerificationMode};
use opg_runtime::{AccountId, Balance, Nonce, Runtime, RuntimeCall, Signature, UncheckedExtrinsic};
use pallet_inference::RejectReason;
use polkadot_sdk::{
	sp_core::{sr25519, Pair as _, H256},
	sp_runtime::{generic::SignedPayload, BoundedVec, MultiAddress},
};

/// A job as the runtime API returns it.
pub type Job = pallet_inference::JobOf<Runtime>;
/// A model release as the runtime API returns it.
pub type Release = pallet_model_hub::Release<Runtime>;
/// A worker record as the runtime API returns it.
pub type WorkerRecord = pallet_inference::WorkerOf<Runtime>;

/// A block the worker acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
	/// Block number.
	pub number: u32,
	/// Block hash.
	pub hash: H256,
}

/// What a signature commits to besides the call: the chain and the runtime it was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigningContext {
	/// Genesis hash (also the era's birth block: answers are immortal, nonces make them unique).
	pub genesis: H256,
	/// Runtime `spec_version` at the block the answer is built on.
	pub spec_version: u32,
	/// Runtime `transaction_version` at that block.
	pub tx_version: u32,
}

/// Why a chain request failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
	/// The node cannot be reached (the standalone client reconnects).
	#[error("node unreachable: {0}")]
	Connection(String),
	/// A runtime API call or RPC request failed on the node.
	#[error("request failed: {0}")]
	Request(String),
	/// An answer from the node did not decode as the runtime's type.
	#[error("cannot decode {what}: {error}")]
	Decode {
		/// What was decoded.
		what: &'static str,
		/// Why it failed.
		error: String,
	},
	/// The transaction pool refused the extrinsic.
	#[error("transaction refused: {0}")]
	Refused(String),
	/// The worker key could not sign.
	#[error("cannot sign: {0}")]
	Signing(String),
}

/// The chain as the worker sees it: best blocks, its open jobs, and a pool to answer into.
#[async_trait]
pub trait Chain: Send + Sync + 'static {
	/// Waits for the next new best block.
	async fn next_head(&self) -> Result<Head, ChainError>;
	/// The last finalized block.
	async fn finalized(&self) -> Result<H256, ChainError>;
	/// Open jobs assigned to `worker` at block `at`.
	async fn open_jobs(&self, at: H256, worker: &AccountId) -> Result<Vec<JobId>, ChainError>;
	/// A job and its input (present while the job is open).
	async fn job(&self, at: H256, id: JobId) -> Result<Option<(Job, Option<Vec<u8>>)>, ChainError>;
	/// A model release.
	async fn release(&self, at: H256, id: ReleaseId) -> Result<Option<Release>, ChainError>;
	/// Genesis hash and runtime versions at `at`.
	async fn signing_context(&self, at: H256) -> Result<SigningContext, ChainError>;
	/// The next nonce of `who`, counting its transactions already in the pool.
	async fn next_nonce(&self, who: &AccountId) -> Result<Nonce, ChainError>;
	/// Submits a signed extrinsic to the pool; returns its hash.
	async fn submit(&self, xt: UncheckedExtrinsic) -> Result<H256, ChainError>;
	/// Whether the transaction `hash` is still in the pool (ready or future).
	async fn in_pool(&self, hash: H256) -> Result<bool, ChainError>;
	/// `worker`'s enclave key and challenge at `at`, with the chain's time.
	async fn tee_status(&self, at: H256, worker: &AccountId) -> Result<WorkerTee, ChainError>;
	/// A worker's record (its price, releases and modes).
	async fn worker(&self, at: H256, who: &AccountId) -> Result<Option<WorkerRecord>, ChainError>;
	/// The verification fee of `bytes` bytes of data in `mode`.
	async fn verification_fee(
		&self,
		at: H256,
		mode: VerificationMode,
		bytes: u32,
	) -> Result<Balance, ChainError>;
	/// A payment channel of the direct path at `at` (read from storage: `Inference::Channels`).
	async fn channel(&self, at: H256, id: ChannelId) -> Result<Option<ChannelRecord>, ChainError>;
	/// The HTTP endpoint `who` advertises at `at` (storage: `Inference::Endpoints`).
	async fn endpoint(&self, at: H256, who: &AccountId) -> Result<Option<Vec<u8>>, ChainError>;
	/// The receipts `worker` must open at `at`: each dispute's key and its batch's first and
	/// last sequence numbers.
	async fn open_disputes(
		&self,
		at: H256,
		worker: &AccountId,
	) -> Result<Vec<(pallet_inference::DisputeKey, u64, u64)>, ChainError>;
}

/// The storage key of channel `id`'s record.
pub fn channel_key(id: ChannelId) -> Vec<u8> {
	pallet_inference::Channels::<Runtime>::hashed_key_for(id)
}

/// Storage key of a worker's advertised endpoint.
pub fn endpoint_key(who: &AccountId) -> Vec<u8> {
	pallet_inference::Endpoints::<Runtime>::hashed_key_for(who)
}

/// Decodes an endpoint read from storage.
pub fn decode_endpoint(raw: Option<Vec<u8>>) -> Result<Option<Vec<u8>>, ChainError> {
	raw.map(|bytes| {
		Vec::<u8>::decode(&mut &bytes[..])
			.map_err(|e| ChainError::Decode { what: "endpoint", error: e.to_string() })
	})
	.transpose()
}

/// Decodes a channel record read from storage.
pub fn decode_channel(raw: Option<Vec<u8>>) -> Result<Option<ChannelRecord>, ChainError> {
	raw.map(|bytes| {
		ChannelRecord::decode(&mut &bytes[..])
			.map_err(|e| ChainError::Decode { what: "channel record", error: e.to_string() })
	})
	.transpose()
}

/// The worker key.
pub trait Signer: Send + Sync + 'static {
	/// The worker account (the one registered with `register_worker`).
	fn account(&self) -> AccountId;
	/// Signs an extrinsic payload.
	fn sign(&self, payload: &[u8]) -> Result<Signature, ChainError>;
}

impl Signer for sr25519::Pair {
	fn account(&self) -> AccountId {
		self.public().into()
	}

	fn sign(&self, payload: &[u8]) -> Result<Signature, ChainError> {
		Ok(polkadot_sdk::sp_core::Pair::sign(self, payload).into())
	}
}

/// Evidence a result carries, as the runtime bounds it.
pub type ResultEvidence = Evidence<<Runtime as pallet_inference::Config>::MaxEvidenceLen>;

/// A worker's answer to a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
	/// Canonical output tensors, with the evidence the job's mode asks for.
	Output {
		/// The output payload.
		output: Vec<u8>,
		/// Its evidence ([`Evidence::None`] in Vanilla mode).
		evidence: ResultEvidence,
	},
	/// The job cannot be answered; the requester is refunded.
	Reject(RejectReason),
}

impl Answer {
	/// The call that delivers this answer for `job`; `None` if the output exceeds the
	/// runtime's `MaxOutputLen` (the executor checks sizes before it gets here).
	pub fn call(&self, job: JobId) -> Option<RuntimeCall> {
		let call = match self {
			Answer::Output { output, evidence } => pallet_inference::Call::submit_result {
				job,
				output: BoundedVec::try_from(output.clone()).ok()?,
				evidence: evidence.clone(),
			},
			Answer::Reject(reason) => pallet_inference::Call::reject_job { job, reason: *reason },
		};
		Some(RuntimeCall::Inference(call))
	}

	/// Short name for logs and metrics.
	pub fn kind(&self) -> &'static str {
		match self {
			Answer::Output { .. } => "result",
			Answer::Reject(_) => "rejection",
		}
	}
}

/// Signs `call` for this runtime: immortal, `nonce`, no tip, no metadata hash (see
/// [`opg_runtime::tx_extension`]).
pub fn signed_extrinsic(
	call: RuntimeCall,
	nonce: Nonce,
	context: &SigningContext,
	signer: &dyn Signer,
) -> Result<UncheckedExtrinsic, ChainError> {
	let extension = opg_runtime::tx_extension(nonce, 0);
	// What each extension adds to the signed payload without putting it in the extrinsic,
	// in the order of `TxExtension`.
	let implicit = (
		(),
		(),
		context.spec_version,
		context.tx_version,
		context.genesis,
		context.genesis,
		(),
		(),
		(),
		None::<[u8; 32]>,
		(),
	);
	let payload = SignedPayload::<RuntimeCall, opg_runtime::TxExtension>::from_raw(
		call.clone(),
		extension.clone(),
		implicit,
	);
	let signature = payload.using_encoded(|bytes| signer.sign(bytes))?;
	Ok(UncheckedExtrinsic::new_signed(
		call,
		MultiAddress::Id(signer.account()),
		signature,
		extension,
	))
}

/// Hash under which the pool knows an extrinsic.
pub fn extrinsic_hash(xt: &UncheckedExtrinsic) -> H256 {
	H256(polkadot_sdk::sp_crypto_hashing::blake2_256(&xt.encode()))
}
