//! # OPG ZKML prover
//!
//! Proves that an integer model produced a job's output from its input, for the chain's ZK mode.
//!
//! The models are **integer MLPs**: int8 inputs, int8 weights, int32 accumulation and bias; a
//! hidden layer applies ReLU and requantizes by a power-of-two scale (`floor(relu(acc) / 2^k)`
//! saturated to `[0, 127]`, i.e. int8); the last layer outputs its int32 accumulators. That is
//! what post-training quantization with power-of-two scales gives, written in ONNX as
//! `MatMulInteger → Add → Relu → Div → Clip → Cast` per hidden layer (see
//! `scripts/regen/make-zk-model.py`); the worker reads such graphs into an [`IntegerMlp`].
//!
//! [`circuit`] compiles the model into an R1CS circuit over BN254's scalar field. Weights are
//! constants, so a layer's products cost nothing; each hidden neuron costs a 32-bit
//! decomposition for ReLU, shift and saturation. The circuit hashes the canonical input and
//! output payloads (SCALE `Vec<Tensor>`, exactly the bytes of the job and of the result) with
//! blake2s-256 and exposes the two digests as the four public inputs of
//! [`opg_primitives::zk_public_inputs`], which the chain recomputes from the job: the proof is
//! about these very bytes, and the verifier's cost does not grow with the tensors.
//!
//! [`setup`] runs Groth16's circuit-specific setup (the model publisher runs it once:
//! `opg-worker zk-setup`), [`prove`] proves one evaluation, and keys and proofs convert to
//! [`opg_groth16`]'s compact forms that `pallet-zk` registers and verifies.

pub mod circuit;

use ark_bn254::{Bn254, Fr};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use ark_snark::SNARK;
use codec::Encode;
use opg_primitives::{ElemType, Tensor, ZK_PUBLIC_INPUTS};

pub use circuit::InferenceCircuit;

/// Most layers in a model.
pub const MAX_LAYERS: usize = 8;
/// Most inputs or outputs of a layer.
pub const MAX_WIDTH: usize = 1024;
/// Accumulators must stay within int32, as ONNX's `MatMulInteger` and `Add` compute them.
const ACC_LIMIT: i64 = 1 << 31;

/// One fully connected layer: `acc = x · W + b` (int32), then for a hidden layer
/// `clamp(floor(max(acc, 0) / 2^shift), 0, 127)` as int8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dense {
	/// Inputs of the layer.
	pub inputs: usize,
	/// Outputs of the layer.
	pub outputs: usize,
	/// `inputs × outputs`, row-major (ONNX `MatMul`'s `B`).
	pub weights: Vec<i8>,
	/// One per output.
	pub bias: Vec<i32>,
	/// Requantization of a hidden layer (ReLU, shift, saturation to int8); `None` for the
	/// output layer, which returns its accumulators.
	pub shift: Option<u8>,
}

/// An integer MLP, and the shapes of its input and output tensors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegerMlp {
	/// Shape of the int8 input tensor (its elements are the first layer's inputs).
	pub input_shape: Vec<u32>,
	/// Shape of the int32 output tensor.
	pub output_shape: Vec<u32>,
	/// The layers, input first.
	pub layers: Vec<Dense>,
}

/// Why a model cannot be proved, or an input not evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
	/// The model breaks one of the rules of [`IntegerMlp`].
	#[error("not a provable integer MLP: {0}")]
	Model(String),
	/// The input payload is not one int8 tensor of the model's input shape.
	#[error("input does not fit the model: {0}")]
	Input(String),
	/// Groth16 setup or proving failed.
	#[error("proving system: {0}")]
	Snark(String),
	/// A key file could not be read or written.
	#[error("key encoding: {0}")]
	Key(String),
}

fn numel(shape: &[u32]) -> Option<usize> {
	shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d as usize))
}

