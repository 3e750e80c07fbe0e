//! The agenda (expiries and prunings per block, served in `on_initialize`) and the
//! verification queue (served in `on_idle`).
//!
//! The agenda is keyed by (block, job), so scheduling never fails for lack of room and an
//! entry whose job closed early is removed with the job, at a constant cost: a block's agenda
//! holds only work that is still due, and nobody can fill it with entries of jobs that ended.
//! It is served oldest block first within a weight budget per block ([`Config::AgendaWeight`]);
//! what does not fit carries over.
//!
//! The queue never refuses a result: a ZK job reserves its place when it is submitted
//! ([`OpenZkJobs`] counts the reservations, at most [`Config::MaxQueueLen`]), so a worker
//! cannot be slashed because the queue was full when its proof arrived.

use crate::{pallet::*, types::*, weights::WeightInfo};
use opg_primitives::{JobId, VerificationMode};
use polkadot_sdk::{
	frame_support::{pallet_prelude::*, weights::WeightMeter},
	frame_system::{self, pallet_prelude::*},
	sp_runtime::traits::{One, Saturating, Zero},
};

impl<T: Config> Pallet<T> {
	pub(crate) fn schedule(at: BlockNumberFor<T>, job: JobId, item: AgendaItem) {
		Agenda::<T>::insert(at, job, item);
		Self::start_agenda();
	}

	/// Starts the agenda's cursor at this block when the first entry (a job's or a dispute's)
	/// is scheduled, rather than walking empty blocks from genesis (matters when the pallet
	/// joins a live chain).
	pub(crate) fn start_agenda() {
		if AgendaCursor::<T>::get().is_zero() {
			AgendaCursor::<T>::put(frame_system::Pallet::<T>::block_number());
		}
	}

	/// The block a job's expiry is scheduled for: the result is accepted through the deadline
	/// block, expiry runs in the next one.
	pub(crate) fn expiry_block(deadline: BlockNumberFor<T>) -> BlockNumberFor<T> {
		deadline.saturating_add(One::one())
	}

	/// Weight of the costlier agenda entry.
	fn worst_entry() -> Weight {
		T::WeightInfo::on_initialize_expire()
			.saturating_add(T::Consumer::weight())
			.max(T::WeightInfo::on_initialize_prune())
			.max(T::WeightInfo::on_initialize_dispute())
	}

	/// Processes due agenda entries, oldest block first, while `meter` allows the costlier
	/// entry; what is left carries over to the next block.
	pub fn service_agenda(now: BlockNumberFor<T>, meter: &mut WeightMeter) {
		let mut cursor = AgendaCursor::<T>::get();
		'blocks: while cursor <= now &&
			meter.try_consume(T::WeightInfo::on_initialize_base()).is_ok()
		{
			// One entry at a time, first looked at and then taken: an empty block costs only
			// its visit, and entries not reached stay for the next block.
			while let Some(job) = Agenda::<T>::iter_key_prefix(cursor).next() {
				if !meter.can_consume(Self::worst_entry()) {
					break 'blocks;
				}
				let Some(item) = Agenda::<T>::take(cursor, job) else { break };
				meter.consume(match item {
					AgendaItem::Expire => {
						Self::process_expiry(job, now);
						T::WeightInfo::on_initialize_expire().saturating_add(T::Consumer::weight())
					},
					AgendaItem::Prune => {
						Self::prune(job);
						T::WeightInfo::on_initialize_prune()
					},
				});
			}
			while let Some(key) = DisputeAgenda::<T>::iter_key_prefix(cursor).next() {
				if !meter.can_consume(Self::worst_entry()) {
					break 'blocks;
				}
				DisputeAgenda::<T>::remove(cursor, key);
				Self::process_dispute_deadline(key);
				meter.consume(T::WeightInfo::on_initialize_dispute());
			}
			cursor.saturating_inc();
		}
		AgendaCursor::<T>::put(cursor);
	}

