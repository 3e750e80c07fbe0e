//! Times OPG's ZK prover on an integer model: circuit size, Groth16 setup, proving (median of
//! the runs), verification with the chain's verifier (native) and sizes; one JSON line, for
//! `scripts/bench/zk.sh`.
//!
//! usage: zk_bench MODEL.onnx REFERENCE.json [RUNS]

use std::time::Instant;

fn main() {
	let args: Vec<String> = std::env::args().collect();
	let [_, model, reference, rest @ ..] = &args[..] else {
		eprintln!("usage: zk_bench MODEL.onnx REFERENCE.json [RUNS]");
		std::process::exit(2);
	};
	let runs: usize = rest.first().map_or(3, |r| r.parse().expect("RUNS is a number"));
	let onnx = std::fs::read(model).expect("model file");
	let reference: serde_json::Value =
		serde_json::from_str(&std::fs::read_to_string(reference).expect("reference file"))
			.expect("JSON");
	let case = &reference["cases"][0];
	let pixels: Vec<i8> = case["pixels"]
		.as_array()
		.unwrap()
		.iter()
		.map(|v| v.as_i64().unwrap() as i8)
		.collect();

	let mlp = opg_worker::zk::mlp_of(&onnx).expect("an integer MLP");
	let constraints = opg_zkml::constraint_count(&mlp).unwrap();
	let started = Instant::now();
	let keys = opg_zkml::setup(&mlp, &mut rand::rngs::OsRng).unwrap();
	let setup_s = started.elapsed().as_secs_f64();
	let input = mlp.input_payload(&pixels);
	let mut prove_s = Vec::new();
	let mut proved = None;
	for _ in 0..runs.max(1) {
		let started = Instant::now();
		proved =
			Some(opg_zkml::prove(&mlp, &keys.proving, &input, &mut rand::rngs::OsRng).unwrap());
		prove_s.push(started.elapsed().as_secs_f64());
	}
	prove_s.sort_by(f64::total_cmp);
	let proved = proved.unwrap();
	let prepared = keys.verifying.prepare();
	let proof = opg_groth16::Proof::decode(&proved.proof).unwrap();
	let started = Instant::now();
	opg_groth16::verify(&prepared, &proof, &opg_zkml::statement(&input, &proved.output))
		.expect("verifies");
	let verify_ms = started.elapsed().as_secs_f64() * 1000.0;
	let logits = mlp.evaluate(&pixels);
	assert_eq!(serde_json::json!(logits), case["logits"], "the proved output is the reference's");
	println!(
		"{}",
		serde_json::json!({
			"system": "OPG opg-zkml (Groth16, BN254)",
			"constraints": constraints,
			"setup_s": (setup_s * 1000.0).round() / 1000.0,
			"prove_s": (prove_s[prove_s.len() / 2] * 1000.0).round() / 1000.0,
			"verify_ms": (verify_ms * 10.0).round() / 10.0,
			"proof_bytes": proved.proof.len(),
			"public_instances": opg_primitives::ZK_PUBLIC_INPUTS,
			"pk_bytes": opg_zkml::write_proving_key(&keys.proving).len(),
			"vk_bytes": keys.verifying.encode().unwrap().len(),
			"logits": logits,
			"reference_logits": case["logits"],
		})
	);
}
