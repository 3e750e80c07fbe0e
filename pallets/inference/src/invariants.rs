//! The market's invariants (`try_state`, and the tests' after-check).

use crate::{pallet::*, types::*};
use opg_primitives::VerificationMode;
use polkadot_sdk::{
	frame_support::{pallet_prelude::*, traits::fungible::InspectHold},
	sp_core::H256,
	sp_runtime::traits::{Saturating, Zero},
};

impl<T: Config> Pallet<T> {
	/// Checks that holds equal the records, counters agree and queues are consistent.
	pub fn do_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
		use alloc::collections::btree_map::BTreeMap;
		let mut escrow: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		let mut open: BTreeMap<T::AccountId, u32> = BTreeMap::new();
		let (mut open_zk, mut queued) = (0u32, 0u64);
		let next = NextJobId::<T>::get();
		for (id, job) in Jobs::<T>::iter() {
			ensure!(id < next, "job id beyond the counter");
			if job.ended.is_none() && job.mode == VerificationMode::Zk {
				open_zk += 1;
			}
			if job.status == JobStatus::Submitted && job.mode == VerificationMode::Zk {
				queued += 1;
				ensure!(QueuedAt::<T>::contains_key(id), "pending proof not in the queue");
			}
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
		let cursor = AssignCursor::<T>::get();
		ensure!(cursor <= next, "draw cursor beyond the next job id");
		let mut pending = 0u64;
		for (id, job) in PendingJobs::<T>::iter() {
			ensure!(cursor <= id && id < next, "pending job outside cursor..next");
			ensure!(!Jobs::<T>::contains_key(id), "a job both pending and assigned");
			ensure!(JobInputs::<T>::contains_key(id), "pending job without its input");
			let e = escrow.entry(job.requester.clone()).or_default();
			*e = e.saturating_add(job.max_fee.saturating_add(job.verification_hold));
			if job.mode == VerificationMode::Zk {
				open_zk += 1;
			}
			pending += 1;
		}
		ensure!(pending == next - cursor, "a job between cursor and next is not pending");
		ensure!(pending <= T::MaxPendingJobs::get().into(), "more pending jobs than allowed");
		for id in JobInputs::<T>::iter_keys() {
			ensure!(
				PendingJobs::<T>::contains_key(id) ||
					Jobs::<T>::get(id).is_some_and(|j| j.ended.is_none()),
				"input of a job neither pending nor open"
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
				T::Currency::balance_on_hold(&HoldReason::WorkerStake.into(), &who) == worker.stake,
				"stake hold differs from the worker record"
			);
			let n = open.get(&who).copied().unwrap_or(0);
			ensure!(worker.open_jobs == n, "open job count off");
			ensure!(WorkerJobs::<T>::get(&who).len() as u32 == n, "worker job list off");
			for release in worker.releases.iter() {
				ensure!(
					(worker.status == WorkerStatus::Active) ==
						ReleaseWorkers::<T>::get(release).contains(&who),
					"pools hold exactly the active workers serving the release"
				);
			}
		}
		for (release, pool) in ReleaseWorkers::<T>::iter() {
			for who in pool.iter() {
				let w = Workers::<T>::get(who).ok_or("pool lists a non-worker")?;
				ensure!(w.releases.contains(&release), "pool lists a worker not serving it");
				ensure!(w.status == WorkerStatus::Active, "a worker that does not serve in a pool");
			}
		}
		let (head, tail) = (QueueHead::<T>::get(), QueueTail::<T>::get());
		ensure!(head <= tail, "queue head past tail");
		ensure!(
			OpenZkJobs::<T>::get() == open_zk,
			"reserved queue places differ from open ZK jobs"
		);
		ensure!(open_zk <= T::MaxQueueLen::get(), "more open ZK jobs than queue places");
		ensure!(VerificationQueue::<T>::iter().count() as u64 == queued, "queue entries off");
		for (at, job) in VerificationQueue::<T>::iter() {
			ensure!(head <= at && at < tail, "queue entry outside head..tail");
			ensure!(QueuedAt::<T>::get(job) == Some(at), "queue position index off");
		}
		ensure!(QueuedAt::<T>::iter().count() as u64 == queued, "stale queue positions");
		// Only due work is on the agenda: an expiry for each open job, a pruning for each
		// ended one, nothing for jobs that are gone.
		for (at, id, item) in Agenda::<T>::iter() {
			let job = Jobs::<T>::get(id).ok_or("agenda entry of a pruned job")?;
			match item {
				AgendaItem::Expire => {
					ensure!(job.ended.is_none(), "expiry left for an ended job");
					ensure!(at == Self::expiry_block(job.deadline), "expiry off its block");
				},
				AgendaItem::Prune => ensure!(
					job.ended.map(|e| e.saturating_add(T::RetentionPeriod::get())) == Some(at),
					"pruning off its block"
				),
			}
		}
		Self::channels_try_state()?;
		let by_cause = BurnedByCause::<T>::iter_values()
			.fold(BalanceOf::<T>::zero(), |a, b| a.saturating_add(b));
		ensure!(by_cause == TotalBurned::<T>::get(), "burn split differs from the total");
		Ok(())
	}

