//! The integer semantics, the circuit against them (satisfied exactly by the true statement),
//! the model rules, and a full Groth16 round: setup, proof, and verification by `opg-groth16`
//! against the public inputs the chain computes.

use ark_bn254::Fr;
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystem};
use opg_zkml::{Dense, Error, InferenceCircuit, IntegerMlp};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// 6 inputs → 4 hidden (shift 2) → 3 outputs, with weights that reach saturation, negative
/// accumulators and negative outputs.
fn small() -> IntegerMlp {
	IntegerMlp {
		input_shape: vec![1, 6],
		output_shape: vec![1, 3],
		layers: vec![
			Dense {
				inputs: 6,
				outputs: 4,
				weights: vec![
					1, -1, 127, -128, //
					2, 3, 127, 5, //
					-7, 0, 127, 9, //
					4, -2, 127, 0, //
					0, 1, 127, -3, //
					1, 1, 127, 1,
				],
				bias: vec![3, -5, 100, 0],
				shift: Some(2),
			},
			Dense {
				inputs: 4,
				outputs: 3,
				weights: vec![1, -1, 0, 2, 3, -128, -4, 5, 6, 127, 0, -1],
				bias: vec![-10, 0, 7],
				shift: None,
			},
		],
	}
}

#[test]
fn evaluation_follows_the_integer_rules() {
	let model = small();
	model.validate().unwrap();
	let x = [1i8, 2, 3, 4, 5, 6];
	let acc: Vec<i64> = (0..4)
		.map(|o| {
			model.layers[0].bias[o] as i64 +
				(0..6)
					.map(|j| x[j] as i64 * model.layers[0].weights[j * 4 + o] as i64)
					.sum::<i64>()
		})
		.collect();
	assert_eq!(acc, vec![9, 3, 2767, -100]);
	// relu, floor(/4), saturate: 9 → 2, 3 → 0, 2767 → 127, -100 → 0.
	let hidden = [2i64, 0, 127, 0];
	let out: Vec<i32> = (0..3)
		.map(|o| {
			(model.layers[1].bias[o] as i64 +
				(0..4)
					.map(|j| hidden[j] * model.layers[1].weights[j * 3 + o] as i64)
					.sum::<i64>()) as i32
		})
		.collect();
	assert_eq!(model.evaluate(&x), out);
	assert_eq!(out, vec![-516, 633, 769]);
}

/// The circuit of `input`, synthesized; returns whether it is satisfied and its public inputs.
fn synthesize(model: &IntegerMlp, input: Vec<i8>, tamper: Option<usize>) -> (bool, Vec<Fr>, usize) {
	let cs = ConstraintSystem::<Fr>::new_ref();
	InferenceCircuit::prove(model, input).generate_constraints(cs.clone()).unwrap();
	if let Some(i) = tamper {
		cs.borrow_mut().unwrap().instance_assignment[1 + i] += Fr::from(1u64);
	}
	let public = cs.borrow().unwrap().instance_assignment[1..].to_vec();
	(cs.is_satisfied().unwrap(), public, cs.num_constraints())
}

#[test]
fn the_circuit_holds_exactly_for_the_chains_statement() {
	let model = small();
	let mut rng = StdRng::seed_from_u64(7);
	let mut inputs: Vec<Vec<i8>> =
		vec![vec![i8::MIN; 6], vec![i8::MAX; 6], vec![0; 6], vec![1, 2, 3, 4, 5, 6]];
	inputs.extend((0..20).map(|_| (0..6).map(|_| rng.gen::<i8>()).collect()));
	for input in inputs {
		let payload = model.input_payload(&input);
		let output = model.output_payload(&model.evaluate(&input));
		let (satisfied, public, constraints) = synthesize(&model, input.clone(), None);
		assert!(satisfied, "input {input:?}");
		assert_eq!(public, opg_zkml::statement(&payload, &output), "input {input:?}");
		assert!(constraints > 0);
		// Any other input or output digest cannot satisfy it.
		for i in 0..4 {
			assert!(
				!synthesize(&model, input.clone(), Some(i)).0,
				"input {input:?}, public input {i} changed"
			);
		}
	}
}

#[test]
fn models_that_break_the_rules_are_refused() {
	let expect = |model: IntegerMlp, what: &str| match model.validate() {
		Err(Error::Model(message)) => assert!(message.contains(what), "{message} (wanted {what})"),
		other => panic!("{other:?} (wanted {what})"),
	};
	let mut m = small();
	m.layers[1].shift = Some(1);
	expect(m, "no requantization");
	let mut m = small();
	m.layers[0].shift = None;
	expect(m, "hidden layer 0");
	let mut m = small();
	m.layers[0].shift = Some(25);
	expect(m, "shift 25");
	let mut m = small();
	m.layers[0].bias.pop();
	expect(m, "count");
	let mut m = small();
	m.input_shape = vec![1, 7];
	expect(m, "input shape");
	let mut m = small();
	m.output_shape = vec![3, 3];
	expect(m, "output shape");
	let mut m = small();
	m.layers[1].inputs = 3;
	m.layers[1].weights.truncate(9);
	expect(m, "layer 1 takes 3");
	// A bias at the edge of int32 could overflow the accumulator.
	let mut m = small();
	m.layers[1].bias[0] = i32::MAX - 100;
	expect(m, "beyond int32");
	let mut m = small();
	m.layers.clear();
	expect(m, "0 layers");
}

