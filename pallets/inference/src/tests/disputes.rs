//! Challenges and random audits of direct-path receipts: drawn after the commitment, opened
//! with data and an inclusion proof, or slashed at the deadline.

use super::*;
use opg_primitives::{
	channel::{batch_proof, batch_root, receipt_leaf, Receipt, Voucher},
	payload_hash,
};
use polkadot_sdk::{
	frame_support::{assert_noop, assert_ok, traits::fungible::InspectHold},
	sp_runtime::testing::TestSignature,
};

const V: VerificationMode = VerificationMode::Vanilla;
const T: VerificationMode = VerificationMode::Tee;
/// `OpenDeadline` and `ChallengeBond`, `ReceiptSlash` of the mock.
const DEADLINE: u64 = 5;
const BOND: u64 = 50;
const SLASH: u64 = 400;
/// `DisputeWindow` and `UnbondingPeriod` of the mock.
const WINDOW: u64 = 20;
const UNBONDING: u64 = 10;

/// What W1 answered on a channel: request, response and the receipt for each sequence number.
struct Answers {
	channel: u64,
	receipts: Vec<Receipt>,
	requests: Vec<Vec<u8>>,
	responses: Vec<Vec<u8>>,
}

impl Answers {
	fn leaves(&self) -> Vec<H256> {
		self.receipts.iter().map(receipt_leaf).collect()
	}
	fn get(&self, seq: u64) -> (Receipt, Vec<u8>, Vec<u8>) {
		let i = seq as usize - 1;
		(self.receipts[i].clone(), self.requests[i].clone(), self.responses[i].clone())
	}
}

fn receipt(channel: u64, seq: u64, release: ReleaseId, request: &[u8], response: &[u8]) -> Receipt {
	Receipt {
		channel,
		seq,
		release,
		request_hash: payload_hash(request),
		response_hash: payload_hash(response),
		engine: b"opg-exec/test".to_vec().try_into().unwrap(),
		device_class: b"cpu".to_vec().try_into().unwrap(),
		unix_ms: 1_000 + seq,
	}
}

fn signed(who: u64, r: &Receipt) -> TestSignature {
	TestSignature(who, Inference::receipt_payload(r))
}

/// A channel from ALICE to W1 in `mode` with `n` answered requests (price 100 each), redeemed
/// in one batch whose root W1 commits.
fn answered(mode: VerificationMode, n: u64) -> Answers {
	let release = market();
	let channel = NextChannelId::<Test>::get();
	assert_ok!(Inference::open_channel(RuntimeOrigin::signed(ALICE), W1, release, mode, 10_000));
	let mut a = Answers { channel, receipts: vec![], requests: vec![], responses: vec![] };
	for seq in 1..=n {
		let (request, response) = (vec![seq as u8; 8], vec![0xF0 | seq as u8; 4]);
		a.receipts.push(receipt(channel, seq, release, &request, &response));
		a.requests.push(request);
		a.responses.push(response);
	}
	redeem(&a, n);
	a
}

/// W1 redeems the voucher of `seq`, committing the root of `a`'s receipts up to it.
fn redeem(a: &Answers, seq: u64) {
	let last = Channels::<Test>::get(a.channel).unwrap().last_seq;
	let v = Voucher {
		channel: a.channel,
		seq,
		cumulative_pay: 100 * seq,
		cumulative_burn: 20 * seq,
		request_hash: a.receipts[seq as usize - 1].request_hash,
	};
	let signature = TestSignature(ALICE, Inference::voucher_payload(&v));
	let root = batch_root(&a.leaves()[last as usize..seq as usize]);
	assert_ok!(Inference::redeem(RuntimeOrigin::signed(W1), a.channel, v, signature, root));
}

fn open(a: &Answers, seq: u64) -> DispatchResult {
	let (r, request, response) = a.get(seq);
	open_with(a, &r, signed(W1, &r), None, request, response)
}

fn open_with(
	a: &Answers,
	r: &Receipt,
	signature: TestSignature,
	enclave: Option<[u8; 64]>,
	request: Vec<u8>,
	response: Vec<u8>,
) -> DispatchResult {
	let batch = Channels::<Test>::get(a.channel)
		.unwrap()
		.batches
		.into_iter()
		.find(|b| (b.first_seq..=b.last_seq).contains(&r.seq))
		.unwrap();
	let leaves = &a.leaves()[batch.first_seq as usize - 1..batch.last_seq as usize];
	let proof = batch_proof(leaves, (r.seq - batch.first_seq) as usize).unwrap();
	Inference::open_receipt(
		RuntimeOrigin::signed(W1),
		r.clone(),
		signature,
		enclave,
		request.try_into().unwrap(),
		response.try_into().unwrap(),
		proof.try_into().unwrap(),
	)
}

