//! `TeeApi`: what a worker asks the runtime to keep its enclave key attested.

use crate::{Challenge, EnclaveKey};
use codec::{Codec, Decode, Encode};
use scale_info::TypeInfo;

/// A worker's TEE standing at one block.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct WorkerTee<BlockNumber> {
	/// Chain time at this block (ms since the Unix epoch): what documents are checked against.
	pub now_ms: u64,
	/// The worker's attested enclave key, if any.
	pub key: Option<EnclaveKey<BlockNumber>>,
	/// Whether results signed by that key are accepted now: its measurement is still allowed
	/// and it has not expired.
	pub key_usable: bool,
	/// The worker's open challenge, if any (it may have expired: see `expires_at`).
	pub challenge: Option<Challenge<BlockNumber>>,
	/// Whether the worker is registered (only registered workers may attest).
	pub is_worker: bool,
}

polkadot_sdk::sp_api::decl_runtime_apis! {
	/// Queries of the TEE trust policy.
	pub trait TeeApi<AccountId, BlockNumber>
	where
		AccountId: Codec,
		BlockNumber: Codec,
	{
		/// `worker`'s enclave key and challenge, with the chain's time.
		fn worker_status(worker: AccountId) -> WorkerTee<BlockNumber>;
	}
}
