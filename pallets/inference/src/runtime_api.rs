//! `InferenceApi`: what workers, wallets and dApps ask the runtime about the market.

use crate::{BurnTotals, DisputeKey, FeeQuote};
use alloc::vec::Vec;
use codec::Codec;
use opg_primitives::{JobId, ReleaseId, VerificationMode};

polkadot_sdk::sp_api::decl_runtime_apis! {
	/// Queries of the inference market.
	pub trait InferenceApi<AccountId, Balance, Job, JobResult, Worker, Release>
	where
		AccountId: Codec,
		Balance: Codec,
		Job: Codec,
		JobResult: Codec,
		Worker: Codec,
		Release: Codec,
	{
		/// What a tensor job of `mode` on `release` with `input_len` bytes of input costs at
		/// most, or `None` if no worker would take it (or the release is an LLM's: its price
		/// depends on the request, see `input_quote`).
		fn fee_quote(release: ReleaseId, mode: VerificationMode, input_len: u32) -> Option<FeeQuote<Balance>>;
		/// What a job of `mode` on `release` with this input costs at most, for any release:
		/// for an LLM release the price covers the request's token budget. `None` if the input
		/// does not fit the release or no worker would take the job.
		fn input_quote(release: ReleaseId, mode: VerificationMode, input: Vec<u8>) -> Option<FeeQuote<Balance>>;
		/// A job, its input (while open) and its result (once submitted).
		fn job(id: JobId) -> Option<(Job, Option<Vec<u8>>, Option<JobResult>)>;
		/// Open jobs assigned to `worker`: what a worker polls.
		fn open_jobs(worker: AccountId) -> Vec<JobId>;
		/// A worker's record.
		fn worker(who: AccountId) -> Option<Worker>;
		/// A model release.
		fn release(id: ReleaseId) -> Option<Release>;
		/// Releases of a repository that still have a record.
		fn repository_releases(repository: opg_primitives::RepositoryId) -> Vec<(ReleaseId, Release)>;
		/// What the market has burned.
		fn burn_totals() -> BurnTotals<Balance>;
		/// The verification fee of `bytes` bytes of data in `mode`: the flat fee plus the
		/// per-byte fee. On the direct path each request's voucher burns this over the
		/// request's bytes.
		fn verification_fee(mode: VerificationMode, bytes: u32) -> Balance;
		/// The receipts `worker` must open (`open_receipt`), at most `MAX_OPEN_DISPUTES`: each
		/// dispute's key (channel, sequence number, challenged leaf or zero for an audit) and
		/// its batch's first and last sequence numbers.
		fn open_disputes(worker: AccountId) -> Vec<(DisputeKey, u64, u64)>;
	}
}
