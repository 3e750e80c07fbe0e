//! Records, parameters and traits of the inference market.

use crate::Config;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use opg_primitives::{
	channel::ChannelId, chat::TokenBudget, JobId, ModeSet, ReleaseId, VerificationMode,
};
use polkadot_sdk::{
	frame_support::{
		pallet_prelude::*, traits::fungible::Inspect, CloneNoBound, DebugNoBound, EqNoBound,
		PartialEqNoBound,
	},
	frame_system::pallet_prelude::BlockNumberFor,
	sp_core::H256,
	sp_runtime::DispatchError,
};
use scale_info::TypeInfo;

pub use opg_primitives::Evidence;

/// Balance type of the market's currency.
pub type BalanceOf<T> =
	<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;
/// Evidence with the pallet's bound.
pub type EvidenceOf<T> = Evidence<<T as Config>::MaxEvidenceLen>;
/// A worker record of the pallet.
pub type WorkerOf<T> = Worker<BalanceOf<T>, BlockNumberFor<T>, <T as Config>::MaxServedReleases>;
/// A job record of the pallet.
pub type JobOf<T> = Job<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;
/// A job waiting for its worker.
pub type PendingJobOf<T> =
	PendingJob<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;
/// A result record of the pallet.
pub type JobResultOf<T> =
	JobResult<BlockNumberFor<T>, <T as Config>::MaxOutputLen, <T as Config>::MaxEvidenceLen>;
/// What `InferenceApi::job` answers: the record, its input (while open) and its result (once
/// submitted).
pub type JobViewOf<T> = (JobOf<T>, Option<alloc::vec::Vec<u8>>, Option<JobResultOf<T>>);
/// A channel record of the pallet.
pub type ChannelOf<T> = Channel<
	<T as frame_system::Config>::AccountId,
	BalanceOf<T>,
	BlockNumberFor<T>,
	<T as Config>::MaxOpenBatches,
>;
/// A voucher in the pallet's currency.
pub type VoucherOf<T> = opg_primitives::channel::Voucher<BalanceOf<T>>;
/// A dispute of the pallet.
pub type DisputeOf<T> =
	Dispute<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

use polkadot_sdk::frame_system;

/// Hardware a worker runs models on.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	serde::Serialize,
	serde::Deserialize,
)]
pub enum Hardware {
	/// CPU only.
	Cpu,
	/// A GPU (CUDA).
	Gpu,
}

/// A worker registered at genesis, as by `register_worker` (stake held from `account`).
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct GenesisWorker<AccountId, Balance> {
	/// The worker's account.
	pub account: AccountId,
	/// Stake to hold, at least `MinWorkerStake`.
	pub stake: Balance,
	/// Releases served.
	pub releases: alloc::vec::Vec<ReleaseId>,
	/// Modes answered in.
	pub modes: ModeSet,
	/// Price per job.
	pub price: Balance,
	/// Concurrent jobs.
	pub capacity: u32,
	/// CPU or GPU.
	pub hardware: Hardware,
	/// Prices per 1,000 tokens for LLM jobs, on top of `price` (none: zero).
	#[serde(default)]
	pub token_prices: Option<TokenPrices<Balance>>,
}

/// A worker's prices for the tokens of LLM jobs, per 1,000 tokens: an LLM job costs the
/// worker's per-job price plus its prompt and completion tokens at these prices.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Default,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	serde::Serialize,
	serde::Deserialize,
)]
pub struct TokenPrices<Balance> {
	/// Per 1,000 prompt tokens.
	pub prompt_per_1k: Balance,
	/// Per 1,000 completion tokens.
	pub completion_per_1k: Balance,
}

/// The per-token terms of an LLM job, fixed at its draw.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct TokenTerms<Balance> {
	/// The worker's per-job price.
	pub base: Balance,
	/// The worker's token prices.
	pub prices: TokenPrices<Balance>,
	/// The most tokens the job can be billed for (its escrow covers them).
	pub budget: TokenBudget,
}

