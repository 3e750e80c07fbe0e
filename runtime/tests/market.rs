//! The inference market in the real runtime: the presets' demo model and dev worker, a paid
//! Vanilla job applied as signed extrinsics through `Executive`, a missed deadline, and the
//! burn/issuance identity.

mod common;
use common::*;

use codec::Encode;
use opg_primitives::{ElemType, Tensor, VerificationMode};
use opg_runtime::{
	configs::dynamic_params::inference as params, genesis_config_presets as presets, AccountId,
	Balance, Balances, Executive, Inference, ModelHub, Runtime, RuntimeCall, RuntimeHoldReason,
	UNIT,
};
use pallet_inference::{BurnCause, JobStatus, WorkerStatus};
use polkadot_sdk::{
	frame_support::traits::{
		fungible::{Inspect, InspectHold},
		Get,
	},
	sp_genesis_builder::{DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET},
	sp_keyring::Sr25519Keyring::{self, Alice, Bob, Charlie},
	*,
};

fn account(k: Sr25519Keyring) -> AccountId {
	k.to_account_id()
}

fn stake_of(who: &AccountId) -> u128 {
	Balances::balance_on_hold(
		&RuntimeHoldReason::Inference(pallet_inference::HoldReason::WorkerStake),
		who,
	)
}

fn escrow_of(who: &AccountId) -> u128 {
	Balances::balance_on_hold(
		&RuntimeHoldReason::Inference(pallet_inference::HoldReason::JobEscrow),
		who,
	)
}

/// A valid input of the demo model: one f32 tensor [1, 4].
fn demo_input() -> Vec<u8> {
	let data = [5.1f32, 3.5, 1.4, 0.2].iter().flat_map(|v| v.to_le_bytes()).collect();
	vec![Tensor { elem: ElemType::F32, shape: vec![1, 4], data }].encode()
}

/// A well-formed output of the demo model: one f32 tensor [1, 3].
fn demo_output() -> Vec<u8> {
	let data = [0.7f32, 0.2, 0.1].iter().flat_map(|v| v.to_le_bytes()).collect();
	vec![Tensor { elem: ElemType::F32, shape: vec![1, 3], data }].encode()
}

/// Applies `call` signed by `who`; returns the transaction fee `who` paid.
fn apply(who: Sr25519Keyring, call: RuntimeCall) -> u128 {
	let nonce = frame_system::Pallet::<Runtime>::account_nonce(account(who));
	frame_system::Pallet::<Runtime>::reset_events();
	Executive::apply_extrinsic(signed(who, call, nonce))
		.expect("transaction is valid")
		.expect("dispatch succeeds");
	frame_system::Pallet::<Runtime>::events()
		.into_iter()
		.find_map(|r| match r.event {
			opg_runtime::RuntimeEvent::TransactionPayment(
				pallet_transaction_payment::Event::TransactionFeePaid {
					who: payer,
					actual_fee,
					..
				},
			) if payer == account(who) => Some(actual_fee),
			_ => None,
		})
		.expect("a fee was paid")
}

/// A Vanilla job on the demo release with the demo input.
fn job_call(max_fee: u128, timeout: Option<u32>) -> RuntimeCall {
	RuntimeCall::Inference(pallet_inference::Call::submit_job {
		release: 0,
		mode: VerificationMode::Vanilla,
		input: demo_input().try_into().unwrap(),
		max_fee,
		timeout,
	})
}

/// Submits a job and draws its worker; returns its id.
fn submit_job(who: Sr25519Keyring, max_fee: u128, timeout: Option<u32>) -> u64 {
	let id = pallet_inference::NextJobId::<Runtime>::get();
	let _ = apply(who, job_call(max_fee, timeout));
	draw();
	id
}

fn invariants() {
	ModelHub::do_try_state().expect("hub invariants");
	Inference::do_try_state().expect("market invariants");
}

