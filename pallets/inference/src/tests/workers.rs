//! Worker registration, updates, pause/resume, unbonding and withdrawal.

use super::*;
use polkadot_sdk::{
	frame_support::{assert_noop, assert_ok},
	sp_runtime::DispatchError,
};

fn releases(ids: &[ReleaseId]) -> BoundedVec<ReleaseId, ConstU32<4>> {
	ids.to_vec().try_into().unwrap()
}

fn reg(
	who: u64,
	stake_amount: u64,
	ids: &[ReleaseId],
	modes: ModeSet,
	capacity: u32,
) -> DispatchResult {
	Inference::register_worker(
		RuntimeOrigin::signed(who),
		stake_amount,
		releases(ids),
		modes,
		100,
		capacity,
		Hardware::Gpu,
	)
}

use polkadot_sdk::frame_support::traits::ConstU32;

#[test]
fn register_holds_stake_and_joins_pools() {
	new_test_ext(|| {
		let r = publish_release(vanilla_and_tee());
		assert_ok!(reg(W1, 1_500, &[r], vanilla_and_tee(), 3));
		assert_eq!(stake(W1), 1_500);
		assert_eq!(ReleaseWorkers::<Test>::get(r).into_inner(), vec![W1]);
		let w = Workers::<Test>::get(W1).unwrap();
		assert_eq!((w.status, w.capacity, w.hardware), (WorkerStatus::Active, 3, Hardware::Gpu));
		System::assert_last_event(Event::WorkerRegistered { worker: W1, stake: 1_500 }.into());
	});
}

#[test]
fn register_rejects_every_bad_offer() {
	new_test_ext(|| {
		let r = publish_release(ModeSet::of(&[VerificationMode::Vanilla]));
		let v = ModeSet::of(&[VerificationMode::Vanilla]);
		assert_noop!(reg(W1, 999, &[r], v, 1), Error::<Test>::StakeTooLow);
		assert_noop!(reg(W1, 1_000, &[], v, 1), Error::<Test>::BadReleaseList);
		assert_noop!(reg(W1, 1_000, &[r, r], v, 1), Error::<Test>::DuplicateRelease);
		assert_noop!(reg(W1, 1_000, &[77], v, 1), Error::<Test>::UnknownRelease);
		assert_noop!(reg(W1, 1_000, &[r], ModeSet(0), 1), Error::<Test>::InvalidModes);
		assert_noop!(reg(W1, 1_000, &[r], v, 0), Error::<Test>::BadCapacity);
		assert_noop!(reg(W1, 1_000, &[r], v, 9), Error::<Test>::BadCapacity);
		assert_noop!(
			reg(W1, 1_000, &[r], ModeSet::of(&[VerificationMode::Tee]), 1),
			Error::<Test>::ModeNotSupported
		);
		SUPPORTED.with(|s| *s.borrow_mut() = ModeSet::of(&[VerificationMode::Vanilla]));
		assert_noop!(reg(W1, 1_000, &[r], vanilla_and_tee(), 1), Error::<Test>::ModeUnavailable);
		assert_noop!(reg(POOR, 1_000, &[r], v, 1), Error::<Test>::InsufficientBalance);
		assert_noop!(
			Inference::register_worker(
				RuntimeOrigin::none(),
				1_000,
				releases(&[r]),
				v,
				1,
				1,
				Hardware::Cpu
			),
			DispatchError::BadOrigin
		);
		assert_ok!(reg(W1, 1_000, &[r], v, 1));
		assert_noop!(reg(W1, 1_000, &[r], v, 1), Error::<Test>::AlreadyWorker);
	});
}

#[test]
fn retired_release_cannot_be_served() {
	new_test_ext(|| {
		let r = publish_release(vanilla_and_tee());
		assert_ok!(ModelHub::retire_release(RuntimeOrigin::signed(PUBLISHER), r));
		assert_noop!(reg(W1, 1_000, &[r], vanilla_and_tee(), 1), Error::<Test>::UnknownRelease);
	});
}

/// A release whose pool is full: workers 100..=103 serve it, and 104 (funded) is refused.
fn full_pool() -> ReleaseId {
	let r = publish_release(vanilla_and_tee());
	for w in 100..104u64 {
		fund(w, 10_000);
		assert_ok!(reg(w, 1_000, &[r], vanilla_and_tee(), 1));
	}
	fund(104, 10_000);
	assert_noop!(reg(104, 1_000, &[r], vanilla_and_tee(), 1), Error::<Test>::ReleaseFull);
	r
}

#[test]
fn release_pool_is_bounded() {
	new_test_ext(|| {
		full_pool();
	});
}

