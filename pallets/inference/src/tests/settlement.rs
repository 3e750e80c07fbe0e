//! Results, verification and settlement: who gets paid, what is burned, what is refunded.

use super::*;
use polkadot_sdk::frame_support::{assert_noop, assert_ok};

#[test]
fn vanilla_result_settles_at_once_with_exact_amounts() {
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		let (alice, w1, publisher) = (free(ALICE), free(W1), free(PUBLISHER));
		let held = escrow(ALICE);
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			output(),
			Evidence::None
		));

		let fee = 10 + input().len() as u64 + output().len() as u64;
		let royalty = 10; // 10% of 100
		assert_eq!(free(W1), w1 + 90);
		assert_eq!(free(PUBLISHER), publisher + royalty);
		assert_eq!(escrow(ALICE), 0);
		assert_eq!(free(ALICE), alice + held - 100 - fee, "unused verification hold refunded");
		assert_eq!(TotalBurned::<Test>::get(), fee);
		assert_eq!(BurnedByCause::<Test>::get(BurnCause::VerificationFee), fee);
		let record = Jobs::<Test>::get(job).unwrap();
		assert_eq!(record.status, JobStatus::Settled { verification_fee: fee });
		assert_eq!(record.ended, Some(1));
		assert!(JobInputs::<Test>::get(job).is_none());
		assert_eq!(JobResults::<Test>::get(job).unwrap().output, output());
		assert_eq!(Workers::<Test>::get(W1).unwrap().completed, 1);
		System::assert_has_event(
			Event::Burned { cause: BurnCause::VerificationFee, amount: fee }.into(),
		);
		System::assert_has_event(
			Event::JobSettled {
				job,
				mode: VerificationMode::Vanilla,
				worker_payment: 90,
				royalty,
				verification_fee: fee,
				refund: held - 100 - fee,
			}
			.into(),
		);
		assert_eq!(finished(), vec![(job, "settled")]);
	});
}

#[test]
fn query_helpers_follow_a_job_through_settlement() {
	new_test_ext(|| {
		let r = market();
		assert_eq!(
			Inference::burn_totals(),
			BurnTotals { total: 0, verification_fees: 0, slashes: 0 }
		);
		assert!(Inference::job_view(0).is_none());
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		let (record, input_now, result) = Inference::job_view(job).unwrap();
		assert_eq!((record.worker, input_now, result), (W1, Some(input().into_inner()), None));
		assert_eq!(Inference::open_jobs(&W1), vec![job]);
		assert!(Inference::open_jobs(&W2).is_empty());

		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			output(),
			Evidence::None
		));
		let (record, input_now, result) = Inference::job_view(job).unwrap();
		assert!(matches!(record.status, JobStatus::Settled { .. }));
		assert_eq!((input_now, result.unwrap().output), (None, output()));
		assert!(Inference::open_jobs(&W1).is_empty());
		let fee = 10 + input().len() as u64 + output().len() as u64;
		assert_eq!(
			Inference::burn_totals(),
			BurnTotals { total: fee, verification_fees: fee, slashes: 0 }
		);
		assert_eq!(
			ModelHub::repository_releases(0)
				.into_iter()
				.map(|(id, _)| id)
				.collect::<Vec<_>>(),
			vec![r]
		);
		assert!(ModelHub::repository_releases(7).is_empty());
	});
}

#[test]
fn submit_result_checks_caller_state_mode_and_output() {
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Tee);
		assert_noop!(
			Inference::submit_result(RuntimeOrigin::signed(W1), 99, output(), Evidence::None),
			Error::<Test>::UnknownJob
		);
		assert_noop!(
			Inference::submit_result(
				RuntimeOrigin::signed(W2),
				job,
				output(),
				evidence(VerificationMode::Tee, b"valid")
			),
			Error::<Test>::NotAssignedWorker
		);
		assert_noop!(
			Inference::submit_result(RuntimeOrigin::signed(W1), job, output(), Evidence::None),
			Error::<Test>::EvidenceMismatch
		);
		assert_noop!(
			Inference::submit_result(
				RuntimeOrigin::signed(W1),
				job,
				output(),
				evidence(VerificationMode::Zk, b"valid")
			),
			Error::<Test>::EvidenceMismatch
		);
		assert_noop!(
			Inference::submit_result(
				RuntimeOrigin::signed(W1),
				job,
				input().into_inner().try_into().unwrap(),
				evidence(VerificationMode::Tee, b"valid")
			),
			Error::<Test>::InvalidOutput
		);
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			output(),
			evidence(VerificationMode::Tee, b"valid")
		));
		assert_noop!(
			Inference::submit_result(
				RuntimeOrigin::signed(W1),
				job,
				output(),
				evidence(VerificationMode::Tee, b"valid")
			),
			Error::<Test>::NotAssigned
		);
	});
}

