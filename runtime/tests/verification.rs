//! TEE and ZK results through the real runtime: a development-CA enclave attests and signs, a
//! Groth16 key is registered and referenced by a release, and the market settles valid evidence
//! and slashes invalid evidence.

use codec::Encode;
use opg_nitro::dev::{Claims, DevCa, DEV_SEED};
use opg_primitives::{
	payload_hash, tee_message, ElemType, Evidence, ModeSet, Tensor, VerificationMode,
};
use opg_runtime::{
	genesis_config_presets::DEV_MEASUREMENT_LABEL, AccountId, Balances, Inference, ModelHub,
	Runtime, RuntimeOrigin, Tee, Zk, UNIT,
};
use pallet_inference::{Hardware, JobStatus};
use polkadot_sdk::{
	frame_support::{assert_noop, assert_ok, BoundedVec},
	pallet_timestamp,
	sp_core::{ed25519, Pair, H256},
	sp_genesis_builder::DEV_RUNTIME_PRESET,
	sp_keyring::Sr25519Keyring,
};

mod common;
use common::*;

const NOW_S: u64 = 1_767_225_600; // 2026-01-01

fn account(k: Sr25519Keyring) -> AccountId {
	k.to_account_id()
}

fn signed(k: Sr25519Keyring) -> RuntimeOrigin {
	RuntimeOrigin::signed(account(k))
}

fn modes(m: &[VerificationMode]) -> ModeSet {
	ModeSet::of(m)
}

/// The demo model's canonical input ([1, 4] f32) and an output ([1, 3] f32).
fn demo_input() -> Vec<u8> {
	vec![Tensor {
		elem: ElemType::F32,
		shape: vec![1, 4],
		data: [1f32, 2., 3., 4.].iter().flat_map(|x| x.to_le_bytes()).collect(),
	}]
	.encode()
}
fn demo_output(first: f32) -> Vec<u8> {
	vec![Tensor {
		elem: ElemType::F32,
		shape: vec![1, 3],
		data: [first, 0.25, 0.25].iter().flat_map(|x| x.to_le_bytes()).collect(),
	}]
	.encode()
}

/// Bob becomes a worker of `release` in `mode` (Alice, the genesis worker, is Vanilla only).
fn bob_serves(release: u32, mode: VerificationMode) {
	assert_ok!(Inference::register_worker(
		signed(Sr25519Keyring::Bob),
		// Above the minimum: a slash leaves Bob active.
		1_000 * UNIT,
		vec![release].try_into().unwrap(),
		modes(&[VerificationMode::Vanilla, mode]),
		UNIT,
		4,
		Hardware::Gpu,
	));
}

fn submit_job(release: u32, mode: VerificationMode) -> u64 {
	let id = pallet_inference::NextJobId::<Runtime>::get();
	assert_ok!(Inference::submit_job(
		signed(Sr25519Keyring::Dave),
		release,
		mode,
		demo_input().try_into().unwrap(),
		100 * UNIT,
		None,
	));
	draw();
	assert_eq!(
		pallet_inference::Jobs::<Runtime>::get(id).unwrap().worker,
		account(Sr25519Keyring::Bob)
	);
	id
}

fn status(job: u64) -> JobStatus<u128> {
	pallet_inference::Jobs::<Runtime>::get(job).unwrap().status
}

fn burned() -> u128 {
	pallet_inference::TotalBurned::<Runtime>::get()
}

/// Bob's enclave: an ed25519 key, a document from the development CA with zero PCRs (the
/// development chain's only allowed measurement) and the chain's challenge.
fn bob_attests() -> ed25519::Pair {
	let enclave = ed25519::Pair::from_seed(&[42; 32]);
	assert_ok!(Tee::request_challenge(signed(Sr25519Keyring::Bob)));
	let nonce = pallet_tee::Challenges::<Runtime>::get(account(Sr25519Keyring::Bob))
		.unwrap()
		.nonce;
	let claims = Claims {
		module_id: "opg-worker".into(),
		pcrs: (0..3).map(|i| (i, vec![0; 48])).collect(),
		public_key: Some(enclave.public().0.to_vec()),
		user_data: None,
		nonce: Some(nonce.to_vec()),
	};
	let document = DevCa::new(DEV_SEED, NOW_S).document(&claims, NOW_S * 1000 - 2_000);
	assert_ok!(Tee::attest(signed(Sr25519Keyring::Bob), document.try_into().unwrap()));
	enclave
}

