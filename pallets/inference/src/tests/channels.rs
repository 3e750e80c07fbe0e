//! Payment channels of the direct path: opening, top-ups, redeeming vouchers in batches,
//! closing, and the worker's endpoint.

use super::*;
use opg_primitives::channel::{signing_payload, Voucher, RECEIPT_TAG, VOUCHER_TAG};
use polkadot_sdk::{
	frame_support::{assert_noop, assert_ok},
	sp_runtime::testing::TestSignature,
};

const V: VerificationMode = VerificationMode::Vanilla;
const T: VerificationMode = VerificationMode::Tee;

fn held(who: u64) -> u64 {
	Balances::balance_on_hold(&HoldReason::ChannelDeposit.into(), &who)
}

/// The market (release served by W1 in Vanilla and TEE) and a channel from ALICE to W1 with
/// `deposit`, in `mode`; returns (release, channel).
fn channel(mode: VerificationMode, deposit: u64) -> (ReleaseId, u64) {
	let release = market();
	let id = NextChannelId::<Test>::get();
	assert_ok!(Inference::open_channel(RuntimeOrigin::signed(ALICE), W1, release, mode, deposit));
	(release, id)
}

fn voucher(channel: u64, seq: u64, pay: u64, burn: u64) -> Voucher<u64> {
	Voucher {
		channel,
		seq,
		cumulative_pay: pay,
		cumulative_burn: burn,
		request_hash: H256::repeat_byte(seq as u8),
	}
}

/// `who`'s signature of `v`, as this chain checks it.
fn sign(who: u64, v: &Voucher<u64>) -> TestSignature {
	TestSignature(who, Inference::voucher_payload(v))
}

fn redeem(worker: u64, v: Voucher<u64>, signer: u64) -> DispatchResult {
	let (signature, id, seq) = (sign(signer, &v), v.channel, v.seq);
	Inference::redeem(RuntimeOrigin::signed(worker), id, v, signature, root(seq))
}

fn root(seq: u64) -> H256 {
	H256::repeat_byte(0x80 | seq as u8)
}

#[test]
fn open_holds_the_deposit_and_indexes_the_channel() {
	new_test_ext(|| {
		let (release, id) = channel(T, 1_000);
		assert_eq!(held(ALICE), 1_000);
		assert_eq!(ChannelIndex::<Test>::get((ALICE, W1, release)), Some(id));
		let c = Channels::<Test>::get(id).unwrap();
		assert_eq!(
			(c.requester, c.worker, c.mode, c.deposit, c.last_seq),
			(ALICE, W1, T, 1_000, 0)
		);
		System::assert_last_event(
			Event::ChannelOpened {
				channel: id,
				requester: ALICE,
				worker: W1,
				release,
				mode: T,
				deposit: 1_000,
			}
			.into(),
		);
		// Another requester, or the same one to another worker, gets its own channel.
		assert_ok!(Inference::open_channel(RuntimeOrigin::signed(BOB), W1, release, V, 100));
		assert_eq!(NextChannelId::<Test>::get(), id + 2);
	});
}

#[test]
fn open_refuses_every_bad_request_and_holds_nothing() {
	new_test_ext(|| {
		let release = market();
		let open = |who: u64, worker: u64, release: ReleaseId, mode, deposit: u64| {
			Inference::open_channel(RuntimeOrigin::signed(who), worker, release, mode, deposit)
		};
		assert_noop!(open(W1, W1, release, V, 1_000), Error::<Test>::ChannelToSelf);
		assert_noop!(open(ALICE, W1, release, V, 99), Error::<Test>::DepositTooLow);
		assert_noop!(
			open(ALICE, W1, release, VerificationMode::Zk, 1_000),
			Error::<Test>::ModeUnavailable
		);
		assert_noop!(open(ALICE, W2, release, V, 1_000), Error::<Test>::NotWorker);
		assert_noop!(open(ALICE, W1, release + 1, V, 1_000), Error::<Test>::ReleaseNotServed);
		assert_noop!(open(POOR, W1, release, V, 100), Error::<Test>::InsufficientBalance);
		// A release W1 serves only in Vanilla: no TEE channel.
		let vanilla_only = publish_release(ModeSet::of(&[V]));
		assert_ok!(Inference::update_worker(
			RuntimeOrigin::signed(W1),
			vec![release, vanilla_only].try_into().unwrap(),
			vanilla_and_tee(),
			100,
			4,
			Hardware::Cpu
		));
		assert_noop!(open(ALICE, W1, vanilla_only, T, 1_000), Error::<Test>::ModeNotSupported);
		// The chain must be able to verify the mode.
		SUPPORTED.with(|s| *s.borrow_mut() = ModeSet::of(&[V]));
		assert_noop!(open(ALICE, W1, release, T, 1_000), Error::<Test>::ModeUnavailable);
		SUPPORTED.with(|s| *s.borrow_mut() = all_modes());
		// One channel per requester, worker and release.
		assert_ok!(open(ALICE, W1, release, V, 1_000));
		assert_noop!(open(ALICE, W1, release, T, 1_000), Error::<Test>::ChannelExists);
		// A paused worker takes no new channel.
		assert_ok!(Inference::pause_worker(RuntimeOrigin::signed(W1)));
		assert_noop!(open(BOB, W1, release, V, 1_000), Error::<Test>::WorkerNotActive);
		assert_eq!(held(BOB), 0);
	});
}