#[test]
fn tee_result_is_verified_in_the_same_call() {
	new_test_ext(|| {
		let r = market();
		let good = submit(ALICE, r, VerificationMode::Tee);
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			good,
			output(),
			evidence(VerificationMode::Tee, b"valid")
		));
		let fee = 20 + input().len() as u64 + output().len() as u64 + 5;
		assert_eq!(
			Jobs::<Test>::get(good).unwrap().status,
			JobStatus::Settled { verification_fee: fee }
		);

		let bad = submit(ALICE, r, VerificationMode::Tee);
		let (alice, held) = (free(ALICE), escrow(ALICE));
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			bad,
			output(),
			evidence(VerificationMode::Tee, b"forged")
		));
		assert_eq!(Jobs::<Test>::get(bad).unwrap().status, JobStatus::Failed);
		let data_fee = input().len() as u64;
		assert_eq!(free(ALICE), alice + held - data_fee, "refund less the input's data fee");
		assert_eq!(stake(W1), 2_000 - 500, "slashed");
		assert_eq!(BurnedByCause::<Test>::get(BurnCause::Slash), 500);
		assert_eq!(TotalBurned::<Test>::get(), fee + data_fee + 500);
		System::assert_has_event(
			Event::JobFailed { job: bad, data_fee, refund: held - data_fee }.into(),
		);
		System::assert_has_event(Event::WorkerSlashed { worker: W1, job: bad, amount: 500 }.into());
		assert_eq!(finished(), vec![(good, "settled"), (bad, "failed")]);
	});
}

/// A release with all modes, served by W1 in all modes.
fn zk_market() -> ReleaseId {
	let r = publish_release(all_modes());
	register(W1, r, 2_000, 100, all_modes());
	r
}

#[test]
fn reject_refunds_all_but_the_data_fee_without_slash_and_counts() {
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		let alice = free(ALICE) + escrow(ALICE);
		assert_noop!(
			Inference::reject_job(RuntimeOrigin::signed(W2), job, RejectReason::BadInput),
			Error::<Test>::NotAssignedWorker
		);
		assert_noop!(
			Inference::reject_job(RuntimeOrigin::signed(W1), 42, RejectReason::BadInput),
			Error::<Test>::UnknownJob
		);
		let held = escrow(ALICE);
		assert_ok!(Inference::reject_job(RuntimeOrigin::signed(W1), job, RejectReason::BadInput));
		// The input was stored until now: its per-byte fee is paid on every outcome.
		let data_fee = input().len() as u64;
		assert_eq!(free(ALICE), alice - data_fee);
		assert_eq!(stake(W1), 2_000);
		System::assert_has_event(
			Event::JobRejected {
				job,
				reason: RejectReason::BadInput,
				data_fee,
				refund: held - data_fee,
			}
			.into(),
		);
		let w = Workers::<Test>::get(W1).unwrap();
		assert_eq!((w.rejected, w.open_jobs), (1, 0));
		assert_eq!(
			Jobs::<Test>::get(job).unwrap().status,
			JobStatus::Rejected { reason: RejectReason::BadInput }
		);
		assert_noop!(
			Inference::reject_job(RuntimeOrigin::signed(W1), job, RejectReason::BadInput),
			Error::<Test>::NotAssigned
		);
		assert_eq!(BurnedByCause::<Test>::get(BurnCause::VerificationFee), data_fee);
		assert_eq!(TotalBurned::<Test>::get(), data_fee);
		assert_eq!(finished(), vec![(job, "rejected")]);
	});
}

#[test]
fn result_or_rejection_after_deadline_is_refused() {
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		run_to_block(21);
		assert_eq!(Jobs::<Test>::get(job).unwrap().status, JobStatus::Assigned);
		System::set_block_number(22); // past the deadline, before on_initialize expired it
		assert_noop!(
			Inference::submit_result(RuntimeOrigin::signed(W1), job, output(), Evidence::None),
			Error::<Test>::DeadlinePassed
		);
		assert_noop!(
			Inference::reject_job(RuntimeOrigin::signed(W1), job, RejectReason::BadInput),
			Error::<Test>::DeadlinePassed
		);
		Inference::on_initialize(22);
		assert_eq!(Jobs::<Test>::get(job).unwrap().status, JobStatus::Expired);
	});
}

mod queue {
	use super::*;

	fn zk_job() -> JobId {
		let id = NextJobId::<Test>::get();
		assert_ok!(try_submit(ALICE, 0, VerificationMode::Zk, 1_000, None));
		id
	}