/// Whether a worker takes jobs.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub enum WorkerStatus<BlockNumber> {
	/// Takes jobs.
	Active,
	/// Takes no new jobs (by choice, or stake below the minimum).
	Paused,
	/// Left the pool; the stake can be withdrawn from `unlock_at`.
	Unbonding {
		/// First block at which `withdraw_stake` succeeds.
		unlock_at: BlockNumber,
	},
}

/// A registered worker. Its stake is held under `HoldReason::WorkerStake`.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo,
)]
#[scale_info(skip_type_params(MaxReleases))]
#[codec(mel_bound(Balance: MaxEncodedLen, BlockNumber: MaxEncodedLen))]
pub struct Worker<
	Balance: Clone + PartialEq + Eq + core::fmt::Debug,
	BlockNumber: Clone + PartialEq + Eq + core::fmt::Debug,
	MaxReleases: Get<u32>,
> {
	/// Stake held.
	pub stake: Balance,
	/// Releases served.
	pub releases: BoundedVec<ReleaseId, MaxReleases>,
	/// Modes the worker answers in.
	pub modes: ModeSet,
	/// Price per job.
	pub price: Balance,
	/// Most concurrent jobs.
	pub capacity: u32,
	/// CPU or GPU.
	pub hardware: Hardware,
	/// Active, paused or unbonding.
	pub status: WorkerStatus<BlockNumber>,
	/// Jobs assigned and not ended.
	pub open_jobs: u32,
	/// Jobs settled.
	pub completed: u32,
	/// Jobs the worker rejected.
	pub rejected: u32,
	/// Times the worker was slashed.
	pub slashed: u32,
	/// Shortest timeout the worker takes per mode: jobs with less time are not assigned to it.
	pub min_timeouts: MinTimeouts<BlockNumber>,
	/// Prices per 1,000 prompt and completion tokens of LLM jobs, on top of `price`.
	pub token_prices: TokenPrices<Balance>,
}

/// One value per verification mode.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Default,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub struct PerMode<T> {
	/// For Vanilla jobs.
	pub vanilla: T,
	/// For TEE jobs.
	pub tee: T,
	/// For ZK jobs.
	pub zk: T,
}

impl<T: Copy> PerMode<T> {
	/// The value for `mode`.
	pub fn of(&self, mode: VerificationMode) -> T {
		match mode {
			VerificationMode::Vanilla => self.vanilla,
			VerificationMode::Tee => self.tee,
			VerificationMode::Zk => self.zk,
		}
	}

	/// The three values, in mode order.
	pub fn values(&self) -> [T; 3] {
		[self.vanilla, self.tee, self.zk]
	}
}

/// A worker's shortest acceptable job timeout per mode, in blocks. Zero means the chain's
/// floor (`MinJobTimeout`).
pub type MinTimeouts<BlockNumber> = PerMode<BlockNumber>;

impl<
		B: Clone + PartialEq + Eq + core::fmt::Debug,
		N: Clone + PartialEq + Eq + core::fmt::Debug,
		M: Get<u32>,
	> Worker<B, N, M>
{
	/// Whether the worker is leaving.
	pub fn is_unbonding(&self) -> bool {
		matches!(self.status, WorkerStatus::Unbonding { .. })
	}
}

/// Why a worker declined a job.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub enum RejectReason {
	/// The input is valid for the IO spec but the model cannot take it (e.g. values out of
	/// range, a dynamic dimension too large).
	BadInput,
	/// The model file could not be fetched or does not match its hash.
	ModelUnavailable,
	/// The model failed to execute.
	ExecutionFailed,
}

/// Where a job is.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub enum JobStatus<Balance> {
	/// Waiting for the worker's result.
	Assigned,
	/// Result stored, waiting for verification.
	Submitted,
	/// Verified and paid.
	Settled {
		/// Verification fee burned.
		verification_fee: Balance,
	},
	/// Evidence invalid: refunded, worker slashed.
	Failed,
	/// Declined by the worker: refunded.
	Rejected {
		/// The worker's reason.
		reason: RejectReason,
	},
	/// No result before the deadline: refunded, worker slashed.
	Expired,
}