#[test]
fn a_tee_chat_on_the_preset_llm_settles_per_token_and_a_response_it_did_not_sign_fails() {
	use opg_primitives::chat::*;
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		start_block(1);
		pallet_timestamp::Now::<Runtime>::put(NOW_S * 1000);
		// Release 2 is SmolLM2; Bob serves it in TEE mode at 1 OPG a job, 1 OPG per 1,000
		// prompt tokens and 10 OPG per 1,000 completion tokens.
		let llm = pallet_model_hub::Releases::<Runtime>::get(2).unwrap().params;
		assert_eq!(llm.format, opg_primitives::ModelFormat::Gguf);
		bob_serves(2, VerificationMode::Tee);
		let prices =
			pallet_inference::TokenPrices { prompt_per_1k: UNIT, completion_per_1k: 10 * UNIT };
		assert_ok!(Inference::set_token_prices(signed(Sr25519Keyring::Bob), prices));
		let enclave = bob_attests();

		let request = ChatRequest {
			prompt: Prompt::Chat(vec![ChatMessage {
				role: Role::User,
				content: b"What is the capital of France?".to_vec(),
			}]),
			max_tokens: 32,
			sampling: Sampling::default(),
			stop: vec![],
		}
		.encode();
		let quote = Inference::quote_input(2, VerificationMode::Tee, &request).unwrap();
		let job = pallet_inference::NextJobId::<Runtime>::get();
		assert_ok!(Inference::submit_job(
			signed(Sr25519Keyring::Dave),
			2,
			VerificationMode::Tee,
			request.clone().try_into().unwrap(),
			quote.price,
			None,
		));
		draw();
		let record = pallet_inference::Jobs::<Runtime>::get(job).unwrap();
		assert_eq!((record.worker, record.price), (account(Sr25519Keyring::Bob), quote.price));

		let response = |text: &str, completion: u32| {
			ChatResponse {
				text: text.as_bytes().to_vec(),
				token_ids: (0..completion).collect(),
				finish_reason: FinishReason::Stop,
				prompt_tokens: 36,
				completion_tokens: completion,
				engine: b"opg-llm/0.1.0+cpu-1;opg-sampler/1".to_vec(),
				device_class: b"cpu-x86_64".to_vec(),
				logits_digest: 1,
			}
			.encode()
		};
		let sign = |job: u64, output: &[u8]| -> Evidence<_> {
			let message =
				tee_message(job, llm.artifact, payload_hash(&request), payload_hash(output));
			Evidence::TeeSignature(enclave.sign(&message).0.to_vec().try_into().unwrap())
		};
		let answer = response("The capital of France is Paris.", 8);
		let bob = Balances::free_balance(account(Sr25519Keyring::Bob));
		assert_ok!(Inference::submit_result(
			signed(Sr25519Keyring::Bob),
			job,
			answer.clone().try_into().unwrap(),
			sign(job, &answer),
		));
		assert!(matches!(status(job), JobStatus::Settled { .. }));
		// 1 + 36 / 1000 + 8 * 10 / 1000 OPG, less the preset's 5% royalty.
		let owed = UNIT + (36 * UNIT + 80 * UNIT) / 1000;
		assert_eq!(Balances::free_balance(account(Sr25519Keyring::Bob)) - bob, owed - owed / 20);

		// The enclave signed one answer; the worker sends another (more tokens): failed.
		let forged = pallet_inference::NextJobId::<Runtime>::get();
		assert_ok!(Inference::submit_job(
			signed(Sr25519Keyring::Dave),
			2,
			VerificationMode::Tee,
			request.clone().try_into().unwrap(),
			quote.price,
			None,
		));
		draw();
		let signed_answer = response("Paris.", 2);
		let sent = response("Paris, Paris, Paris, Paris, Paris.", 32);
		assert_ok!(Inference::submit_result(
			signed(Sr25519Keyring::Bob),
			forged,
			sent.try_into().unwrap(),
			sign(forged, &signed_answer),
		));
		assert_eq!(status(forged), JobStatus::Failed);
	});
}

