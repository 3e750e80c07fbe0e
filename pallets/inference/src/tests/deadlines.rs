//! Deadlines and pruning across many blocks: bounded work per block, carry-over, slashing.

use super::*;
use polkadot_sdk::frame_support::{assert_noop, assert_ok};

#[test]
fn expired_job_refunds_all_but_the_data_fee_and_slashes() {
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		let held = escrow(ALICE);
		let alice = free(ALICE) + held;
		run_to_block(21);
		assert_eq!(
			Jobs::<Test>::get(job).unwrap().status,
			JobStatus::Assigned,
			"deadline block still open"
		);
		run_to_block(22);
		let record = Jobs::<Test>::get(job).unwrap();
		assert_eq!((record.status, record.ended), (JobStatus::Expired, Some(22)));
		let data_fee = input().len() as u64;
		assert_eq!(free(ALICE), alice - data_fee);
		assert_eq!(stake(W1), 2_000 - 300);
		assert_eq!(BurnedByCause::<Test>::get(BurnCause::Slash), 300);
		assert!(JobInputs::<Test>::get(job).is_none());
		assert_eq!(finished(), vec![(job, "expired")]);
		System::assert_has_event(
			Event::JobExpired { job, data_fee, refund: held - data_fee, slashed: 300 }.into(),
		);
	});
}

#[test]
fn slash_below_minimum_pauses_the_worker() {
	new_test_ext(|| {
		let r = publish_release(vanilla_and_tee());
		register(W1, r, 1_200, 100, vanilla_and_tee());
		submit(ALICE, r, VerificationMode::Vanilla);
		run_to_block(22);
		let w = Workers::<Test>::get(W1).unwrap();
		assert_eq!((w.stake, w.status, w.slashed), (900, WorkerStatus::Paused, 1));
		System::assert_has_event(Event::WorkerPaused { worker: W1 }.into());
		assert_eq!(
			Inference::resume_worker(RuntimeOrigin::signed(W1)),
			Err(Error::<Test>::StakeTooLow.into())
		);
		assert_ok!(Inference::bond_extra(RuntimeOrigin::signed(W1), 100));
		assert_ok!(Inference::resume_worker(RuntimeOrigin::signed(W1)));
	});
}

#[test]
fn slash_never_exceeds_stake() {
	new_test_ext(|| {
		let r = publish_release(vanilla_and_tee());
		register(W1, r, 1_000, 100, vanilla_and_tee());
		for _ in 0..4 {
			submit(ALICE, r, VerificationMode::Vanilla);
		}
		// 3 expiries fit in block 22's budget, the 4th runs in block 23.
		run_to_block(23);
		// 4 x 300 > 1000: the last slash takes what is left.
		assert_eq!(Workers::<Test>::get(W1).unwrap().stake, 0);
		assert_eq!(stake(W1), 0);
		assert_eq!(BurnedByCause::<Test>::get(BurnCause::Slash), 1_000);
	});
}

#[test]
fn expiries_beyond_the_per_block_budget_carry_over() {
	new_test_ext(|| {
		let r = publish_release(vanilla_and_tee());
		for w in 300..303u64 {
			fund(w, 100_000);
			register(w, r, 5_000, 1, vanilla_and_tee());
		}
		// 10 jobs, all expiring at block 7. Each block has 4 units of work: visiting the block
		// takes one, each expiry one; 3 expire per block.
		for _ in 0..10 {
			assert_ok!(try_submit(ALICE, r, VerificationMode::Vanilla, 10, Some(5)));
		}
		let expired =
			|| Jobs::<Test>::iter_values().filter(|j| j.status == JobStatus::Expired).count();
		run_to_block(6);
		assert_eq!(expired(), 0);
		for (block, count) in [(7, 3), (8, 6), (9, 9), (10, 10)] {
			run_to_block(block);
			assert_eq!(expired(), count, "at block {block}");
			if count < 10 {
				assert_eq!(AgendaCursor::<Test>::get(), 7, "the rest of block 7 carries over");
			}
		}
		assert!(Agenda::<Test>::iter_prefix(7).next().is_none());
	});
}

