//! The draw: which worker answers a job. A job is submitted in one block and drawn in a later
//! one, from randomness the runtime gives [`Pallet::note_randomness`] each block (the relay
//! chain's, read from the parachain's relay state proof), so neither the requester nor the
//! worker can know the outcome when the job is submitted. The pool is the release's workers
//! that can take the job; the requester's price cap and timeout may narrow it, but not below
//! `MinDrawCandidates` (checked at submission). The draw is stake-weighted.

use crate::{pallet::*, types::*, weights::WeightInfo};
use alloc::vec::Vec;
use opg_primitives::{chat::TokenBudget, JobId, ReleaseId, VerificationMode};
use pallet_model_hub::ModelRegistry;
use polkadot_sdk::{
	frame_support::{
		defensive,
		pallet_prelude::*,
		traits::{fungible::MutateHold, tokens::Precision, Defensive},
		weights::WeightMeter,
	},
	frame_system::{self, pallet_prelude::BlockNumberFor},
	sp_runtime::traits::{Saturating, UniqueSaturatedInto},
};

/// Workers with their records: what a draw chooses among.
type Candidates<T> = Vec<(<T as frame_system::Config>::AccountId, WorkerOf<T>)>;

impl<T: Config> Pallet<T> {
	/// The runtime's fresh randomness for this block, given after the inherents and before
	/// `on_poll` (under a relay chain: the relay parent's BABE VRF output and number). A round
	/// no higher than the last one is ignored: it brings nothing a pending job has not seen.
	pub fn note_randomness(round: u32, value: [u8; 32]) {
		if round > Randomness::<T>::get().0 {
			Randomness::<T>::put((round, value));
		}
	}

	/// Weight of one draw (or cancellation) in the worst case: a full pool.
	pub(crate) fn assign_weight() -> Weight {
		Self::draw_weight(T::MaxWorkersPerRelease::get())
	}

	/// Weight of one draw, or of the cancellation that may end it, from a pool of `workers`.
	fn draw_weight(workers: u32) -> Weight {
		let can_answer = VerificationMode::ALL
			.into_iter()
			.map(T::Verifier::can_answer_weight)
			.fold(Weight::zero(), |a, b| a.max(b));
		T::WeightInfo::assign_job(workers)
			.max(T::WeightInfo::cancel_job().saturating_add(T::Consumer::weight()))
			.saturating_add(can_answer.saturating_mul(workers.into()))
	}

	/// Draws workers for pending jobs in submission order, within `meter`: each job whose
	/// submission saw an older randomness round than the current one is drawn; a job that
	/// waited `MaxAssignmentDelay` blocks without one is cancelled. Stops at the first job
	/// that must still wait (those after it were submitted no earlier). A job another pallet
	/// queues in `on_initialize`, before this block's round arrives, is drawn in this block:
	/// its request was settled in an earlier block, before this relay parent was chosen.
	pub(crate) fn assign_pending(now: BlockNumberFor<T>, meter: &mut WeightMeter) {
		if meter.try_consume(T::WeightInfo::on_poll_base()).is_err() {
			return;
		}
		let (mut cursor, end) = (AssignCursor::<T>::get(), NextJobId::<T>::get());
		if cursor == end {
			return;
		}
		let (round, randomness) = Randomness::<T>::get();
		let start = cursor;
		// Room for the worst case is checked first; what the pool's size made it is charged.
		while cursor < end && meter.can_consume(Self::assign_weight()) {
			let Some(pending) = PendingJobs::<T>::get(cursor) else {
				defensive!("a job between the cursor and the next id is not pending");
				meter.consume(T::DbWeight::get().reads(1));
				cursor.saturating_inc();
				continue;
			};
			let workers = ReleaseWorkers::<T>::decode_len(pending.release).unwrap_or(0) as u32;
			if pending.round < round {
				Self::assign(cursor, pending, randomness, now);
			} else if now.saturating_sub(pending.submitted) >= T::MaxAssignmentDelay::get() {
				Self::cancel(cursor, pending, CancelReason::NoRandomness);
			} else {
				meter.consume(T::DbWeight::get().reads(2));
				break;
			}
			meter.consume(Self::draw_weight(workers));
			cursor.saturating_inc();
		}
		if cursor != start {
			AssignCursor::<T>::put(cursor);
		}
	}

