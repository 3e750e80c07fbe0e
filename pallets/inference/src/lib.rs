//! # Inference market
//!
//! Workers stake OPG and serve model releases; requesters submit jobs that escrow the worker's
//! price and the chain's verification fee; workers answer with a result and evidence; the
//! chain verifies the evidence and settles.
//!
//! ## Two economic cycles
//! - The **price** (set by the worker, at most the requester's `max_fee`) pays the worker, less the
//!   release's royalty, which goes to the publisher.
//! - The **verification fee** (flat per mode, plus a per-byte part over input, output and evidence)
//!   is **burned** at settlement. Slashed stake is burned too. Every burn is counted in
//!   [`TotalBurned`] and [`BurnedByCause`] and announced by [`Event::Burned`]; total issuance falls
//!   by exactly what is burned.
//!
//! ## Life of a job
//! `submit_job` holds `max_fee + max verification fee` and queues the job. Its worker is drawn
//! in a later block's `on_poll`, stake-weighted, with randomness the runtime gives
//! [`Pallet::note_randomness`] after the inherents (the relay parent's BABE randomness), so
//! the draw is unknown when the job is submitted; the draw releases what the worker's price
//! leaves of `max_fee`, and the timeout runs from it. The pool is the workers that can take
//! the job (active, serving the release in the mode, with capacity and a usable enclave key
//! for TEE); `max_fee` and the timeout (against each worker's `set_min_timeouts`) may narrow
//! it, but not below `MinDrawCandidates`, so a requester cannot single out one worker among
//! several (`docs/security.md` has what is left). The worker calls `submit_result` (or
//! `reject_job` for input its model cannot take: no slash). A Vanilla result settles at once; a
//! result with evidence is stored and visible at once and verified later, from a bounded FIFO
//! queue in `on_idle` or by anyone calling `verify_result`. A valid result settles; an invalid
//! one refunds the requester and slashes the worker. A job with no result by its deadline
//! expires in `on_initialize`: refund, worker slashed; but full blocks in the job's time (where
//! the answer may have found no room) first move the deadline, and a job kept out to the end
//! expires without a slash. Every outcome burns the per-byte fee of the stored input; only
//! settlement burns the rest of the verification fee. Ended jobs are pruned after
//! `RetentionPeriod`. Per-block work is bounded; nothing iterates a user-growable map.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod agenda;
mod assignment;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod channels;
mod disputes;
mod fees;
#[cfg(any(feature = "try-runtime", feature = "std", test))]
mod invariants;
mod jobs;
#[cfg(test)]
mod mock;
mod priority;
pub mod runtime_api;
#[cfg(test)]
mod tests;
mod types;
pub mod weights;
mod workers;

pub use disputes::MAX_OPEN_DISPUTES;
pub use pallet::*;
pub use priority::{invalid_answer, PrioritizeAnswers, ANSWER_PRIORITY};
pub use types::*;
pub use weights::WeightInfo;

use alloc::vec::Vec;
use opg_primitives::{
	channel::{ChannelId, Receipt},
	payload_hash, JobId, ModeSet, ReleaseId, VerificationMode,
};
use pallet_model_hub::ModelRegistry;
use polkadot_sdk::{
	frame_support::{
		self,
		pallet_prelude::*,
		traits::{
			fungible::{Mutate, MutateHold},
			tokens::Precision,
		},
		weights::WeightMeter,
	},
	frame_system::{self, pallet_prelude::*},
	sp_core::H256,
	sp_runtime::traits::{IdentifyAccount, Saturating, Verify, Zero},
};

