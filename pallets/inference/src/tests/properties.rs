//! Property test: random sequences of calls and blocks. After every step the pallets'
//! invariants hold (holds equal records, queues consistent), total issuance has fallen by
//! exactly `TotalBurned`, and a call that fails leaves the state untouched. Nothing here wraps
//! a step in a storage layer: the calls roll back by FRAME's own layer around each call body,
//! and the requester path that other pallets use (`InferenceRequester::request`, no dispatch
//! around it) must roll back by itself.

use super::*;
use polkadot_sdk::{
	sp_io,
	sp_runtime::{DispatchResult, StateVersion},
};
use proptest::prelude::*;

const WORKERS: [u64; 3] = [W1, W2, W3];
const REQUESTERS: [u64; 3] = [ALICE, BOB, POOR];

#[derive(Debug, Clone)]
enum Op {
	Register {
		worker: usize,
		stake: u64,
		price: u64,
		modes: u8,
	},
	Submit {
		requester: usize,
		mode: usize,
		max_fee: u64,
		timeout: u64,
		by_pallet: bool,
	},
	Answer {
		job: u64,
		valid: bool,
	},
	Reject {
		job: u64,
	},
	Verify {
		job: u64,
	},
	Pause {
		worker: usize,
	},
	Resume {
		worker: usize,
	},
	BondExtra {
		worker: usize,
		amount: u64,
	},
	Unregister {
		worker: usize,
	},
	Withdraw {
		worker: usize,
	},
	Advance {
		blocks: u64,
	},
	/// Draw the pending jobs in this block, with or without fresh randomness.
	Draw {
		fresh: bool,
	},
}

fn op() -> impl Strategy<Value = Op> {
	prop_oneof![
		(0..3usize, 500..3_000u64, 0..400u64, 1..8u8)
			.prop_map(|(worker, stake, price, modes)| Op::Register { worker, stake, price, modes }),
		(0..3usize, 0..3usize, 0..600u64, 0..30u64, any::<bool>()).prop_map(
			|(requester, mode, max_fee, timeout, by_pallet)| Op::Submit {
				requester,
				mode,
				max_fee,
				timeout,
				by_pallet
			}
		),
		(0..12u64, any::<bool>()).prop_map(|(job, valid)| Op::Answer { job, valid }),
		(0..12u64).prop_map(|job| Op::Reject { job }),
		(0..12u64).prop_map(|job| Op::Verify { job }),
		(0..3usize).prop_map(|worker| Op::Pause { worker }),
		(0..3usize).prop_map(|worker| Op::Resume { worker }),
		(0..3usize, 0..2_000u64).prop_map(|(worker, amount)| Op::BondExtra { worker, amount }),
		(0..3usize).prop_map(|worker| Op::Unregister { worker }),
		(0..3usize).prop_map(|worker| Op::Withdraw { worker }),
		(1..25u64).prop_map(|blocks| Op::Advance { blocks }),
		any::<bool>().prop_map(|fresh| Op::Draw { fresh }),
	]
}

fn apply(op: &Op, release: ReleaseId) -> DispatchResult {
	let signed = RuntimeOrigin::signed;
	match *op {
		Op::Register { worker, stake, price, modes } => Inference::register_worker(
			signed(WORKERS[worker]),
			stake,
			vec![release].try_into().unwrap(),
			ModeSet(modes),
			price,
			3,
			Hardware::Cpu,
		),
		Op::Submit { requester, mode, max_fee, timeout, by_pallet: true } =>
			<Inference as InferenceRequester<u64, u64, u64>>::request(
				REQUESTERS[requester],
				release,
				VerificationMode::ALL[mode],
				input(),
				max_fee,
				(timeout > 0).then_some(timeout),
			)
			.map(|_| ()),
		Op::Submit { requester, mode, max_fee, timeout, by_pallet: false } =>
			Inference::submit_job(
				signed(REQUESTERS[requester]),
				release,
				VerificationMode::ALL[mode],
				input(),
				max_fee,
				(timeout > 0).then_some(timeout),
			),
		Op::Answer { job, valid } => {
			let Some(record) = Jobs::<Test>::get(job) else {
				return Err(Error::<Test>::UnknownJob.into())
			};
			let proof: &[u8] = if valid { b"valid" } else { b"nope" };
			Inference::submit_result(
				signed(record.worker),
				job,
				output(),
				evidence(record.mode, proof),
			)
			.map(|_| ())
			.map_err(|e| e.error)
		},
		Op::Reject { job } => {
			let worker = Jobs::<Test>::get(job).map(|j| j.worker).unwrap_or(W1);
			Inference::reject_job(signed(worker), job, RejectReason::BadInput)
		},
		Op::Verify { job } => Inference::verify_result(signed(BOB), job),
		Op::Pause { worker } => Inference::pause_worker(signed(WORKERS[worker])),
		Op::Resume { worker } => Inference::resume_worker(signed(WORKERS[worker])),
		Op::BondExtra { worker, amount } => Inference::bond_extra(signed(WORKERS[worker]), amount),
		Op::Unregister { worker } => Inference::unregister_worker(signed(WORKERS[worker])),
		Op::Withdraw { worker } => Inference::withdraw_stake(signed(WORKERS[worker])),
		Op::Advance { blocks } => {
			run_to_block(System::block_number() + blocks);
			Ok(())
		},
		Op::Draw { fresh } => {
			if fresh {
				new_randomness();
			}
			Inference::on_poll(System::block_number(), &mut WeightMeter::new());
			Ok(())
		},
	}
}

#[test]
fn a_request_from_another_pallet_that_fails_late_changes_nothing() {
	new_test_ext(|| {
		let r = market();
		// The release cannot count another open job: the last check, after the escrow hold.
		pallet_model_hub::Releases::<Test>::mutate(r, |rel| {
			rel.as_mut().unwrap().open_jobs = u32::MAX
		});
		let root = sp_io::storage::root(StateVersion::V1);
		assert!(<Inference as InferenceRequester<u64, u64, u64>>::request(
			ALICE,
			r,
			VerificationMode::Vanilla,
			input(),
			1_000,
			None
		)
		.is_err());
		assert_eq!(root, sp_io::storage::root(StateVersion::V1), "a failed request left traces");
		pallet_model_hub::Releases::<Test>::mutate(r, |rel| rel.as_mut().unwrap().open_jobs = 0);
	});
}

proptest! {
	#![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

	#[test]
	fn random_call_sequences_keep_the_books(ops in proptest::collection::vec(op(), 1..60)) {
		new_test_ext(|| {
			let issuance = Balances::total_issuance();
			let release = publish_release(all_modes());
			for op in &ops {
				let root = sp_io::storage::root(StateVersion::V1);
				let result = apply(op, release);
				if result.is_err() {
					assert_eq!(root, sp_io::storage::root(StateVersion::V1), "{op:?} failed but changed state");
				}
				check_invariants(issuance);
			}
			// Everything drains: all jobs end and are pruned eventually.
			run_to_block(System::block_number() + 300);
			check_invariants(issuance);
			assert!(Jobs::<Test>::iter().next().is_none(), "jobs left after retention");
			assert!(PendingJobs::<Test>::iter().next().is_none(), "jobs left undrawn");
			assert!(Workers::<Test>::iter_values().all(|w| w.open_jobs == 0));
		});
	}
}