#[test]
fn only_the_canonical_input_of_the_models_shape_is_read() {
	use codec::Encode;
	use opg_primitives::{ElemType, Tensor};
	let model = small();
	let input = [1i8, -2, 3, -4, 5, -6];
	let payload = model.input_payload(&input);
	assert_eq!(model.read_input(&payload).unwrap(), input);
	let mut trailing = payload.clone();
	trailing.push(0);
	assert!(matches!(model.read_input(&trailing), Err(Error::Input(_))));
	let wrong_type =
		vec![Tensor { elem: ElemType::U8, shape: vec![1, 6], data: vec![0; 6] }].encode();
	assert!(matches!(model.read_input(&wrong_type), Err(Error::Input(_))));
	let wrong_shape =
		vec![Tensor { elem: ElemType::I8, shape: vec![6], data: vec![0; 6] }].encode();
	assert!(matches!(model.read_input(&wrong_shape), Err(Error::Input(_))));
	let two = vec![Tensor { elem: ElemType::I8, shape: vec![1, 6], data: vec![0; 6] }; 2].encode();
	assert!(matches!(model.read_input(&two), Err(Error::Input(_))));
	assert!(matches!(model.read_input(&[0xff]), Err(Error::Input(_))));
}

#[test]
fn groth16_proofs_verify_against_the_chains_public_inputs_only() {
	let model = small();
	let mut rng = StdRng::seed_from_u64(2026);
	let keys = opg_zkml::setup(&model, &mut rng).unwrap();
	let prepared = opg_groth16::VerifyingKey::decode(&keys.verifying.encode().unwrap())
		.unwrap()
		.prepare();

	let a = model.input_payload(&[1, 2, 3, 4, 5, 6]);
	let b = model.input_payload(&[-1, 2, 3, 4, 5, 6]);
	let proved = opg_zkml::prove(&model, &keys.proving, &a, &mut rng).unwrap();
	assert_eq!(proved.output, model.output_payload(&model.evaluate(&[1, 2, 3, 4, 5, 6])));
	let proof = opg_groth16::Proof::decode(&proved.proof).unwrap();
	opg_groth16::verify(&prepared, &proof, &opg_zkml::statement(&a, &proved.output)).unwrap();

	// Another output, or another input, is not what was proved.
	let mut other_output = proved.output.clone();
	*other_output.last_mut().unwrap() ^= 1;
	assert_eq!(
		opg_groth16::verify(&prepared, &proof, &opg_zkml::statement(&a, &other_output)),
		Err(opg_groth16::Error::InvalidProof)
	);
	assert_eq!(
		opg_groth16::verify(&prepared, &proof, &opg_zkml::statement(&b, &proved.output)),
		Err(opg_groth16::Error::InvalidProof)
	);

	// The proving key survives its file format and still holds the same verifying key.
	let read = opg_zkml::read_proving_key(&opg_zkml::write_proving_key(&keys.proving)).unwrap();
	assert_eq!(opg_zkml::verifying_key_of(&read), keys.verifying);
	let again = opg_zkml::prove(&model, &read, &b, &mut rng).unwrap();
	let proof = opg_groth16::Proof::decode(&again.proof).unwrap();
	opg_groth16::verify(&prepared, &proof, &opg_zkml::statement(&b, &again.output)).unwrap();
	// A non-canonical input is refused before any proving.
	assert!(matches!(opg_zkml::prove(&model, &keys.proving, &[0], &mut rng), Err(Error::Input(_))));
}

/// A `tracing` subscriber that enables everything and counts the spans opened under it, as a
/// host's log subscriber would see them.
struct CountSpans(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl tracing::Subscriber for CountSpans {
	fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
		true
	}
	fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
		tracing::span::Id::from_u64(1 + self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
	}
	fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
	fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
	fn event(&self, _: &tracing::Event<'_>) {}
	fn enter(&self, _: &tracing::span::Id) {}
	fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn proving_opens_no_spans_in_the_hosts_subscriber() {
	let model = small();
	let spans = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
	let mut rng = StdRng::seed_from_u64(11);
	tracing::subscriber::with_default(CountSpans(spans.clone()), || {
		// The gadgets do open spans (whose fields format the whole constraint system) ...
		synthesize(&model, vec![1, 2, 3, 4, 5, 6], None);
		assert!(
			spans.swap(0, std::sync::atomic::Ordering::Relaxed) > 0,
			"the subscriber sees gadget spans"
		);
		// ... but not when the prover synthesizes.
		let keys = opg_zkml::setup(&model, &mut rng).unwrap();
		opg_zkml::constraint_count(&model).unwrap();
		opg_zkml::prove(&model, &keys.proving, &model.input_payload(&[1, 2, 3, 4, 5, 6]), &mut rng)
			.unwrap();
	});
	assert_eq!(spans.load(std::sync::atomic::Ordering::Relaxed), 0);
}