#[test]
fn top_up_adds_to_the_deposit_of_an_open_channel_only() {
	new_test_ext(|| {
		let (_, id) = channel(V, 500);
		assert_ok!(Inference::top_up_channel(RuntimeOrigin::signed(ALICE), id, 250));
		assert_eq!((held(ALICE), Channels::<Test>::get(id).unwrap().deposit), (750, 750));
		System::assert_last_event(
			Event::ChannelToppedUp { channel: id, amount: 250, deposit: 750 }.into(),
		);
		let top_up = |who: u64, id: u64, amount: u64| {
			Inference::top_up_channel(RuntimeOrigin::signed(who), id, amount)
		};
		assert_noop!(top_up(BOB, id, 10), Error::<Test>::NotChannelRequester);
		assert_noop!(top_up(ALICE, id + 1, 10), Error::<Test>::UnknownChannel);
		assert_noop!(top_up(ALICE, id, 0), Error::<Test>::DepositTooLow);
		assert_noop!(top_up(ALICE, id, START_BALANCE), Error::<Test>::InsufficientBalance);
		assert_noop!(top_up(ALICE, id, u64::MAX), Error::<Test>::Overflow);
		assert_ok!(Inference::close_channel(RuntimeOrigin::signed(ALICE), id));
		assert_noop!(top_up(ALICE, id, 10), Error::<Test>::ChannelClosing);
	});
}

#[test]
fn redeem_pays_worker_and_publisher_and_burns_the_fee() {
	new_test_ext(|| {
		let (_, id) = channel(T, 1_000);
		let (w1, publisher, issuance) = (free(W1), free(PUBLISHER), Balances::total_issuance());
		// Three requests at 100 each, 20 (TEE flat fee) + 5 bytes' fee each.
		assert_ok!(redeem(W1, voucher(id, 3, 300, 75), ALICE));
		// Royalty 10% of 300.
		assert_eq!(free(W1), w1 + 270);
		assert_eq!(free(PUBLISHER), publisher + 30);
		assert_eq!(Balances::total_issuance(), issuance - 75);
		assert_eq!(held(ALICE), 1_000 - 375);
		assert_eq!(Inference::burn_totals().verification_fees, 75);
		System::assert_last_event(
			Event::ChannelRedeemed {
				channel: id,
				first_seq: 1,
				last_seq: 3,
				worker_payment: 270,
				royalty: 30,
				burned: 75,
				root: root(3),
			}
			.into(),
		);
		// The next voucher pays only the increase; the batch is the requests since.
		assert_ok!(redeem(W1, voucher(id, 4, 400, 100), ALICE));
		assert_eq!(free(W1), w1 + 360);
		let c = Channels::<Test>::get(id).unwrap();
		assert_eq!((c.redeemed_pay, c.redeemed_burn, c.last_seq), (400, 100, 4));
		let batches: Vec<_> = c.batches.iter().map(|b| (b.first_seq, b.last_seq, b.root)).collect();
		assert_eq!(batches, vec![(1, 3, root(3)), (4, 4, root(4))]);
		assert_eq!(held(ALICE), 500);
	});
}