	fn queue_result(job: JobId, proof: &[u8]) {
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			output(),
			evidence(VerificationMode::Zk, proof)
		));
	}

	#[test]
	fn zk_results_are_visible_at_once_and_settle_in_on_idle() {
		new_test_ext(|| {
			zk_market();
			let good = zk_job();
			let bad = zk_job();
			queue_result(good, b"valid");
			queue_result(bad, b"bogus");
			for job in [good, bad] {
				assert_eq!(Jobs::<Test>::get(job).unwrap().status, JobStatus::Submitted);
				assert_eq!(JobResults::<Test>::get(job).unwrap().output, output());
				// The statement is recomputed from the input: it stays until the job ends.
				assert_eq!(JobInputs::<Test>::get(job).unwrap(), input());
			}
			assert_eq!((QueueHead::<Test>::get(), QueueTail::<Test>::get()), (0, 2));
			// No weight left: nothing happens.
			Inference::on_idle(1, Weight::zero());
			assert_eq!(Jobs::<Test>::get(good).unwrap().status, JobStatus::Submitted);
			// Weight for exactly one verification.
			let one = <() as WeightInfo>::on_idle_base()
				.saturating_add(<() as WeightInfo>::on_idle_verify())
				.saturating_add(<() as WeightInfo>::verify_result())
				.saturating_add(<() as WeightInfo>::settle())
				.saturating_add(Weight::from_parts(1_000_000, 0))
				.saturating_add(Weight::from_parts(10_000, 0));
			let used = Inference::on_idle(1, one);
			assert!(used.all_lte(one));
			assert!(matches!(Jobs::<Test>::get(good).unwrap().status, JobStatus::Settled { .. }));
			assert!(JobInputs::<Test>::get(good).is_none());
			assert_eq!(Jobs::<Test>::get(bad).unwrap().status, JobStatus::Submitted);
			Inference::on_idle(1, Weight::MAX);
			assert_eq!(Jobs::<Test>::get(bad).unwrap().status, JobStatus::Failed);
			assert_eq!(QueueHead::<Test>::get(), 2);
		});
	}

	#[test]
	fn anyone_can_verify_now_and_the_queue_skips_it() {
		new_test_ext(|| {
			zk_market();
			let job = zk_job();
			queue_result(job, b"valid");
			assert_noop!(
				Inference::verify_result(RuntimeOrigin::signed(BOB), 9),
				Error::<Test>::UnknownJob
			);
			assert_ok!(Inference::verify_result(RuntimeOrigin::signed(BOB), job));
			assert!(matches!(Jobs::<Test>::get(job).unwrap().status, JobStatus::Settled { .. }));
			assert_noop!(
				Inference::verify_result(RuntimeOrigin::signed(BOB), job),
				Error::<Test>::NotPendingVerification
			);
			Inference::on_idle(1, Weight::MAX);
			assert_eq!(QueueHead::<Test>::get(), 1);
			assert_eq!(finished(), vec![(job, "settled")]);
		});
	}

	#[test]
	fn every_assigned_zk_job_has_a_queue_place_for_its_proof() {
		new_test_ext(|| {
			zk_market();
			Workers::<Test>::mutate(W1, |w| w.as_mut().unwrap().capacity = 8);
			// Six places: the seventh ZK job is refused at submission, with nothing held.
			let jobs: Vec<_> = (0..6).map(|_| zk_job()).collect();
			assert_eq!(OpenZkJobs::<Test>::get(), 6);
			let held = escrow(ALICE);
			assert_noop!(
				try_submit(ALICE, 0, VerificationMode::Zk, 1_000, None),
				Error::<Test>::QueueFull
			);
			assert_eq!(escrow(ALICE), held);
			// Other modes are not held back by the ZK backlog.
			submit(ALICE, 0, VerificationMode::Vanilla);
			// Every assigned job's proof is accepted: no worker is slashed for a full queue.
			for job in &jobs {
				queue_result(*job, b"valid");
			}
			// Verified early, a job leaves the queue at once and frees its place.
			assert_ok!(Inference::verify_result(RuntimeOrigin::signed(BOB), jobs[2]));
			assert_eq!(VerificationQueue::<Test>::iter().count(), 5);
			assert!(QueuedAt::<Test>::get(jobs[2]).is_none());
			assert_eq!(OpenZkJobs::<Test>::get(), 5);
			let seventh = zk_job();
			Inference::on_idle(1, Weight::MAX);
			assert_eq!(QueueHead::<Test>::get(), 6);
			assert_eq!(OpenZkJobs::<Test>::get(), 1);
			queue_result(seventh, b"valid");
			Inference::on_idle(1, Weight::MAX);
			assert_eq!(OpenZkJobs::<Test>::get(), 0);
			assert!(finished().iter().filter(|(_, tag)| *tag == "settled").count() == 7);
		});
	}
}

#[test]
fn royalty_to_requester_who_publishes_is_not_moved() {
	new_test_ext(|| {
		let r = market();
		let job = submit(PUBLISHER, r, VerificationMode::Vanilla);
		let before = free(PUBLISHER) + escrow(PUBLISHER);
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			output(),
			Evidence::None
		));
		let fee = TotalBurned::<Test>::get();
		assert_eq!(
			free(PUBLISHER),
			before - 90 - fee,
			"pays the worker and the fee, keeps its own royalty"
		);
	});
}