#[test]
fn update_moves_pools_and_terms() {
	new_test_ext(|| {
		let a = publish_release(vanilla_and_tee());
		let b = publish_release(vanilla_and_tee());
		assert_ok!(reg(W1, 1_000, &[a], vanilla_and_tee(), 1));
		assert_ok!(Inference::update_worker(
			RuntimeOrigin::signed(W1),
			releases(&[b]),
			ModeSet::of(&[VerificationMode::Tee]),
			55,
			2,
			Hardware::Cpu
		));
		assert!(ReleaseWorkers::<Test>::get(a).is_empty());
		assert_eq!(ReleaseWorkers::<Test>::get(b).into_inner(), vec![W1]);
		let w = Workers::<Test>::get(W1).unwrap();
		assert_eq!((w.price, w.capacity, w.hardware), (55, 2, Hardware::Cpu));
		assert_noop!(
			Inference::update_worker(
				RuntimeOrigin::signed(W2),
				releases(&[a]),
				vanilla_and_tee(),
				1,
				1,
				Hardware::Cpu
			),
			Error::<Test>::NotWorker
		);
		assert_noop!(
			Inference::update_worker(
				RuntimeOrigin::signed(W1),
				releases(&[9]),
				vanilla_and_tee(),
				1,
				1,
				Hardware::Cpu
			),
			Error::<Test>::UnknownRelease
		);
	});
}

#[test]
fn bond_extra_adds_stake() {
	new_test_ext(|| {
		let r = publish_release(vanilla_and_tee());
		assert_ok!(reg(W1, 1_000, &[r], vanilla_and_tee(), 1));
		assert_ok!(Inference::bond_extra(RuntimeOrigin::signed(W1), 250));
		assert_eq!((stake(W1), Workers::<Test>::get(W1).unwrap().stake), (1_250, 1_250));
		assert_noop!(Inference::bond_extra(RuntimeOrigin::signed(W2), 1), Error::<Test>::NotWorker);
		assert_noop!(
			Inference::bond_extra(RuntimeOrigin::signed(W1), START_BALANCE),
			Error::<Test>::InsufficientBalance
		);
	});
}

#[test]
fn pause_and_resume() {
	new_test_ext(|| {
		let r = publish_release(vanilla_and_tee());
		assert_ok!(reg(W1, 1_000, &[r], vanilla_and_tee(), 1));
		assert_noop!(
			Inference::resume_worker(RuntimeOrigin::signed(W1)),
			Error::<Test>::WorkerNotPaused
		);
		assert_ok!(Inference::pause_worker(RuntimeOrigin::signed(W1)));
		assert_noop!(
			Inference::pause_worker(RuntimeOrigin::signed(W1)),
			Error::<Test>::WorkerNotActive
		);
		// A paused worker gets no jobs.
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Vanilla, 1_000, None),
			Error::<Test>::NoEligibleWorker
		);
		assert_ok!(Inference::resume_worker(RuntimeOrigin::signed(W1)));
		assert_noop!(Inference::pause_worker(RuntimeOrigin::signed(W2)), Error::<Test>::NotWorker);
		assert_noop!(Inference::resume_worker(RuntimeOrigin::signed(W2)), Error::<Test>::NotWorker);
	});
}

#[test]
fn pools_hold_only_workers_that_can_serve() {
	new_test_ext(|| {
		let r = full_pool();
		// A paused worker gives up its slot, and a worker that serves takes it.
		assert_ok!(Inference::pause_worker(RuntimeOrigin::signed(100)));
		assert!(!ReleaseWorkers::<Test>::get(r).contains(&100));
		assert_ok!(reg(104, 1_000, &[r], vanilla_and_tee(), 1));
		// Resuming needs room again.
		assert_noop!(
			Inference::resume_worker(RuntimeOrigin::signed(100)),
			Error::<Test>::ReleaseFull
		);
		assert_ok!(Inference::pause_worker(RuntimeOrigin::signed(101)));
		assert_ok!(Inference::resume_worker(RuntimeOrigin::signed(100)));
		assert!(ReleaseWorkers::<Test>::get(r).contains(&100));
		// A worker slashed below the minimum stake leaves the pools with its pause.
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		let worker = Jobs::<Test>::get(job).unwrap().worker;
		run_to_block(22);
		assert_eq!(Workers::<Test>::get(worker).unwrap().status, WorkerStatus::Paused);
		assert!(!ReleaseWorkers::<Test>::get(r).contains(&worker));
	});
}

