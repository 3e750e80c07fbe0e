//! Any bytes as a proof (first 128) and public inputs (the rest) against the registered circom
//! key: nothing panics, and no statement but the proven one verifies. (Groth16 proofs are
//! malleable, so other proof bytes for the same statement are not a finding.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use opg_groth16::{decode_public_inputs, snarkjs, verify_encoded, PROOF_LEN};
use std::sync::OnceLock;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../verifiers/groth16/tests/fixtures");

struct Known {
	prepared: Vec<u8>,
	proof: Vec<u8>,
	inputs: Vec<u8>,
}

fn known() -> &'static Known {
	static KNOWN: OnceLock<Known> = OnceLock::new();
	KNOWN.get_or_init(|| {
		let read =
			|name: &str| std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture");
		let key = snarkjs::verifying_key(&read("verification_key.json")).expect("key");
		let proof = snarkjs::proof(&read("proof.json")).expect("proof").encode();
		let inputs = snarkjs::public_inputs(&read("public.json"))
			.expect("inputs")
			.iter()
			.flat_map(opg_groth16::encode_public_input)
			.collect();
		Known { prepared: key.prepare().to_bytes(), proof, inputs }
	})
}

fuzz_target!(|data: &[u8]| {
	let k = known();
	let (proof, inputs) = data.split_at(data.len().min(PROOF_LEN));
	let _ = decode_public_inputs(inputs);
	if verify_encoded(&k.prepared, proof, inputs).is_ok() {
		assert_eq!(inputs, &k.inputs[..], "a different statement verified");
	}
	// The real proof against mutated inputs.
	if verify_encoded(&k.prepared, &k.proof, data).is_ok() {
		assert_eq!(data, &k.inputs[..], "the proof verified another statement");
	}
});
