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
//! `submit_job` picks a worker (stake-weighted, pseudo-random from the job id and the parent
//! hash — a collator can influence the pick, so the draw is fair only against requesters) and
//! holds `price + max verification fee`. The worker calls `submit_result` (or `reject_job` for
//! input its model cannot take: full refund, no slash). A Vanilla result settles at once; a
//! result with evidence is stored and visible at once and verified later, from a bounded FIFO
//! queue in `on_idle` or by anyone calling `verify_result`. A valid result settles; an invalid
//! one refunds the requester in full and slashes the worker. A job with no result by its
//! deadline expires in `on_initialize`: full refund, worker slashed. Ended jobs are pruned after
//! `RetentionPeriod`. Per-block work is bounded; nothing iterates a user-growable map.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
pub mod runtime_api;
#[cfg(test)]
mod tests;
mod types;
pub mod weights;

pub use pallet::*;
pub use types::*;
pub use weights::WeightInfo;

use alloc::vec::Vec;
use opg_primitives::{payload_hash, JobId, ModeSet, ReleaseId, VerificationMode};
use pallet_model_hub::{InputError, ModelRegistry};
use polkadot_sdk::{
	frame_support::{
		self, defensive,
		pallet_prelude::*,
		traits::{
			fungible::{InspectHold, Mutate, MutateHold},
			tokens::{Fortitude, Precision, Restriction},
			Defensive,
		},
		weights::WeightMeter,
	},
	frame_system::{self, pallet_prelude::*},
	sp_core::H256,
	sp_runtime::{
		traits::{Bounded, One, Saturating, UniqueSaturatedInto, Zero},
		Permill,
	},
};