#[test]
fn ended_jobs_are_pruned_after_retention() {
	new_test_ext(|| {
		let r = market();
		let settled = submit(ALICE, r, VerificationMode::Vanilla);
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			settled,
			output(),
			Evidence::None
		));
		let rejected = submit(ALICE, r, VerificationMode::Vanilla);
		assert_ok!(Inference::reject_job(
			RuntimeOrigin::signed(W1),
			rejected,
			RejectReason::ModelUnavailable
		));
		let expired = submit(BOB, r, VerificationMode::Vanilla);
		run_to_block(50);
		assert!(Jobs::<Test>::get(settled).is_some(), "kept for the retention period");
		run_to_block(51);
		assert!(Jobs::<Test>::get(settled).is_none() && JobResults::<Test>::get(settled).is_none());
		assert!(Jobs::<Test>::get(rejected).is_none());
		System::assert_has_event(Event::JobPruned { job: settled }.into());
		assert!(Jobs::<Test>::get(expired).is_some());
		run_to_block(72);
		assert!(Jobs::<Test>::get(expired).is_none());
		assert!(Agenda::<Test>::iter().next().is_none(), "no agenda left behind");
	});
}

#[test]
fn catching_up_after_quiet_blocks_is_bounded_per_block() {
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		assert_eq!(AgendaCursor::<Test>::get(), 1, "cursor starts at the first scheduling block");
		// Blocks 2..=999 ran no hooks: one on_initialize visits what its weight allows.
		let (visit, budget) = (<() as WeightInfo>::on_initialize_base(), AgendaWeight::get());
		let most = (budget.ref_time() / visit.ref_time())
			.min(budget.proof_size() / visit.proof_size().max(1));
		System::set_block_number(1_000);
		let used = Inference::on_initialize(1_000);
		assert!(used.all_lte(budget));
		let visited = AgendaCursor::<Test>::get() - 1;
		assert!(visited >= 1 && visited <= most, "visited {visited} blocks, at most {most}");
		// Later blocks go on where it stopped: the job's expiry (block 22) comes in turn.
		run_to_block(1_010);
		assert_eq!(Jobs::<Test>::get(job).unwrap().status, JobStatus::Expired);
		assert!(AgendaCursor::<Test>::get() <= 1_011);
	});
}

#[test]
fn closed_jobs_leave_nothing_due_and_honest_jobs_always_find_room() {
	new_test_ext(|| {
		let r = publish_release(vanilla_and_tee());
		for w in 300..304u64 {
			fund(w, 100_000);
			register(w, r, 5_000, 1, vanilla_and_tee());
			Workers::<Test>::mutate(w, |x| x.as_mut().unwrap().capacity = 8);
		}
		// A requester opens and settles jobs at a chosen deadline, as cheaply as it can; the
		// expiries of the closed jobs are gone with them.
		for _ in 0..40 {
			let job = NextJobId::<Test>::get();
			assert_ok!(try_submit(BOB, r, VerificationMode::Vanilla, 10, Some(5)));
			let worker = Jobs::<Test>::get(job).unwrap().worker;
			assert_ok!(Inference::reject_job(
				RuntimeOrigin::signed(worker),
				job,
				RejectReason::BadInput
			));
		}
		assert!(Agenda::<Test>::iter_prefix(7).next().is_none(), "stale expiries left behind");
		// Many live jobs due at one block: an honest job still gets in, and all expire in time
		// order within the per-block weight.
		for _ in 0..31 {
			assert_ok!(try_submit(BOB, r, VerificationMode::Vanilla, 10, Some(5)));
		}
		let honest = NextJobId::<Test>::get();
		assert_ok!(try_submit(ALICE, r, VerificationMode::Vanilla, 10, Some(5)));
		assert_eq!(Agenda::<Test>::iter_prefix(7).count(), 32);
		run_to_block(200);
		assert_eq!(Jobs::<Test>::get(honest), None, "expired, refunded and pruned");
		assert!(Agenda::<Test>::iter().next().is_none(), "no agenda left behind");
	});
}