impl IntegerMlp {
	/// Checks the structure and that no accumulator can leave int32, whatever the input.
	pub fn validate(&self) -> Result<(), Error> {
		let fail = |what: String| Err(Error::Model(what));
		if self.layers.is_empty() || self.layers.len() > MAX_LAYERS {
			return fail(format!("{} layers (1 ..= {MAX_LAYERS})", self.layers.len()));
		}
		if numel(&self.input_shape) != Some(self.layers[0].inputs) {
			return fail(format!(
				"input shape {:?} does not hold {} values",
				self.input_shape, self.layers[0].inputs
			));
		}
		let last = self.layers.len() - 1;
		if numel(&self.output_shape) != Some(self.layers[last].outputs) {
			return fail(format!(
				"output shape {:?} does not hold {} values",
				self.output_shape, self.layers[last].outputs
			));
		}
		// Largest magnitude of each input value: int8 at the input, [0, 127] after a hidden layer.
		let mut input_bound = 128i64;
		for (i, layer) in self.layers.iter().enumerate() {
			if layer.inputs == 0 ||
				layer.outputs == 0 ||
				layer.inputs > MAX_WIDTH ||
				layer.outputs > MAX_WIDTH
			{
				return fail(format!(
					"layer {i}: {}×{} (1 ..= {MAX_WIDTH} each)",
					layer.inputs, layer.outputs
				));
			}
			if i > 0 && self.layers[i - 1].outputs != layer.inputs {
				return fail(format!(
					"layer {i} takes {} values, layer {} gives {}",
					layer.inputs,
					i - 1,
					self.layers[i - 1].outputs
				));
			}
			if layer.weights.len() != layer.inputs * layer.outputs ||
				layer.bias.len() != layer.outputs
			{
				return fail(format!(
					"layer {i}: weight or bias count does not match {}×{}",
					layer.inputs, layer.outputs
				));
			}
			match (i == last, layer.shift) {
				(true, Some(_)) =>
					return fail(
						"the output layer returns int32 accumulators: no requantization".into(),
					),
				(false, None) =>
					return fail(format!(
						"hidden layer {i} needs ReLU and a power-of-two requantization"
					)),
				(false, Some(shift)) if shift > 24 =>
					return fail(format!("layer {i}: shift {shift} over 24")),
				_ => {},
			}
			for o in 0..layer.outputs {
				let reach: i64 = (0..layer.inputs)
					.map(|j| (layer.weights[j * layer.outputs + o] as i64).abs())
					.sum::<i64>() * input_bound +
					(layer.bias[o] as i64).abs();
				if reach >= ACC_LIMIT {
					return fail(format!(
						"layer {i}, output {o}: the accumulator can reach {reach}, beyond int32"
					));
				}
			}
			input_bound = 127;
		}
		Ok(())
	}

	/// Number of input values.
	pub fn input_len(&self) -> usize {
		self.layers[0].inputs
	}

	/// The int8 values of a canonical input payload (one int8 tensor of the input shape).
	pub fn read_input(&self, payload: &[u8]) -> Result<Vec<i8>, Error> {
		let tensors = <Vec<Tensor> as codec::Decode>::decode(&mut &payload[..])
			.map_err(|e| Error::Input(format!("not a canonical payload: {e}")))?;
		let [tensor] = &tensors[..] else {
			return Err(Error::Input(format!("{} tensors, not 1", tensors.len())))
		};
		if tensor.elem != ElemType::I8 || tensor.shape != self.input_shape {
			return Err(Error::Input(format!(
				"{:?} {:?}, not I8 {:?}",
				tensor.elem, tensor.shape, self.input_shape
			)));
		}
		if tensor.data.len() != self.input_len() {
			return Err(Error::Input("data length does not match the shape".into()));
		}
		let input: Vec<i8> = tensor.data.iter().map(|b| *b as i8).collect();
		// The circuit hashes the canonical encoding of these values: it must be this payload.
		if self.input_payload(&input) != payload {
			return Err(Error::Input("trailing or non-canonical bytes".into()));
		}
		Ok(input)
	}

	/// The canonical payload of an input.
	pub fn input_payload(&self, input: &[i8]) -> Vec<u8> {
		let data = input.iter().map(|v| *v as u8).collect();
		vec![Tensor { elem: ElemType::I8, shape: self.input_shape.clone(), data }].encode()
	}

	/// The canonical payload of an output.
	pub fn output_payload(&self, output: &[i32]) -> Vec<u8> {
		let data = output.iter().flat_map(|v| v.to_le_bytes()).collect();
		vec![Tensor { elem: ElemType::I32, shape: self.output_shape.clone(), data }].encode()
	}

	/// Runs the model: exactly the circuit's (and the ONNX graph's) integer semantics.
	pub fn evaluate(&self, input: &[i8]) -> Vec<i32> {
		let mut x: Vec<i64> = input.iter().map(|v| *v as i64).collect();
		for layer in &self.layers {
			let mut y: Vec<i64> = layer.bias.iter().map(|b| *b as i64).collect();
			for (j, xj) in x.iter().enumerate() {
				let row = &layer.weights[j * layer.outputs..(j + 1) * layer.outputs];
				for (acc, w) in y.iter_mut().zip(row) {
					*acc += xj * *w as i64;
				}
			}
			if let Some(shift) = layer.shift {
				for acc in &mut y {
					*acc = ((*acc).max(0) >> shift).min(127);
				}
			}
			x = y;
		}
		x.into_iter().map(|v| v as i32).collect()
	}
}

/// A proving key with the verifying key it belongs to.
pub struct Keys {
	/// Groth16 proving key (the worker keeps it).
	pub proving: ark_groth16::ProvingKey<Bn254>,
	/// The verifying key in `pallet-zk`'s compact form.
	pub verifying: opg_groth16::VerifyingKey,
}

