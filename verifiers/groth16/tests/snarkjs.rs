//! A proof made by snarkjs 0.7.6 for a circom circuit (`scripts/regen/zk/dot.circom`: a 4-term
//! integer dot product plus bias; public signals y = 30 and b = 5;
//! `scripts/regen/make-groth16-fixtures.sh` makes a new set) verifies through the binary forms, and
//! fails after any change of a public input, the proof or the key.
use ark_bn254::Fr;
use opg_groth16::{
	decode_public_inputs, encode_public_input, snarkjs, verify, verify_encoded, Error,
	PreparedVerifyingKey, Proof, VerifyingKey, PROOF_LEN,
};

const KEY: &str = include_str!("fixtures/verification_key.json");
const PROOF: &str = include_str!("fixtures/proof.json");
const PUBLIC: &str = include_str!("fixtures/public.json");

struct Vectors {
	key: Vec<u8>,
	prepared: Vec<u8>,
	proof: Vec<u8>,
	inputs: Vec<u8>,
}

fn vectors() -> Vectors {
	let key = snarkjs::verifying_key(KEY).unwrap();
	let inputs = snarkjs::public_inputs(PUBLIC).unwrap();
	assert_eq!(inputs, vec![Fr::from(30u64), Fr::from(5u64)]);
	Vectors {
		key: key.encode().unwrap(),
		prepared: key.prepare().to_bytes(),
		proof: snarkjs::proof(PROOF).unwrap().encode(),
		inputs: inputs.iter().flat_map(encode_public_input).collect(),
	}
}

#[test]
fn snarkjs_proof_verifies() {
	let v = vectors();
	assert_eq!(v.proof.len(), PROOF_LEN);
	assert_eq!(v.key.len(), opg_groth16::verifying_key_len(2));
	// Through the registration path: decode the compact key, prepare, store, reload.
	let prepared = VerifyingKey::decode(&v.key).unwrap().prepare().to_bytes();
	assert_eq!(prepared, v.prepared);
	assert_eq!(verify_encoded(&v.prepared, &v.proof, &v.inputs), Ok(()));
}

#[test]
fn any_public_input_change_fails() {
	let v = vectors();
	let key = PreparedVerifyingKey::from_trusted_bytes(&v.prepared).unwrap();
	let proof = Proof::decode(&v.proof).unwrap();
	let good = decode_public_inputs(&v.inputs).unwrap();
	for i in 0..good.len() {
		for delta in [1u64, 2, 1 << 40] {
			let mut bad = good.clone();
			bad[i] += Fr::from(delta);
			assert_eq!(verify(&key, &proof, &bad), Err(Error::InvalidProof), "input {i} + {delta}");
		}
		let mut bad = good.clone();
		bad[i] = -bad[i];
		assert_eq!(verify(&key, &proof, &bad), Err(Error::InvalidProof));
	}
	// Swapped order, missing and extra inputs.
	assert_eq!(verify(&key, &proof, &[good[1], good[0]]), Err(Error::InvalidProof));
	assert_eq!(
		verify(&key, &proof, &good[..1]),
		Err(Error::PublicInputCount { expected: 2, got: 1 })
	);
	let three = [good[0], good[1], Fr::from(0u64)];
	assert_eq!(verify(&key, &proof, &three), Err(Error::PublicInputCount { expected: 2, got: 3 }));
}

#[test]
fn every_bit_flip_of_proof_and_inputs_is_refused() {
	let v = vectors();
	for i in 0..v.proof.len() * 8 {
		let mut bad = v.proof.clone();
		bad[i / 8] ^= 1 << (i % 8);
		let r = verify_encoded(&v.prepared, &bad, &v.inputs);
		assert!(
			matches!(r, Err(Error::MalformedProof | Error::InvalidProof)),
			"proof bit {i}: {r:?}"
		);
	}
	for i in 0..v.inputs.len() * 8 {
		let mut bad = v.inputs.clone();
		bad[i / 8] ^= 1 << (i % 8);
		let r = verify_encoded(&v.prepared, &v.proof, &bad);
		assert!(
			matches!(r, Err(Error::PublicInputOutOfRange | Error::InvalidProof)),
			"input bit {i}: {r:?}"
		);
	}
}