	/// A job's deadline has passed. Without full blocks in its time it expires and its worker
	/// is slashed. Full blocks (in which the answer may have found no room) move the deadline
	/// by as many blocks, up to `MaxJobTimeout` past the first one; when it can move no
	/// further the job expires without a slash.
	pub(crate) fn process_expiry(job: JobId, now: BlockNumberFor<T>) {
		let Some(mut record) = Jobs::<T>::get(job) else { return };
		// Only jobs still waiting for a result expire; submitted ones are in the queue.
		if record.status != JobStatus::Assigned {
			return;
		}
		let congestion = CongestedBlocks::<T>::get();
		let full = congestion.saturating_sub(record.congestion_mark);
		if full == 0 {
			return Self::expire(job, record, now, false);
		}
		let latest = record
			.created
			.saturating_add(T::MaxJobTimeout::get().saturating_mul(2u32.into()));
		let deadline = record.deadline.saturating_add(full.into()).min(latest);
		if deadline <= record.deadline {
			return Self::expire(job, record, now, true);
		}
		record.deadline = deadline;
		record.congestion_mark = congestion;
		Self::schedule(Self::expiry_block(deadline), job, AgendaItem::Expire);
		Jobs::<T>::insert(job, record);
		Self::deposit_event(Event::DeadlineExtended { job, deadline });
	}

	/// Whether this block is at least 90% full, by weight (all classes: answers are
	/// operational and may use the whole block) or by size: an answer submitted now may have
	/// found no room.
	pub(crate) fn block_is_congested() -> bool {
		let limits = <T as frame_system::Config>::BlockWeights::get();
		let used = frame_system::Pallet::<T>::block_weight().total();
		let max_len = *<T as frame_system::Config>::BlockLength::get()
			.max
			.get(DispatchClass::Operational);
		let len = frame_system::Pallet::<T>::block_size();
		let full = |used: u64, max: u64| max > 0 && used >= max / 10 * 9;
		full(used.ref_time(), limits.max_block.ref_time()) ||
			full(used.proof_size(), limits.max_block.proof_size()) ||
			full(len.into(), max_len.into())
	}

	/// Removes an ended job's records; `false` if the job is open or gone.
	pub(crate) fn prune(job: JobId) -> bool {
		if Jobs::<T>::get(job).is_none_or(|j| j.ended.is_none()) {
			return false;
		}
		Jobs::<T>::remove(job);
		JobResults::<T>::remove(job);
		JobInputs::<T>::remove(job);
		Self::deposit_event(Event::JobPruned { job });
		true
	}

	/// Queues a ZK result for verification. Never fails: its place was reserved when the job
	/// was submitted.
	pub(crate) fn enqueue(job: JobId) {
		let tail = QueueTail::<T>::get();
		VerificationQueue::<T>::insert(tail, job);
		QueuedAt::<T>::insert(job, tail);
		QueueTail::<T>::put(tail.saturating_add(1));
	}

	/// Takes a job's entry out of the queue (verified early by `verify_result`), leaving a gap
	/// that `on_idle` steps over.
	pub(crate) fn dequeue(job: JobId) {
		if let Some(at) = QueuedAt::<T>::take(job) {
			VerificationQueue::<T>::remove(at);
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
		while head < tail && meter.can_consume(worst) {
			match VerificationQueue::<T>::take(head) {
				// A gap left by `verify_result` costs a read, not a verification's budget.
				None => meter.consume(T::DbWeight::get().reads(1)),
				Some(job) => {
					meter.consume(worst);
					QueuedAt::<T>::remove(job);
					if let Some(record) = Jobs::<T>::get(job) {
						if record.status == JobStatus::Submitted {
							let valid = Self::verify(job, &record);
							Self::conclude(job, record, valid, now);
						}
					}
				},
			}
			head += 1;
		}
		QueueHead::<T>::put(head);
	}
}
