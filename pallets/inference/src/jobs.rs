//! Jobs: submission, verification, settlement, failure, expiry, refund and closing, and the
//! job queries of the runtime API.

use crate::{pallet::*, types::*};
use alloc::vec::Vec;
use codec::Decode;
use opg_primitives::{chat::ChatResponse, payload_hash, JobId, ReleaseId, VerificationMode};
use pallet_model_hub::{InputError, ModelRegistry};
use polkadot_sdk::{
	frame_support::{
		defensive,
		pallet_prelude::*,
		traits::{
			fungible::MutateHold,
			tokens::{Fortitude, Precision, Restriction},
			Defensive,
		},
	},
	frame_system::{self, pallet_prelude::*},
	sp_runtime::{
		traits::{Saturating, Zero},
		Permill,
	},
};

impl<T: Config> Pallet<T> {
	/// `submit_job` for a given requester: what other pallets call through
	/// [`InferenceRequester`]. All or nothing: outside a dispatch nothing else rolls back a
	/// failure halfway (e.g. the release's open-job count after the escrow hold).
	pub fn do_submit_job(
		requester: T::AccountId,
		release: ReleaseId,
		mode: VerificationMode,
		input: BoundedVec<u8, T::MaxInputLen>,
		max_fee: BalanceOf<T>,
		timeout: Option<BlockNumberFor<T>>,
	) -> Result<JobId, DispatchError> {
		polkadot_sdk::frame_support::storage::with_storage_layer(|| {
			Self::try_submit_job(requester, release, mode, input, max_fee, timeout)
		})
	}

	fn try_submit_job(
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
		let tokens = T::Models::check_input(release, &input).map_err(|e| match e {
			InputError::UnknownRelease => Error::<T>::UnknownRelease,
			InputError::Tensor(_) => Error::<T>::InvalidInput,
			InputError::Chat(_) => Error::<T>::InvalidChatRequest,
		})?;

		// A ZK job reserves its verification place now, so its proof is never refused later.
		let zk = mode == VerificationMode::Zk;
		ensure!(!zk || OpenZkJobs::<T>::get() < T::MaxQueueLen::get(), Error::<T>::QueueFull);
		// The draw happens later; refuse now what it would refuse, so nothing is held in vain.
		Self::draw_pool(release, mode, max_fee, timeout, tokens)?;

		let job = NextJobId::<T>::get();
		let next = job.checked_add(1).ok_or(Error::<T>::Overflow)?;
		ensure!(
			job.saturating_sub(AssignCursor::<T>::get()) < T::MaxPendingJobs::get().into(),
			Error::<T>::TooManyPendingJobs
		);

		let verification_hold = Self::max_verification_fee(mode, input.len() as u32);
		let held = max_fee.saturating_add(verification_hold);
		T::Currency::hold(&HoldReason::JobEscrow.into(), &requester, held)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		T::Models::job_opened(release)?;
		if zk {
			OpenZkJobs::<T>::mutate(|n| n.saturating_inc());
		}
		PendingJobs::<T>::insert(
			job,
			PendingJob {
				requester: requester.clone(),
				release,
				mode,
				input_hash: payload_hash(&input),
				input_len: input.len() as u32,
				max_fee,
				verification_hold,
				timeout,
				submitted: frame_system::Pallet::<T>::block_number(),
				round: Randomness::<T>::get().0,
				tokens,
			},
		);
		JobInputs::<T>::insert(job, input);
		NextJobId::<T>::put(next);
		Self::deposit_event(Event::JobQueued { job, requester, release, mode, held });
		Ok(job)
	}

