//! What one block can settle, from the runtime's benchmarked weights (`pallet_inference`'s
//! `weights.rs`) and its block limits: inferences settled by channel redemptions, with the
//! audits each batch brings, against jobs through the on-chain path. Weights, not timings: the
//! figures are what the runtime admits. `cargo test --release -p opg-runtime --test capacity --
//! --nocapture` prints them.

use opg_runtime::{configs::RuntimeBlockWeights, Runtime};
use pallet_inference::{ResultVerifier, WeightInfo};
use polkadot_sdk::frame_support::{dispatch::DispatchClass, traits::Get, weights::Weight};

type Weights = <Runtime as pallet_inference::Config>::WeightInfo;

/// How many extrinsics of `weight` (each with the extrinsic base weight) fit in one block's
/// normal class, by compute and by proof size.
fn per_block(weight: Weight) -> (u64, u64) {
	let limits = RuntimeBlockWeights::get();
	let normal = limits.get(DispatchClass::Normal);
	let max = normal.max_total.expect("the normal class is bounded");
	let each = weight.saturating_add(normal.base_extrinsic);
	(max.ref_time() / each.ref_time().max(1), max.proof_size() / each.proof_size().max(1))
}

/// Requests settled by one redemption in the figures below: a channel redeemed every 5
/// minutes (its 12 open batches within the hour's dispute window) at one request every 3 s.
const BATCH: u64 = 100;

/// Bytes of a request and of a response opened for an audit in the figures below (a chat
/// request and its answer are a few hundred bytes; the demo MLP's, under a hundred).
const OPENED: u32 = 1024;

#[test]
fn a_block_settles_over_ten_thousand_direct_path_inferences() {
	let base = RuntimeBlockWeights::get().get(DispatchClass::Normal).base_extrinsic;
	let redeem = Weights::redeem();
	let (by_time, by_proof) = per_block(redeem);
	let redemptions = by_time.min(by_proof);
	// Each batch also costs its audits: the draw (in `on_poll`) and the worker's openings, each
	// an extrinsic charged for the enclave check whatever the channel's mode.
	let audits = <Runtime as pallet_inference::Config>::AuditsPerBatch::get();
	let opening = Weights::open_receipt(OPENED, OPENED)
		.saturating_add(<Runtime as pallet_inference::Config>::Verifier::weight(
			opg_primitives::VerificationMode::Tee,
			0,
			0,
			0,
		))
		.saturating_add(base);
	let batch = redeem
		.saturating_add(Weights::draw_audits(audits))
		.saturating_add(opening.saturating_mul(audits.into()));
	let (batch_time, batch_proof) = per_block(batch);
	let batches = batch_time.min(batch_proof);
	// A job of the on-chain path: submitted (64-byte input, one worker drawn) and answered
	// (16-byte output, no evidence); settling it later costs more still.
	// Two extrinsics: `per_block` adds one base weight, the second's is added here.
	let job = Weights::submit_job(64, 1)
		.saturating_add(Weights::submit_result(16, 0))
		.saturating_add(base);
	let (job_time, job_proof) = per_block(job);
	let jobs = job_time.min(job_proof);
	println!(
		"redeem: {} ps, {} bytes of proof: {redemptions} redemptions a block (compute {by_time}, \
		 proof {by_proof}); at {BATCH} requests a batch, {} inferences a block",
		redeem.ref_time(),
		redeem.proof_size(),
		redemptions * BATCH,
	);
	println!(
		"a batch with its {audits} audits opened ({OPENED}-byte request and response): {} ps, {} \
		 bytes of proof: {batches} batches a block (compute {batch_time}, proof {batch_proof}); \
		 {} inferences a block",
		batch.ref_time(),
		batch.proof_size(),
		batches * BATCH,
	);
	println!(
		"on-chain job (submit + result): {} ps, {} bytes of proof: {jobs} jobs a block \
		 (compute {job_time}, proof {job_proof})",
		job.ref_time(),
		job.proof_size(),
	);
	assert!(batches * BATCH >= 10_000, "{batches} audited batches of {BATCH} a block");
	assert!(redemptions > jobs, "a redemption settles a batch for less than a job costs");
}
