//! The draw: a job's worker comes from randomness newer than the job, out of a pool the
//! requester cannot narrow to one worker; jobs the draw cannot place end refunded.

use super::*;
use polkadot_sdk::{
	frame_support::{assert_noop, assert_ok, storage::with_transaction, weights::WeightMeter},
	sp_runtime::TransactionOutcome,
};

fn vanilla() -> ModeSet {
	ModeSet::of(&[VerificationMode::Vanilla])
}

fn max_verification_fee() -> u64 {
	10 + input().len() as u64 + 128
}

/// Runs the pending jobs' draw in this block without new randomness.
fn poll() {
	Inference::on_poll(System::block_number(), &mut WeightMeter::new());
}

#[test]
fn a_job_waits_for_randomness_newer_than_its_submission() {
	new_test_ext(|| {
		let r = market();
		assert_ok!(try_queue(ALICE, r, VerificationMode::Vanilla, 1_000, None));
		let job = 0;
		System::assert_has_event(
			Event::JobQueued {
				job,
				requester: ALICE,
				release: r,
				mode: VerificationMode::Vanilla,
				held: 1_000 + max_verification_fee(),
			}
			.into(),
		);
		// Queued: the whole max fee is held, no worker knows of it yet.
		assert!(Jobs::<Test>::get(job).is_none());
		assert_eq!(escrow(ALICE), 1_000 + max_verification_fee());
		assert_eq!(JobInputs::<Test>::get(job).unwrap(), input());
		assert!(WorkerJobs::<Test>::get(W1).is_empty());
		assert_eq!(pallet_model_hub::Releases::<Test>::get(r).unwrap().open_jobs, 1);

		// The randomness it was submitted under (or a replay of its round) does not draw it.
		poll();
		let (round, _) = Randomness::<Test>::get();
		Inference::note_randomness(round, [7; 32]);
		poll();
		assert!(PendingJobs::<Test>::contains_key(job));

		// The next block brings a new round: drawn, the unused max fee released, and the
		// timeout counted from the draw.
		run_to_block(2);
		assert!(!PendingJobs::<Test>::contains_key(job));
		assert_eq!(AssignCursor::<Test>::get(), 1);
		let record = Jobs::<Test>::get(job).unwrap();
		assert_eq!(
			(record.worker, record.price, record.created, record.deadline),
			(W1, 100, 2, 22)
		);
		assert_eq!(escrow(ALICE), 100 + max_verification_fee());
		assert_eq!(WorkerJobs::<Test>::get(W1).into_inner(), vec![job]);
		System::assert_has_event(
			Event::JobAssigned {
				job,
				requester: ALICE,
				worker: W1,
				release: r,
				mode: VerificationMode::Vanilla,
				price: 100,
				held: 100 + max_verification_fee(),
				deadline: 22,
			}
			.into(),
		);
	});
}

#[test]
fn the_draw_follows_the_randomness_and_weighs_stake() {
	new_test_ext(|| {
		let r = publish_release(vanilla());
		register(W1, r, 1_000, 100, vanilla());
		register(W2, r, 9_000, 100, vanilla());
		// One queued job, drawn under different randomness (each draw rolled back): the worker
		// is not fixed by anything known at submission.
		assert_ok!(try_queue(ALICE, r, VerificationMode::Vanilla, 1_000, None));
		let mut seen = std::collections::BTreeSet::new();
		for n in 0..20u8 {
			with_transaction(|| {
				let (round, _) = Randomness::<Test>::get();
				Inference::note_randomness(round + 1, [n; 32]);
				poll();
				seen.insert(Jobs::<Test>::get(0).unwrap().worker);
				TransactionOutcome::Rollback(Ok::<_, DispatchError>(()))
			})
			.unwrap();
		}
		assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![W1, W2]);
		draw();

		// Over many jobs, the 9x stake wins most.
		let mut w2 = 0;
		for n in 0..40u64 {
			fund(1_000 + n, 10_000);
			assert_ok!(try_submit(1_000 + n, r, VerificationMode::Vanilla, 1_000, None));
			let job = NextJobId::<Test>::get() - 1;
			let worker = Jobs::<Test>::get(job).unwrap().worker;
			w2 += (worker == W2) as u32;
			// Keep both workers under capacity.
			assert_ok!(Inference::submit_result(
				RuntimeOrigin::signed(worker),
				job,
				output(),
				Evidence::None
			));
		}
		assert!(w2 >= 28, "W2 won {w2}/40 draws with 90% of the stake");
		assert!(w2 < 40, "W1 never won");
	});
}