#[test]
fn presets_publish_the_demo_model_and_development_registers_a_dev_worker() {
	let file =
		std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/demo/mlp-classifier.onnx"))
			.expect("the demo model is committed");
	assert_eq!(
		sp_io::hashing::blake2_256(&file),
		presets::DEMO_MODEL_HASH,
		"hash matches the file"
	);
	assert_eq!(file.len() as u64, presets::DEMO_MODEL_SIZE);
	let digits =
		std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/digits/digits-cnn.onnx"))
			.expect("the digits model is committed");
	assert_eq!(
		sp_io::hashing::blake2_256(&digits),
		presets::DIGITS_MODEL_HASH,
		"hash matches the file"
	);
	assert_eq!(digits.len() as u64, presets::DIGITS_MODEL_SIZE);
	// SmolLM2, as scripts/lib/llm-model.sh fetches it from PyPI (scripts/setup.sh runs it).
	let llm_path = std::path::Path::new(&std::env::var("HOME").unwrap())
		.join(".cache/opg/models/SmolLM2-135M-Instruct.Q4_1.gguf");
	let llm = std::fs::read(&llm_path)
		.unwrap_or_else(|e| panic!("{}: {e} (scripts/lib/llm-model.sh)", llm_path.display()));
	assert_eq!(sp_io::hashing::blake2_256(&llm), presets::SMOLLM2_HASH, "hash matches the file");
	assert_eq!(llm.len() as u64, presets::SMOLLM2_SIZE);
	// MiniLM-L3, as scripts/lib/encoder-model.sh derives it.
	let minilm_path = std::path::Path::new(&std::env::var("HOME").unwrap())
		.join(".cache/opg/models/paraphrase-MiniLM-L3-v2.embed.onnx");
	let minilm = std::fs::read(&minilm_path).unwrap_or_else(|e| {
		panic!("{}: {e} (scripts/lib/encoder-model.sh)", minilm_path.display())
	});
	assert_eq!(sp_io::hashing::blake2_256(&minilm), presets::MINILM_HASH, "hash matches the file");
	assert_eq!(minilm.len() as u64, presets::MINILM_SIZE);

	for preset in [DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET] {
		externalities(preset).execute_with(|| {
			let release = pallet_model_hub::Releases::<Runtime>::get(0).expect("demo release");
			assert_eq!(release.params.artifact.0, presets::DEMO_MODEL_HASH);
			assert_eq!(release.params.artifact_size, presets::DEMO_MODEL_SIZE);
			let repo = pallet_model_hub::Repositories::<Runtime>::get(0).expect("demo repository");
			assert_eq!(repo.owner, account(Charlie));
			let digits = pallet_model_hub::Releases::<Runtime>::get(1).expect("digits release");
			assert_eq!(
				(digits.repository, digits.params.artifact.0),
				(1, presets::DIGITS_MODEL_HASH)
			);
			assert_eq!(digits.params.artifact_size, presets::DIGITS_MODEL_SIZE);
			let digits_repo =
				pallet_model_hub::Repositories::<Runtime>::get(1).expect("digits repository");
			assert_eq!(digits_repo.owner, account(Charlie));
			let llm = pallet_model_hub::Releases::<Runtime>::get(2).expect("SmolLM2 release");
			assert_eq!((llm.repository, llm.params.artifact.0), (2, presets::SMOLLM2_HASH));
			assert_eq!(llm.params.format, opg_primitives::ModelFormat::Gguf);
			let spec = llm.params.llm.clone().expect("an LLM spec");
			assert_eq!(
				(&spec.architecture[..], spec.vocab_size, spec.template_hash.0),
				(&b"llama"[..], 49152, presets::SMOLLM2_TEMPLATE_HASH)
			);
			let llm_repo =
				pallet_model_hub::Repositories::<Runtime>::get(2).expect("its repository");
			let encoder = pallet_model_hub::Releases::<Runtime>::get(3).expect("MiniLM release");
			assert_eq!((encoder.repository, encoder.params.artifact.0), (3, presets::MINILM_HASH));
			assert_eq!(encoder.params.outputs[0].shape.to_vec(), vec![0, 384]);
			let encoder_repo =
				pallet_model_hub::Repositories::<Runtime>::get(3).expect("its repository");
			let deposits = Balances::balance_on_hold(
				&RuntimeHoldReason::ModelHub(pallet_model_hub::HoldReason::StorageDeposit),
				&account(Charlie),
			);
			assert_eq!(
				deposits,
				repo.deposit +
					release.deposit + digits_repo.deposit +
					digits.deposit + llm_repo.deposit +
					llm.deposit + encoder_repo.deposit +
					encoder.deposit
			);
			assert!(deposits > 0);
			invariants();
		});
	}
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		let worker = pallet_inference::Workers::<Runtime>::get(account(Alice)).expect("dev worker");
		assert_eq!(worker.status, WorkerStatus::Active);
		assert_eq!(worker.price, presets::DEV_WORKER_PRICE);
		assert_eq!(worker.token_prices, presets::DEV_WORKER_TOKEN_PRICES);
		assert_eq!(worker.releases.to_vec(), vec![0, 1, 2, 3]);
		assert_eq!(stake_of(&account(Alice)), presets::DEV_WORKER_STAKE);
		assert!(presets::DEV_WORKER_STAKE >= params::MinWorkerStake::get());
	});
	externalities(LOCAL_TESTNET_RUNTIME_PRESET).execute_with(|| {
		assert!(pallet_inference::Workers::<Runtime>::get(account(Alice)).is_none());
	});
}

