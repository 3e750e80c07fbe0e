//! ZK mode in the worker: the integer digits model read from its ONNX graph computes the logits
//! onnxruntime computed (reference.json), `zk-setup` makes keys whose proofs verify against the
//! statement the chain derives, and graphs or key files that do not fit are refused by name.

use opg_worker::{
	onnx::Model,
	zk::{self, Provers, ZkError},
};
use polkadot_sdk::sp_core::H256;

fn repo(path: &str) -> std::path::PathBuf {
	std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn zk_model() -> Vec<u8> {
	std::fs::read(repo("models/digits-zk/digits-mlp-int8.onnx")).unwrap()
}

fn reference() -> serde_json::Value {
	serde_json::from_str(&std::fs::read_to_string(repo("models/digits-zk/reference.json")).unwrap())
		.unwrap()
}

fn pixels(case: &serde_json::Value) -> Vec<i8> {
	case["pixels"]
		.as_array()
		.unwrap()
		.iter()
		.map(|v| v.as_i64().unwrap() as i8)
		.collect()
}

#[test]
fn the_integer_digits_model_computes_the_reference_logits() {
	let mlp = zk::integer_mlp(&Model::parse(&zk_model()).unwrap()).unwrap();
	assert_eq!((mlp.input_shape.clone(), mlp.output_shape.clone()), (vec![1, 64], vec![1, 10]));
	assert_eq!(
		mlp.layers.iter().map(|l| (l.inputs, l.outputs, l.shift)).collect::<Vec<_>>(),
		[(64, 32, Some(5)), (32, 10, None)]
	);
	for case in reference()["cases"].as_array().unwrap() {
		let logits: Vec<i32> = case["logits"]
			.as_array()
			.unwrap()
			.iter()
			.map(|v| v.as_i64().unwrap() as i32)
			.collect();
		assert_eq!(mlp.evaluate(&pixels(case)), logits, "case {}", case["index"]);
	}
}

#[test]
fn graphs_outside_the_integer_mlp_form_are_refused_by_name() {
	let refused = |bytes: &[u8], what: &str| match zk::integer_mlp(&Model::parse(bytes).unwrap()) {
		Err(ZkError::Model(message)) =>
			assert!(message.contains(what), "{message} (wanted {what})"),
		other => panic!("{other:?} (wanted {what})"),
	};
	// Float models are not provable.
	refused(&std::fs::read(repo("models/digits/digits-cnn.onnx")).unwrap(), "int8 in, int32 out");
	// The requantization divisor must be a power of two (32 → 48 in the file).
	let bytes = zk_model();
	let mut model = Model::parse(&bytes).unwrap();
	let scale = model.initializers.get_mut("scale1").unwrap();
	scale.data = 48i32.to_le_bytes().to_vec();
	match zk::integer_mlp(&model) {
		Err(ZkError::Model(m)) => assert!(m.contains("divisor 48 is not a power of two"), "{m}"),
		other => panic!("{other:?}"),
	}
	// Clipping to another range is another model.
	let mut model = Model::parse(&bytes).unwrap();
	model.initializers.get_mut("max_i8").unwrap().data = 100i32.to_le_bytes().to_vec();
	assert!(matches!(zk::integer_mlp(&model), Err(ZkError::Model(m)) if m.contains("[0, 127]")));
	// A node the form does not know.
	let mut model = Model::parse(&bytes).unwrap();
	model.nodes[2].op = "Sigmoid".into();
	assert!(matches!(zk::integer_mlp(&model), Err(ZkError::Model(m)) if m.contains("Relu")));
}

#[test]
fn missing_or_foreign_proving_keys_are_reported() {
	let dir = tempfile::tempdir().unwrap();
	let provers = Provers::new(dir.path());
	let key = H256::repeat_byte(7);
	let input = vec![0u8; 4];
	let artifact = opg_worker::store::blake2_256(&zk_model());
	let model = || Ok(zk_model());
	assert!(matches!(provers.prove(key, artifact, model, &input), Err(ZkError::NoKey(_))));
	// A key file made for another model file is not used.
	let mut file = vec![1u8; 32];
	file.extend([0u8; 64]);
	std::fs::write(dir.path().join(format!("{key:?}.pk")), file).unwrap();
	match provers.prove(key, artifact, model, &input) {
		Err(ZkError::BadKey(_, why)) => assert!(why.contains("made for model"), "{why}"),
		other => panic!("{:?}", other.map(|_| ())),
	}
}

/// The ZK model with one first-layer weight changed, one that multiplies input `i`: what a
/// re-export of the model looks like to a worker still holding the old proving key.
fn with_one_weight_changed(model: &[u8], i: usize) -> Vec<u8> {
	let mlp = zk::mlp_of(model).unwrap();
	let weights: Vec<u8> = mlp.layers[0].weights.iter().map(|w| *w as u8).collect();
	let at = model.windows(weights.len()).position(|w| w == weights).expect("raw weights");
	let mut changed = model.to_vec();
	let byte = at + i * mlp.layers[0].outputs;
	changed[byte] = changed[byte].wrapping_add(1);
	assert_ne!(zk::mlp_of(&changed).unwrap().layers[0].weights, mlp.layers[0].weights);
	changed
}

#[test]
fn a_proof_the_chain_would_refuse_is_never_sent() {
	use codec::Encode;
	let dir = tempfile::tempdir().unwrap();
	let model = zk_model();
	let setup = zk::setup(&model, dir.path()).unwrap();
	let case = &reference()["cases"][0];
	let input = vec![opg_primitives::Tensor {
		elem: opg_primitives::ElemType::I8,
		shape: vec![1, 64],
		data: pixels(case).iter().map(|p| *p as u8).collect(),
	}]
	.encode();
	let (good_artifact, key) = (opg_worker::store::blake2_256(&model), setup.key_hash);
	assert!(Provers::new(dir.path())
		.prove(key, good_artifact, || Ok(model.clone()), &input)
		.is_ok());

	// A stale proving key: the model changed (one weight) and the key file was relabelled for
	// the new file. Proving succeeds, but the proof is of another circuit: a slash on chain.
	// A weight that meets a non-zero pixel, so the computation really differs.
	let lit = pixels(case).iter().position(|p| *p != 0).unwrap();
	let changed = with_one_weight_changed(&model, lit);
	let artifact = opg_worker::store::blake2_256(&changed);
	let pk = std::fs::read(&setup.proving_key).unwrap();
	std::fs::write(&setup.proving_key, [&artifact.0[..], &pk[32..]].concat()).unwrap();
	match Provers::new(dir.path()).prove(key, artifact, || Ok(changed.clone()), &input) {
		Err(ZkError::SelfCheck(why)) => assert!(why.contains("InvalidProof"), "{why}"),
		other => panic!("{:?}", other.map(|p| p.output)),
	}
}