#[test]
fn price_cap_and_timeout_cannot_single_out_a_worker() {
	new_test_ext(|| {
		let r = publish_release(vanilla_and_tee());
		register(W1, r, 1_000, 100, vanilla());
		register(W2, r, 1_000, 200, vanilla_and_tee());
		register(W3, r, 1_000, 300, vanilla());
		// Two candidates at least (MinDrawCandidates) of the three that can take the job.
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Vanilla, 199, None),
			Error::<Test>::PoolTooNarrow
		);
		assert_ok!(try_submit(ALICE, r, VerificationMode::Vanilla, 200, None));
		assert!([W1, W2].contains(&Jobs::<Test>::get(0).unwrap().worker));
		// A short timeout that only W1 takes narrows the pool to one as well.
		for w in [W2, W3] {
			assert_ok!(Inference::set_min_timeouts(
				RuntimeOrigin::signed(w),
				PerMode { vanilla: 50, tee: 50, zk: 50 }
			));
		}
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Vanilla, 1_000, Some(20)),
			Error::<Test>::PoolTooNarrow
		);
		assert_ok!(try_submit(ALICE, r, VerificationMode::Vanilla, 1_000, Some(50)));
		// The mode is the workers' offer, not the requester's filter: W2 alone serves TEE.
		assert_ok!(try_submit(ALICE, r, VerificationMode::Tee, 1_000, Some(50)));
		assert_eq!(Jobs::<Test>::get(2).unwrap().worker, W2);
	});
}

#[test]
fn a_job_no_worker_can_take_at_the_draw_is_cancelled_and_refunded() {
	new_test_ext(|| {
		let r = market();
		assert_ok!(try_queue(ALICE, r, VerificationMode::Vanilla, 1_000, None));
		assert_ok!(Inference::pause_worker(RuntimeOrigin::signed(W1)));
		run_to_block(2);
		// Not the requester's doing: refunded in full.
		System::assert_has_event(
			Event::JobCancelled {
				job: 0,
				reason: CancelReason::NoWorker,
				refund: 1_000 + max_verification_fee(),
			}
			.into(),
		);
		assert_eq!(escrow(ALICE), 0);
		assert_eq!(free(ALICE), START_BALANCE);
		assert!(Jobs::<Test>::get(0).is_none() && JobInputs::<Test>::get(0).is_none());
		assert!(PendingJobs::<Test>::iter().next().is_none());
		assert_eq!(finished(), vec![(0, "cancelled")]);
		assert!(
			pallet_model_hub::Releases::<Test>::get(r).unwrap().open_jobs == 0,
			"the release is free to retire"
		);
	});
}

#[test]
fn a_job_without_fresh_randomness_is_cancelled_after_the_delay() {
	new_test_ext(|| {
		let r = market();
		assert_ok!(try_queue(ALICE, r, VerificationMode::Vanilla, 1_000, None));
		// MaxAssignmentDelay = 5 blocks with no new round.
		for n in 2..=5 {
			System::set_block_number(n);
			poll();
			assert!(PendingJobs::<Test>::contains_key(0), "cancelled early, at block {n}");
		}
		System::set_block_number(6);
		poll();
		assert!(!PendingJobs::<Test>::contains_key(0));
		assert_eq!(AssignCursor::<Test>::get(), 1);
		assert_eq!(finished(), vec![(0, "cancelled")]);
		assert_eq!(escrow(ALICE), 0);
		assert!(System::events().iter().any(|e| matches!(
			e.event,
			RuntimeEvent::Inference(Event::JobCancelled { reason: CancelReason::NoRandomness, .. })
		)));
	});
}

#[test]
fn pending_jobs_are_bounded_and_drawn_within_the_weight_budget() {
	new_test_ext(|| {
		let r = publish_release(vanilla());
		register(W1, r, 1_000, 100, vanilla());
		register(W2, r, 1_000, 100, vanilla());
		// MaxPendingJobs = 8.
		for _ in 0..8 {
			assert_ok!(try_queue(ALICE, r, VerificationMode::Vanilla, 100, None));
		}
		assert_noop!(
			try_queue(ALICE, r, VerificationMode::Vanilla, 100, None),
			Error::<Test>::TooManyPendingJobs
		);
		// AssignmentWeight covers three draws a block.
		for (block, drawn) in [(2, 3), (3, 6), (4, 8)] {
			run_to_block(block);
			assert_eq!(AssignCursor::<Test>::get(), drawn);
		}
		assert_eq!(Jobs::<Test>::iter().count(), 8);
		// Both workers are full now; a third takes the next job.
		register(W3, r, 1_000, 100, vanilla());
		assert_ok!(try_queue(ALICE, r, VerificationMode::Vanilla, 100, None));
	});
}

#[test]
fn a_zk_job_reserves_its_verification_place_while_it_waits() {
	new_test_ext(|| {
		let r = publish_release(all_modes());
		register(W1, r, 1_000, 100, all_modes());
		assert_ok!(try_queue(ALICE, r, VerificationMode::Zk, 1_000, None));
		assert_eq!(OpenZkJobs::<Test>::get(), 1);
		assert_ok!(Inference::pause_worker(RuntimeOrigin::signed(W1)));
		run_to_block(2);
		assert_eq!(OpenZkJobs::<Test>::get(), 0, "the cancelled job gave its place back");
	});
}