#[test]
fn vanilla_job_is_paid_royalty_shared_and_verification_fee_burned() {
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		start_block(1);
		let issuance = Balances::total_issuance();
		let (bob, alice, charlie) = (account(Bob), account(Alice), account(Charlie));

		let quote = Inference::quote(0, VerificationMode::Vanilla, demo_input().len() as u32)
			.expect("the dev worker serves the demo model");
		assert_eq!(quote.price, presets::DEV_WORKER_PRICE);

		let job = submit_job(Bob, UNIT, None);
		let record = pallet_inference::Jobs::<Runtime>::get(job).unwrap();
		assert_eq!(
			(record.worker.clone(), record.price),
			(alice.clone(), presets::DEV_WORKER_PRICE)
		);
		assert_eq!(escrow_of(&bob), record.price + record.verification_hold);
		assert!(record.verification_hold <= quote.verification_fee);
		assert_eq!(Inference::open_jobs(&alice), vec![job]);

		let (bob_before, alice_before, charlie_before) =
			(Balances::balance(&bob), Balances::balance(&alice), Balances::balance(&charlie));
		let output = demo_output();
		let tx_fee = apply(
			Alice,
			RuntimeCall::Inference(pallet_inference::Call::submit_result {
				job,
				output: output.clone().try_into().unwrap(),
				evidence: pallet_inference::Evidence::None,
			}),
		);

		// Verification fee: flat Vanilla fee plus the per-byte part over input and output.
		let fee = params::VanillaVerificationFee::get() +
			params::VerificationFeePerByte::get() * (demo_input().len() + output.len()) as u128;
		let record = pallet_inference::Jobs::<Runtime>::get(job).unwrap();
		assert_eq!(record.status, JobStatus::Settled { verification_fee: fee });
		let royalty = presets::DEV_WORKER_PRICE / 20; // 5%
		assert_eq!(Balances::balance(&charlie), charlie_before + royalty, "publisher royalty");
		assert_eq!(
			Balances::balance(&alice),
			alice_before + presets::DEV_WORKER_PRICE - royalty - tx_fee,
			"worker paid its price less the royalty (and its own transaction fee)"
		);
		assert!(tx_fee < presets::DEV_WORKER_PRICE, "answering a job pays for itself");
		assert_eq!(escrow_of(&bob), 0);
		assert_eq!(
			Balances::balance(&bob),
			bob_before + record.verification_hold - fee,
			"unused verification hold refunded"
		);
		assert_eq!(pallet_inference::TotalBurned::<Runtime>::get(), fee);
		assert_eq!(
			pallet_inference::BurnedByCause::<Runtime>::get(BurnCause::VerificationFee),
			fee
		);
		assert_eq!(Balances::total_issuance(), issuance - fee, "issuance fell by exactly the burn");
		assert!(Inference::open_jobs(&alice).is_empty());
		invariants();
	});
}