	/// Checks a submitted result's evidence.
	pub(crate) fn verify(job: JobId, record: &JobOf<T>) -> bool {
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

	pub(crate) fn conclude(job: JobId, record: JobOf<T>, valid: bool, now: BlockNumberFor<T>) {
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
		let usage = record
			.tokens
			.and_then(|_| ChatResponse::decode(&mut &output[..]).ok().map(|r| r.usage()));
		let charge = Self::charge(&record, usage);
		let royalty_share = T::Models::release_info(record.release)
			.map(|i| (i.publisher, i.royalty))
			.unwrap_or((record.worker.clone(), Permill::zero()));
		let royalty = royalty_share.1.mul_floor(charge);
		let payment = charge.saturating_sub(royalty);

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
		let refund = T::Currency::release(&escrow, &record.requester, remaining, Precision::Exact)
			.defensive_unwrap_or_default();

		record.status = JobStatus::Settled { verification_fee: burned };
		let mode = record.mode;
		Self::close(job, record, now, |w| w.completed = w.completed.saturating_add(1));
		Self::deposit_event(Event::JobSettled {
			job,
			mode,
			worker_payment: paid_worker,
			royalty: paid_royalty,
			verification_fee: burned,
			refund,
		});
		T::Consumer::on_job_finished(job, JobOutcome::Settled { mode, output: &output });
	}

	/// Invalid evidence: refund less the data fee, worker slashed.
	pub(crate) fn fail(job: JobId, mut record: JobOf<T>, now: BlockNumberFor<T>) {
		let (data_fee, refund) = Self::refund(&record);
		Self::slash(&record.worker, job, T::SlashOnInvalidProof::get());
		record.status = JobStatus::Failed;
		Self::close(job, record, now, |w| w.slashed = w.slashed.saturating_add(1));
		Self::deposit_event(Event::JobFailed { job, data_fee, refund });
		T::Consumer::on_job_finished(job, JobOutcome::Failed);
	}

	/// Deadline passed without a result: the worker is slashed unless `congested` (full blocks
	/// kept its answer out and the deadline cannot move further).
	pub(crate) fn expire(
		job: JobId,
		mut record: JobOf<T>,
		now: BlockNumberFor<T>,
		congested: bool,
	) {
		let (data_fee, refund) = Self::refund(&record);
		let slashed = if congested {
			Zero::zero()
		} else {
			Self::slash(&record.worker, job, T::SlashOnTimeout::get())
		};
		record.status = JobStatus::Expired;
		Self::close(job, record, now, |w| {
			if !congested {
				w.slashed = w.slashed.saturating_add(1)
			}
		});
		Self::deposit_event(Event::JobExpired { job, data_fee, refund, slashed });
		T::Consumer::on_job_finished(job, JobOutcome::Expired);
	}

	/// Ends the escrow of a job that did not settle: burns the per-byte fee for the input the
	/// chain stored (every outcome pays for its bytes, not only settlement) and releases the
	/// rest. Returns (data fee burned, refund).
	pub(crate) fn refund(record: &JobOf<T>) -> (BalanceOf<T>, BalanceOf<T>) {
		Self::release_escrow(
			&record.requester,
			record.price.saturating_add(record.verification_hold),
			record.input_len,
			record.verification_hold,
		)
	}

	/// Burns the data fee of `input_len` stored bytes (at most `verification_hold`) from a
	/// requester's `held` escrow and releases the rest. Returns (data fee burned, refund).
	pub(crate) fn release_escrow(
		requester: &T::AccountId,
		held: BalanceOf<T>,
		input_len: u32,
		verification_hold: BalanceOf<T>,
	) -> (BalanceOf<T>, BalanceOf<T>) {
		let escrow: T::RuntimeHoldReason = HoldReason::JobEscrow.into();
		let data_fee = Self::data_fee(input_len).min(verification_hold);
		let burned = T::Currency::burn_held(
			&escrow,
			requester,
			data_fee,
			Precision::Exact,
			Fortitude::Force,
		)
		.defensive_unwrap_or_default();
		Self::note_burn(BurnCause::VerificationFee, burned);
		let refund =
			T::Currency::release(&escrow, requester, held.saturating_sub(burned), Precision::Exact)
				.defensive_unwrap_or_default();
		(burned, refund)
	}

	/// Ends a job: frees the worker's slot, tells the hub, schedules pruning.
	pub(crate) fn close(
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
		if record.mode == VerificationMode::Zk {
			OpenZkJobs::<T>::mutate(|n| *n = n.saturating_sub(1));
		}
		// The expiry is no longer due (removed first: the pruning may fall on the same block).
		Agenda::<T>::remove(Self::expiry_block(record.deadline), job);
		Self::schedule(now.saturating_add(T::RetentionPeriod::get()), job, AgendaItem::Prune);
		record.ended = Some(now);
		Jobs::<T>::insert(job, record);
	}

	/// A job, its input (while open) and its result (once submitted): `InferenceApi::job`.
	pub fn job_view(id: JobId) -> Option<JobViewOf<T>> {
		let job = Jobs::<T>::get(id)?;
		Some((job, JobInputs::<T>::get(id).map(|i| i.into_inner()), JobResults::<T>::get(id)))
	}

	/// Open jobs of `worker` (at most `MaxWorkerCapacity`).
	pub fn open_jobs(worker: &T::AccountId) -> Vec<JobId> {
		WorkerJobs::<T>::get(worker).into_inner()
	}
}
