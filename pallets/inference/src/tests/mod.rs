//! Unit tests of the inference market, split by topic. Every test ends with the pallets'
//! `try_state` and the issuance/burn identity (see `mock::new_test_ext`).

mod channels;
mod deadlines;
mod disputes;
mod draw;
mod jobs;
mod llm;
mod properties;
mod settlement;
mod workers;

use crate::{mock::*, *};
use polkadot_sdk::frame_support::{
	assert_ok,
	traits::{
		fungible::{InspectHold, Mutate},
		tokens::Preservation,
	},
};

pub(crate) fn escrow(who: u64) -> u64 {
	Balances::balance_on_hold(&HoldReason::JobEscrow.into(), &who)
}

pub(crate) fn stake(who: u64) -> u64 {
	Balances::balance_on_hold(&HoldReason::WorkerStake.into(), &who)
}

pub(crate) fn free(who: u64) -> u64 {
	Balances::free_balance(who)
}

/// One release (Vanilla + TEE) served by W1 at price 100; returns the release id.
pub(crate) fn market() -> ReleaseId {
	let release = publish_release(vanilla_and_tee());
	register(W1, release, 2_000, 100, vanilla_and_tee());
	release
}

/// `submit_job` of the demo input by `who`, with `max_fee` and `timeout`; the job waits for
/// its draw.
pub(crate) fn try_queue(
	who: u64,
	release: ReleaseId,
	mode: VerificationMode,
	max_fee: u64,
	timeout: Option<u64>,
) -> DispatchResult {
	Inference::submit_job(RuntimeOrigin::signed(who), release, mode, input(), max_fee, timeout)
}

/// `submit_job` as [`try_queue`], then the draw (as the next block's would be, in this block).
pub(crate) fn try_submit(
	who: u64,
	release: ReleaseId,
	mode: VerificationMode,
	max_fee: u64,
	timeout: Option<u64>,
) -> DispatchResult {
	try_queue(who, release, mode, max_fee, timeout)?;
	draw();
	Ok(())
}

/// Submits a job by `who` and returns its id.
pub(crate) fn submit(who: u64, release: ReleaseId, mode: VerificationMode) -> JobId {
	let id = NextJobId::<Test>::get();
	assert_ok!(try_submit(who, release, mode, 1_000, None));
	id
}

pub(crate) fn evidence(mode: VerificationMode, bytes: &[u8]) -> EvidenceOf<Test> {
	let b = bytes.to_vec().try_into().unwrap();
	match mode {
		VerificationMode::Vanilla => Evidence::None,
		VerificationMode::Tee => Evidence::TeeSignature(b),
		VerificationMode::Zk => Evidence::ZkProof(b),
	}
}

/// Gives `who` funds from the publisher (a transfer, so issuance stays as it was).
pub(crate) fn fund(who: u64, amount: u64) {
	assert_ok!(<Balances as Mutate<u64>>::transfer(
		&PUBLISHER,
		&who,
		amount,
		Preservation::Preserve
	));
}