#[test]
fn tee_jobs_go_only_to_workers_with_a_usable_enclave_key() {
	new_test_ext(|| {
		let r = publish_release(vanilla_and_tee());
		register(W1, r, 2_000, 100, vanilla_and_tee());
		register(W2, r, 2_000, 100, vanilla_and_tee());
		NO_ENCLAVE.with(|n| n.borrow_mut().push(W1));
		for _ in 0..8 {
			let job = submit(ALICE, r, VerificationMode::Tee);
			assert_eq!(Jobs::<Test>::get(job).unwrap().worker, W2);
			assert_ok!(Inference::reject_job(
				RuntimeOrigin::signed(W2),
				job,
				RejectReason::BadInput
			));
		}
		// Vanilla jobs do not need the key.
		assert_ok!(try_submit(ALICE, r, VerificationMode::Vanilla, 1_000, None));
		NO_ENCLAVE.with(|n| n.borrow_mut().push(W2));
		assert_noop!(
			try_submit(ALICE, r, VerificationMode::Tee, 1_000, None),
			Error::<Test>::NoEligibleWorker
		);
	});
}

#[test]
fn unregister_waits_for_open_jobs_then_unbonds() {
	new_test_ext(|| {
		let r = market();
		let job = submit(ALICE, r, VerificationMode::Vanilla);
		assert_noop!(
			Inference::unregister_worker(RuntimeOrigin::signed(W1)),
			Error::<Test>::WorkerHasOpenJobs
		);
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			output(),
			Evidence::None
		));
		assert_ok!(Inference::unregister_worker(RuntimeOrigin::signed(W1)));
		assert!(ReleaseWorkers::<Test>::get(r).is_empty());
		System::assert_last_event(Event::WorkerUnbonding { worker: W1, unlock_at: 11 }.into());
		assert_noop!(
			Inference::unregister_worker(RuntimeOrigin::signed(W1)),
			Error::<Test>::WorkerUnbonding
		);
		assert_noop!(
			Inference::bond_extra(RuntimeOrigin::signed(W1), 1),
			Error::<Test>::WorkerUnbonding
		);
		assert_noop!(
			Inference::withdraw_stake(RuntimeOrigin::signed(W1)),
			Error::<Test>::NotUnlocked
		);
		run_to_block(11);
		let before = free(W1);
		assert_ok!(Inference::withdraw_stake(RuntimeOrigin::signed(W1)));
		assert_eq!(free(W1), before + 2_000);
		assert!(Workers::<Test>::get(W1).is_none());
		assert_noop!(
			Inference::withdraw_stake(RuntimeOrigin::signed(W1)),
			Error::<Test>::NotWorker
		);
	});
}

#[test]
fn withdraw_needs_unbonding() {
	new_test_ext(|| {
		market();
		assert_noop!(
			Inference::withdraw_stake(RuntimeOrigin::signed(W1)),
			Error::<Test>::NotUnlocked
		);
		assert_noop!(
			Inference::unregister_worker(RuntimeOrigin::signed(W2)),
			Error::<Test>::NotWorker
		);
	});
}

mod genesis {
	use super::*;
	use polkadot_sdk::{sp_io, sp_runtime::BuildStorage};

	fn genesis_storage(workers: Vec<GenesisWorker<u64, u64>>) -> polkadot_sdk::sp_runtime::Storage {
		let mut storage = storage_with(vec![(PUBLISHER, START_BALANCE), (W1, START_BALANCE)]);
		pallet_model_hub::GenesisConfig::<Test> {
			repositories: vec![(
				PUBLISHER,
				b"demo".to_vec(),
				vec![],
				vec![release_params(b"1", vanilla_and_tee())],
			)],
		}
		.assimilate_storage(&mut storage)
		.unwrap();
		crate::GenesisConfig::<Test> { workers }
			.assimilate_storage(&mut storage)
			.unwrap();
		storage
	}

	fn dev_worker(stake_amount: u64) -> GenesisWorker<u64, u64> {
		GenesisWorker {
			account: W1,
			stake: stake_amount,
			releases: vec![0],
			modes: vanilla_and_tee(),
			price: 100,
			capacity: 2,
			hardware: Hardware::Cpu,
			token_prices: None,
		}
	}

	#[test]
	fn genesis_registers_workers_with_held_stake() {
		sp_io::TestExternalities::new(genesis_storage(vec![dev_worker(5_000)])).execute_with(
			|| {
				let worker = Workers::<Test>::get(W1).expect("registered at genesis");
				assert_eq!(
					(worker.stake, worker.capacity, worker.status),
					(5_000, 2, WorkerStatus::Active)
				);
				assert_eq!(stake(W1), 5_000);
				assert_eq!(ReleaseWorkers::<Test>::get(0).into_inner(), vec![W1]);
				pallet_model_hub::Pallet::<Test>::do_try_state().unwrap();
				Inference::do_try_state().unwrap();
			},
		);
	}

	#[test]
	#[should_panic(expected = "genesis worker is valid")]
	fn genesis_worker_below_minimum_stake_is_refused() {
		genesis_storage(vec![dev_worker(999)]);
	}
}
