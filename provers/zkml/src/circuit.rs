//! The R1CS circuit of one evaluation of an [`IntegerMlp`].
//!
//! Public inputs (in order): the blake2s-256 digest of the canonical input payload, high then
//! low 128 bits, then the same for the output payload ([`opg_primitives::zk_public_inputs`]).
//! Witness: the input's int8 values. Everything else is derived inside the circuit:
//! - the input payload is the constant SCALE header of the model's input tensor followed by the
//!   witnessed bytes, and each byte's two's-complement value feeds the first layer;
//! - a layer's accumulators are linear combinations (weights and biases are constants);
//! - a hidden neuron decomposes `acc + 2^31` into 32 bits: bit 31 is the sign, bits `shift..` are
//!   `relu(acc) >> shift`, and any set bit from `shift + 7` saturates the value to 127;
//! - an output accumulator's two's-complement bits (the same decomposition with bit 31 flipped) are
//!   the little-endian bytes of the output payload after its constant header.

use ark_bn254::Fr;
use ark_ff::PrimeField;
use ark_r1cs_std::{
	alloc::AllocVar,
	boolean::Boolean,
	convert::ToBitsGadget,
	eq::EqGadget,
	fields::{fp::FpVar, FieldVar},
	uint8::UInt8,
};
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};

use crate::IntegerMlp;

/// One evaluation of `model`; without an input it only describes the circuit (for the setup).
pub struct InferenceCircuit<'a> {
	model: &'a IntegerMlp,
	input: Option<Vec<i8>>,
}

impl<'a> InferenceCircuit<'a> {
	/// The circuit's shape, for Groth16's setup.
	pub fn setup(model: &'a IntegerMlp) -> Self {
		InferenceCircuit { model, input: None }
	}

	/// The circuit of `model` on `input` (which must have the model's input length).
	pub fn prove(model: &'a IntegerMlp, input: Vec<i8>) -> Self {
		assert_eq!(input.len(), model.input_len(), "checked by read_input");
		InferenceCircuit { model, input: Some(input) }
	}
}

/// Bits of a payload: the constant header (all bytes before the tensor data, which the shapes
/// fix) followed by the data bytes' bits, little-endian within each byte as blake2s reads them.
fn payload_bits(header: &[u8], data: &[Boolean<Fr>]) -> Vec<Boolean<Fr>> {
	let mut bits: Vec<Boolean<Fr>> = header
		.iter()
		.flat_map(|byte| (0..8).map(move |i| Boolean::constant(byte >> i & 1 == 1)))
		.collect();
	bits.extend_from_slice(data);
	bits
}

/// Enforces that `digest` (blake2s output words) is what the public inputs `high`, `low` hold:
/// the digest's bytes 0..16 and 16..32, each read as a big-endian integer.
fn expose_digest(
	digest: &[ark_r1cs_std::uint32::UInt32<Fr>; 8],
	high: &FpVar<Fr>,
	low: &FpVar<Fr>,
) -> Result<(), SynthesisError> {
	let mut bytes = Vec::with_capacity(32);
	for word in digest {
		let bits = word.to_bits_le()?;
		bytes.extend(bits.chunks(8).map(|b| b.to_vec()));
	}
	for (half, public) in [high, low].into_iter().enumerate() {
		// Little-endian bits of the big-endian integer: the last byte comes first.
		let bits: Vec<Boolean<Fr>> =
			bytes[half * 16..half * 16 + 16].iter().rev().flatten().cloned().collect();
		Boolean::le_bits_to_fp(&bits)?.enforce_equal(public)?;
	}
	Ok(())
}