#[test]
fn redeem_refuses_every_bad_voucher_and_changes_nothing() {
	new_test_ext(|| {
		let (release, id) = channel(V, 1_000);
		assert_ok!(Inference::open_channel(RuntimeOrigin::signed(BOB), W1, release, V, 1_000));
		assert_ok!(redeem(W1, voucher(id, 2, 100, 20), ALICE));
		let good = voucher(id, 3, 200, 30);
		assert_noop!(redeem(W2, good.clone(), ALICE), Error::<Test>::NotChannelWorker);
		assert_noop!(redeem(W1, voucher(id + 5, 3, 200, 30), ALICE), Error::<Test>::UnknownChannel);
		// Signed by someone else, or for another channel (BOB's), or over another payload.
		assert_noop!(redeem(W1, good.clone(), BOB), Error::<Test>::BadVoucher);
		let bobs = voucher(id + 1, 1, 100, 10);
		let signature = sign(BOB, &bobs);
		assert_noop!(
			Inference::redeem(RuntimeOrigin::signed(W1), id, bobs, signature, root(1)),
			Error::<Test>::BadVoucher
		);
		for payload in [
			signing_payload(RECEIPT_TAG, &System::block_hash(0), &good),
			signing_payload(VOUCHER_TAG, &H256::repeat_byte(1), &good),
		] {
			assert_noop!(
				Inference::redeem(
					RuntimeOrigin::signed(W1),
					id,
					good.clone(),
					TestSignature(ALICE, payload),
					root(3)
				),
				Error::<Test>::BadVoucher
			);
		}
		// Not newer than what was redeemed.
		assert_noop!(redeem(W1, voucher(id, 2, 200, 30), ALICE), Error::<Test>::StaleVoucher);
		assert_noop!(redeem(W1, voucher(id, 3, 99, 30), ALICE), Error::<Test>::StaleVoucher);
		assert_noop!(redeem(W1, voucher(id, 3, 200, 19), ALICE), Error::<Test>::StaleVoucher);
		// Two requests need at least twice the flat fee (10) burned.
		assert_noop!(redeem(W1, voucher(id, 4, 300, 39), ALICE), Error::<Test>::BurnTooLow);
		// More than the deposit.
		assert_noop!(redeem(W1, voucher(id, 3, 971, 30), ALICE), Error::<Test>::Overdrawn);
		assert_noop!(redeem(W1, voucher(id, 3, u64::MAX, 30), ALICE), Error::<Test>::Overdrawn);
		// Exactly the deposit is fine.
		assert_ok!(redeem(W1, voucher(id, 3, 970, 30), ALICE));
		assert_eq!(held(ALICE), 0);
	});
}

#[test]
fn batches_within_the_dispute_window_are_bounded() {
	new_test_ext(|| {
		let (_, id) = channel(V, 1_000);
		for seq in 1..=3 {
			assert_ok!(redeem(W1, voucher(id, seq, 10 * seq, 10 * seq), ALICE));
		}
		assert_noop!(redeem(W1, voucher(id, 4, 40, 40), ALICE), Error::<Test>::TooManyBatches);
		// The dispute window is 20 blocks: once the first batches leave it, there is room.
		run_to_block(21);
		assert_ok!(redeem(W1, voucher(id, 4, 40, 40), ALICE));
		let seqs: Vec<_> =
			Channels::<Test>::get(id).unwrap().batches.iter().map(|b| b.first_seq).collect();
		assert_eq!(seqs, vec![4]);
	});
}

#[test]
fn closing_leaves_the_worker_its_window_then_refunds_the_rest() {
	new_test_ext(|| {
		let (release, id) = channel(V, 1_000);
		assert_noop!(
			Inference::close_channel(RuntimeOrigin::signed(W1), id),
			Error::<Test>::NotChannelRequester
		);
		assert_ok!(Inference::close_channel(RuntimeOrigin::signed(ALICE), id));
		System::assert_last_event(Event::ChannelClosing { channel: id, redeem_until: 11 }.into());
		assert_noop!(
			Inference::close_channel(RuntimeOrigin::signed(ALICE), id),
			Error::<Test>::ChannelClosing
		);
		assert_noop!(
			Inference::finish_close(RuntimeOrigin::signed(BOB), id),
			Error::<Test>::NotClosable
		);
		// The worker redeems at the last block of the window.
		run_to_block(11);
		assert_ok!(redeem(W1, voucher(id, 1, 100, 10), ALICE));
		run_to_block(12);
		assert_noop!(redeem(W1, voucher(id, 2, 200, 20), ALICE), Error::<Test>::ChannelClosed);
		// Its batch is within the dispute window until block 31.
		let c = Channels::<Test>::get(id).unwrap();
		assert_eq!(Inference::channel_closable_at(&c), Some(31));
		assert_noop!(
			Inference::finish_close(RuntimeOrigin::signed(BOB), id),
			Error::<Test>::NotClosable
		);
		run_to_block(31);
		let alice = free(ALICE);
		assert_ok!(Inference::finish_close(RuntimeOrigin::signed(BOB), id));
		System::assert_last_event(Event::ChannelClosed { channel: id, refund: 890 }.into());
		assert_eq!((free(ALICE), held(ALICE)), (alice + 890, 0));
		assert!(Channels::<Test>::get(id).is_none());
		assert!(ChannelIndex::<Test>::get((ALICE, W1, release)).is_none());
		assert_noop!(
			Inference::finish_close(RuntimeOrigin::signed(BOB), id),
			Error::<Test>::UnknownChannel
		);
		// The pair may open a new channel.
		assert_ok!(Inference::open_channel(RuntimeOrigin::signed(ALICE), W1, release, V, 100));
	});
}