#[test]
fn damaged_keys_are_refused_without_panics() {
	let v = vectors();
	// Every byte of the compact key, changed: a decode error, or (rarely, another valid point)
	// a key under which the proof fails.
	for i in 0..v.key.len() {
		for x in [0x01u8, 0x80, 0xff] {
			let mut bad = v.key.clone();
			bad[i] ^= x;
			match VerifyingKey::decode(&bad) {
				Err(Error::MalformedVerifyingKey | Error::TooManyPublicInputs) => {},
				Ok(key) => {
					let r = verify_encoded(&key.prepare().to_bytes(), &v.proof, &v.inputs);
					assert_eq!(r, Err(Error::InvalidProof), "key byte {i} ^ {x:#x}");
				},
				Err(e) => panic!("key byte {i}: {e:?}"),
			}
		}
	}
	assert_eq!(VerifyingKey::decode(&v.key[..v.key.len() - 1]), Err(Error::MalformedVerifyingKey));
	assert_eq!(VerifyingKey::decode(&[]), Err(Error::MalformedVerifyingKey));
	let mut many = v.key.clone();
	many[1] = 33;
	assert_eq!(VerifyingKey::decode(&many), Err(Error::TooManyPublicInputs));
	// A truncated or padded stored key is refused, not misread.
	assert_eq!(
		PreparedVerifyingKey::from_trusted_bytes(&v.prepared[1..]),
		Err(Error::MalformedVerifyingKey)
	);
	assert_eq!(
		PreparedVerifyingKey::from_trusted_bytes(&[v.prepared.clone(), vec![0]].concat()),
		Err(Error::MalformedVerifyingKey)
	);
}

#[test]
fn snarkjs_files_are_checked() {
	let bad_curve = KEY.replace("bn128", "bls12381");
	assert!(matches!(snarkjs::verifying_key(&bad_curve), Err(snarkjs::Error::Unsupported(_))));
	assert!(matches!(snarkjs::proof("{"), Err(snarkjs::Error::Json(_))));
	// pi_a's x moved off the curve, then replaced by the field modulus (not a field element).
	let with_ax = |x: &str| {
		let mut v: serde_json::Value = serde_json::from_str(PROOF).unwrap();
		v["pi_a"][0] = x.into();
		v.to_string()
	};
	assert_eq!(snarkjs::proof(&with_ax("7")), Err(snarkjs::Error::Point("pi_a")));
	let p = "21888242871839275222246405745257275088696311157297823662689037894645226208583";
	assert!(matches!(snarkjs::proof(&with_ax(p)), Err(snarkjs::Error::Number(_))));
	assert!(matches!(snarkjs::public_inputs("[\"-1\"]"), Err(snarkjs::Error::Number(_))));
	assert!(matches!(snarkjs::public_inputs("[1]"), Err(snarkjs::Error::Field(_))));
	let wrong_n = KEY.replace("\"nPublic\": 2", "\"nPublic\": 3");
	assert_eq!(snarkjs::verifying_key(&wrong_n), Err(snarkjs::Error::Field("nPublic")));
}

/// With δ = ±γ (or a δ whose discrete log is public) anyone proves anything: A = α, B = β and
/// C = ∓L satisfy e(A, B) = e(α, β)·e(L, γ)·e(C, δ) for any inputs. Such keys must not decode.
#[test]
fn keys_under_which_anyone_can_forge_are_refused() {
	use ark_bn254::{G1Affine, G2Affine};
	use ark_ec::{AffineRepr, CurveGroup};
	let real = snarkjs::verifying_key(KEY).unwrap();
	// A statement the circuit never proved: y = 31 instead of 30.
	let lie = [Fr::from(31u64), Fr::from(5u64)];
	let l = (real.ic[0].into_group() + real.ic[1] * lie[0] + real.ic[2] * lie[1]).into_affine();
	let g2 = G2Affine::generator();
	for (delta, c) in [
		(real.gamma_g2, -l),
		((-real.gamma_g2.into_group()).into_affine(), l),
		// snarkjs' zkey before phase 2 has γ = δ = the generator.
		(g2, -l),
	] {
		let key = VerifyingKey { delta_g2: delta, ..real.clone() };
		let forged = Proof { a: real.alpha_g1, b: real.beta_g2, c: G1Affine::from(c) };
		// The hole: prepared directly, the key accepts the forged proof of the false statement.
		assert_eq!(verify(&key.prepare(), &forged, &lie), Ok(()));
		// Closed where keys enter the chain: the encoding does not decode.
		assert_eq!(
			VerifyingKey::decode(&key.encode().unwrap()),
			Err(Error::DegenerateVerifyingKey)
		);
	}
	// δ = −g₂ is refused too, and the real key still decodes.
	let neg = VerifyingKey { delta_g2: (-g2.into_group()).into_affine(), ..real.clone() };
	assert_eq!(VerifyingKey::decode(&neg.encode().unwrap()), Err(Error::DegenerateVerifyingKey));
	assert_eq!(VerifyingKey::decode(&real.encode().unwrap()), Ok(real));
}