/// A submitted job waiting for its worker. The draw happens in a later block, from randomness
/// that did not exist when the job was submitted (see [`crate::Pallet::note_randomness`]).
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct PendingJob<AccountId, Balance, BlockNumber> {
	/// Who pays.
	pub requester: AccountId,
	/// Model release.
	pub release: ReleaseId,
	/// Verification mode.
	pub mode: VerificationMode,
	/// blake2-256 of the canonical input.
	pub input_hash: H256,
	/// Input length in bytes.
	pub input_len: u32,
	/// Highest price the requester accepts; held until the draw, which releases what the
	/// drawn worker's price leaves.
	pub max_fee: Balance,
	/// Maximum verification fee, held until settlement.
	pub verification_hold: Balance,
	/// Blocks the worker has, counted from the draw.
	pub timeout: BlockNumber,
	/// Block of submission.
	pub submitted: BlockNumber,
	/// The randomness round current at submission: the draw waits for a later one.
	pub round: u32,
	/// For an LLM job: the most tokens it can be billed for.
	pub tokens: Option<TokenBudget>,
}

/// Why a submitted job ended without a worker.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub enum CancelReason {
	/// At the draw, no worker could take the job (the pool changed since submission).
	NoWorker,
	/// No fresh randomness arrived within `MaxAssignmentDelay` blocks.
	NoRandomness,
}

/// An inference job.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct Job<AccountId, Balance, BlockNumber> {
	/// Who pays.
	pub requester: AccountId,
	/// Assigned worker.
	pub worker: AccountId,
	/// Model release.
	pub release: ReleaseId,
	/// Verification mode.
	pub mode: VerificationMode,
	/// blake2-256 of the canonical input.
	pub input_hash: H256,
	/// Input length in bytes.
	pub input_len: u32,
	/// Worker's price, held until settlement: for an LLM job the most it can charge (its
	/// per-job price and the token budget at its token prices), of which settlement pays
	/// what the reported tokens cost.
	pub price: Balance,
	/// Maximum verification fee, held until settlement.
	pub verification_hold: Balance,
	/// Last block in which the result is accepted.
	pub deadline: BlockNumber,
	/// Block of the draw (the job was submitted in an earlier one).
	pub created: BlockNumber,
	/// Where the job is.
	pub status: JobStatus<Balance>,
	/// Block in which the job ended (settled, failed, rejected, expired).
	pub ended: Option<BlockNumber>,
	/// [`CongestedBlocks`](crate::CongestedBlocks) when the job was assigned or its deadline
	/// last moved: full blocks since then extend the deadline instead of counting against the
	/// worker.
	pub congestion_mark: u32,
	/// For an LLM job: the per-token terms its price was computed from.
	pub tokens: Option<TokenTerms<Balance>>,
}

/// A worker's result.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo,
)]
#[scale_info(skip_type_params(MaxOutput, MaxEvidence))]
#[codec(mel_bound(BlockNumber: MaxEncodedLen))]
pub struct JobResult<
	BlockNumber: Clone + PartialEq + Eq + core::fmt::Debug,
	MaxOutput: Get<u32>,
	MaxEvidence: Get<u32>,
> {
	/// Canonical output tensors.
	pub output: BoundedVec<u8, MaxOutput>,
	/// blake2-256 of `output`.
	pub output_hash: H256,
	/// Evidence of the job's mode.
	pub evidence: Evidence<MaxEvidence>,
	/// Block of submission.
	pub submitted_at: BlockNumber,
}

/// Scheduled work of a block.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub enum AgendaItem {
	/// Expire the job if it still has no result.
	Expire,
	/// Remove the ended job's records.
	Prune,
}

/// What a burn paid for.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	PartialOrd,
	Ord,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub enum BurnCause {
	/// A settled job's verification fee.
	VerificationFee,
	/// Slashed worker stake.
	Slash,
	/// The bond of a challenge the worker answered.
	FailedChallenge,
}