fn challenge(who: u64, r: &Receipt, request: Vec<u8>, response: Vec<u8>) -> DispatchResult {
	Inference::challenge_receipt(
		RuntimeOrigin::signed(who),
		r.clone(),
		signed(W1, r),
		request.try_into().unwrap(),
		response.try_into().unwrap(),
	)
}

fn audited(channel: u64) -> Vec<u64> {
	let mut seqs: Vec<u64> = Disputes::<Test>::iter()
		.filter(|((c, _, leaf), d)| {
			*c == channel && *leaf == H256::zero() && d.kind == DisputeKind::Audit
		})
		.map(|((_, seq, _), _)| seq)
		.collect();
	seqs.sort();
	seqs
}

fn bond_held(who: u64) -> u64 {
	Balances::balance_on_hold(&HoldReason::ChallengeBond.into(), &who)
}

#[test]
fn audits_are_drawn_under_randomness_newer_than_the_commitment() {
	new_test_ext(|| {
		AuditsPerBatch::set(3);
		let a = answered(V, 8);
		// The round W1 saw when it committed draws nothing, however often the hook runs.
		Inference::on_poll(1, &mut WeightMeter::new());
		assert!(audited(a.channel).is_empty());
		assert_eq!(AuditTail::<Test>::get() - AuditHead::<Test>::get(), 1);
		run_to_block(2);
		let drawn = audited(a.channel);
		assert_eq!(drawn.len(), 3, "three distinct receipts of eight");
		assert!(drawn.iter().all(|s| (1..=8).contains(s)));
		assert_eq!(AuditHead::<Test>::get(), AuditTail::<Test>::get());
		for seq in &drawn {
			System::assert_has_event(
				Event::AuditDrawn {
					channel: a.channel,
					seq: *seq,
					worker: W1,
					deadline: 2 + DEADLINE,
				}
				.into(),
			);
		}
	});
}

#[test]
fn a_small_batch_is_audited_whole() {
	new_test_ext(|| {
		AuditsPerBatch::set(4);
		let a = answered(V, 2);
		run_to_block(2);
		assert_eq!(audited(a.channel), vec![1, 2]);
	});
}

#[test]
fn opening_an_audited_receipt_closes_the_audit_and_costs_nothing() {
	new_test_ext(|| {
		AuditsPerBatch::set(2);
		let a = answered(V, 5);
		run_to_block(2);
		let before = stake(W1);
		for seq in audited(a.channel) {
			assert_ok!(open(&a, seq));
			System::assert_last_event(
				Event::ReceiptOpened { channel: a.channel, seq, worker: W1 }.into(),
			);
		}
		assert!(audited(a.channel).is_empty());
		run_to_block(2 + DEADLINE + 2);
		assert_eq!(stake(W1), before);
		// Once open, it is no longer disputed.
		let seq = 1;
		assert_noop!(open(&a, seq), Error::<Test>::NoSuchDispute);
	});
}

#[test]
fn an_unopened_audit_slashes_the_worker_at_its_deadline() {
	new_test_ext(|| {
		AuditsPerBatch::set(1);
		let a = answered(V, 4);
		run_to_block(2);
		let seq = audited(a.channel)[0];
		let before = stake(W1);
		run_to_block(2 + DEADLINE);
		assert_eq!(stake(W1), before, "opening is allowed through the deadline block");
		run_to_block(2 + DEADLINE + 1);
		assert_eq!(stake(W1), before - SLASH);
		assert_eq!(BurnedByCause::<Test>::get(BurnCause::Slash), SLASH);
		System::assert_has_event(
			Event::DisputeLost { channel: a.channel, seq, worker: W1, burned: SLASH, refund: 0 }
				.into(),
		);
		assert_noop!(open(&a, seq), Error::<Test>::NoSuchDispute);
	});
}