#[test]
fn missed_deadline_refunds_requester_and_burns_the_slash() {
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		start_block(1);
		let issuance = Balances::total_issuance();
		let (bob, alice) = (account(Bob), account(Alice));
		let timeout = <Runtime as pallet_inference::Config>::MinJobTimeout::get();
		assert_eq!(
			Executive::apply_extrinsic(signed(Bob, job_call(UNIT, Some(timeout - 1)), 0))
				.expect("valid transaction"),
			Err(pallet_inference::Error::<Runtime>::BadTimeout.into())
		);
		let job = submit_job(Bob, UNIT, Some(timeout));
		let bob_after_submit = Balances::balance(&bob) + escrow_of(&bob);

		// Expiry runs in the `on_initialize` of the block after the deadline (1 + timeout).
		for n in 2..=timeout + 2 {
			start_block(n);
		}
		let record = pallet_inference::Jobs::<Runtime>::get(job).unwrap();
		assert_eq!(record.status, JobStatus::Expired);
		assert_eq!(escrow_of(&bob), 0);
		// The input was stored for the job's life: its per-byte fee is burned, the rest refunded.
		let data_fee = params::VerificationFeePerByte::get() * record.input_len as Balance;
		assert!(data_fee > 0);
		assert_eq!(Balances::balance(&bob), bob_after_submit - data_fee, "refunded less data fee");
		let slash = params::SlashOnTimeout::get();
		assert_eq!(stake_of(&alice), presets::DEV_WORKER_STAKE - slash);
		assert_eq!(pallet_inference::BurnedByCause::<Runtime>::get(BurnCause::Slash), slash);
		assert_eq!(
			pallet_inference::BurnedByCause::<Runtime>::get(BurnCause::VerificationFee),
			data_fee
		);
		assert_eq!(Balances::total_issuance(), issuance - slash - data_fee);
		invariants();
	});
}

#[test]
fn job_refused_without_an_eligible_worker_holds_nothing() {
	externalities(LOCAL_TESTNET_RUNTIME_PRESET).execute_with(|| {
		start_block(1);
		let bob = account(Bob);
		let result = Executive::apply_extrinsic(signed(Bob, job_call(UNIT, None), 0))
			.expect("valid transaction");
		assert_eq!(
			result,
			Err(pallet_inference::Error::<Runtime>::NoEligibleWorker.into()),
			"no worker serves the demo model on local_testnet"
		);
		assert_eq!(escrow_of(&bob), 0);
		// Every mode has its verifier (`tests/verification.rs` runs them).
		for mode in VerificationMode::ALL {
			assert!(<<Runtime as pallet_inference::Config>::Verifier as pallet_inference::ResultVerifier<
				opg_runtime::AccountId,
			>>::supports(mode));
		}
		invariants();
	});
}