/// Flat verification fees per mode and the per-byte part (over input, output and evidence).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Encode, Decode, TypeInfo)]
pub struct VerificationFees<Balance> {
	/// Flat fee of each mode's jobs.
	pub flat: PerMode<Balance>,
	/// Fee per byte of input, output and evidence.
	pub per_byte: Balance,
}

/// What a job costs at most: the lowest `max_fee` that `submit_job` accepts and the largest
/// verification fee. For an LLM job the price covers its whole token budget.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct FeeQuote<Balance> {
	/// Lowest `max_fee` the draw accepts: the `MinDrawCandidates`-th lowest price among the
	/// workers that can take the job (the highest, if fewer). The drawn worker's price is at
	/// most this.
	pub price: Balance,
	/// Largest verification fee (maximal output and evidence).
	pub verification_fee: Balance,
	/// `price + verification_fee`: what `submit_job` holds with `max_fee = price`.
	pub total: Balance,
}

/// Burn totals.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct BurnTotals<Balance> {
	/// Everything burned.
	pub total: Balance,
	/// Verification fees burned.
	pub verification_fees: Balance,
	/// Stake slashed and burned.
	pub slashes: Balance,
}

/// What a verifier checks a result against.
pub struct VerificationContext<'a, AccountId> {
	/// Job id.
	pub job: JobId,
	/// The worker, whose attested enclave key signs TEE results.
	pub worker: &'a AccountId,
	/// Canonical input, for ZK evidence (kept until the job ends); `None` for other evidence.
	pub input: Option<&'a [u8]>,
	/// blake2-256 of the model file.
	pub artifact: H256,
	/// Verifying-key hash of the release (ZK mode).
	pub zk_verifying_key: Option<H256>,
	/// blake2-256 of the input.
	pub input_hash: H256,
	/// Canonical output.
	pub output: &'a [u8],
	/// blake2-256 of `output`.
	pub output_hash: H256,
}

/// Why evidence was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub enum VerifyError {
	/// This verifier does not handle the mode.
	UnsupportedMode,
	/// The evidence is malformed.
	Malformed,
	/// The evidence does not prove the result.
	Invalid,
	/// Something the evidence needs (attested key, verifying key) is missing.
	MissingKey,
}

/// Checks the evidence of results: the runtime plugs the TEE and ZK verifiers in here.
pub trait ResultVerifier<AccountId> {
	/// Whether the chain can verify `mode`. Jobs and workers of other modes are refused.
	fn supports(mode: VerificationMode) -> bool;
	/// Checks `evidence` for the result in `context`.
	fn verify<M: Get<u32>>(
		context: &VerificationContext<AccountId>,
		evidence: &Evidence<M>,
	) -> Result<(), VerifyError>;
	/// Worst-case weight of `verify` for the sizes given.
	fn weight(mode: VerificationMode, input_len: u32, output_len: u32, evidence_len: u32)
		-> Weight;
	/// Whether `worker` can answer in `mode` now with evidence that would verify (a TEE worker
	/// needs a usable attested key): jobs go only to workers that can. Defaults to yes.
	fn can_answer(_worker: &AccountId, _mode: VerificationMode) -> bool {
		true
	}
	/// Weight of one `can_answer`.
	fn can_answer_weight(_mode: VerificationMode) -> Weight {
		Weight::zero()
	}
	/// Whether `signature` is by `worker`'s usable attested enclave key over `payload` (a TEE
	/// channel's receipt). Defaults to no: without TEE support no receipt carries one.
	fn check_enclave_signature(
		_worker: &AccountId,
		_payload: &[u8],
		_signature: &[u8; 64],
	) -> bool {
		false
	}
}

/// Only Vanilla results: no evidence can be verified. For chains without verifiers.
pub struct VanillaOnly;
impl<AccountId> ResultVerifier<AccountId> for VanillaOnly {
	fn supports(mode: VerificationMode) -> bool {
		mode == VerificationMode::Vanilla
	}
	fn verify<M: Get<u32>>(
		_: &VerificationContext<AccountId>,
		_: &Evidence<M>,
	) -> Result<(), VerifyError> {
		Err(VerifyError::UnsupportedMode)
	}
	fn weight(_: VerificationMode, _: u32, _: u32, _: u32) -> Weight {
		Weight::zero()
	}
}

