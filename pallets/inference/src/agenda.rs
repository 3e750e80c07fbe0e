//! The agenda (expiries and prunings per block, served in `on_initialize`) and the
//! verification queue (served in `on_idle`).

use crate::{pallet::*, types::*, weights::WeightInfo};
use opg_primitives::{JobId, VerificationMode};
use polkadot_sdk::{
	frame_support::{pallet_prelude::*, weights::WeightMeter},
	frame_system::{self, pallet_prelude::*},
	sp_runtime::traits::{Saturating, Zero},
};

impl<T: Config> Pallet<T> {
	pub(crate) fn schedule(at: BlockNumberFor<T>, job: JobId, item: AgendaItem) -> DispatchResult {
		Agenda::<T>::try_mutate(at, |entries| entries.try_push((job, item)))
			.map_err(|_| Error::<T>::AgendaFull)?;
		// Nothing was ever scheduled before the first entry: start the cursor there rather
		// than walking empty blocks from genesis (matters when the pallet joins a live chain).
		if AgendaCursor::<T>::get().is_zero() {
			AgendaCursor::<T>::put(frame_system::Pallet::<T>::block_number());
		}
		Ok(())
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
						T::WeightInfo::on_initialize_expire().saturating_add(T::Consumer::weight())
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

	pub(crate) fn enqueue(job: JobId) -> DispatchResult {
		let (head, tail) = (QueueHead::<T>::get(), QueueTail::<T>::get());
		ensure!(tail.saturating_sub(head) < T::MaxQueueLen::get() as u64, Error::<T>::QueueFull);
		VerificationQueue::<T>::insert(tail, job);
		QueueTail::<T>::put(tail.saturating_add(1));
		Ok(())
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
}
