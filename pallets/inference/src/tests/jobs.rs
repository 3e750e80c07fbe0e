//! Submitting jobs: validation, escrow, capacity, quotes (the draw: `draw.rs`).

use super::*;
use polkadot_sdk::frame_support::{assert_noop, assert_ok};

#[test]
fn submit_assigns_worker_and_holds_price_plus_max_fee() {
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		let record = Jobs::<Test>::get(job).unwrap();
		// Vanilla: flat 10 + 1 per byte over input (len) + max output (128).
		let max_fee = 10 + input().len() as u64 + 128;
		assert_eq!((record.worker, record.price, record.verification_hold), (W1, 100, max_fee));
		assert_eq!(escrow(ALICE), 100 + max_fee);
		assert_eq!(record.deadline, 1 + 20);
		assert_eq!(record.status, JobStatus::Assigned);
		assert_eq!(JobInputs::<Test>::get(job).unwrap(), input());
		assert_eq!(WorkerJobs::<Test>::get(W1).into_inner(), vec![job]);
		assert_eq!(Workers::<Test>::get(W1).unwrap().open_jobs, 1);
		assert_eq!(pallet_model_hub::Releases::<Test>::get(r).unwrap().open_jobs, 1);
		assert_eq!(
			Agenda::<Test>::iter_prefix(22).collect::<Vec<_>>(),
			vec![(job, AgendaItem::Expire)]
		);
		// TEE jobs hold the evidence bound too.
		let tee = submit(BOB, r, VerificationMode::Tee);
		assert_eq!(
			Jobs::<Test>::get(tee).unwrap().verification_hold,
			20 + input().len() as u64 + 128 + 64
		);
	});
}

#[test]
fn submit_rejects_bad_requests_and_holds_nothing() {
	new_test_ext(|| {
		let r = market();
		assert_noop!(
			try_submit(ALICE, 99, VerificationMode::Vanilla, 1_000, None),
			Error::<Test>::UnknownRelease
		);
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Zk, 1_000, None),
			Error::<Test>::ModeNotSupported
		);
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Vanilla, 1_000, Some(1)),
			Error::<Test>::BadTimeout
		);
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Vanilla, 1_000, Some(101)),
			Error::<Test>::BadTimeout
		);
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Vanilla, 99, None),
			Error::<Test>::NoEligibleWorker
		);
		assert_noop!(
			try_submit(POOR, r, VerificationMode::Vanilla, 1_000, None),
			Error::<Test>::InsufficientBalance
		);
		let bad: BoundedVec<u8, _> = vec![1, 2, 3].try_into().unwrap();
		assert_noop!(
			Inference::submit_job(
				RuntimeOrigin::signed(ALICE),
				r,
				VerificationMode::Vanilla,
				bad,
				1_000,
				None
			),
			Error::<Test>::InvalidInput
		);
		SUPPORTED.with(|s| *s.borrow_mut() = ModeSet::of(&[VerificationMode::Vanilla]));
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Tee, 1_000, None),
			Error::<Test>::ModeUnavailable
		);
		assert_eq!(escrow(ALICE), 0);
	});
}

#[test]
fn retired_release_takes_no_new_jobs_but_finishes_open_ones() {
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		assert_ok!(ModelHub::retire_release(RuntimeOrigin::signed(PUBLISHER), r));
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Vanilla, 1_000, None),
			Error::<Test>::UnknownRelease
		);
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			output(),
			Evidence::None
		));
		assert!(matches!(Jobs::<Test>::get(job).unwrap().status, JobStatus::Settled { .. }));
		assert!(
			pallet_model_hub::Releases::<Test>::get(r).is_none(),
			"record goes with the last job"
		);
	});
}

#[test]
fn capacity_limits_assignments() {
	new_test_ext(|| {
		let r = market(); // W1 capacity 4
		for _ in 0..4 {
			submit(ALICE, r, VerificationMode::Vanilla);
		}
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Vanilla, 1_000, None),
			Error::<Test>::NoEligibleWorker
		);
	});
}

#[test]
fn requester_trait_submits_like_the_call() {
	new_test_ext(|| {
		let r = market();
		let job = <Inference as InferenceRequester<u64, u64, u64>>::request(
			BOB,
			r,
			VerificationMode::Vanilla,
			input(),
			1_000,
			Some(10),
		)
		.unwrap();
		draw();
		assert_eq!(Jobs::<Test>::get(job).unwrap().requester, BOB);
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			output(),
			Evidence::None
		));
		assert_eq!(finished(), vec![(job, "settled")]);
	});
}

#[test]
fn quote_reports_the_lowest_max_fee_the_draw_accepts() {
	new_test_ext(|| {
		let r = publish_release(vanilla_and_tee());
		assert!(Inference::quote(r, VerificationMode::Vanilla, 10).is_none());
		register(W1, r, 1_000, 300, vanilla_and_tee());
		register(W2, r, 1_000, 200, vanilla_and_tee());
		// Two workers can take the job and the draw needs two candidates: the quote is the
		// max fee that admits both.
		let q = Inference::quote(r, VerificationMode::Tee, 10).unwrap();
		assert_eq!((q.price, q.verification_fee, q.total), (300, 20 + 10 + 128 + 64, 300 + 222));
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Tee, q.price - 1, None),
			Error::<Test>::PoolTooNarrow
		);
		assert_ok!(try_submit(ALICE, r, VerificationMode::Tee, q.price, None));
	});
}