#[test]
fn an_opening_must_be_the_workers_receipt_with_its_data_in_the_batch() {
	new_test_ext(|| {
		AuditsPerBatch::set(1);
		let a = answered(V, 4);
		run_to_block(2);
		let seq = audited(a.channel)[0];
		let (r, request, response) = a.get(seq);
		// Signed by someone else.
		assert_noop!(
			open_with(&a, &r, signed(ALICE, &r), None, request.clone(), response.clone()),
			Error::<Test>::BadReceipt
		);
		// Data that is not what the receipt names (the worker did not keep it).
		assert_noop!(
			open_with(&a, &r, signed(W1, &r), None, vec![0; 8], response.clone()),
			Error::<Test>::DataMismatch
		);
		// A receipt W1 signs now, for other data: it is not the committed one.
		let other = receipt(a.channel, seq, r.release, &[1, 2, 3], &[4]);
		assert_noop!(
			open_with(&a, &other, signed(W1, &other), None, vec![1, 2, 3], vec![4]),
			Error::<Test>::NotInBatch
		);
		// A wrong proof.
		assert_noop!(
			Inference::open_receipt(
				RuntimeOrigin::signed(W1),
				r.clone(),
				signed(W1, &r),
				None,
				request.clone().try_into().unwrap(),
				response.clone().try_into().unwrap(),
				vec![H256::zero(); 2].try_into().unwrap(),
			),
			Error::<Test>::NotInBatch
		);
		// A receipt nobody disputes.
		let undisputed = (1..=4).find(|s| *s != seq).unwrap();
		assert_noop!(open(&a, undisputed), Error::<Test>::NoSuchDispute);
		assert_ok!(open_with(&a, &r, signed(W1, &r), None, request, response));
	});
}

#[test]
fn a_tee_receipt_opens_only_with_the_enclave_signature() {
	new_test_ext(|| {
		AuditsPerBatch::set(1);
		let a = answered(T, 3);
		run_to_block(2);
		let seq = audited(a.channel)[0];
		let (r, request, response) = a.get(seq);
		let payload = Inference::receipt_payload(&r);
		let open_tee =
			|enclave| open_with(&a, &r, signed(W1, &r), enclave, request.clone(), response.clone());
		assert_noop!(open_tee(None), Error::<Test>::BadEnclaveSignature);
		assert_noop!(open_tee(Some([7; 64])), Error::<Test>::BadEnclaveSignature);
		// A key the chain no longer accepts (expired, revoked measurement).
		NO_ENCLAVE.with(|n| n.borrow_mut().push(W1));
		assert_noop!(open_tee(Some(enclave_sign(&payload))), Error::<Test>::BadEnclaveSignature);
		NO_ENCLAVE.with(|n| n.borrow_mut().clear());
		assert_ok!(open_tee(Some(enclave_sign(&payload))));
	});
}

#[test]
fn a_challenge_of_an_honest_receipt_burns_the_bond() {
	new_test_ext(|| {
		let a = answered(V, 3);
		let (r, request, response) = a.get(2);
		let before = free(BOB);
		assert_ok!(challenge(BOB, &r, request, response));
		assert_eq!(bond_held(BOB), BOND);
		let leaf = receipt_leaf(&r);
		System::assert_last_event(
			Event::ReceiptChallenged {
				channel: a.channel,
				seq: 2,
				challenger: BOB,
				leaf,
				deadline: 1 + DEADLINE,
			}
			.into(),
		);
		assert_ok!(open(&a, 2));
		assert_eq!((bond_held(BOB), free(BOB)), (0, before - BOND));
		assert_eq!(BurnedByCause::<Test>::get(BurnCause::FailedChallenge), BOND);
		System::assert_has_event(
			Event::ChallengeFailed { channel: a.channel, seq: 2, challenger: BOB, burned: BOND }
				.into(),
		);
		run_to_block(1 + DEADLINE + 2);
		assert!(Disputes::<Test>::iter().next().is_none());
	});
}

#[test]
fn a_signed_receipt_left_out_of_the_batch_slashes_and_repays_the_requester() {
	new_test_ext(|| {
		let a = answered(V, 3);
		// W1 signed this answer for sequence 2 too, but committed another.
		let (request, response) = (b"what alice asked".to_vec(), b"what W1 said".to_vec());
		let r = receipt(a.channel, 2, a.receipts[1].release, &request, &response);
		let (alice, bob, staked) = (free(ALICE), free(BOB), stake(W1));
		assert_ok!(challenge(BOB, &r, request.clone(), response.clone()));
		// W1 cannot show it in the batch.
		assert_noop!(
			open_with(&a, &r, signed(W1, &r), None, request, response),
			Error::<Test>::NotInBatch
		);
		run_to_block(1 + DEADLINE + 1);
		// The request's price (W1's price of 100) goes back to ALICE, the rest is burned,
		// BOB has its bond back.
		assert_eq!(free(ALICE), alice + 100);
		assert_eq!((free(BOB), bond_held(BOB)), (bob, 0));
		assert_eq!(stake(W1), staked - SLASH);
		assert_eq!(BurnedByCause::<Test>::get(BurnCause::Slash), SLASH - 100);
		System::assert_has_event(
			Event::DisputeLost {
				channel: a.channel,
				seq: 2,
				worker: W1,
				burned: SLASH - 100,
				refund: 100,
			}
			.into(),
		);
	});
}