	/// Channel deposits held equal what the records leave of them; the index and the records
	/// agree; batches are in order and within what was redeemed.
	fn channels_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
		use alloc::collections::btree_map::BTreeMap;
		let mut held: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		let next = NextChannelId::<T>::get();
		let mut count = 0u64;
		for (id, channel) in Channels::<T>::iter() {
			count += 1;
			ensure!(id < next, "channel id beyond the counter");
			ensure!(
				ChannelIndex::<T>::get((&channel.requester, &channel.worker, channel.release)) ==
					Some(id),
				"channel missing from the index"
			);
			ensure!(
				channel.redeemed_pay.saturating_add(channel.redeemed_burn) <= channel.deposit,
				"channel redeemed more than its deposit"
			);
			let mut seq = 0u64;
			for batch in channel.batches.iter() {
				ensure!(
					seq < batch.first_seq && batch.first_seq <= batch.last_seq,
					"channel batches out of order"
				);
				seq = batch.last_seq;
			}
			ensure!(seq <= channel.last_seq, "a batch beyond the last redeemed voucher");
			let e = held.entry(channel.requester.clone()).or_default();
			*e = e.saturating_add(channel.held());
		}
		ensure!(ChannelIndex::<T>::iter().count() as u64 == count, "stale channel index entries");
		for (who, amount) in held.iter() {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::ChannelDeposit.into(), who) == *amount,
				"channel hold differs from the channels"
			);
		}
		for who in Endpoints::<T>::iter_keys() {
			ensure!(Workers::<T>::contains_key(&who), "endpoint of a non-worker");
		}
		Self::disputes_try_state()
	}

	/// Every dispute is indexed under its worker and on the agenda at its deadline, and
	/// nothing else is; challenge bonds held equal the open challenges'; the audit queue holds
	/// exactly head..tail.
	fn disputes_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
		use alloc::collections::btree_map::BTreeMap;
		let mut bonds: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		let mut count = 0usize;
		for (key, dispute) in Disputes::<T>::iter() {
			count += 1;
			ensure!(
				WorkerDisputes::<T>::contains_key(&dispute.worker, key),
				"dispute missing from its worker's index"
			);
			ensure!(
				DisputeAgenda::<T>::contains_key(Self::expiry_block(dispute.deadline), key),
				"dispute missing from the agenda"
			);
			let batch = &dispute.batch;
			ensure!(
				batch.first_seq <= key.1 && key.1 <= batch.last_seq,
				"disputed receipt outside its batch"
			);
			match dispute.kind {
				DisputeKind::Audit => ensure!(key.2 == H256::zero(), "audit keyed by a leaf"),
				DisputeKind::Challenge { challenger, bond, .. } => {
					ensure!(key.2 != H256::zero(), "challenge without a leaf");
					let e = bonds.entry(challenger).or_default();
					*e = e.saturating_add(bond);
				},
			}
		}
		ensure!(WorkerDisputes::<T>::iter().count() == count, "stale worker dispute entries");
		ensure!(DisputeAgenda::<T>::iter().count() == count, "stale dispute agenda entries");
		for (who, amount) in bonds.iter() {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::ChallengeBond.into(), who) == *amount,
				"challenge bond hold differs from the open challenges"
			);
		}
		let (head, tail) = (AuditHead::<T>::get(), AuditTail::<T>::get());
		ensure!(head <= tail, "audit queue head past tail");
		ensure!(AuditQueue::<T>::iter().count() as u64 == tail - head, "audit queue entries off");
		for at in AuditQueue::<T>::iter_keys() {
			ensure!(head <= at && at < tail, "audit queue entry outside head..tail");
		}
		Ok(())
	}
}