#[frame_support::pallet]
pub mod pallet {
	use super::*;

	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	/// Why the market holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A worker's stake: what gets slashed.
		#[codec(index = 0)]
		WorkerStake,
		/// A requester's escrow of open jobs: price plus maximum verification fee.
		#[codec(index = 1)]
		JobEscrow,
		/// What is left of a requester's channel deposits.
		#[codec(index = 2)]
		ChannelDeposit,
		/// A challenger's bond while its challenge is open.
		#[codec(index = 3)]
		ChallengeBond,
	}

	#[pallet::config]
	pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// The currency of stakes, prices and fees.
		type Currency: Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;
		/// The runtime's hold reasons.
		type RuntimeHoldReason: From<HoldReason>;
		/// The model hub.
		type Models: ModelRegistry<Self::AccountId>;
		/// Checks the evidence of TEE and ZK results.
		type Verifier: ResultVerifier<Self::AccountId>;
		/// Told when a job ends (on-chain consumers of inference).
		type Consumer: InferenceConsumer<Self::AccountId>;

		/// Stake a worker must hold to register and to stay active.
		type MinWorkerStake: Get<BalanceOf<Self>>;
		/// Flat verification fee per mode; burned at settlement.
		type VerificationFees: Get<VerificationFees<BalanceOf<Self>>>;
		/// Stake burned when a worker misses a deadline.
		type SlashOnTimeout: Get<BalanceOf<Self>>;
		/// Stake burned when a worker's evidence fails verification.
		type SlashOnInvalidProof: Get<BalanceOf<Self>>;

		/// Blocks between `unregister_worker` and `withdraw_stake`.
		#[pallet::constant]
		type UnbondingPeriod: Get<BlockNumberFor<Self>>;
		/// Time a job that names none gives its worker, in blocks after the draw.
		#[pallet::constant]
		type DefaultJobTimeout: Get<BlockNumberFor<Self>>;
		/// Shortest deadline a job may ask for.
		#[pallet::constant]
		type MinJobTimeout: Get<BlockNumberFor<Self>>;
		/// Longest deadline a job may ask for.
		#[pallet::constant]
		type MaxJobTimeout: Get<BlockNumberFor<Self>>;
		/// Blocks an ended job stays in storage before it is pruned.
		#[pallet::constant]
		type RetentionPeriod: Get<BlockNumberFor<Self>>;

		/// Largest job input, in bytes (canonical tensor encoding).
		#[pallet::constant]
		type MaxInputLen: Get<u32>;
		/// Largest result output, in bytes.
		#[pallet::constant]
		type MaxOutputLen: Get<u32>;
		/// Largest evidence (signature or proof), in bytes.
		#[pallet::constant]
		type MaxEvidenceLen: Get<u32>;
		/// Most releases one worker serves.
		#[pallet::constant]
		type MaxServedReleases: Get<u32>;
		/// Most workers serving one release (the pool a job's worker is drawn from).
		#[pallet::constant]
		type MaxWorkersPerRelease: Get<u32>;
		/// Highest capacity (concurrent jobs) of a worker.
		#[pallet::constant]
		type MaxWorkerCapacity: Get<u32>;
		/// Weight `on_initialize` may spend on due expiries and prunings per block; the rest
		/// carries over to the next block.
		#[pallet::constant]
		type AgendaWeight: Get<Weight>;
		/// Most ZK jobs open at once (assigned, or with a proof waiting in the verification
		/// queue): each reserves its queue place at submission.
		#[pallet::constant]
		type MaxQueueLen: Get<u32>;
		/// Fewest workers the draw may choose from, when at least that many serve the release
		/// and mode: a requester's price cap and timeout may not narrow the pool below it.
		#[pallet::constant]
		type MinDrawCandidates: Get<u32>;
		/// Most jobs waiting for their draw; `submit_job` is refused beyond.
		#[pallet::constant]
		type MaxPendingJobs: Get<u32>;
		/// Blocks a submitted job waits for fresh randomness before it is cancelled and
		/// refunded.
		#[pallet::constant]
		type MaxAssignmentDelay: Get<BlockNumberFor<Self>>;
		/// Weight `on_poll` may spend on draws per block; the rest waits for the next block.
		#[pallet::constant]
		type AssignmentWeight: Get<Weight>;

		/// A requester's signature of a voucher: the runtime's account signature.
		type ChannelSignature: Verify<Signer = Self::ChannelSigner> + Parameter;
		/// The key that signs for an account.
		type ChannelSigner: IdentifyAccount<AccountId = Self::AccountId>;
		/// Smallest deposit that opens a channel: each open channel costs its requester at least
		/// this much held, which bounds the state one account can create.
		type MinChannelDeposit: Get<BalanceOf<Self>>;
		/// Blocks between `close_channel` and the end of the worker's right to redeem: longer
		/// than any honest worker's redemption cadence.
		#[pallet::constant]
		type ChannelCloseWindow: Get<BlockNumberFor<Self>>;
		/// Blocks during which a committed batch of receipts can be challenged.
		#[pallet::constant]
		type DisputeWindow: Get<BlockNumberFor<Self>>;
		/// Most batches of one channel within their dispute window: a worker that redeems more
		/// often than that must batch more.
		#[pallet::constant]
		type MaxOpenBatches: Get<u32>;
		/// Longest endpoint URL a worker may advertise.
		#[pallet::constant]
		type MaxEndpointLen: Get<u32>;
		/// Receipts drawn for audit from each committed batch (all of a smaller batch; none
		/// when zero).
		#[pallet::constant]
		type AuditsPerBatch: Get<u32>;
		/// Blocks a worker has to open a receipt drawn for audit or challenged.
		#[pallet::constant]
		type OpenDeadline: Get<BlockNumberFor<Self>>;
		/// Held from a challenger while its challenge is open; burned if the worker opens the
		/// receipt.
		type ChallengeBond: Get<BalanceOf<Self>>;
		/// Stake taken from a worker for a receipt it did not open in time.
		type ReceiptSlash: Get<BalanceOf<Self>>;

		/// Weights of calls and hooks.
		type WeightInfo: WeightInfo;

		/// Creates releases for the benchmarks.
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId>;
		/// Signs vouchers for the benchmarks.
		#[cfg(feature = "runtime-benchmarks")]
		type ChannelBenchmarkHelper: ChannelBenchmarkHelper<Self::AccountId, Self::ChannelSignature>;
	}

	/// Registered workers.
	#[pallet::storage]
	pub type Workers<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, WorkerOf<T>>;

	/// Workers that serve a release: the pool a job's worker is drawn from.
	#[pallet::storage]
	pub type ReleaseWorkers<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		ReleaseId,
		BoundedVec<T::AccountId, T::MaxWorkersPerRelease>,
		ValueQuery,
	>;

	/// Open jobs of each worker.
	#[pallet::storage]
	pub type WorkerJobs<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		BoundedVec<JobId, T::MaxWorkerCapacity>,
		ValueQuery,
	>;

	/// Next job id.
	#[pallet::storage]
	pub type NextJobId<T> = StorageValue<_, JobId, ValueQuery>;

	/// Jobs, until pruned.
	#[pallet::storage]
	pub type Jobs<T: Config> = StorageMap<_, Twox64Concat, JobId, JobOf<T>>;

	/// Jobs waiting for their draw, from [`AssignCursor`] up to [`NextJobId`].
	#[pallet::storage]
	pub type PendingJobs<T: Config> = StorageMap<_, Twox64Concat, JobId, PendingJobOf<T>>;

	/// The oldest job that may still wait for its draw: drawn in submission order.
	#[pallet::storage]
	pub type AssignCursor<T> = StorageValue<_, JobId, ValueQuery>;

	/// The latest randomness the runtime gave [`Pallet::note_randomness`]: its round (the
	/// relay parent's number under a relay chain) and its value.
	#[pallet::storage]
	pub type Randomness<T> = StorageValue<_, (u32, [u8; 32]), ValueQuery>;

	/// Inputs of pending and open jobs, answered or not (removed when the job ends).
	#[pallet::storage]
	pub type JobInputs<T: Config> =
		StorageMap<_, Twox64Concat, JobId, BoundedVec<u8, T::MaxInputLen>>;

	/// Results, visible from submission until the job is pruned.
	#[pallet::storage]
	pub type JobResults<T: Config> = StorageMap<_, Twox64Concat, JobId, JobResultOf<T>>;

	/// Per block and job: what to do with the job then (expire it, or prune it). An entry
	/// lives only while it is due: closing a job removes its expiry.
	#[pallet::storage]
	pub type Agenda<T: Config> =
		StorageDoubleMap<_, Twox64Concat, BlockNumberFor<T>, Twox64Concat, JobId, AgendaItem>;

	/// First block whose agenda may still hold entries.
	#[pallet::storage]
	pub type AgendaCursor<T: Config> = StorageValue<_, BlockNumberFor<T>, ValueQuery>;

	/// Verification queue: position of the next job to verify.
	#[pallet::storage]
	pub type QueueHead<T> = StorageValue<_, u64, ValueQuery>;

	/// Verification queue: position after the last job.
	#[pallet::storage]
	pub type QueueTail<T> = StorageValue<_, u64, ValueQuery>;

	/// Verification queue entries (FIFO between head and tail; `verify_result` leaves gaps).
	#[pallet::storage]
	pub type VerificationQueue<T> = StorageMap<_, Twox64Concat, u64, JobId>;

	/// Where a job waits in the verification queue.
	#[pallet::storage]
	pub type QueuedAt<T> = StorageMap<_, Twox64Concat, JobId, u64>;

	/// Open ZK jobs (assigned, or waiting in the queue): the queue places reserved.
	#[pallet::storage]
	pub type OpenZkJobs<T> = StorageValue<_, u32, ValueQuery>;

	/// Blocks at least 90% full (by weight or size), counted since genesis.
	/// A worker whose deadline fell in such blocks may not have found room for its answer:
	/// they extend its deadline (see [`Job::congestion_mark`]).
	#[pallet::storage]
	pub type CongestedBlocks<T> = StorageValue<_, u32, ValueQuery>;

	/// Next channel id.
	#[pallet::storage]
	pub type NextChannelId<T> = StorageValue<_, ChannelId, ValueQuery>;

	/// Open (or closing) payment channels of the direct path.
	#[pallet::storage]
	pub type Channels<T: Config> = StorageMap<_, Twox64Concat, ChannelId, ChannelOf<T>>;

	/// The channel of a requester to a worker for a release: there is at most one.
	#[pallet::storage]
	pub type ChannelIndex<T: Config> = StorageNMap<
		_,
		(
			NMapKey<Blake2_128Concat, T::AccountId>,
			NMapKey<Blake2_128Concat, T::AccountId>,
			NMapKey<Twox64Concat, ReleaseId>,
		),
		ChannelId,
	>;

	/// The HTTP endpoint each worker advertises for the direct path.
	#[pallet::storage]
	pub type Endpoints<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, BoundedVec<u8, T::MaxEndpointLen>>;

	/// Receipts their workers must open (audits and challenges).
	#[pallet::storage]
	pub type Disputes<T: Config> = StorageMap<_, Blake2_128Concat, DisputeKey, DisputeOf<T>>;

	/// The open disputes of each worker: what it must answer, and what keeps its stake.
	#[pallet::storage]
	pub type WorkerDisputes<T: Config> =
		StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Blake2_128Concat, DisputeKey, ()>;

	/// Dispute deadlines by the block they are judged in (served with [`Agenda`]).
	#[pallet::storage]
	pub type DisputeAgenda<T: Config> =
		StorageDoubleMap<_, Twox64Concat, BlockNumberFor<T>, Blake2_128Concat, DisputeKey, ()>;

	/// Committed batches waiting for their audit draw, by position.
	#[pallet::storage]
	pub type AuditQueue<T: Config> =
		StorageMap<_, Twox64Concat, u64, PendingAudit<BlockNumberFor<T>>>;

	/// The oldest position of [`AuditQueue`] not drawn yet.
	#[pallet::storage]
	pub type AuditHead<T> = StorageValue<_, u64, ValueQuery>;

	/// The next free position of [`AuditQueue`].
	#[pallet::storage]
	pub type AuditTail<T> = StorageValue<_, u64, ValueQuery>;

	/// The block of each worker's latest batch commitment: its stake stays until the batch's
	/// dispute window has passed.
	#[pallet::storage]
	pub type LastCommitment<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, BlockNumberFor<T>>;

	/// Everything this pallet has burned.
	#[pallet::storage]
	pub type TotalBurned<T: Config> = StorageValue<_, BalanceOf<T>, ValueQuery>;

	/// Burned, by cause.
	#[pallet::storage]
	pub type BurnedByCause<T: Config> =
		StorageMap<_, Twox64Concat, BurnCause, BalanceOf<T>, ValueQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A worker registered with its stake.
		WorkerRegistered { worker: T::AccountId, stake: BalanceOf<T> },
		/// A worker changed what it serves, its price or capacity.
		WorkerUpdated { worker: T::AccountId },
		/// A worker added stake.
		StakeBonded { worker: T::AccountId, amount: BalanceOf<T>, stake: BalanceOf<T> },
		/// A worker stopped taking jobs (by itself, or because its stake fell below the minimum).
		WorkerPaused { worker: T::AccountId },
		/// A worker takes jobs again.
		WorkerResumed { worker: T::AccountId },
		/// A worker left the pool; its stake unlocks at `unlock_at`.
		WorkerUnbonding { worker: T::AccountId, unlock_at: BlockNumberFor<T> },
		/// A worker withdrew its stake and is gone.
		WorkerRemoved { worker: T::AccountId, stake: BalanceOf<T> },
		/// Stake was slashed (and burned).
		WorkerSlashed { worker: T::AccountId, job: JobId, amount: BalanceOf<T> },
		/// A job was submitted: `max_fee` and the maximum verification fee are held until its
		/// worker is drawn in a later block.
		JobQueued {
			job: JobId,
			requester: T::AccountId,
			release: ReleaseId,
			mode: VerificationMode,
			held: BalanceOf<T>,
		},
		/// A job's worker was drawn: `held` is now its price plus the maximum verification fee,
		/// the rest of `max_fee` was released.
		JobAssigned {
			job: JobId,
			requester: T::AccountId,
			worker: T::AccountId,
			release: ReleaseId,
			mode: VerificationMode,
			price: BalanceOf<T>,
			held: BalanceOf<T>,
			deadline: BlockNumberFor<T>,
		},
		/// A job ended without a worker, refunded in full.
		JobCancelled { job: JobId, reason: CancelReason, refund: BalanceOf<T> },
		/// A worker submitted a result (pending verification unless Vanilla).
		ResultSubmitted { job: JobId, worker: T::AccountId, output_hash: H256 },
		/// A job settled: worker paid, fee burned, remainder refunded. `mode` says what backs
		/// the output: a verified TEE signature or proof, or nothing but trust (Vanilla).
		JobSettled {
			job: JobId,
			mode: VerificationMode,
			worker_payment: BalanceOf<T>,
			royalty: BalanceOf<T>,
			verification_fee: BalanceOf<T>,
			refund: BalanceOf<T>,
		},
		/// A result failed verification: the input's data fee burned, the rest refunded, the
		/// worker slashed.
		JobFailed { job: JobId, data_fee: BalanceOf<T>, refund: BalanceOf<T> },
		/// The worker rejected the job: the input's data fee burned, the rest refunded.
		JobRejected {
			job: JobId,
			reason: RejectReason,
			data_fee: BalanceOf<T>,
			refund: BalanceOf<T>,
		},
		/// The deadline passed without a result: the input's data fee burned, the rest
		/// refunded, the worker slashed (`slashed` is zero when full blocks kept its answer out
		/// until the end).
		JobExpired {
			job: JobId,
			data_fee: BalanceOf<T>,
			refund: BalanceOf<T>,
			slashed: BalanceOf<T>,
		},
		/// Full blocks fell within the job's time: its deadline moved by as many blocks.
		DeadlineExtended { job: JobId, deadline: BlockNumberFor<T> },
		/// A worker set the shortest timeouts it takes.
		MinTimeoutsSet { worker: T::AccountId, min_timeouts: MinTimeouts<BlockNumberFor<T>> },
		/// A worker set its prices per 1,000 tokens of LLM jobs.
		TokenPricesSet { worker: T::AccountId, prices: TokenPrices<BalanceOf<T>> },
		/// An ended job's records were removed.
		JobPruned { job: JobId },
		/// A requester opened a channel to a worker; `deposit` is held.
		ChannelOpened {
			channel: ChannelId,
			requester: T::AccountId,
			worker: T::AccountId,
			release: ReleaseId,
			mode: VerificationMode,
			deposit: BalanceOf<T>,
		},
		/// A requester added to a channel's deposit; `deposit` is the new total.
		ChannelToppedUp { channel: ChannelId, amount: BalanceOf<T>, deposit: BalanceOf<T> },
		/// A worker redeemed a voucher: requests `first_seq..=last_seq` paid and their
		/// verification fee burned; `root` commits their receipts.
		ChannelRedeemed {
			channel: ChannelId,
			first_seq: u64,
			last_seq: u64,
			worker_payment: BalanceOf<T>,
			royalty: BalanceOf<T>,
			burned: BalanceOf<T>,
			root: H256,
		},
		/// The requester closed a channel: the worker may redeem until `redeem_until`.
		ChannelClosing { channel: ChannelId, redeem_until: BlockNumberFor<T> },
		/// A closed channel ended: what was left of its deposit went back to the requester.
		ChannelClosed { channel: ChannelId, refund: BalanceOf<T> },
		/// A worker set (or, empty, removed) its endpoint.
		EndpointSet { worker: T::AccountId },
		/// A receipt of a committed batch was drawn for audit: its worker must open it by
		/// `deadline`.
		AuditDrawn {
			channel: ChannelId,
			seq: u64,
			worker: T::AccountId,
			deadline: BlockNumberFor<T>,
		},
		/// Someone challenged a receipt (by its Merkle `leaf`): the worker must open that
		/// receipt by `deadline`.
		ReceiptChallenged {
			channel: ChannelId,
			seq: u64,
			challenger: T::AccountId,
			leaf: H256,
			deadline: BlockNumberFor<T>,
		},
		/// The worker opened a receipt: the audits and the challenge of it are closed.
		ReceiptOpened { channel: ChannelId, seq: u64, worker: T::AccountId },
		/// A challenge failed: the worker opened the receipt, the bond was burned.
		ChallengeFailed {
			channel: ChannelId,
			seq: u64,
			challenger: T::AccountId,
			burned: BalanceOf<T>,
		},
		/// A receipt was not opened in time: the worker's stake was slashed, `refund` of it
		/// repaid to the requester (a challenge) and `burned` burned.
		DisputeLost {
			channel: ChannelId,
			seq: u64,
			worker: T::AccountId,
			burned: BalanceOf<T>,
			refund: BalanceOf<T>,
		},
		/// OPG was burned.
		Burned { cause: BurnCause, amount: BalanceOf<T> },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// Stake below `MinWorkerStake`.
		StakeTooLow,
		/// The account is already a worker.
		AlreadyWorker,
		/// The account is not a worker.
		NotWorker,
		/// The worker serves no release, or more than `MaxServedReleases`.
		BadReleaseList,
		/// A release is listed twice.
		DuplicateRelease,
		/// A release the worker would serve does not exist or is retired.
		UnknownRelease,
		/// The release does not support the requested mode, or the worker's modes include one
		/// the release list cannot use.
		ModeNotSupported,
		/// The chain cannot verify this mode (no verifier configured for it).
		ModeUnavailable,
		/// The mode set is empty or has unknown bits.
		InvalidModes,
		/// Capacity is zero or above `MaxWorkerCapacity`.
		BadCapacity,
		/// The release already has `MaxWorkersPerRelease` workers.
		ReleaseFull,
		/// The worker is not active.
		WorkerNotActive,
		/// The worker is not paused.
		WorkerNotPaused,
		/// The worker still has open jobs.
		WorkerHasOpenJobs,
		/// The worker is not unbonding, or its stake is not unlocked yet.
		NotUnlocked,
		/// The worker is unbonding and cannot change.
		WorkerUnbonding,
		/// No active worker serves the release and mode at a price within `max_fee`, with free
		/// capacity and a minimum timeout within the job's.
		NoEligibleWorker,
		/// `max_fee` or the timeout leaves fewer than `MinDrawCandidates` of the workers that
		/// could take the job: the draw would not be a draw. Raise `max_fee` (see
		/// `InferenceApi::fee_quote`) or the timeout.
		PoolTooNarrow,
		/// `MaxPendingJobs` jobs wait for their draw; try again in a block.
		TooManyPendingJobs,
		/// The input does not match the release's input spec.
		InvalidInput,
		/// The output does not match the release's output spec.
		InvalidOutput,
		/// The deadline is outside `MinJobTimeout..=MaxJobTimeout` (or a worker's minimum
		/// timeout is above `MaxJobTimeout`).
		BadTimeout,
		/// Not enough free balance for the stake or the escrow.
		InsufficientBalance,
		/// No job with this id.
		UnknownJob,
		/// The caller is not the job's worker.
		NotAssignedWorker,
		/// The job is not waiting for a result.
		NotAssigned,
		/// The job's deadline (or the dispute's, for an opening) has passed.
		DeadlinePassed,
		/// The evidence is of another mode than the job's.
		EvidenceMismatch,
		/// The job has no result waiting for verification.
		NotPendingVerification,
		/// `MaxQueueLen` ZK jobs are open, each with a reserved verification place; try again
		/// when some have settled.
		QueueFull,
		/// A counter overflowed.
		Overflow,
		/// The job is open, or its retention period has not passed.
		NotPrunable,
		/// The input of an LLM job is not a valid chat request for the release (malformed,
		/// not UTF-8, no message, too many messages or stop strings, `max_tokens` of 0 or over
		/// the context or `MAX_COMPLETION_TOKENS`, a sampling parameter out of range).
		InvalidChatRequest,
		/// No channel with this id.
		UnknownChannel,
		/// The requester already has a channel to this worker for this release: top it up.
		ChannelExists,
		/// A channel needs two accounts.
		ChannelToSelf,
		/// The deposit is below `MinChannelDeposit`, or a top-up adds nothing.
		DepositTooLow,
		/// The worker does not serve this release (or it is retired).
		ReleaseNotServed,
		/// Only the channel's requester may do this.
		NotChannelRequester,
		/// Only the channel's worker may redeem.
		NotChannelWorker,
		/// The channel is closing: no top-up, no second close.
		ChannelClosing,
		/// The channel's close window has passed: nothing can be redeemed any more.
		ChannelClosed,
		/// The channel is not closed, its close window is still open, or a batch of it is still
		/// within its dispute window.
		NotClosable,
		/// The voucher is for another channel, or its signature is not the requester's.
		BadVoucher,
		/// The voucher is not newer than the last redeemed one (sequence number, or a
		/// cumulative amount that went down).
		StaleVoucher,
		/// The voucher burns less than the mode's flat verification fee per request.
		BurnTooLow,
		/// The voucher's amounts exceed the channel's deposit.
		Overdrawn,
		/// `MaxOpenBatches` batches of the channel are within their dispute window: redeem less
		/// often.
		TooManyBatches,
		/// A payment could not be made (an account that would be left below the existential
		/// deposit).
		PaymentFailed,
		/// The endpoint is not an `http://` or `https://` URL of printable ASCII, or is longer
		/// than `MaxEndpointLen`.
		BadEndpoint,
		/// The receipt is not the worker's (signature), or names another release.
		BadReceipt,
		/// The request or response does not hash to what the receipt names.
		DataMismatch,
		/// The receipt's sequence number is not in a batch of the channel within its dispute
		/// window: not redeemed yet, or its window has passed.
		NotCommitted,
		/// The receipt is already disputed.
		AlreadyDisputed,
		/// No open audit or challenge of this receipt.
		NoSuchDispute,
		/// The proof does not show the receipt in its committed batch.
		NotInBatch,
		/// A TEE channel's receipt without a valid signature of the worker's attested enclave
		/// key.
		BadEnclaveSignature,
		/// The worker has open disputes, or a batch still within its dispute window.
		WorkerHasOpenDisputes,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let mut meter = WeightMeter::with_limit(T::AgendaWeight::get());
			Self::service_agenda(now, &mut meter);
			// `on_finalize`: the block's weight and length (read by System anyway) and the
			// congestion counter.
			meter.consumed().saturating_add(T::DbWeight::get().reads_writes(1, 1))
		}

		fn on_poll(now: BlockNumberFor<T>, meter: &mut WeightMeter) {
			// After the inherents: the runtime has given this block's randomness.
			let mut budget =
				WeightMeter::with_limit(meter.remaining().min(T::AssignmentWeight::get()));
			Self::assign_pending(now, &mut budget);
			// Audits draw from what the job draws leave of the same budget.
			Self::draw_audits(&mut budget);
			meter.consume(budget.consumed());
		}

		fn on_finalize(_now: BlockNumberFor<T>) {
			if Self::block_is_congested() {
				CongestedBlocks::<T>::mutate(|n| *n = n.saturating_add(1));
			}
		}

		fn on_idle(_now: BlockNumberFor<T>, remaining: Weight) -> Weight {
			let mut meter = WeightMeter::with_limit(remaining);
			Self::service_queue(&mut meter);
			meter.consumed()
		}

		fn integrity_test() {
			assert!(
				T::WeightInfo::on_initialize_base()
					.saturating_add(T::WeightInfo::on_initialize_expire())
					.saturating_add(T::Consumer::weight())
					.max(
						T::WeightInfo::on_initialize_base()
							.saturating_add(T::WeightInfo::on_initialize_prune())
					)
					.all_lte(T::AgendaWeight::get()),
				"the agenda must make progress: AgendaWeight below one block visit and entry"
			);
			assert!(
				T::WeightInfo::on_poll_base()
					.saturating_add(Self::assign_weight())
					.all_lte(T::AssignmentWeight::get()),
				"the draw must make progress: AssignmentWeight below one draw"
			);
			assert!(
				T::WeightInfo::on_poll_base()
					.saturating_add(T::WeightInfo::draw_audits(T::AuditsPerBatch::get()))
					.all_lte(T::AssignmentWeight::get()),
				"audits must be drawn: AssignmentWeight below one batch's draw"
			);
			assert!(T::MinDrawCandidates::get() > 0, "a draw needs a candidate");
			assert!(
				T::ChannelCloseWindow::get() > Zero::zero(),
				"a closed channel leaves its worker a block to redeem"
			);
			assert!(T::MaxOpenBatches::get() > 0, "a channel needs room for a batch");
			assert!(T::MinJobTimeout::get() > Zero::zero(), "a job needs at least one block");
			assert!(
				T::MinJobTimeout::get() <= T::DefaultJobTimeout::get() &&
					T::DefaultJobTimeout::get() <= T::MaxJobTimeout::get(),
				"default timeout within bounds"
			);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(
			_: BlockNumberFor<T>,
		) -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	/// Workers registered from genesis (e.g. a dev worker serving the demo model).
	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Registered in order, after the model hub's genesis releases exist.
		pub workers: Vec<GenesisWorker<T::AccountId, BalanceOf<T>>>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			for w in &self.workers {
				Pallet::<T>::register_worker(
					frame_system::RawOrigin::Signed(w.account.clone()).into(),
					w.stake,
					w.releases.clone().try_into().expect("genesis worker serves too many releases"),
					w.modes,
					w.price,
					w.capacity,
					w.hardware,
				)
				.expect("genesis worker is valid and can hold its stake");
				if let Some(prices) = w.token_prices {
					Pallet::<T>::set_token_prices(
						frame_system::RawOrigin::Signed(w.account.clone()).into(),
						prices,
					)
					.expect("the genesis worker was just registered");
				}
			}
		}
	}

	#[pallet::call(weight(<T as Config>::WeightInfo))]
	impl<T: Config> Pallet<T> {
		/// Registers the caller as a worker: holds `stake` (at least `MinWorkerStake`) and
		/// declares the releases it serves, the modes it can answer in, its price per job, its
		/// capacity (concurrent jobs) and its hardware.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::register_worker(releases.len() as u32))]
		pub fn register_worker(
			origin: OriginFor<T>,
			stake: BalanceOf<T>,
			releases: BoundedVec<ReleaseId, T::MaxServedReleases>,
			modes: ModeSet,
			price: BalanceOf<T>,
			capacity: u32,
			hardware: Hardware,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(!Workers::<T>::contains_key(&who), Error::<T>::AlreadyWorker);
			ensure!(stake >= T::MinWorkerStake::get(), Error::<T>::StakeTooLow);
			Self::check_offer(&releases, modes, capacity)?;
			T::Currency::hold(&HoldReason::WorkerStake.into(), &who, stake)
				.map_err(|_| Error::<T>::InsufficientBalance)?;
			Self::join_pools(&who, &releases)?;
			Workers::<T>::insert(
				&who,
				Worker {
					stake,
					releases,
					modes,
					price,
					capacity,
					hardware,
					status: WorkerStatus::Active,
					open_jobs: 0,
					completed: 0,
					rejected: 0,
					slashed: 0,
					min_timeouts: Default::default(),
					token_prices: Default::default(),
				},
			);
			Self::deposit_event(Event::WorkerRegistered { worker: who, stake });
			Ok(())
		}

		/// Changes what a worker serves, its modes, price, capacity and hardware. Open jobs
		/// continue under their original terms.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::update_worker(T::MaxServedReleases::get(), releases.len() as u32))]
		pub fn update_worker(
			origin: OriginFor<T>,
			releases: BoundedVec<ReleaseId, T::MaxServedReleases>,
			modes: ModeSet,
			price: BalanceOf<T>,
			capacity: u32,
			hardware: Hardware,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut worker = Workers::<T>::get(&who).ok_or(Error::<T>::NotWorker)?;
			ensure!(!worker.is_unbonding(), Error::<T>::WorkerUnbonding);
			Self::check_offer(&releases, modes, capacity)?;
			// A paused worker is in no pool; it joins its releases' pools when it resumes.
			if worker.status == WorkerStatus::Active {
				Self::leave_pools(&who, &worker.releases);
				Self::join_pools(&who, &releases)?;
			}
			worker.releases = releases;
			worker.modes = modes;
			worker.price = price;
			worker.capacity = capacity;
			worker.hardware = hardware;
			Workers::<T>::insert(&who, worker);
			Self::deposit_event(Event::WorkerUpdated { worker: who });
			Ok(())
		}

		/// Adds `amount` to the caller's stake.
		#[pallet::call_index(2)]
		pub fn bond_extra(origin: OriginFor<T>, amount: BalanceOf<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut worker = Workers::<T>::get(&who).ok_or(Error::<T>::NotWorker)?;
			ensure!(!worker.is_unbonding(), Error::<T>::WorkerUnbonding);
			T::Currency::hold(&HoldReason::WorkerStake.into(), &who, amount)
				.map_err(|_| Error::<T>::InsufficientBalance)?;
			worker.stake = worker.stake.saturating_add(amount);
			let stake = worker.stake;
			Workers::<T>::insert(&who, worker);
			Self::deposit_event(Event::StakeBonded { worker: who, amount, stake });
			Ok(())
		}

		/// Stops taking new jobs and leaves the release pools (freeing the slots for workers
		/// that serve); open jobs must still be answered.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::unregister_worker(T::MaxServedReleases::get()))]
		pub fn pause_worker(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Workers::<T>::try_mutate(&who, |maybe| -> DispatchResult {
				let worker = maybe.as_mut().ok_or(Error::<T>::NotWorker)?;
				ensure!(worker.status == WorkerStatus::Active, Error::<T>::WorkerNotActive);
				worker.status = WorkerStatus::Paused;
				Self::leave_pools(&who, &worker.releases);
				Ok(())
			})?;
			Self::deposit_event(Event::WorkerPaused { worker: who });
			Ok(())
		}

		/// Takes jobs again (needs at least `MinWorkerStake`, and room in its releases' pools).
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::register_worker(T::MaxServedReleases::get()))]
		pub fn resume_worker(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Workers::<T>::try_mutate(&who, |maybe| -> DispatchResult {
				let worker = maybe.as_mut().ok_or(Error::<T>::NotWorker)?;
				ensure!(worker.status == WorkerStatus::Paused, Error::<T>::WorkerNotPaused);
				ensure!(worker.stake >= T::MinWorkerStake::get(), Error::<T>::StakeTooLow);
				worker.status = WorkerStatus::Active;
				Self::join_pools(&who, &worker.releases)
			})?;
			Self::deposit_event(Event::WorkerResumed { worker: who });
			Ok(())
		}

		/// Leaves the worker pool. Needs no open jobs; the stake unlocks after
		/// `UnbondingPeriod`.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::unregister_worker(T::MaxServedReleases::get()))]
		pub fn unregister_worker(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut worker = Workers::<T>::get(&who).ok_or(Error::<T>::NotWorker)?;
			ensure!(!worker.is_unbonding(), Error::<T>::WorkerUnbonding);
			ensure!(worker.open_jobs == 0, Error::<T>::WorkerHasOpenJobs);
			if worker.status == WorkerStatus::Active {
				Self::leave_pools(&who, &worker.releases);
			}
			let unlock_at =
				frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingPeriod::get());
			worker.status = WorkerStatus::Unbonding { unlock_at };
			Workers::<T>::insert(&who, worker);
			Self::deposit_event(Event::WorkerUnbonding { worker: who, unlock_at });
			Ok(())
		}

		/// Releases an unbonded worker's stake and removes its record.
		#[pallet::call_index(6)]
		pub fn withdraw_stake(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let worker = Workers::<T>::get(&who).ok_or(Error::<T>::NotWorker)?;
			let now = frame_system::Pallet::<T>::block_number();
			match worker.status {
				WorkerStatus::Unbonding { unlock_at } if unlock_at <= now => {},
				_ => return Err(Error::<T>::NotUnlocked.into()),
			}
			// The stake answers for the receipts of its batches until they cannot be disputed.
			ensure!(
				WorkerDisputes::<T>::iter_prefix(&who).next().is_none() &&
					LastCommitment::<T>::get(&who)
						.is_none_or(|at| at.saturating_add(T::DisputeWindow::get()) <= now),
				Error::<T>::WorkerHasOpenDisputes
			);
			T::Currency::release(
				&HoldReason::WorkerStake.into(),
				&who,
				worker.stake,
				Precision::Exact,
			)?;
			Workers::<T>::remove(&who);
			WorkerJobs::<T>::remove(&who);
			Endpoints::<T>::remove(&who);
			LastCommitment::<T>::remove(&who);
			Self::deposit_event(Event::WorkerRemoved { worker: who, stake: worker.stake });
			Ok(())
		}

		/// Submits a job: `input` (canonical tensors matching the release's input spec) for
		/// `release`, answered in `mode`, by a worker whose price is at most `max_fee`, within
		/// `timeout` blocks of its draw (default `DefaultJobTimeout`). Holds `max_fee` plus the
		/// maximum verification fee. The worker is drawn in a later block (`JobAssigned`), from
		/// randomness unknown now; the draw releases what the worker's price leaves of
		/// `max_fee`. Refused unless at least `MinDrawCandidates` of the workers that could
		/// take the job (all of them, if fewer) accept `max_fee` and `timeout`.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::submit_job(input.len() as u32, T::MaxWorkersPerRelease::get())
			.saturating_add(T::Verifier::can_answer_weight(*mode)
				.saturating_mul(T::MaxWorkersPerRelease::get().into())))]
		pub fn submit_job(
			origin: OriginFor<T>,
			release: ReleaseId,
			mode: VerificationMode,
			input: BoundedVec<u8, T::MaxInputLen>,
			max_fee: BalanceOf<T>,
			timeout: Option<BlockNumberFor<T>>,
		) -> DispatchResult {
			let requester = ensure_signed(origin)?;
			Self::do_submit_job(requester, release, mode, input, max_fee, timeout).map(|_| ())
		}

		/// The assigned worker's answer: `output` (canonical tensors matching the release's
		/// output spec) with `evidence` of the job's mode. Vanilla results settle at once;
		/// others are verified from the queue. Operational: an answer has the block space
		/// ordinary transactions cannot fill, and [`PrioritizeAnswers`] lets only answers the
		/// call would accept into the pool and the block.
		#[pallet::call_index(8)]
		#[pallet::weight((T::WeightInfo::submit_result(output.len() as u32, evidence.len() as u32)
			.saturating_add(T::Verifier::weight(
				VerificationMode::Tee,
				T::MaxInputLen::get(),
				output.len() as u32,
				evidence.len() as u32,
			))
			.saturating_add(T::WeightInfo::settle())
			.saturating_add(T::Consumer::weight()), DispatchClass::Operational))]
		pub fn submit_result(
			origin: OriginFor<T>,
			job: JobId,
			output: BoundedVec<u8, T::MaxOutputLen>,
			evidence: EvidenceOf<T>,
		) -> DispatchResultWithPostInfo {
			let who = ensure_signed(origin)?;
			let mut record = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			ensure!(record.worker == who, Error::<T>::NotAssignedWorker);
			ensure!(record.status == JobStatus::Assigned, Error::<T>::NotAssigned);
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(now <= record.deadline, Error::<T>::DeadlinePassed);
			ensure!(evidence.mode() == record.mode, Error::<T>::EvidenceMismatch);
			let usage = T::Models::check_output(record.release, &output)
				.map_err(|_| Error::<T>::InvalidOutput)?;
			// An LLM answer cannot bill more tokens than the request allowed.
			if let Some(terms) = &record.tokens {
				let usage = usage.ok_or(Error::<T>::InvalidOutput)?;
				ensure!(usage.completion <= terms.budget.completion, Error::<T>::InvalidOutput);
			}

			let output_hash = payload_hash(&output);
			let (input_len, output_len, evidence_len) =
				(record.input_len, output.len() as u32, evidence.len() as u32);
			JobResults::<T>::insert(
				job,
				JobResult { output, output_hash, evidence, submitted_at: now },
			);
			// The input stays until the job ends: a ZK statement is recomputed from it.
			record.status = JobStatus::Submitted;
			Self::deposit_event(Event::ResultSubmitted { job, worker: who, output_hash });

			let stored = T::WeightInfo::submit_result(output_len, evidence_len);
			let concluded = T::WeightInfo::settle().saturating_add(T::Consumer::weight());
			let actual = match record.mode {
				// Nothing to verify: the staked worker is trusted.
				VerificationMode::Vanilla => {
					Self::settle(job, record, now);
					stored.saturating_add(concluded)
				},
				// A TEE signature is cheap to check: settle in the same call.
				VerificationMode::Tee => {
					let verdict = Self::verify(job, &record);
					Self::conclude(job, record, verdict, now);
					stored.saturating_add(concluded).saturating_add(T::Verifier::weight(
						VerificationMode::Tee,
						input_len,
						output_len,
						evidence_len,
					))
				},
				// Proofs are verified later, from the queue or by `verify_result`.
				// Its place in the queue was reserved at submission.
				VerificationMode::Zk => {
					Self::enqueue(job);
					Jobs::<T>::insert(job, record);
					stored
				},
			};
			Ok(Some(actual).into())
		}

		/// The assigned worker declines the job (input its model cannot take, model not
		/// available, ...): the requester pays only the data fee for its stored input and the
		/// worker is not slashed.
		/// Rejections are counted per worker.
		#[pallet::call_index(9)]
		#[pallet::weight((
			T::WeightInfo::reject_job().saturating_add(T::Consumer::weight()),
			DispatchClass::Operational
		))]
		pub fn reject_job(
			origin: OriginFor<T>,
			job: JobId,
			reason: RejectReason,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut record = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			ensure!(record.worker == who, Error::<T>::NotAssignedWorker);
			ensure!(record.status == JobStatus::Assigned, Error::<T>::NotAssigned);
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(now <= record.deadline, Error::<T>::DeadlinePassed);
			let (data_fee, refund) = Self::refund(&record);
			record.status = JobStatus::Rejected { reason };
			Self::close(job, record, now, |w| w.rejected = w.rejected.saturating_add(1));
			Self::deposit_event(Event::JobRejected { job, reason, data_fee, refund });
			T::Consumer::on_job_finished(job, JobOutcome::Rejected);
			Ok(())
		}

		/// Verifies a pending result now instead of waiting for the queue; anyone may call it
		/// and pays the verification's weight.
		#[pallet::call_index(10)]
		#[pallet::weight(T::WeightInfo::verify_result()
			.saturating_add(T::Verifier::weight(
				VerificationMode::Zk,
				T::MaxInputLen::get(),
				T::MaxOutputLen::get(),
				T::MaxEvidenceLen::get(),
			))
			.saturating_add(T::WeightInfo::settle())
			.saturating_add(T::Consumer::weight()))]
		pub fn verify_result(origin: OriginFor<T>, job: JobId) -> DispatchResult {
			ensure_signed(origin)?;
			let record = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			ensure!(record.status == JobStatus::Submitted, Error::<T>::NotPendingVerification);
			Self::dequeue(job);
			let verdict = Self::verify(job, &record);
			Self::conclude(job, record, verdict, frame_system::Pallet::<T>::block_number());
			Ok(())
		}

		/// Removes an ended job's records once its retention period has passed, without
		/// waiting for the agenda. Anyone may call.
		#[pallet::call_index(11)]
		#[pallet::weight(T::WeightInfo::prune_job())]
		pub fn prune_job(origin: OriginFor<T>, job: JobId) -> DispatchResult {
			ensure_signed(origin)?;
			let record = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			let ended = record.ended.ok_or(Error::<T>::NotPrunable)?;
			let due = ended.saturating_add(T::RetentionPeriod::get());
			ensure!(frame_system::Pallet::<T>::block_number() >= due, Error::<T>::NotPrunable);
			Agenda::<T>::remove(due, job);
			Self::prune(job);
			Ok(())
		}

		/// Sets the shortest timeout, per mode, of the jobs this worker is assigned (zero: the
		/// chain's floor). A worker that needs longer to answer a mode (ZK proving, a large
		/// model) avoids jobs it would miss and be slashed for.
		#[pallet::call_index(12)]
		#[pallet::weight(T::WeightInfo::set_min_timeouts())]
		pub fn set_min_timeouts(
			origin: OriginFor<T>,
			min_timeouts: MinTimeouts<BlockNumberFor<T>>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let max = T::MaxJobTimeout::get();
			ensure!(min_timeouts.values().iter().all(|t| *t <= max), Error::<T>::BadTimeout);
			Workers::<T>::try_mutate(&who, |maybe| -> DispatchResult {
				let worker = maybe.as_mut().ok_or(Error::<T>::NotWorker)?;
				ensure!(!worker.is_unbonding(), Error::<T>::WorkerUnbonding);
				worker.min_timeouts = min_timeouts;
				Ok(())
			})?;
			Self::deposit_event(Event::MinTimeoutsSet { worker: who, min_timeouts });
			Ok(())
		}

		/// Sets the worker's prices per 1,000 prompt and per 1,000 completion tokens: an LLM
		/// job costs its per-job price plus its tokens at these prices. Jobs already drawn keep
		/// the prices of their draw.
		#[pallet::call_index(13)]
		#[pallet::weight(T::WeightInfo::set_token_prices())]
		pub fn set_token_prices(
			origin: OriginFor<T>,
			prices: TokenPrices<BalanceOf<T>>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Workers::<T>::try_mutate(&who, |maybe| -> DispatchResult {
				let worker = maybe.as_mut().ok_or(Error::<T>::NotWorker)?;
				ensure!(!worker.is_unbonding(), Error::<T>::WorkerUnbonding);
				worker.token_prices = prices;
				Ok(())
			})?;
			Self::deposit_event(Event::TokenPricesSet { worker: who, prices });
			Ok(())
		}

		/// Opens a channel of the direct path to `worker` for `release`, answered in `mode`
		/// (Vanilla or TEE), holding `deposit` (at least `MinChannelDeposit`). The worker must be
		/// active and serve the release in the mode; one channel per requester, worker and
		/// release.
		#[pallet::call_index(14)]
		pub fn open_channel(
			origin: OriginFor<T>,
			worker: T::AccountId,
			release: ReleaseId,
			mode: VerificationMode,
			deposit: BalanceOf<T>,
		) -> DispatchResult {
			let requester = ensure_signed(origin)?;
			Self::do_open_channel(requester, worker, release, mode, deposit).map(|_| ())
		}

		/// Adds `amount` to a channel's deposit (its requester only, while not closing).
		#[pallet::call_index(15)]
		pub fn top_up_channel(
			origin: OriginFor<T>,
			channel: ChannelId,
			amount: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_top_up(who, channel, amount)
		}

		/// The worker redeems the latest voucher of a channel: it is paid the increase of
		/// `cumulative_pay` (less the release's royalty, paid to the publisher), the increase of
		/// `cumulative_burn` is burned, and `root` (the Merkle root of the receipts of the
		/// requests the voucher's increase paid for) is committed for the dispute window. The
		/// burn must cover the mode's flat fee for each of those requests. Allowed until the
		/// close window of a closed channel ends.
		#[pallet::call_index(16)]
		pub fn redeem(
			origin: OriginFor<T>,
			channel: ChannelId,
			voucher: VoucherOf<T>,
			signature: T::ChannelSignature,
			root: H256,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_redeem(who, channel, voucher, signature, root)
		}

		/// The requester closes a channel: the worker may still redeem for `ChannelCloseWindow`
		/// blocks, then `finish_close` returns the rest of the deposit.
		#[pallet::call_index(17)]
		pub fn close_channel(origin: OriginFor<T>, channel: ChannelId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_close(who, channel)
		}

		/// Ends a closed channel once its close window and its batches' dispute windows have
		/// passed: the rest of the deposit goes back to the requester. Anyone may call.
		#[pallet::call_index(18)]
		pub fn finish_close(origin: OriginFor<T>, channel: ChannelId) -> DispatchResult {
			ensure_signed(origin)?;
			Self::do_finish_close(channel)
		}

		/// Sets the HTTP endpoint of the caller's worker for the direct path (`http://` or
		/// `https://`, printable ASCII, at most `MaxEndpointLen` bytes); empty removes it.
		#[pallet::call_index(19)]
		pub fn set_endpoint(
			origin: OriginFor<T>,
			endpoint: BoundedVec<u8, T::MaxEndpointLen>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(Workers::<T>::contains_key(&who), Error::<T>::NotWorker);
			if endpoint.is_empty() {
				Endpoints::<T>::remove(&who);
			} else {
				ensure!(channels::valid_endpoint(&endpoint), Error::<T>::BadEndpoint);
				Endpoints::<T>::insert(&who, endpoint);
			}
			Self::deposit_event(Event::EndpointSet { worker: who });
			Ok(())
		}

		/// Challenges a receipt the worker of its channel signed: the request and response
		/// must hash to what it names, and its sequence number be in a batch committed within
		/// the dispute window. Holds `ChallengeBond` from the caller. The worker must open that
		/// exact receipt within `OpenDeadline` blocks (`open_receipt`), or it is slashed
		/// `ReceiptSlash`, of which the request's price repays the requester, and the bond is
		/// returned; if it does, the bond is burned.
		#[pallet::call_index(20)]
		#[pallet::weight(T::WeightInfo::challenge_receipt(request.len() as u32, response.len() as u32))]
		pub fn challenge_receipt(
			origin: OriginFor<T>,
			receipt: Receipt,
			signature: T::ChannelSignature,
			request: BoundedVec<u8, T::MaxInputLen>,
			response: BoundedVec<u8, T::MaxOutputLen>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_challenge(who, receipt, signature, &request, &response)
		}

		/// Opens a receipt drawn for audit or challenged: the receipt under the worker's
		/// signature, the request and response it names, the Merkle `proof` that it is in its
		/// committed batch and, on a TEE channel, the attested enclave key's signature of it.
		/// Closes the audit and the challenge of it. Anyone may send it; the worker does.
		#[pallet::call_index(21)]
		#[pallet::weight(
			T::WeightInfo::open_receipt(request.len() as u32, response.len() as u32)
				.saturating_add(T::Verifier::weight(VerificationMode::Tee, 0, 0, 0))
		)]
		pub fn open_receipt(
			origin: OriginFor<T>,
			receipt: Receipt,
			signature: T::ChannelSignature,
			enclave_signature: Option<[u8; 64]>,
			request: BoundedVec<u8, T::MaxInputLen>,
			response: BoundedVec<u8, T::MaxOutputLen>,
			proof: BoundedVec<H256, MaxProofLen>,
		) -> DispatchResult {
			ensure_signed(origin)?;
			Self::do_open_receipt(
				receipt,
				signature,
				enclave_signature,
				&request,
				&response,
				&proof,
			)
		}
	}
}

impl<T: Config> InferenceRequester<T::AccountId, BalanceOf<T>, BlockNumberFor<T>> for Pallet<T> {
	type MaxInputLen = T::MaxInputLen;

	fn request(
		requester: T::AccountId,
		release: ReleaseId,
		mode: VerificationMode,
		input: BoundedVec<u8, T::MaxInputLen>,
		max_fee: BalanceOf<T>,
		timeout: Option<BlockNumberFor<T>>,
	) -> Result<JobId, DispatchError> {
		Self::do_submit_job(requester, release, mode, input, max_fee, timeout)
	}
}

/// Registered workers (any status): who may attest an enclave.
pub struct RegisteredWorkers<T>(core::marker::PhantomData<T>);
impl<T: Config> polkadot_sdk::frame_support::traits::Contains<T::AccountId>
	for RegisteredWorkers<T>
{
	fn contains(who: &T::AccountId) -> bool {
		Workers::<T>::contains_key(who)
	}
}