	/// Draws the job's worker, or cancels the job if no worker can take it now. The pool's
	/// size was checked at submission; here any worker within the job's price and timeout
	/// will do (the pool may have changed, by no choice of the requester's).
	fn assign(job: JobId, pending: PendingJobOf<T>, randomness: [u8; 32], now: BlockNumberFor<T>) {
		let pool: Vec<_> = Self::able_workers(pending.release, pending.mode)
			.into_iter()
			.filter(|(_, w)| {
				Self::accepts(w, pending.mode, pending.max_fee, pending.timeout, pending.tokens)
			})
			.collect();
		let seed =
			polkadot_sdk::sp_crypto_hashing::blake2_256(&(b"opg/draw", job, randomness).encode());
		let Some((worker_id, mut worker)) = Self::pick_worker(pool, seed) else {
			return Self::cancel(job, pending, CancelReason::NoWorker);
		};
		// The pool holds workers below capacity, and the list is as long as the capacity.
		if WorkerJobs::<T>::try_mutate(&worker_id, |jobs| jobs.try_push(job)).is_err() {
			defensive!("a worker below capacity has a full job list");
			return Self::cancel(job, pending, CancelReason::NoWorker);
		}
		let price = Self::max_charge(&worker, pending.tokens);
		let tokens = pending.tokens.map(|budget| TokenTerms {
			base: worker.price,
			prices: worker.token_prices,
			budget,
		});
		let unused = pending.max_fee.saturating_sub(price);
		T::Currency::release(
			&HoldReason::JobEscrow.into(),
			&pending.requester,
			unused,
			Precision::Exact,
		)
		.defensive_unwrap_or_default();
		let deadline = now.saturating_add(pending.timeout);
		Self::schedule(Self::expiry_block(deadline), job, AgendaItem::Expire);
		worker.open_jobs = worker.open_jobs.saturating_add(1);
		Workers::<T>::insert(&worker_id, worker);
		PendingJobs::<T>::remove(job);
		let held = price.saturating_add(pending.verification_hold);
		Jobs::<T>::insert(
			job,
			Job {
				requester: pending.requester.clone(),
				worker: worker_id.clone(),
				release: pending.release,
				mode: pending.mode,
				input_hash: pending.input_hash,
				input_len: pending.input_len,
				price,
				verification_hold: pending.verification_hold,
				deadline,
				created: now,
				status: JobStatus::Assigned,
				ended: None,
				congestion_mark: CongestedBlocks::<T>::get(),
				tokens,
			},
		);
		Self::deposit_event(Event::JobAssigned {
			job,
			requester: pending.requester,
			worker: worker_id,
			release: pending.release,
			mode: pending.mode,
			price,
			held,
			deadline,
		});
	}

	/// Ends a pending job without a worker, refunded in full: neither cause is the
	/// requester's doing (the input was stored for the blocks the transaction fee paid).
	fn cancel(job: JobId, pending: PendingJobOf<T>, reason: CancelReason) {
		let refund = T::Currency::release(
			&HoldReason::JobEscrow.into(),
			&pending.requester,
			pending.max_fee.saturating_add(pending.verification_hold),
			Precision::Exact,
		)
		.defensive_unwrap_or_default();
		T::Models::job_closed(pending.release);
		if pending.mode == VerificationMode::Zk {
			OpenZkJobs::<T>::mutate(|n| *n = n.saturating_sub(1));
		}
		JobInputs::<T>::remove(job);
		PendingJobs::<T>::remove(job);
		Self::deposit_event(Event::JobCancelled { job, reason, refund });
		T::Consumer::on_job_finished(job, JobOutcome::Cancelled);
	}