const LOG_TARGET: &str = "runtime::inference";

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
		/// Deadline of a job that names none, in blocks after submission.
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
		/// Most agenda entries (expiries, prunings) scheduled for one block.
		#[pallet::constant]
		type MaxAgendaPerBlock: Get<u32>;
		/// Most agenda entries processed in one `on_initialize`; the rest carry over.
		#[pallet::constant]
		type MaxAgendaServicedPerBlock: Get<u32>;
		/// Longest verification queue.
		#[pallet::constant]
		type MaxQueueLen: Get<u32>;

		/// Weights of calls and hooks.
		type WeightInfo: WeightInfo;

		/// Creates releases for the benchmarks.
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId>;
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

	/// Inputs of open jobs, answered or not (removed when the job ends).
	#[pallet::storage]
	pub type JobInputs<T: Config> =
		StorageMap<_, Twox64Concat, JobId, BoundedVec<u8, T::MaxInputLen>>;

	/// Results, visible from submission until the job is pruned.
	#[pallet::storage]
	pub type JobResults<T: Config> = StorageMap<_, Twox64Concat, JobId, JobResultOf<T>>;

	/// Per block: jobs to expire or prune then.
	#[pallet::storage]
	pub type Agenda<T: Config> = StorageMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		BoundedVec<(JobId, AgendaItem), T::MaxAgendaPerBlock>,
		ValueQuery,
	>;

	/// First block whose agenda may still hold entries.
	#[pallet::storage]
	pub type AgendaCursor<T: Config> = StorageValue<_, BlockNumberFor<T>, ValueQuery>;

	/// Verification queue: position of the next job to verify.
	#[pallet::storage]
	pub type QueueHead<T> = StorageValue<_, u64, ValueQuery>;

	/// Verification queue: position after the last job.
	#[pallet::storage]
	pub type QueueTail<T> = StorageValue<_, u64, ValueQuery>;

	/// Verification queue entries (FIFO between head and tail).
	#[pallet::storage]
	pub type VerificationQueue<T> = StorageMap<_, Twox64Concat, u64, JobId>;

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
		/// A job was submitted and assigned.
		JobSubmitted {
			job: JobId,
			requester: T::AccountId,
			worker: T::AccountId,
			release: ReleaseId,
			mode: VerificationMode,
			price: BalanceOf<T>,
			held: BalanceOf<T>,
			deadline: BlockNumberFor<T>,
		},
		/// A worker submitted a result (pending verification unless Vanilla).
		ResultSubmitted { job: JobId, worker: T::AccountId, output_hash: H256 },
		/// A job settled: worker paid, fee burned, remainder refunded.
		JobSettled {
			job: JobId,
			worker_payment: BalanceOf<T>,
			royalty: BalanceOf<T>,
			verification_fee: BalanceOf<T>,
			refund: BalanceOf<T>,
		},
		/// A result failed verification: requester refunded, worker slashed.
		JobFailed { job: JobId, refund: BalanceOf<T> },
		/// The worker rejected the job: requester refunded in full.
		JobRejected { job: JobId, reason: RejectReason, refund: BalanceOf<T> },
		/// The deadline passed without a result: requester refunded, worker slashed.
		JobExpired { job: JobId, refund: BalanceOf<T> },
		/// An ended job's records were removed.
		JobPruned { job: JobId },
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
		/// No active worker serves the release and mode at a price within `max_fee` with free
		/// capacity.
		NoEligibleWorker,
		/// The input does not match the release's input spec.
		InvalidInput,
		/// The output does not match the release's output spec.
		InvalidOutput,
		/// The deadline is outside `MinJobTimeout..=MaxJobTimeout`.
		BadTimeout,
		/// Not enough free balance for the stake or the escrow.
		InsufficientBalance,
		/// No job with this id.
		UnknownJob,
		/// The caller is not the job's worker.
		NotAssignedWorker,
		/// The job is not waiting for a result.
		NotAssigned,
		/// The job's deadline has passed.
		DeadlinePassed,
		/// The evidence is of another mode than the job's.
		EvidenceMismatch,
		/// The job has no result waiting for verification.
		NotPendingVerification,
		/// The verification queue is full; try again later.
		QueueFull,
		/// Too many entries scheduled for the deadline's block; choose another deadline.
		AgendaFull,
		/// A counter overflowed.
		Overflow,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			Self::service_agenda(now, T::MaxAgendaServicedPerBlock::get())
		}

		fn on_idle(_now: BlockNumberFor<T>, remaining: Weight) -> Weight {
			let mut meter = WeightMeter::with_limit(remaining);
			Self::service_queue(&mut meter);
			meter.consumed()
		}

		fn integrity_test() {
			assert!(T::MaxAgendaServicedPerBlock::get() > 0, "agenda must make progress");
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
			Self::leave_pools(&who, &worker.releases);
			Self::join_pools(&who, &releases)?;
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

		/// Stops taking new jobs; open jobs must still be answered.
		#[pallet::call_index(3)]
		pub fn pause_worker(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Workers::<T>::try_mutate(&who, |maybe| -> DispatchResult {
				let worker = maybe.as_mut().ok_or(Error::<T>::NotWorker)?;
				ensure!(worker.status == WorkerStatus::Active, Error::<T>::WorkerNotActive);
				worker.status = WorkerStatus::Paused;
				Ok(())
			})?;
			Self::deposit_event(Event::WorkerPaused { worker: who });
			Ok(())
		}

		/// Takes jobs again (needs at least `MinWorkerStake`).
		#[pallet::call_index(4)]
		pub fn resume_worker(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Workers::<T>::try_mutate(&who, |maybe| -> DispatchResult {
				let worker = maybe.as_mut().ok_or(Error::<T>::NotWorker)?;
				ensure!(worker.status == WorkerStatus::Paused, Error::<T>::WorkerNotPaused);
				ensure!(worker.stake >= T::MinWorkerStake::get(), Error::<T>::StakeTooLow);
				worker.status = WorkerStatus::Active;
				Ok(())
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
			Self::leave_pools(&who, &worker.releases);
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
			T::Currency::release(
				&HoldReason::WorkerStake.into(),
				&who,
				worker.stake,
				Precision::Exact,
			)?;
			Workers::<T>::remove(&who);
			WorkerJobs::<T>::remove(&who);
			Self::deposit_event(Event::WorkerRemoved { worker: who, stake: worker.stake });
			Ok(())
		}

		/// Submits a job: `input` (canonical tensors matching the release's input spec) for
		/// `release`, answered in `mode`, by a worker whose price is at most `max_fee`, before
		/// `timeout` blocks (default `DefaultJobTimeout`). Holds the worker's price plus the
		/// maximum verification fee.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::submit_job(input.len() as u32, T::MaxWorkersPerRelease::get()))]
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
		/// others are verified from the queue.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::submit_result(output.len() as u32, evidence.len() as u32)
			.saturating_add(T::Verifier::weight(
				VerificationMode::Tee,
				T::MaxInputLen::get(),
				output.len() as u32,
				evidence.len() as u32,
			))
			.saturating_add(T::WeightInfo::settle())
			.saturating_add(T::Consumer::weight()))]
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
			T::Models::check_output(record.release, &output)
				.map_err(|_| Error::<T>::InvalidOutput)?;

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
				VerificationMode::Zk => {
					Self::enqueue(job)?;
					Jobs::<T>::insert(job, record);
					stored
				},
			};
			Ok(Some(actual).into())
		}

		/// The assigned worker declines the job (input its model cannot take, model not
		/// available, ...): the requester is refunded in full and the worker is not slashed.
		/// Rejections are counted per worker.
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::reject_job().saturating_add(T::Consumer::weight()))]
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
			let refund = Self::refund(&record);
			record.status = JobStatus::Rejected { reason };
			Self::close(job, record, now, |w| w.rejected = w.rejected.saturating_add(1));
			Self::deposit_event(Event::JobRejected { job, reason, refund });
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
			let verdict = Self::verify(job, &record);
			Self::conclude(job, record, verdict, frame_system::Pallet::<T>::block_number());
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		fn check_offer(releases: &[ReleaseId], modes: ModeSet, capacity: u32) -> DispatchResult {
			ensure!(!releases.is_empty(), Error::<T>::BadReleaseList);
			ensure!(modes.is_valid(), Error::<T>::InvalidModes);
			ensure!(
				capacity > 0 && capacity <= T::MaxWorkerCapacity::get(),
				Error::<T>::BadCapacity
			);
			for mode in VerificationMode::ALL {
				if modes.contains(mode) {
					ensure!(T::Verifier::supports(mode), Error::<T>::ModeUnavailable);
				}
			}
			for (i, release) in releases.iter().enumerate() {
				ensure!(!releases[..i].contains(release), Error::<T>::DuplicateRelease);
				let info = T::Models::release_info(*release).ok_or(Error::<T>::UnknownRelease)?;
				ensure!(info.active, Error::<T>::UnknownRelease);
				// A worker serves a release in the modes both support; it must share one.
				ensure!(info.modes.0 & modes.0 != 0, Error::<T>::ModeNotSupported);
			}
			Ok(())
		}

		fn join_pools(who: &T::AccountId, releases: &[ReleaseId]) -> DispatchResult {
			for release in releases {
				ReleaseWorkers::<T>::try_mutate(release, |pool| {
					pool.try_push(who.clone()).map_err(|_| Error::<T>::ReleaseFull)
				})?;
			}
			Ok(())
		}

		fn leave_pools(who: &T::AccountId, releases: &[ReleaseId]) {
			for release in releases {
				ReleaseWorkers::<T>::mutate_exists(release, |maybe| {
					if let Some(pool) = maybe {
						pool.retain(|w| w != who);
						if pool.is_empty() {
							*maybe = None;
						}
					}
				});
			}
		}

		/// Verification fee of a job whose data (input, output, evidence) has `bytes` bytes.
		pub fn verification_fee(mode: VerificationMode, bytes: u32) -> BalanceOf<T> {
			let fees = T::VerificationFees::get();
			fees.flat(mode).saturating_add(fees.per_byte.saturating_mul(bytes.into()))
		}

		/// Largest verification fee a job with `input_len` bytes of input can owe.
		pub fn max_verification_fee(mode: VerificationMode, input_len: u32) -> BalanceOf<T> {
			let evidence =
				if mode == VerificationMode::Vanilla { 0 } else { T::MaxEvidenceLen::get() };
			Self::verification_fee(
				mode,
				input_len.saturating_add(T::MaxOutputLen::get()).saturating_add(evidence),
			)
		}

		/// Workers that could take a job now, with their stakes.
		pub fn eligible_workers(
			release: ReleaseId,
			mode: VerificationMode,
			max_fee: BalanceOf<T>,
		) -> Vec<(T::AccountId, WorkerOf<T>)> {
			let min_stake = T::MinWorkerStake::get();
			ReleaseWorkers::<T>::get(release)
				.into_iter()
				.filter_map(|who| Workers::<T>::get(&who).map(|w| (who, w)))
				.filter(|(_, w)| {
					w.status == WorkerStatus::Active &&
						w.modes.contains(mode) &&
						w.open_jobs < w.capacity &&
						w.price <= max_fee && w.stake >= min_stake
				})
				.collect()
		}

		/// Stake-weighted draw from the job id and the parent hash.
		fn pick_worker(
			candidates: Vec<(T::AccountId, WorkerOf<T>)>,
			job: JobId,
		) -> Option<(T::AccountId, WorkerOf<T>)> {
			let total: u128 = candidates
				.iter()
				.map(|(_, w)| UniqueSaturatedInto::<u128>::unique_saturated_into(w.stake))
				.fold(0u128, |a, b| a.saturating_add(b));
			if total == 0 {
				return None;
			}
			let seed = polkadot_sdk::sp_crypto_hashing::blake2_256(
				&(b"opg/assign", job, frame_system::Pallet::<T>::parent_hash()).encode(),
			);
			let mut point = u128::from_le_bytes(seed[..16].try_into().expect("16 bytes")) % total;
			for (who, w) in candidates {
				let stake: u128 = w.stake.unique_saturated_into();
				if point < stake {
					return Some((who, w));
				}
				point -= stake;
			}
			None
		}

		/// `submit_job` for a given requester: what other pallets call through
		/// [`InferenceRequester`].
		pub fn do_submit_job(
			requester: T::AccountId,
			release: ReleaseId,
			mode: VerificationMode,
			input: BoundedVec<u8, T::MaxInputLen>,
			max_fee: BalanceOf<T>,
			timeout: Option<BlockNumberFor<T>>,
		) -> Result<JobId, DispatchError> {
			let timeout = timeout.unwrap_or_else(T::DefaultJobTimeout::get);
			ensure!(
				timeout >= T::MinJobTimeout::get() && timeout <= T::MaxJobTimeout::get(),
				Error::<T>::BadTimeout
			);
			let info = T::Models::release_info(release).ok_or(Error::<T>::UnknownRelease)?;
			ensure!(info.active, Error::<T>::UnknownRelease);
			ensure!(info.modes.contains(mode), Error::<T>::ModeNotSupported);
			ensure!(T::Verifier::supports(mode), Error::<T>::ModeUnavailable);
			T::Models::check_input(release, &input).map_err(|e| match e {
				InputError::UnknownRelease => Error::<T>::UnknownRelease,
				InputError::Tensor(_) => Error::<T>::InvalidInput,
			})?;

			let job = NextJobId::<T>::get();
			let next = job.checked_add(1).ok_or(Error::<T>::Overflow)?;
			let (worker_id, mut worker) =
				Self::pick_worker(Self::eligible_workers(release, mode, max_fee), job)
					.ok_or(Error::<T>::NoEligibleWorker)?;

			let now = frame_system::Pallet::<T>::block_number();
			let deadline = now.saturating_add(timeout);
			let price = worker.price;
			let verification_hold = Self::max_verification_fee(mode, input.len() as u32);
			let held = price.saturating_add(verification_hold);

			T::Currency::hold(&HoldReason::JobEscrow.into(), &requester, held)
				.map_err(|_| Error::<T>::InsufficientBalance)?;
			// The result is accepted through the deadline block; expiry runs in the next one.
			Self::schedule(deadline.saturating_add(One::one()), job, AgendaItem::Expire)?;
			WorkerJobs::<T>::try_mutate(&worker_id, |jobs| jobs.try_push(job))
				.map_err(|_| Error::<T>::Overflow)?;
			T::Models::job_opened(release)?;
			worker.open_jobs = worker.open_jobs.saturating_add(1);
			Workers::<T>::insert(&worker_id, worker);

			Jobs::<T>::insert(
				job,
				Job {
					requester: requester.clone(),
					worker: worker_id.clone(),
					release,
					mode,
					input_hash: payload_hash(&input),
					input_len: input.len() as u32,
					price,
					verification_hold,
					deadline,
					created: now,
					status: JobStatus::Assigned,
					ended: None,
				},
			);
			JobInputs::<T>::insert(job, input);
			NextJobId::<T>::put(next);
			Self::deposit_event(Event::JobSubmitted {
				job,
				requester,
				worker: worker_id,
				release,
				mode,
				price,
				held,
				deadline,
			});
			Ok(job)
		}

		pub(crate) fn schedule(
			at: BlockNumberFor<T>,
			job: JobId,
			item: AgendaItem,
		) -> DispatchResult {
			Agenda::<T>::try_mutate(at, |entries| entries.try_push((job, item)))
				.map_err(|_| Error::<T>::AgendaFull)?;
			// Nothing was ever scheduled before the first entry: start the cursor there rather
			// than walking empty blocks from genesis (matters when the pallet joins a live chain).
			if AgendaCursor::<T>::get().is_zero() {
				AgendaCursor::<T>::put(frame_system::Pallet::<T>::block_number());
			}
			Ok(())
		}

		pub(crate) fn enqueue(job: JobId) -> DispatchResult {
			let (head, tail) = (QueueHead::<T>::get(), QueueTail::<T>::get());
			ensure!(
				tail.saturating_sub(head) < T::MaxQueueLen::get() as u64,
				Error::<T>::QueueFull
			);
			VerificationQueue::<T>::insert(tail, job);
			QueueTail::<T>::put(tail.saturating_add(1));
			Ok(())
		}

		/// Checks a submitted result's evidence.
		fn verify(job: JobId, record: &JobOf<T>) -> bool {
			let Some(result) = JobResults::<T>::get(job) else {
				defensive!("submitted job without result");
				return false;
			};
			let Some(info) = T::Models::release_info(record.release) else {
				defensive!("open job of a removed release");
				return false;
			};
			// Only a ZK statement needs the input: a TEE check in `submit_result` would otherwise
			// read up to `MaxInputLen` bytes into the proof that its weight does not count.
			let input = match result.evidence {
				Evidence::ZkProof(_) => JobInputs::<T>::get(job),
				_ => None,
			};
			let context = VerificationContext {
				job,
				worker: &record.worker,
				input: input.as_ref().map(|i| &i[..]),
				artifact: info.artifact,
				zk_verifying_key: info.zk_verifying_key,
				input_hash: record.input_hash,
				output: &result.output,
				output_hash: result.output_hash,
			};
			match &result.evidence {
				Evidence::None => record.mode == VerificationMode::Vanilla,
				evidence => T::Verifier::verify(&context, evidence).is_ok(),
			}
		}

		fn conclude(job: JobId, record: JobOf<T>, valid: bool, now: BlockNumberFor<T>) {
			if valid {
				Self::settle(job, record, now)
			} else {
				Self::fail(job, record, now)
			}
		}

		/// Pays the worker and publisher, burns the verification fee, refunds the rest.
		pub(crate) fn settle(job: JobId, mut record: JobOf<T>, now: BlockNumberFor<T>) {
			let escrow: T::RuntimeHoldReason = HoldReason::JobEscrow.into();
			// One read of the result serves the fee (sizes) and the consumer (output).
			let (output, evidence_len) = JobResults::<T>::get(job)
				.map(|r| (r.output.into_inner(), r.evidence.len() as u32))
				.unwrap_or_default();
			let output_len = output.len() as u32;
			let bytes = record.input_len.saturating_add(output_len).saturating_add(evidence_len);
			let fee = Self::verification_fee(record.mode, bytes).min(record.verification_hold);
			let royalty_share = T::Models::release_info(record.release)
				.map(|i| (i.publisher, i.royalty))
				.unwrap_or((record.worker.clone(), Permill::zero()));
			let royalty = royalty_share.1.mul_floor(record.price);
			let payment = record.price.saturating_sub(royalty);

			let pay = |to: &T::AccountId, amount: BalanceOf<T>| -> BalanceOf<T> {
				if amount.is_zero() || *to == record.requester {
					return Zero::zero();
				}
				T::Currency::transfer_on_hold(
					&escrow,
					&record.requester,
					to,
					amount,
					Precision::Exact,
					Restriction::Free,
					Fortitude::Force,
				)
				.defensive_unwrap_or_default()
			};
			let paid_worker = pay(&record.worker, payment);
			// A royalty the publisher cannot receive (e.g. below the existential deposit on a
			// reaped account) goes to the worker rather than being lost.
			let paid_royalty = if royalty_share.0 == record.worker {
				pay(&record.worker, royalty)
			} else {
				match T::Currency::transfer_on_hold(
					&escrow,
					&record.requester,
					&royalty_share.0,
					royalty,
					Precision::Exact,
					Restriction::Free,
					Fortitude::Force,
				) {
					Ok(v) => v,
					Err(_) => pay(&record.worker, royalty),
				}
			};
			let burned = T::Currency::burn_held(
				&escrow,
				&record.requester,
				fee,
				Precision::Exact,
				Fortitude::Force,
			)
			.defensive_unwrap_or_default();
			Self::note_burn(BurnCause::VerificationFee, burned);
			let remaining = record
				.price
				.saturating_add(record.verification_hold)
				.saturating_sub(paid_worker)
				.saturating_sub(paid_royalty)
				.saturating_sub(burned);
			let refund =
				T::Currency::release(&escrow, &record.requester, remaining, Precision::Exact)
					.defensive_unwrap_or_default();

			record.status = JobStatus::Settled { verification_fee: burned };
			Self::close(job, record, now, |w| w.completed = w.completed.saturating_add(1));
			Self::deposit_event(Event::JobSettled {
				job,
				worker_payment: paid_worker,
				royalty: paid_royalty,
				verification_fee: burned,
				refund,
			});
			T::Consumer::on_job_finished(job, JobOutcome::Settled { output: &output });
		}

		/// Invalid evidence: full refund, worker slashed.
		pub(crate) fn fail(job: JobId, mut record: JobOf<T>, now: BlockNumberFor<T>) {
			let refund = Self::refund(&record);
			Self::slash(&record.worker, job, T::SlashOnInvalidProof::get());
			record.status = JobStatus::Failed;
			Self::close(job, record, now, |w| w.slashed = w.slashed.saturating_add(1));
			Self::deposit_event(Event::JobFailed { job, refund });
			T::Consumer::on_job_finished(job, JobOutcome::Failed);
		}

		/// Deadline passed without a result.
		fn expire(job: JobId, mut record: JobOf<T>, now: BlockNumberFor<T>) {
			let refund = Self::refund(&record);
			Self::slash(&record.worker, job, T::SlashOnTimeout::get());
			record.status = JobStatus::Expired;
			Self::close(job, record, now, |w| w.slashed = w.slashed.saturating_add(1));
			Self::deposit_event(Event::JobExpired { job, refund });
			T::Consumer::on_job_finished(job, JobOutcome::Expired);
		}

		fn refund(record: &JobOf<T>) -> BalanceOf<T> {
			T::Currency::release(
				&HoldReason::JobEscrow.into(),
				&record.requester,
				record.price.saturating_add(record.verification_hold),
				Precision::Exact,
			)
			.defensive_unwrap_or_default()
		}

		/// Burns up to `amount` of a worker's stake; pauses it below the minimum.
		fn slash(who: &T::AccountId, job: JobId, amount: BalanceOf<T>) {
			let Some(mut worker) = Workers::<T>::get(who) else { return };
			let amount = amount.min(worker.stake);
			let burned = T::Currency::burn_held(
				&HoldReason::WorkerStake.into(),
				who,
				amount,
				Precision::Exact,
				Fortitude::Force,
			)
			.defensive_unwrap_or_default();
			worker.stake = worker.stake.saturating_sub(burned);
			let paused =
				worker.status == WorkerStatus::Active && worker.stake < T::MinWorkerStake::get();
			if paused {
				worker.status = WorkerStatus::Paused;
			}
			Workers::<T>::insert(who, worker);
			Self::note_burn(BurnCause::Slash, burned);
			Self::deposit_event(Event::WorkerSlashed { worker: who.clone(), job, amount: burned });
			if paused {
				Self::deposit_event(Event::WorkerPaused { worker: who.clone() });
			}
		}

		fn note_burn(cause: BurnCause, amount: BalanceOf<T>) {
			if amount.is_zero() {
				return;
			}
			TotalBurned::<T>::mutate(|t| *t = t.saturating_add(amount));
			BurnedByCause::<T>::mutate(cause, |t| *t = t.saturating_add(amount));
			Self::deposit_event(Event::Burned { cause, amount });
		}

		/// Ends a job: frees the worker's slot, tells the hub, schedules pruning.
		fn close(
			job: JobId,
			mut record: JobOf<T>,
			now: BlockNumberFor<T>,
			count: impl FnOnce(&mut WorkerOf<T>),
		) {
			Workers::<T>::mutate(&record.worker, |maybe| {
				if let Some(w) = maybe {
					w.open_jobs = w.open_jobs.saturating_sub(1);
					count(w);
				}
			});
			WorkerJobs::<T>::mutate(&record.worker, |jobs| jobs.retain(|j| *j != job));
			T::Models::job_closed(record.release);
			JobInputs::<T>::remove(job);
			record.ended = Some(now);
			// Pruning is best effort: if the block's agenda is full the next one takes it.
			let mut at = now.saturating_add(T::RetentionPeriod::get());
			let scheduled = (0..8).any(|_| {
				let ok = Self::schedule(at, job, AgendaItem::Prune).is_ok();
				at = at.saturating_add(One::one());
				ok
			});
			if !scheduled {
				log::error!(target: LOG_TARGET, "job {job}: no agenda room to schedule pruning");
			}
			Jobs::<T>::insert(job, record);
		}

		/// Processes due agenda entries, oldest block first. `limit` bounds the work: each
		/// block visited and each entry processed takes one unit; what is left carries over.
		pub fn service_agenda(now: BlockNumberFor<T>, limit: u32) -> Weight {
			let mut weight = Weight::zero();
			let mut budget = limit;
			let mut cursor = AgendaCursor::<T>::get();
			while cursor <= now && budget > 0 {
				budget -= 1;
				weight.saturating_accrue(T::WeightInfo::on_initialize_base());
				let mut entries = Agenda::<T>::take(cursor).into_inner();
				let take = (budget as usize).min(entries.len());
				let rest =
					BoundedVec::<_, T::MaxAgendaPerBlock>::truncate_from(entries.split_off(take));
				for (job, item) in entries {
					budget -= 1;
					weight.saturating_accrue(match item {
						AgendaItem::Expire => {
							Self::process_expiry(job, now);
							T::WeightInfo::on_initialize_expire()
								.saturating_add(T::Consumer::weight())
						},
						AgendaItem::Prune => {
							Self::prune(job);
							T::WeightInfo::on_initialize_prune()
						},
					});
				}
				if !rest.is_empty() {
					// Budget spent mid-block: keep the rest for the next block.
					Agenda::<T>::insert(cursor, rest);
					break;
				}
				cursor.saturating_inc();
			}
			AgendaCursor::<T>::put(cursor);
			weight
		}

		pub(crate) fn process_expiry(job: JobId, now: BlockNumberFor<T>) {
			if let Some(record) = Jobs::<T>::get(job) {
				// Only jobs still waiting for a result expire; submitted ones are in the queue.
				if record.status == JobStatus::Assigned {
					Self::expire(job, record, now);
				}
			}
		}

		pub(crate) fn prune(job: JobId) {
			if Jobs::<T>::get(job).is_some_and(|j| j.ended.is_some()) {
				Jobs::<T>::remove(job);
				JobResults::<T>::remove(job);
				JobInputs::<T>::remove(job);
				Self::deposit_event(Event::JobPruned { job });
			}
		}

		/// Verifies queued results while the meter allows a worst-case verification.
		pub fn service_queue(meter: &mut WeightMeter) {
			let worst = T::WeightInfo::on_idle_verify()
				.saturating_add(T::WeightInfo::verify_result())
				.saturating_add(T::WeightInfo::settle())
				.saturating_add(T::Verifier::weight(
					VerificationMode::Zk,
					T::MaxInputLen::get(),
					T::MaxOutputLen::get(),
					T::MaxEvidenceLen::get(),
				))
				.saturating_add(T::Consumer::weight());
			if !meter.can_consume(T::WeightInfo::on_idle_base()) {
				return;
			}
			meter.consume(T::WeightInfo::on_idle_base());
			let now = frame_system::Pallet::<T>::block_number();
			let mut head = QueueHead::<T>::get();
			let tail = QueueTail::<T>::get();
			while head < tail && meter.try_consume(worst).is_ok() {
				if let Some(job) = VerificationQueue::<T>::take(head) {
					// Entries whose job was verified by `verify_result` are stale: skip them.
					if let Some(record) = Jobs::<T>::get(job) {
						if record.status == JobStatus::Submitted {
							let valid = Self::verify(job, &record);
							Self::conclude(job, record, valid, now);
						}
					}
				}
				head += 1;
			}
			QueueHead::<T>::put(head);
		}

		/// A job, its input (while open) and its result (once submitted): `InferenceApi::job`.
		pub fn job_view(id: JobId) -> Option<(JobOf<T>, Option<Vec<u8>>, Option<JobResultOf<T>>)> {
			let job = Jobs::<T>::get(id)?;
			Some((job, JobInputs::<T>::get(id).map(|i| i.into_inner()), JobResults::<T>::get(id)))
		}

		/// Open jobs of `worker` (at most `MaxWorkerCapacity`).
		pub fn open_jobs(worker: &T::AccountId) -> Vec<JobId> {
			WorkerJobs::<T>::get(worker).into_inner()
		}

		/// What the market has burned, in total and by cause.
		pub fn burn_totals() -> BurnTotals<BalanceOf<T>> {
			BurnTotals {
				total: TotalBurned::<T>::get(),
				verification_fees: BurnedByCause::<T>::get(BurnCause::VerificationFee),
				slashes: BurnedByCause::<T>::get(BurnCause::Slash),
			}
		}

		/// Fee quote: the lowest eligible price and the maximum verification fee.
		pub fn quote(
			release: ReleaseId,
			mode: VerificationMode,
			input_len: u32,
		) -> Option<FeeQuote<BalanceOf<T>>> {
			let price = Self::eligible_workers(release, mode, BalanceOf::<T>::max_value())
				.into_iter()
				.map(|(_, w)| w.price)
				.min()?;
			let verification_fee = Self::max_verification_fee(mode, input_len);
			Some(FeeQuote {
				price,
				verification_fee,
				total: price.saturating_add(verification_fee),
			})
		}

		/// Checks that holds equal the records, counters agree and queues are consistent.
		#[cfg(any(feature = "try-runtime", feature = "std", test))]
		pub fn do_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
			use alloc::collections::btree_map::BTreeMap;
			let mut escrow: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
			let mut open: BTreeMap<T::AccountId, u32> = BTreeMap::new();
			let next = NextJobId::<T>::get();
			for (id, job) in Jobs::<T>::iter() {
				ensure!(id < next, "job id beyond the counter");
				if job.ended.is_none() {
					let e = escrow.entry(job.requester.clone()).or_default();
					*e = e.saturating_add(job.price.saturating_add(job.verification_hold));
					*open.entry(job.worker.clone()).or_default() += 1;
					ensure!(
						WorkerJobs::<T>::get(&job.worker).contains(&id),
						"open job missing from its worker's list"
					);
				}
				ensure!(
					job.ended.is_none() == JobInputs::<T>::contains_key(id),
					"input kept exactly while the job is open"
				);
				let answered = matches!(
					job.status,
					JobStatus::Submitted | JobStatus::Settled { .. } | JobStatus::Failed
				);
				ensure!(
					answered == JobResults::<T>::contains_key(id),
					"result stored exactly for answered jobs"
				);
				ensure!(
					matches!(job.status, JobStatus::Assigned | JobStatus::Submitted) ==
						job.ended.is_none(),
					"only assigned and submitted jobs are open"
				);
			}
			for (who, amount) in escrow.iter() {
				ensure!(
					T::Currency::balance_on_hold(&HoldReason::JobEscrow.into(), who) == *amount,
					"escrow hold differs from open jobs"
				);
			}
			for (who, worker) in Workers::<T>::iter() {
				ensure!(
					T::Currency::balance_on_hold(&HoldReason::WorkerStake.into(), &who) ==
						worker.stake,
					"stake hold differs from the worker record"
				);
				let n = open.get(&who).copied().unwrap_or(0);
				ensure!(worker.open_jobs == n, "open job count off");
				ensure!(WorkerJobs::<T>::get(&who).len() as u32 == n, "worker job list off");
				for release in worker.releases.iter() {
					ensure!(
						worker.is_unbonding() || ReleaseWorkers::<T>::get(release).contains(&who),
						"active worker missing from a release pool"
					);
				}
			}
			for (release, pool) in ReleaseWorkers::<T>::iter() {
				for who in pool.iter() {
					let w = Workers::<T>::get(who).ok_or("pool lists a non-worker")?;
					ensure!(w.releases.contains(&release), "pool lists a worker not serving it");
					ensure!(!w.is_unbonding(), "unbonding worker still in a pool");
				}
			}
			let (head, tail) = (QueueHead::<T>::get(), QueueTail::<T>::get());
			ensure!(head <= tail, "queue head past tail");
			ensure!(tail - head <= T::MaxQueueLen::get() as u64, "queue over its bound");
			ensure!(
				VerificationQueue::<T>::iter().count() as u64 == tail - head,
				"queue entries outside head..tail"
			);
			let by_cause = BurnedByCause::<T>::iter_values()
				.fold(BalanceOf::<T>::zero(), |a, b| a.saturating_add(b));
			ensure!(by_cause == TotalBurned::<T>::get(), "burn split differs from the total");
			Ok(())
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