impl ConstraintSynthesizer<Fr> for InferenceCircuit<'_> {
	fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
		let model = self.model;
		// The statement, computed natively when proving.
		let statement = self.input.as_ref().map(|input| {
			let output = model.evaluate(input);
			crate::statement(&model.input_payload(input), &model.output_payload(&output))
		});
		let public = (0..opg_primitives::ZK_PUBLIC_INPUTS)
			.map(|i| {
				FpVar::new_input(cs.clone(), || {
					statement.as_ref().map(|s| s[i]).ok_or(SynthesisError::AssignmentMissing)
				})
			})
			.collect::<Result<Vec<_>, _>>()?;

		// Input bytes and their int8 values.
		let n = model.input_len();
		let bytes = (0..n)
			.map(|i| {
				UInt8::new_witness(cs.clone(), || {
					self.input.as_ref().map(|x| x[i] as u8).ok_or(SynthesisError::AssignmentMissing)
				})
			})
			.collect::<Result<Vec<_>, _>>()?;
		let mut input_bits = Vec::with_capacity(8 * n);
		let mut values: Vec<FpVar<Fr>> = Vec::with_capacity(n);
		for byte in &bytes {
			let bits = byte.to_bits_le()?;
			// Two's complement: the top bit weighs -128.
			let unsigned = Boolean::le_bits_to_fp(&bits[..7])?;
			values.push(unsigned - FpVar::from(bits[7].clone()) * Fr::from(128u64));
			input_bits.extend(bits);
		}

		let two_31 = Fr::from(1u64 << 31);
		let mut output_bits = Vec::new();
		for layer in &model.layers {
			let mut next = Vec::with_capacity(layer.outputs);
			for o in 0..layer.outputs {
				let mut acc = FpVar::constant(signed(layer.bias[o] as i64));
				for (j, x) in values.iter().enumerate() {
					let w = layer.weights[j * layer.outputs + o];
					if w != 0 {
						acc += x * signed(w as i64);
					}
				}
				// `acc + 2^31` fits 32 bits: `IntegerMlp::validate` bounds every accumulator.
				let (bits, _) =
					(acc + FpVar::constant(two_31)).to_bits_le_with_top_bits_zero(32)?;
				match layer.shift {
					Some(shift) => {
						let shift = shift as usize;
						let nonnegative = bits[31].clone();
						let low = Boolean::le_bits_to_fp(&bits[shift..shift + 7])?;
						let high = &bits[shift + 7..31];
						let saturated = if high.is_empty() {
							Boolean::constant(false)
						} else {
							Boolean::kary_or(high)?
						};
						let clipped = saturated.select(&FpVar::constant(Fr::from(127u64)), &low)?;
						next.push(nonnegative.select(&clipped, &FpVar::zero())?);
					},
					None => {
						// Two's complement of acc: bit 31 of `acc + 2^31`, flipped.
						output_bits.extend_from_slice(&bits[..31]);
						output_bits.push(!&bits[31]);
					},
				}
			}
			values = next;
		}

		let zero_input = vec![0i8; n];
		let zero_output = vec![0i32; model.layers.last().expect("validated").outputs];
		let (input_payload, output_payload) =
			(model.input_payload(&zero_input), model.output_payload(&zero_output));
		let input_header = header(&input_payload, n);
		let output_header = header(&output_payload, 4 * zero_output.len());
		let input_digest = ark_crypto_primitives::prf::blake2s::constraints::evaluate_blake2s(
			&payload_bits(input_header, &input_bits),
		)?;
		let output_digest = ark_crypto_primitives::prf::blake2s::constraints::evaluate_blake2s(
			&payload_bits(output_header, &output_bits),
		)?;
		expose_digest(&input_digest, &public[0], &public[1])?;
		expose_digest(&output_digest, &public[2], &public[3])?;
		Ok(())
	}
}

/// The header of a one-tensor payload whose data is its last `data_len` bytes.
fn header(payload: &[u8], data_len: usize) -> &[u8] {
	&payload[..payload.len() - data_len]
}

/// A signed integer as a field element.
fn signed(v: i64) -> Fr {
	if v >= 0 {
		Fr::from(v as u64)
	} else {
		-Fr::from(v.unsigned_abs())
	}
}

// 128-bit halves and 32-bit decompositions must not wrap around the field.
const _: () = assert!(<Fr as PrimeField>::MODULUS_BIT_SIZE > 160);
