//! Registration, removal and verification, with a circom + snarkjs proof and synthetic keys.

use crate::{mock::*, *};
use polkadot_sdk::{
	frame_support::{assert_noop, assert_ok, traits::fungible::InspectHold},
	sp_runtime::{DispatchError, TokenError},
};

const FIXTURES: &str =
	concat!(env!("CARGO_MANIFEST_DIR"), "/../../verifiers/groth16/tests/fixtures");

fn fixture(name: &str) -> String {
	std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

/// The circom circuit's key, proof and public inputs ([30, 5]).
fn circom() -> (Vec<u8>, Vec<u8>, Vec<[u8; 32]>) {
	use opg_groth16::snarkjs;
	let key = snarkjs::verifying_key(&fixture("verification_key.json"))
		.unwrap()
		.encode()
		.unwrap();
	let proof = snarkjs::proof(&fixture("proof.json")).unwrap().encode();
	let inputs = snarkjs::public_inputs(&fixture("public.json"))
		.unwrap()
		.iter()
		.map(opg_groth16::encode_public_input)
		.collect();
	(key, proof, inputs)
}

fn bounded(key: Vec<u8>) -> BoundedVec<u8, ConstU32<MAX_KEY_LEN>> {
	key.try_into().unwrap()
}

fn held(who: u64) -> u64 {
	Balances::balance_on_hold(&HoldReason::KeyDeposit.into(), &who)
}

/// The model the tests' keys are registered for.
const MODEL: H256 = H256::repeat_byte(0x4d);

fn register(who: u64, key: &[u8]) -> H256 {
	assert_ok!(Zk::register_verifying_key(
		RuntimeOrigin::signed(who),
		bounded(key.to_vec()),
		MODEL
	));
	key_hash(key)
}

#[test]
fn a_snarkjs_proof_verifies_against_its_registered_key() {
	new_test_ext(|| {
		let (key, proof, inputs) = circom();
		let h = register(ALICE, &key);
		let deposit = 100 + opg_groth16::prepared_key_len(2) as u64;
		assert_eq!(held(ALICE), deposit);
		System::assert_last_event(
			Event::VerifyingKeyRegistered {
				hash: h,
				owner: ALICE,
				model: MODEL,
				public_inputs: 2,
				deposit,
			}
			.into(),
		);
		assert_eq!(Zk::public_inputs(h), Some(2));
		assert_eq!(Zk::verify(h, &proof, &inputs), Ok(()));
	});
}

#[test]
fn any_change_of_statement_or_proof_is_refused() {
	new_test_ext(|| {
		let (key, proof, inputs) = circom();
		let h = register(ALICE, &key);
		let mut changed = inputs.clone();
		changed[0][31] ^= 1;
		assert_eq!(Zk::verify(h, &proof, &changed), Err(ProofError::InvalidProof));
		assert_eq!(Zk::verify(h, &proof, &[inputs[1], inputs[0]]), Err(ProofError::InvalidProof));
		assert_eq!(Zk::verify(h, &proof, &inputs[..1]), Err(ProofError::PublicInputCount));
		assert_eq!(
			Zk::verify(h, &proof, &[inputs[0], inputs[1], inputs[1]]),
			Err(ProofError::PublicInputCount)
		);
		// The scalar field's order r, the first value outside the field.
		let r = "30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";
		let r: [u8; 32] =
			core::array::from_fn(|i| u8::from_str_radix(&r[2 * i..2 * i + 2], 16).unwrap());
		assert_eq!(Zk::verify(h, &proof, &[r, inputs[1]]), Err(ProofError::PublicInputOutOfRange));
		assert_eq!(Zk::verify(h, &proof[..127], &inputs), Err(ProofError::MalformedProof));
		let mut flipped = proof.clone();
		flipped[100] ^= 0x10;
		assert!(matches!(
			Zk::verify(h, &flipped, &inputs),
			Err(ProofError::MalformedProof | ProofError::InvalidProof)
		));
		assert_eq!(Zk::verify(H256::repeat_byte(7), &proof, &inputs), Err(ProofError::UnknownKey));
	});
}

#[test]
fn malformed_keys_are_refused_and_nothing_is_held() {
	new_test_ext(|| {
		let (key, _, _) = circom();
		let mut wrong_version = key.clone();
		wrong_version[0] = 2;
		// α's x-coordinate set to the base field's order p (little-endian, as arkworks writes).
		let p = "30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47";
		let mut unreduced = key.clone();
		for i in 0..32 {
			unreduced[2 + i] = u8::from_str_radix(&p[62 - 2 * i..64 - 2 * i], 16).unwrap();
		}
		let mut too_many = opg_groth16::synthetic::instance(32, 0).0.encode().unwrap();
		too_many[1] = 33;
		// snarkjs' key with δ = γ (no phase-2 contribution): anyone could prove anything.
		let mut forgeable = opg_groth16::VerifyingKey::decode(&key).unwrap();
		forgeable.delta_g2 = forgeable.gamma_g2;
		let forgeable = forgeable.encode().unwrap();
		for (bad, error) in [
			(forgeable, Error::<Test>::DegenerateVerifyingKey),
			(vec![], Error::<Test>::MalformedVerifyingKey),
			(key[..key.len() - 1].to_vec(), Error::<Test>::MalformedVerifyingKey),
			(wrong_version, Error::<Test>::MalformedVerifyingKey),
			(unreduced, Error::<Test>::MalformedVerifyingKey),
			(too_many, Error::<Test>::TooManyPublicInputs),
		] {
			assert_noop!(
				Zk::register_verifying_key(RuntimeOrigin::signed(ALICE), bounded(bad), MODEL),
				error
			);
		}
		assert_eq!(held(ALICE), 0);
		// One byte beyond the longest key does not even decode as a call argument.
		assert!(BoundedVec::<u8, ConstU32<MAX_KEY_LEN>>::try_from(vec![
			0u8;
			MAX_KEY_LEN as usize + 1
		])
		.is_err());
	});
}

#[test]
fn keys_from_zero_to_thirty_two_inputs_register_and_verify() {
	new_test_ext(|| {
		for n in [0usize, 1, 4, 31, 32] {
			let (key, proof, inputs) = opg_groth16::synthetic::instance(n, 1);
			let key = key.encode().unwrap();
			assert_eq!(public_inputs_of_len(key.len()), Some(n as u32));
			let h = register(BOB, &key);
			let inputs: Vec<[u8; 32]> =
				inputs.iter().map(opg_groth16::encode_public_input).collect();
			assert_eq!(Zk::verify(h, &proof.encode(), &inputs), Ok(()), "n = {n}");
		}
		assert_eq!(public_inputs_of_len(MAX_KEY_LEN as usize), Some(32));
		assert_eq!(public_inputs_of_len(MAX_KEY_LEN as usize - 1), None);
	});
}

#[test]
fn a_key_is_registered_once_and_the_deposit_must_be_paid() {
	new_test_ext(|| {
		let (key, _, _) = circom();
		assert_noop!(
			Zk::register_verifying_key(RuntimeOrigin::signed(POOR), bounded(key.clone()), MODEL),
			DispatchError::Token(TokenError::FundsUnavailable)
		);
		register(ALICE, &key);
		assert_noop!(
			Zk::register_verifying_key(RuntimeOrigin::signed(BOB), bounded(key.clone()), MODEL),
			Error::<Test>::AlreadyRegistered
		);
	});
}

#[test]
fn only_the_owner_removes_an_unused_key() {
	new_test_ext(|| {
		let (key, proof, inputs) = circom();
		let h = register(ALICE, &key);
		let deposit = held(ALICE);
		assert_noop!(
			Zk::unregister_verifying_key(RuntimeOrigin::signed(BOB), h),
			Error::<Test>::NotOwner
		);
		assert_noop!(
			Zk::unregister_verifying_key(RuntimeOrigin::signed(ALICE), H256::zero()),
			Error::<Test>::UnknownVerifyingKey
		);
		IN_USE.with(|s| s.borrow_mut().insert(h));
		assert_noop!(
			Zk::unregister_verifying_key(RuntimeOrigin::signed(ALICE), h),
			Error::<Test>::KeyInUse
		);
		IN_USE.with(|s| s.borrow_mut().clear());
		assert_ok!(Zk::unregister_verifying_key(RuntimeOrigin::signed(ALICE), h));
		assert_eq!(held(ALICE), 0);
		System::assert_last_event(
			Event::VerifyingKeyRemoved { hash: h, owner: ALICE, deposit }.into(),
		);
		assert_eq!(Zk::verify(h, &proof, &inputs), Err(ProofError::UnknownKey));
	});
}

#[test]
fn releases_may_reference_only_keys_of_the_inference_statement_made_for_their_model() {
	new_test_ext(|| {
		use opg_primitives::VerifyingKeyRegistry;
		type Inference =
			KeysWithInputs<Test, ConstU32<{ opg_primitives::ZK_PUBLIC_INPUTS as u32 }>>;
		let four = register(ALICE, &opg_groth16::synthetic::instance(4, 9).0.encode().unwrap());
		let two = register(ALICE, &circom().0);
		assert_eq!(Inference::model_of(&four), Some(MODEL));
		assert_eq!(Inference::model_of(&two), None);
		assert_eq!(Inference::model_of(&H256::zero()), None);
	});
}