#[test]
fn anyone_prunes_an_ended_job_after_its_retention() {
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		assert_noop!(
			Inference::prune_job(RuntimeOrigin::signed(BOB), job),
			Error::<Test>::NotPrunable
		);
		assert_ok!(Inference::reject_job(RuntimeOrigin::signed(W1), job, RejectReason::BadInput));
		// Ended at block 1: kept through block 50.
		run_to_block(50);
		assert_noop!(
			Inference::prune_job(RuntimeOrigin::signed(BOB), job),
			Error::<Test>::NotPrunable
		);
		System::set_block_number(51);
		assert_ok!(Inference::prune_job(RuntimeOrigin::signed(BOB), job));
		System::assert_last_event(Event::JobPruned { job }.into());
		assert!(Jobs::<Test>::get(job).is_none());
		assert!(Agenda::<Test>::iter().next().is_none(), "its agenda entry went with it");
		assert_noop!(
			Inference::prune_job(RuntimeOrigin::signed(BOB), job),
			Error::<Test>::UnknownJob
		);
	});
}

/// Fills the current block's normal-class weight, as a block crowded with transactions would.
fn fill_block() {
	let max = <<Test as frame_system::Config>::BlockWeights as Get<
		frame_system::limits::BlockWeights,
	>>::get()
	.max_block;
	frame_system::BlockWeight::<Test>::mutate(|w: &mut frame_system::ConsumedWeight| {
		w.set(max, polkadot_sdk::frame_support::dispatch::DispatchClass::Normal)
	});
}

#[test]
fn full_blocks_move_the_deadline_instead_of_slashing() {
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		assert_eq!(Jobs::<Test>::get(job).unwrap().deadline, 21);
		// Two full blocks in the job's time: the answer may have found no room in them.
		for block in [5, 9] {
			run_to_block(block);
			fill_block();
		}
		run_to_block(22);
		let record = Jobs::<Test>::get(job).unwrap();
		assert_eq!((record.status, record.deadline), (JobStatus::Assigned, 23));
		System::assert_has_event(Event::DeadlineExtended { job, deadline: 23 }.into());
		assert_eq!(stake(W1), 2_000);
		// The worker answers in the time it was given back.
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			output(),
			Evidence::None
		));
		assert!(matches!(Jobs::<Test>::get(job).unwrap().status, JobStatus::Settled { .. }));
		assert_eq!(CongestedBlocks::<Test>::get(), 2);
	});
}

#[test]
fn a_worker_kept_out_by_full_blocks_to_the_end_is_not_slashed() {
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		let (alice, held) = (free(ALICE), escrow(ALICE));
		// Every block full: the deadline moves until it reaches twice `MaxJobTimeout` after
		// submission, then the job expires with a refund and no slash.
		let latest = 1 + 2 * 100;
		for block in 2..=latest + 1 {
			run_to_block(block);
			fill_block();
		}
		run_to_block(latest + 2);
		let record = Jobs::<Test>::get(job).unwrap();
		assert_eq!((record.status, record.deadline), (JobStatus::Expired, latest));
		let data_fee = input().len() as u64;
		assert_eq!(free(ALICE), alice + held - data_fee);
		assert_eq!(stake(W1), 2_000, "not slashed");
		assert_eq!(Workers::<Test>::get(W1).unwrap().slashed, 0);
		System::assert_has_event(
			Event::JobExpired { job, data_fee, refund: held - data_fee, slashed: 0 }.into(),
		);
		assert_eq!(BurnedByCause::<Test>::get(BurnCause::Slash), 0);
	});
}