#[test]
fn an_answer_finds_room_in_a_block_that_ordinary_transactions_filled() {
	use polkadot_sdk::{
		frame_support::dispatch::DispatchClass,
		sp_runtime::transaction_validity::{InvalidTransaction, TransactionSource},
	};
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		start_block(1);
		let job = submit_job(Bob, UNIT, None);
		let answer = RuntimeCall::Inference(pallet_inference::Call::submit_result {
			job,
			output: demo_output().try_into().unwrap(),
			evidence: pallet_inference::Evidence::None,
		});
		let nonce = |who| frame_system::Pallet::<Runtime>::account_nonce(account(who));
		// Someone else's answer is not even a valid transaction: the room is the worker's.
		assert_eq!(
			Executive::validate_transaction(
				TransactionSource::External,
				signed(Bob, answer.clone(), nonce(Bob)),
				Default::default(),
			),
			Err(InvalidTransaction::Custom(pallet_inference::invalid_answer::NOT_ASSIGNED_WORKER)
				.into())
		);
		let valid = Executive::validate_transaction(
			TransactionSource::External,
			signed(Alice, answer.clone(), nonce(Alice)),
			Default::default(),
		)
		.expect("the worker's answer is valid");
		assert_eq!(valid.priority, pallet_inference::ANSWER_PRIORITY);

		// Ordinary transactions have used all the normal-class room of this block.
		let limits = <Runtime as frame_system::Config>::BlockWeights::get();
		let normal = limits.get(DispatchClass::Normal).max_total.unwrap();
		frame_system::BlockWeight::<Runtime>::mutate(|w| w.set(normal, DispatchClass::Normal));
		let transfer = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
			dest: account(Charlie).into(),
			value: UNIT,
		});
		assert_eq!(
			Executive::apply_extrinsic(signed(Bob, transfer, nonce(Bob))),
			Err(InvalidTransaction::ExhaustsResources.into())
		);
		// The answer still goes in, and the job settles.
		apply(Alice, answer);
		let record = pallet_inference::Jobs::<Runtime>::get(job).unwrap();
		assert!(matches!(record.status, JobStatus::Settled { .. }));
		invariants();
	});
}

#[test]
fn the_draw_takes_its_randomness_from_the_relay_parent() {
	use cumulus_pallet_parachain_system::{OnSystemEvent, RelayChainStateProof, ValidationData};
	use cumulus_primitives_core::{
		relay_chain::well_known_keys::CURRENT_BLOCK_RANDOMNESS, PersistedValidationData,
	};
	use cumulus_test_relay_sproof_builder::RelayStateSproofBuilder;
	use opg_runtime::configs::RelayRandomness;

	// The relay state proof of a relay parent numbered `number` whose BABE randomness is
	// `value`, as the parachain-system inherent hands it over.
	let relay_parent = |number: u32, value: Option<[u8; 32]>| {
		let mut builder = RelayStateSproofBuilder::default();
		let para_id = builder.para_id;
		if let Some(value) = value {
			builder
				.additional_key_values
				.push((CURRENT_BLOCK_RANDOMNESS.to_vec(), Some(value).encode()));
		}
		let (root, proof) = builder.into_state_root_and_proof();
		ValidationData::<Runtime>::put(PersistedValidationData {
			relay_parent_number: number,
			relay_parent_storage_root: root,
			..Default::default()
		});
		let proof = RelayChainStateProof::new(para_id, root, proof).expect("proof of root");
		<RelayRandomness as OnSystemEvent>::on_relay_state_proof(&proof);
	};
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		start_block(1);
		relay_parent(7, Some([42; 32]));
		assert_eq!(pallet_inference::Randomness::<Runtime>::get(), (7, [42; 32]));
		let job = pallet_inference::NextJobId::<Runtime>::get();
		apply(Bob, job_call(UNIT, None));
		assert!(pallet_inference::PendingJobs::<Runtime>::contains_key(job));

		// The next block: a relay parent without randomness, then one no newer, change nothing.
		start_block(2);
		relay_parent(8, None);
		relay_parent(7, Some([1; 32]));
		assert_eq!(pallet_inference::Randomness::<Runtime>::get(), (7, [42; 32]));
		// A newer relay parent's randomness draws the job once the inherents are applied.
		relay_parent(8, Some([43; 32]));
		assert_eq!(pallet_inference::Randomness::<Runtime>::get(), (8, [43; 32]));
		Executive::inherents_applied();
		assert_eq!(pallet_inference::Jobs::<Runtime>::get(job).unwrap().worker, account(Alice));
		invariants();
	});
}