#[test]
fn a_dev_enclave_attests_and_its_signed_results_settle() {
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		start_block(1);
		pallet_timestamp::Now::<Runtime>::put(NOW_S * 1000);
		bob_serves(0, VerificationMode::Tee);
		let enclave = bob_attests();
		let zero = pallet_tee::measurement_id(&[0; 48], &[0; 48], &[0; 48]);
		assert_eq!(
			&pallet_tee::Measurements::<Runtime>::get(zero).unwrap().label[..],
			DEV_MEASUREMENT_LABEL
		);

		let artifact = pallet_model_hub::Releases::<Runtime>::get(0).unwrap().params.artifact;
		let sign = |job: u64, key: &ed25519::Pair, output: &[u8]| -> Evidence<_> {
			let message =
				tee_message(job, artifact, payload_hash(&demo_input()), payload_hash(output));
			Evidence::TeeSignature(key.sign(&message).0.to_vec().try_into().unwrap())
		};

		let issuance = Balances::total_issuance();
		let good = submit_job(0, VerificationMode::Tee);
		let output = demo_output(0.5);
		assert_ok!(Inference::submit_result(
			signed(Sr25519Keyring::Bob),
			good,
			output.clone().try_into().unwrap(),
			sign(good, &enclave, &output),
		));
		assert!(matches!(status(good), JobStatus::Settled { .. }));
		assert!(burned() > 0);
		assert_eq!(issuance - Balances::total_issuance(), burned());

		// Signed by another key, or over another output: failed, refunded, Bob slashed.
		let stranger = ed25519::Pair::from_seed(&[7; 32]);
		let forged = submit_job(0, VerificationMode::Tee);
		assert_ok!(Inference::submit_result(
			signed(Sr25519Keyring::Bob),
			forged,
			output.clone().try_into().unwrap(),
			sign(forged, &stranger, &output),
		));
		assert_eq!(status(forged), JobStatus::Failed);
		let replayed = submit_job(0, VerificationMode::Tee);
		assert_ok!(Inference::submit_result(
			signed(Sr25519Keyring::Bob),
			replayed,
			demo_output(0.9).try_into().unwrap(),
			sign(good, &enclave, &output),
		));
		assert_eq!(status(replayed), JobStatus::Failed);
	});
}

/// Charlie registers a Groth16 key (whose trapdoor the test knows) and publishes a ZK release of
/// the demo model under it; returns the release, its key's hash, a proof of the demo input with
/// `demo_output(0.5)`, and that output.
fn zk_release(
) -> (u32, H256, BoundedVec<u8, <Runtime as pallet_inference::Config>::MaxEvidenceLen>, Vec<u8>) {
	// The statement of a job with the demo input and this output, proven under a key whose
	// trapdoor the test knows (what the worker's prover does with a real circuit).
	let output = demo_output(0.5);
	let statement = opg_primitives::zk_public_inputs(&demo_input(), &output);
	let inputs = opg_groth16::decode_public_inputs(&statement.concat()).unwrap();
	let (key, proof) = opg_groth16::synthetic::instance_for(&inputs, 3);
	let key = key.encode().unwrap();
	let hash = pallet_zk::key_hash(&key);
	assert_ok!(Zk::register_verifying_key(
		signed(Sr25519Keyring::Charlie),
		key.try_into().unwrap(),
		demo_artifact()
	));
	let release = pallet_model_hub::NextReleaseId::<Runtime>::get();
	assert_ok!(ModelHub::publish_release(
		signed(Sr25519Keyring::Charlie),
		0,
		zk_params(b"zk-1", hash)
	));
	(release, hash, proof.encode().try_into().unwrap(), output)
}

/// The demo model's artifact hash (release 0).
fn demo_artifact() -> H256 {
	pallet_model_hub::Releases::<Runtime>::get(0).unwrap().params.artifact
}

/// The demo model's release 0, in ZK mode under verifying key `vk`.
fn zk_params(version: &[u8], vk: H256) -> Box<pallet_model_hub::ReleaseParams<Runtime>> {
	let p = pallet_model_hub::Releases::<Runtime>::get(0).unwrap().params;
	Box::new(pallet_model_hub::ReleaseParams::<Runtime> {
		version: version.to_vec().try_into().unwrap(),
		modes: modes(&[VerificationMode::Zk]),
		zk_verifying_key: Some(vk),
		..p
	})
}