#[test]
fn workers_get_no_jobs_shorter_than_their_minimum_for_the_mode() {
	new_test_ext(|| {
		let r = market();
		let slow = MinTimeouts { vanilla: 30, tee: 0, zk: 0 };
		assert_noop!(
			Inference::set_min_timeouts(RuntimeOrigin::signed(ALICE), slow),
			Error::<Test>::NotWorker
		);
		assert_noop!(
			Inference::set_min_timeouts(
				RuntimeOrigin::signed(W1),
				MinTimeouts { vanilla: 101, tee: 0, zk: 0 }
			),
			Error::<Test>::BadTimeout
		);
		assert_ok!(Inference::set_min_timeouts(RuntimeOrigin::signed(W1), slow));
		System::assert_has_event(Event::MinTimeoutsSet { worker: W1, min_timeouts: slow }.into());
		// The default timeout (20) and 29 blocks are too short for W1's Vanilla minimum.
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Vanilla, 1_000, None),
			Error::<Test>::NoEligibleWorker
		);
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Vanilla, 1_000, Some(29)),
			Error::<Test>::NoEligibleWorker
		);
		assert_eq!(Inference::quote(r, VerificationMode::Vanilla, 20), None);
		assert_ok!(try_submit(ALICE, r, VerificationMode::Vanilla, 1_000, Some(30)));
		// Its TEE minimum is the chain's floor.
		assert_ok!(try_submit(ALICE, r, VerificationMode::Tee, 1_000, Some(2)));
		assert_eq!(Workers::<Test>::get(W1).unwrap().open_jobs, 2);
	});
}

#[test]
fn only_answers_the_call_would_accept_enter_the_pool_first_and_until_their_deadline() {
	use polkadot_sdk::{
		frame_support::dispatch::{DispatchClass, GetDispatchInfo},
		sp_runtime::{
			traits::DispatchTransaction,
			transaction_validity::{
				InvalidTransaction, TransactionSource, TransactionValidityError, ValidTransaction,
			},
		},
	};
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		let answer = |job| -> RuntimeCall {
			Call::submit_result { job, output: output(), evidence: Evidence::None }.into()
		};
		let rejection: RuntimeCall =
			Call::reject_job { job, reason: RejectReason::BadInput }.into();
		let other: RuntimeCall = Call::pause_worker {}.into();
		let validate = |who: u64, call: &RuntimeCall| -> Result<ValidTransaction, u8> {
			PrioritizeAnswers::<Test>::new()
				.validate_only(
					Some(who).into(),
					call,
					&call.get_dispatch_info(),
					0,
					TransactionSource::External,
					0,
				)
				.map(|(valid, ..)| valid)
				.map_err(|e| match e {
					TransactionValidityError::Invalid(InvalidTransaction::Custom(c)) => c,
					e => panic!("{e:?}"),
				})
		};
		// Answers use the block space ordinary transactions cannot fill.
		assert_eq!(answer(job).get_dispatch_info().class, DispatchClass::Operational);
		assert_eq!(rejection.get_dispatch_info().class, DispatchClass::Operational);
		System::set_block_number(5);
		for call in [&answer(job), &rejection] {
			let valid = validate(W1, call).unwrap();
			assert_eq!((valid.priority, valid.longevity), (ANSWER_PRIORITY, 21 - 5 + 1));
			// Someone else's answer cannot take that room.
			assert_eq!(validate(W2, call), Err(invalid_answer::NOT_ASSIGNED_WORKER));
		}
		assert_eq!(validate(W1, &answer(job + 1)), Err(invalid_answer::UNKNOWN_JOB));
		// Other calls pass unchanged.
		assert_eq!(validate(W1, &other), Ok(ValidTransaction::default()));
		System::set_block_number(22);
		assert_eq!(validate(W1, &answer(job)), Err(invalid_answer::DEADLINE_PASSED));
		System::set_block_number(21);
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			output(),
			Evidence::None
		));
		assert_eq!(validate(W1, &answer(job)), Err(invalid_answer::NOT_WAITING));
	});
}