/// How a job ended, as told to consumers.
pub enum JobOutcome<'a> {
	/// Paid; the canonical output, and what backs it.
	Settled {
		/// The job's mode: a checked TEE signature or proof, or nothing (Vanilla: an
		/// unverified output that only the worker vouches for).
		mode: VerificationMode,
		/// Canonical output tensors.
		output: &'a [u8],
	},
	/// Evidence invalid.
	Failed,
	/// Declined by the worker.
	Rejected,
	/// No result before the deadline.
	Expired,
	/// Never assigned: no worker could take it at the draw.
	Cancelled,
}

/// On-chain consumers of inference: told when their jobs end.
pub trait InferenceConsumer<AccountId> {
	/// Called once when a job ends. Must stay within [`Self::weight`].
	fn on_job_finished(job: JobId, outcome: JobOutcome);
	/// Upper bound of `on_job_finished`'s weight.
	fn weight() -> Weight;
}

impl<AccountId> InferenceConsumer<AccountId> for () {
	fn on_job_finished(_: JobId, _: JobOutcome) {}
	fn weight() -> Weight {
		Weight::zero()
	}
}

/// Lets other pallets request inference; results arrive through [`InferenceConsumer`].
pub trait InferenceRequester<AccountId, Balance, BlockNumber> {
	/// Largest input.
	type MaxInputLen: Get<u32>;
	/// Submits a job paid by `requester`, exactly like the `submit_job` call.
	fn request(
		requester: AccountId,
		release: ReleaseId,
		mode: VerificationMode,
		input: BoundedVec<u8, Self::MaxInputLen>,
		max_fee: Balance,
		timeout: Option<BlockNumber>,
	) -> Result<JobId, DispatchError>;
}

/// Benchmark set-up the market cannot do itself.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId> {
	/// An active release of `publisher` in `modes` whose input and output are one dynamic `U8`
	/// tensor of any length.
	fn release(publisher: &AccountId, modes: ModeSet) -> ReleaseId;
}

#[cfg(feature = "runtime-benchmarks")]
impl<T: pallet_model_hub::Config> BenchmarkHelper<T::AccountId> for pallet_model_hub::Pallet<T> {
	fn release(publisher: &T::AccountId, modes: ModeSet) -> ReleaseId {
		pallet_model_hub::Pallet::<T>::benchmark_release(publisher, modes)
	}
}

/// Signs vouchers in the benchmarks: the runtime's signature scheme needs a key the market
/// cannot make itself.
#[cfg(feature = "runtime-benchmarks")]
pub trait ChannelBenchmarkHelper<AccountId, Signature> {
	/// An account whose key [`Self::sign`] can sign with.
	fn signer() -> AccountId;
	/// `signer`'s signature of `message`.
	fn sign(signer: &AccountId, message: &[u8]) -> Signature;
}

/// A batch of receipts a worker committed when it redeemed a voucher: the receipts of
/// sequence numbers `first_seq..=last_seq`, under a Merkle root (`opg_primitives::channel`).
/// Challenges against it are heard until `committed_at + DisputeWindow`.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub struct Batch<BlockNumber> {
	/// Merkle root of the batch's receipts, in sequence order.
	pub root: H256,
	/// The batch's first sequence number.
	pub first_seq: u64,
	/// Its last: the redeemed voucher's.
	pub last_seq: u64,
	/// When it was committed.
	pub committed_at: BlockNumber,
}

/// A payment channel from a requester to a worker for one release and mode. The requester's
/// deposit is held under `HoldReason::ChannelDeposit`; what is held is always
/// `deposit - redeemed_pay - redeemed_burn`.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo,
)]
#[scale_info(skip_type_params(MaxBatches))]
#[codec(mel_bound(AccountId: MaxEncodedLen, Balance: MaxEncodedLen, BlockNumber: MaxEncodedLen))]
pub struct Channel<
	AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
	Balance: Clone + PartialEq + Eq + core::fmt::Debug,
	BlockNumber: Clone + PartialEq + Eq + core::fmt::Debug,
	MaxBatches: Get<u32>,