#[test]
fn an_unused_channel_refunds_everything() {
	new_test_ext(|| {
		let (_, id) = channel(V, 1_000);
		let alice = free(ALICE);
		assert_ok!(Inference::close_channel(RuntimeOrigin::signed(ALICE), id));
		assert_eq!(Inference::channel_closable_at(&Channels::<Test>::get(id).unwrap()), Some(12));
		run_to_block(12);
		assert_ok!(Inference::finish_close(RuntimeOrigin::signed(ALICE), id));
		assert_eq!(free(ALICE), alice + 1_000);
	});
}

#[test]
fn a_leaving_worker_redeems_until_it_withdraws_its_stake() {
	new_test_ext(|| {
		let (_, id) = channel(V, 1_000);
		assert_ok!(Inference::unregister_worker(RuntimeOrigin::signed(W1)));
		// Unbonding, its stake still answers for the batch.
		let w1 = free(W1);
		assert_ok!(redeem(W1, voucher(id, 1, 100, 10), ALICE));
		assert_eq!(free(W1), w1 + 90);
		// The stake stays until that batch's dispute window has passed.
		run_to_block(11);
		assert_noop!(
			Inference::withdraw_stake(RuntimeOrigin::signed(W1)),
			Error::<Test>::WorkerHasOpenDisputes
		);
		run_to_block(21);
		assert_ok!(Inference::withdraw_stake(RuntimeOrigin::signed(W1)));
		// Without stake nothing it commits could be disputed: no more redemptions.
		assert_noop!(redeem(W1, voucher(id, 2, 200, 20), ALICE), Error::<Test>::NotWorker);
	});
}

#[test]
fn royalty_to_the_requester_itself_is_released() {
	new_test_ext(|| {
		let release = market();
		let id = NextChannelId::<Test>::get();
		assert_ok!(Inference::open_channel(
			RuntimeOrigin::signed(PUBLISHER),
			W1,
			release,
			V,
			1_000
		));
		let (publisher, w1) = (free(PUBLISHER), free(W1));
		assert_ok!(redeem(W1, voucher(id, 1, 100, 10), PUBLISHER));
		assert_eq!((free(PUBLISHER), free(W1)), (publisher + 10, w1 + 90));
		assert_eq!(held(PUBLISHER), 890);
	});
}

#[test]
fn endpoints_are_urls_of_workers() {
	new_test_ext(|| {
		market();
		let set = |who: u64, url: &[u8]| {
			Inference::set_endpoint(RuntimeOrigin::signed(who), url.to_vec().try_into().unwrap())
		};
		assert_ok!(set(W1, b"https://w1.example:9955"));
		assert_eq!(Endpoints::<Test>::get(W1).unwrap().into_inner(), b"https://w1.example:9955");
		System::assert_last_event(Event::EndpointSet { worker: W1 }.into());
		for bad in
			[&b"ftp://w1"[..], b"http://", b"https:///x", b"http://a b", b"w1:9955", b"http://\xff"]
		{
			assert_noop!(set(W1, bad), Error::<Test>::BadEndpoint);
		}
		assert_noop!(set(ALICE, b"http://a"), Error::<Test>::NotWorker);
		assert_ok!(set(W1, b""));
		assert!(Endpoints::<Test>::get(W1).is_none());
		// Leaving removes it.
		assert_ok!(set(W1, b"http://10.0.0.1:9955/"));
		assert_ok!(Inference::unregister_worker(RuntimeOrigin::signed(W1)));
		run_to_block(11);
		assert_ok!(Inference::withdraw_stake(RuntimeOrigin::signed(W1)));
		assert!(Endpoints::<Test>::get(W1).is_none());
	});
}