fn verifying_key(vk: &ark_groth16::VerifyingKey<Bn254>) -> opg_groth16::VerifyingKey {
	opg_groth16::VerifyingKey {
		alpha_g1: vk.alpha_g1,
		beta_g2: vk.beta_g2,
		gamma_g2: vk.gamma_g2,
		delta_g2: vk.delta_g2,
		ic: vk.gamma_abc_g1.clone(),
	}
}

/// Runs `f` with `tracing` switched off on this thread. The arkworks gadgets open an INFO span
/// per gadget call whose fields include the whole constraint system: under a host's log
/// subscriber (the node's, the worker's) formatting them made one proof take minutes.
fn untraced<T>(f: impl FnOnce() -> T) -> T {
	tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), f)
}

/// Groth16's circuit-specific setup for `model`, with randomness from `rng`. Whoever knows
/// that randomness can forge proofs: run it where it is thrown away (or replace it by a
/// multi-party ceremony).
pub fn setup<R: rand::RngCore + rand::CryptoRng>(
	model: &IntegerMlp,
	rng: &mut R,
) -> Result<Keys, Error> {
	model.validate()?;
	let (proving, vk) = untraced(|| {
		ark_groth16::Groth16::<Bn254>::circuit_specific_setup(InferenceCircuit::setup(model), rng)
	})
	.map_err(|e| Error::Snark(e.to_string()))?;
	let verifying = verifying_key(&vk);
	if verifying.public_inputs() != ZK_PUBLIC_INPUTS {
		return Err(Error::Snark(format!("{} public inputs", verifying.public_inputs())));
	}
	Ok(Keys { proving, verifying })
}

/// Constraints of `model`'s circuit (what proving time and key size grow with).
pub fn constraint_count(model: &IntegerMlp) -> Result<usize, Error> {
	use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystem, SynthesisMode};
	model.validate()?;
	let cs = ConstraintSystem::<Fr>::new_ref();
	cs.set_mode(SynthesisMode::Setup);
	untraced(|| InferenceCircuit::setup(model).generate_constraints(cs.clone()))
		.map_err(|e| Error::Snark(e.to_string()))?;
	Ok(cs.num_constraints())
}

/// A proof of one evaluation: the output payload, and the proof in `pallet-zk`'s compact form.
pub struct Proved {
	/// Canonical output payload (what the worker submits as the result).
	pub output: Vec<u8>,
	/// The Groth16 proof ([`opg_groth16::Proof::encode`]).
	pub proof: Vec<u8>,
}

/// Evaluates `model` on the canonical `input` payload and proves it.
pub fn prove<R: rand::RngCore + rand::CryptoRng>(
	model: &IntegerMlp,
	proving: &ark_groth16::ProvingKey<Bn254>,
	input: &[u8],
	rng: &mut R,
) -> Result<Proved, Error> {
	let values = model.read_input(input)?;
	let output = model.output_payload(&model.evaluate(&values));
	let circuit = InferenceCircuit::prove(model, values);
	let proof = untraced(|| ark_groth16::Groth16::<Bn254>::prove(proving, circuit, rng))
		.map_err(|e| Error::Snark(e.to_string()))?;
	let proof = opg_groth16::Proof { a: proof.a, b: proof.b, c: proof.c };
	Ok(Proved { output, proof: proof.encode() })
}

/// The public inputs the chain derives from a job's input and output payloads, read as
/// `pallet-zk` reads them.
pub fn statement(input: &[u8], output: &[u8]) -> Vec<Fr> {
	opg_groth16::decode_public_inputs(&opg_primitives::zk_public_inputs(input, output).concat())
		.expect("128-bit halves are below the group order")
}

/// Writes a proving key (uncompressed: it is read at every start, and checked against its
/// verifying key then).
pub fn write_proving_key(key: &ark_groth16::ProvingKey<Bn254>) -> Vec<u8> {
	let mut out = Vec::with_capacity(key.uncompressed_size());
	key.serialize_uncompressed(&mut out).expect("writing to a Vec cannot fail");
	out
}

/// Reads a proving key written by [`write_proving_key`]; points are checked to be on the curve
/// and in the subgroup.
pub fn read_proving_key(bytes: &[u8]) -> Result<ark_groth16::ProvingKey<Bn254>, Error> {
	ark_groth16::ProvingKey::<Bn254>::deserialize_uncompressed(bytes)
		.map_err(|e| Error::Key(e.to_string()))
}

/// The verifying key inside a proving key, in `pallet-zk`'s compact form.
pub fn verifying_key_of(proving: &ark_groth16::ProvingKey<Bn254>) -> opg_groth16::VerifyingKey {
	verifying_key(&proving.vk)
}