	/// The workers a job is drawn from: those that can take it (active, serving the release
	/// in the mode with a usable key, stake and free capacity) whose price (for an LLM job:
	/// its most for the token `budget`) is within `max_fee` and whose minimum timeout is
	/// within `timeout`. The last two are the
	/// requester's choice; they may narrow the pool to no fewer than `MinDrawCandidates`
	/// workers (or all that can take the job, if fewer), so a requester cannot single out
	/// one worker among several.
	pub fn draw_pool(
		release: ReleaseId,
		mode: VerificationMode,
		max_fee: BalanceOf<T>,
		timeout: BlockNumberFor<T>,
		budget: Option<TokenBudget>,
	) -> Result<Candidates<T>, Error<T>> {
		let able = Self::able_workers(release, mode);
		ensure!(!able.is_empty(), Error::<T>::NoEligibleWorker);
		let needed = (able.len() as u32).min(T::MinDrawCandidates::get()) as usize;
		let pool: Vec<_> = able
			.into_iter()
			.filter(|(_, w)| Self::accepts(w, mode, max_fee, timeout, budget))
			.collect();
		ensure!(!pool.is_empty(), Error::<T>::NoEligibleWorker);
		ensure!(pool.len() >= needed, Error::<T>::PoolTooNarrow);
		Ok(pool)
	}

	/// Whether `worker` takes a job of `mode` at `max_fee` with `timeout` (and, for an LLM
	/// job, `budget`).
	fn accepts(
		worker: &WorkerOf<T>,
		mode: VerificationMode,
		max_fee: BalanceOf<T>,
		timeout: BlockNumberFor<T>,
		budget: Option<TokenBudget>,
	) -> bool {
		Self::max_charge(worker, budget) <= max_fee && worker.min_timeouts.of(mode) <= timeout
	}

	/// The lowest `max_fee` that [`Self::draw_pool`] accepts for a job with `timeout`, or
	/// `None` if no worker can take such a job.
	pub fn lowest_max_fee(
		release: ReleaseId,
		mode: VerificationMode,
		timeout: BlockNumberFor<T>,
		budget: Option<TokenBudget>,
	) -> Option<BalanceOf<T>> {
		let able = Self::able_workers(release, mode);
		let needed = (able.len() as u32).min(T::MinDrawCandidates::get()) as usize;
		let mut prices: Vec<_> = able
			.into_iter()
			.filter(|(_, w)| w.min_timeouts.of(mode) <= timeout)
			.map(|(_, w)| Self::max_charge(&w, budget))
			.collect();
		prices.sort();
		prices.get(needed.checked_sub(1)?).copied()
	}

	/// Workers that could take a job of `mode` on `release` now, whatever its price and
	/// timeout.
	fn able_workers(release: ReleaseId, mode: VerificationMode) -> Candidates<T> {
		let min_stake = T::MinWorkerStake::get();
		ReleaseWorkers::<T>::get(release)
			.into_iter()
			.filter_map(|who| Workers::<T>::get(&who).map(|w| (who, w)))
			.filter(|(who, w)| {
				w.status == WorkerStatus::Active &&
					w.modes.contains(mode) &&
					w.open_jobs < w.capacity &&
					w.stake >= min_stake &&
					T::Verifier::can_answer(who, mode)
			})
			.collect()
	}

	/// Stake-weighted draw with `seed`.
	pub(crate) fn pick_worker(
		candidates: Candidates<T>,
		seed: [u8; 32],
	) -> Option<(T::AccountId, WorkerOf<T>)> {
		let total: u128 = candidates
			.iter()
			.map(|(_, w)| UniqueSaturatedInto::<u128>::unique_saturated_into(w.stake))
			.fold(0u128, |a, b| a.saturating_add(b));
		if total == 0 {
			return None;
		}
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
}