#[test]
fn a_challenge_needs_a_signed_committed_receipt_with_its_data_and_a_bond() {
	new_test_ext(|| {
		let a = answered(V, 3);
		let (r, request, response) = a.get(1);
		let c = |who, r: &Receipt, rq: &Vec<u8>, rs: &Vec<u8>| {
			challenge(who, r, rq.clone(), rs.clone())
		};
		let mut other = r.clone();
		other.channel = 99;
		assert_noop!(c(BOB, &other, &request, &response), Error::<Test>::UnknownChannel);
		let mut other_release = r.clone();
		other_release.release += 1;
		assert_noop!(c(BOB, &other_release, &request, &response), Error::<Test>::BadReceipt);
		assert_noop!(
			Inference::challenge_receipt(
				RuntimeOrigin::signed(BOB),
				r.clone(),
				signed(ALICE, &r),
				request.clone().try_into().unwrap(),
				response.clone().try_into().unwrap(),
			),
			Error::<Test>::BadReceipt
		);
		assert_noop!(c(BOB, &r, &request, &vec![1]), Error::<Test>::DataMismatch);
		// Sequence 4 is not redeemed yet: nothing is committed to challenge.
		let later = receipt(a.channel, 4, r.release, &request, &response);
		assert_noop!(c(BOB, &later, &request, &response), Error::<Test>::NotCommitted);
		assert_noop!(c(77, &r, &request, &response), Error::<Test>::InsufficientBalance);
		assert_ok!(c(BOB, &r, &request, &response));
		assert_noop!(c(ALICE, &r, &request, &response), Error::<Test>::AlreadyDisputed);
		// After the dispute window nothing of the batch can be challenged.
		run_to_block(1 + WINDOW);
		let (r3, rq3, rs3) = a.get(3);
		assert_noop!(c(BOB, &r3, &rq3, &rs3), Error::<Test>::NotCommitted);
	});
}

#[test]
fn an_audit_and_a_challenge_of_one_receipt_close_together() {
	new_test_ext(|| {
		AuditsPerBatch::set(1);
		let a = answered(V, 1);
		run_to_block(2);
		assert_eq!(audited(a.channel), vec![1]);
		let (r, request, response) = a.get(1);
		assert_ok!(challenge(BOB, &r, request, response));
		assert_ok!(open(&a, 1));
		assert!(Disputes::<Test>::iter().next().is_none());
		assert_eq!(bond_held(BOB), 0);
	});
}

#[test]
fn stake_stays_while_a_batch_can_be_disputed() {
	new_test_ext(|| {
		let a = answered(V, 2);
		let (r, request, response) = a.get(1);
		assert_ok!(challenge(BOB, &r, request, response));
		assert_ok!(Inference::pause_worker(RuntimeOrigin::signed(W1)));
		assert_ok!(Inference::unregister_worker(RuntimeOrigin::signed(W1)));
		let unlock = 1 + UNBONDING;
		run_to_block(unlock);
		// The challenge was not answered: the slash came; the batch is still disputable.
		assert_noop!(
			Inference::withdraw_stake(RuntimeOrigin::signed(W1)),
			Error::<Test>::WorkerHasOpenDisputes
		);
		run_to_block(1 + WINDOW);
		assert_ok!(Inference::withdraw_stake(RuntimeOrigin::signed(W1)));
		// A worker without stake commits nothing more.
		let v = Voucher {
			channel: a.channel,
			seq: 2,
			cumulative_pay: 200,
			cumulative_burn: 40,
			request_hash: H256::zero(),
		};
		let signature = TestSignature(ALICE, Inference::voucher_payload(&v));
		assert_noop!(
			Inference::redeem(RuntimeOrigin::signed(W1), a.channel, v, signature, H256::zero()),
			Error::<Test>::NotWorker
		);
	});
}