> {
	/// Who pays.
	pub requester: AccountId,
	/// Who answers and redeems.
	pub worker: AccountId,
	/// The release served.
	pub release: ReleaseId,
	/// How answers are backed.
	pub mode: VerificationMode,
	/// Everything deposited (opening and top-ups).
	pub deposit: Balance,
	/// Paid to the worker and publisher so far (the latest redeemed voucher's `cumulative_pay`).
	pub redeemed_pay: Balance,
	/// Burned so far (its `cumulative_burn`).
	pub redeemed_burn: Balance,
	/// The latest redeemed voucher's sequence number (0 before the first).
	pub last_seq: u64,
	/// Once the requester closed it: the last block at which the worker may redeem.
	pub closing_at: Option<BlockNumber>,
	/// Batches still within their dispute window, oldest first.
	pub batches: BoundedVec<Batch<BlockNumber>, MaxBatches>,
}

impl<
		A: Clone + PartialEq + Eq + core::fmt::Debug,
		B: Clone + PartialEq + Eq + core::fmt::Debug + polkadot_sdk::sp_runtime::Saturating,
		N: Clone + PartialEq + Eq + core::fmt::Debug,
		M: Get<u32>,
	> Channel<A, B, N, M>
{
	/// What is still held: the deposit less everything redeemed.
	pub fn held(&self) -> B {
		self.deposit
			.clone()
			.saturating_sub(self.redeemed_pay.clone())
			.saturating_sub(self.redeemed_burn.clone())
	}
}

/// Which receipt a dispute is about: its channel, its sequence number and, for a challenge,
/// the Merkle leaf of the receipt the challenger holds (zero for an audit, which any receipt
/// of the worker's committed batch answers).
pub type DisputeKey = (ChannelId, u64, H256);

/// Why a worker must open a receipt.
#[derive(
	Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub enum DisputeKind<AccountId, Balance> {
	/// Drawn at random from a committed batch: the worker shows it kept the request and
	/// response and that the receipt is in the batch.
	Audit,
	/// Someone holding a receipt the worker signed asks it to show that exact receipt in its
	/// committed batch (and, on a TEE channel, the enclave's signature of it). `bond` is held
	/// from `challenger`; `refund` is what the request cost its requester, repaid from the
	/// slash if the worker cannot open.
	Challenge { challenger: AccountId, bond: Balance, refund: Balance },
}

/// A receipt its worker must open by `deadline` (`open_receipt`), or be slashed. Holds what
/// judging it needs, so it outlives the channel's batch list and the channel itself.
#[derive(
	Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct Dispute<AccountId, Balance, BlockNumber> {
	/// The channel's worker: who must open it.
	pub worker: AccountId,
	/// The channel's requester: who is repaid if a challenge succeeds.
	pub requester: AccountId,
	/// The channel's release.
	pub release: ReleaseId,
	/// The channel's mode: a TEE receipt must carry the enclave's signature.
	pub mode: VerificationMode,
	/// The batch the receipt was committed in.
	pub batch: Batch<BlockNumber>,
	/// The last block at which it may be opened.
	pub deadline: BlockNumber,
	/// Audit or challenge.
	pub kind: DisputeKind<AccountId, Balance>,
}

/// A committed batch waiting for the randomness that draws its audits: a round newer than
/// the one current when it was committed, which the worker could not know.
#[derive(
	Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct PendingAudit<BlockNumber> {
	/// The channel.
	pub channel: ChannelId,
	/// The batch.
	pub batch: Batch<BlockNumber>,
	/// The randomness round current at the commitment.
	pub round: u32,
}

/// Most Merkle siblings in a receipt's inclusion proof: enough for 2^64 receipts.
pub type MaxProofLen = ConstU32<64>;