#[test]
fn a_registered_groth16_key_backs_a_zk_release_and_its_proofs() {
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		start_block(1);
		// Releases reference keys of the inference statement only (4 public inputs).
		let (two_inputs, _, _) = opg_groth16::synthetic::instance(2, 5);
		let two_inputs = two_inputs.encode().unwrap();
		let two_hash = pallet_zk::key_hash(&two_inputs);
		assert_ok!(Zk::register_verifying_key(
			signed(Sr25519Keyring::Charlie),
			two_inputs.try_into().unwrap(),
			demo_artifact()
		));
		assert_noop!(
			ModelHub::publish_release(
				signed(Sr25519Keyring::Charlie),
				0,
				zk_params(b"zk-2", two_hash)
			),
			pallet_model_hub::Error::<Runtime>::UnknownVerifyingKey
		);
		// A key of the inference statement, but registered for another model.
		let other = opg_groth16::synthetic::instance(4, 6).0.encode().unwrap();
		assert_ok!(Zk::register_verifying_key(
			signed(Sr25519Keyring::Charlie),
			other.clone().try_into().unwrap(),
			H256::repeat_byte(0x0d)
		));
		assert_noop!(
			ModelHub::publish_release(
				signed(Sr25519Keyring::Charlie),
				0,
				zk_params(b"zk-3", pallet_zk::key_hash(&other))
			),
			pallet_model_hub::Error::<Runtime>::VerifyingKeyOfAnotherModel
		);
		let (zk_release, hash, proof, output) = zk_release();
		assert_noop!(
			Zk::unregister_verifying_key(signed(Sr25519Keyring::Charlie), hash),
			pallet_zk::Error::<Runtime>::KeyInUse
		);
		bob_serves(zk_release, VerificationMode::Zk);

		let issuance = Balances::total_issuance();
		let good = submit_job(zk_release, VerificationMode::Zk);
		assert_ok!(Inference::submit_result(
			signed(Sr25519Keyring::Bob),
			good,
			output.clone().try_into().unwrap(),
			Evidence::ZkProof(proof.clone()),
		));
		// Visible at once, settled when verified (here by anyone, as `on_idle` would).
		assert_eq!(status(good), JobStatus::Submitted);
		assert_ok!(Inference::verify_result(signed(Sr25519Keyring::Eve), good));
		assert!(matches!(status(good), JobStatus::Settled { .. }));
		assert_eq!(issuance - Balances::total_issuance(), burned());

		// The same proof for another output proves nothing about it.
		let lie = submit_job(zk_release, VerificationMode::Zk);
		assert_ok!(Inference::submit_result(
			signed(Sr25519Keyring::Bob),
			lie,
			demo_output(0.9).try_into().unwrap(),
			Evidence::ZkProof(proof),
		));
		assert_ok!(Inference::verify_result(signed(Sr25519Keyring::Eve), lie));
		assert_eq!(status(lie), JobStatus::Failed);
	});
}

/// The trust gap of ZK results under load: `on_idle` verifies queued proofs, oldest first, as
/// far as the block's remaining weight covers each one's worst case, and the rest in the next
/// blocks. Prints how many fit an otherwise empty block.
#[test]
fn on_idle_verifies_queued_proofs_as_far_as_the_block_has_room() {
	use polkadot_sdk::frame_support::traits::{Get, Hooks};
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		start_block(1);
		let (release, _, proof, output) = zk_release();
		// Two workers at full capacity: more results than one block verifies.
		let capacity = <Runtime as pallet_inference::Config>::MaxWorkerCapacity::get();
		let workers = [Sr25519Keyring::Bob, Sr25519Keyring::Eve];
		for worker in workers {
			assert_ok!(Inference::register_worker(
				signed(worker),
				1_000 * UNIT,
				vec![release].try_into().unwrap(),
				modes(&[VerificationMode::Zk]),
				UNIT,
				capacity,
				Hardware::Gpu,
			));
		}
		let jobs: Vec<u64> = (0..capacity * workers.len() as u32)
			.map(|_| {
				let job = pallet_inference::NextJobId::<Runtime>::get();
				assert_ok!(Inference::submit_job(
					signed(Sr25519Keyring::Dave),
					release,
					VerificationMode::Zk,
					demo_input().try_into().unwrap(),
					100 * UNIT,
					None,
				));
				draw();
				let assigned = pallet_inference::Jobs::<Runtime>::get(job).unwrap().worker;
				let worker = workers.into_iter().find(|w| account(*w) == assigned).unwrap();
				assert_ok!(Inference::submit_result(
					signed(worker),
					job,
					output.clone().try_into().unwrap(),
					Evidence::ZkProof(proof.clone()),
				));
				job
			})
			.collect();
		let max_block = <Runtime as polkadot_sdk::frame_system::Config>::BlockWeights::get().max_block;
		let settled = || jobs.iter().filter(|j| matches!(status(**j), JobStatus::Settled { .. })).count();
		let mut per_block = Vec::new();
		for n in 1..=jobs.len() as u32 {
			if n > 1 {
				start_block(n);
			}
			// What `Executive` gives `on_idle`: the block's weight left after everything else.
			let remaining =
				max_block.saturating_sub(polkadot_sdk::frame_system::Pallet::<Runtime>::block_weight().total());
			let before = settled();
			let used = Inference::on_idle(n, remaining);
			assert!(used.all_lte(remaining), "on_idle stays within the block: {used:?} of {remaining:?}");
			per_block.push(settled() - before);
			// Oldest first: whatever settled is a prefix of the queue.
			assert!(jobs[..settled()].iter().all(|j| matches!(status(*j), JobStatus::Settled { .. })));
			if settled() == jobs.len() {
				break;
			}
		}
		assert!(per_block[0] > 0, "an empty block verifies at least one proof");
		assert!(per_block.len() > 1, "{} results exceed one block: the measurement needs more", jobs.len());
		println!(
			"on_idle verified {} queued ZK results per block ({:?}): a burst of {} results waits up to {} blocks",
			per_block[0],
			per_block,
			jobs.len(),
			per_block.len() - 1
		);
	});
}
