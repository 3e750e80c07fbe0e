//! Groth16 verification over BN254 for OPG's ZK mode, `no_std`.
//!
//! Three binary forms, all fixed-layout so a decoder can check lengths before parsing:
//! - [`VerifyingKey`] (what a publisher registers): `version 1 | n | α G1 | β G2 | γ G2 | δ G2 |
//!   IC[0..=n] G1`, points compressed (ark-serialize), `n` public inputs, at most
//!   [`MAX_PUBLIC_INPUTS`]. Decoding checks every point is on the curve and in the prime-order
//!   subgroup.
//! - [`PreparedVerifyingKey`] (what the chain stores once a key is registered): e(α, β)
//!   precomputed, −γ and −δ, IC, uncompressed. It is only ever built from a checked key, so
//!   [`PreparedVerifyingKey::from_trusted_bytes`] skips the subgroup checks that dominate a key's
//!   decoding cost.
//! - [`Proof`]: `A G1 | B G2 | C G1` compressed, [`PROOF_LEN`] = 128 bytes, fully checked.
//!
//! Public inputs are 32-byte big-endian scalars below the BN254 group order (the convention of
//! snarkjs and Ethereum), [`PUBLIC_INPUT_LEN`] bytes each.
//!
//! The check is e(A, B) · e(L, −γ) · e(C, −δ) = e(α, β) with L = IC₀ + Σ xᵢ·ICᵢ₊₁: one
//! three-way Miller loop and one final exponentiation, whatever the number of inputs; the
//! multi-scalar multiplication for L grows with it.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use ark_bn254::{Bn254, Fq12, Fr, G1Affine, G1Projective, G2Affine};
use ark_ec::{
	pairing::{Pairing, PairingOutput},
	AffineRepr, CurveGroup, VariableBaseMSM,
};
use ark_ff::{BigInteger, PrimeField};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};

#[cfg(feature = "std")]
pub mod snarkjs;
#[cfg(any(feature = "std", feature = "synthetic", test))]
pub mod synthetic;

/// Most public inputs a key may declare. ZKML circuits commit to input and output and keep to a
/// handful; 32 leaves room for other circuits while bounding the MSM.
pub const MAX_PUBLIC_INPUTS: usize = 32;
/// Bytes of one public input.
pub const PUBLIC_INPUT_LEN: usize = 32;
/// Bytes of an encoded proof.
pub const PROOF_LEN: usize = G1_COMPRESSED * 2 + G2_COMPRESSED;
/// Version byte of the verifying-key encoding.
pub const KEY_VERSION: u8 = 1;

const G1_COMPRESSED: usize = 32;
const G2_COMPRESSED: usize = 64;
const G1_UNCOMPRESSED: usize = 64;
const G2_UNCOMPRESSED: usize = 128;
const GT_UNCOMPRESSED: usize = 384;

/// Bytes of a verifying key with `n` public inputs.
pub const fn verifying_key_len(n: usize) -> usize {
	2 + G1_COMPRESSED + 3 * G2_COMPRESSED + (n + 1) * G1_COMPRESSED
}

/// Bytes of a prepared verifying key with `n` public inputs.
pub const fn prepared_key_len(n: usize) -> usize {
	1 + GT_UNCOMPRESSED + 2 * G2_UNCOMPRESSED + (n + 1) * G1_UNCOMPRESSED
}

/// Why verification failed. Every malformed byte string maps to one of these; nothing panics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
	/// The verifying key's length, version or a point is wrong.
	MalformedVerifyingKey,
	/// The key declares more than [`MAX_PUBLIC_INPUTS`] inputs.
	TooManyPublicInputs,
	/// δ is ±γ or ±the G2 generator: a key whose trapdoor is public (what a snarkjs zkey without
	/// a phase-2 contribution has), under which anyone can prove any statement.
	DegenerateVerifyingKey,
	/// The proof is not 128 bytes of three valid points.
	MalformedProof,
	/// The public inputs are not a whole number of 32-byte scalars.
	MalformedPublicInputs,
	/// A public input is not below the group order (non-canonical encodings are refused so that
	/// one statement has one encoding).
	PublicInputOutOfRange,
	/// The number of public inputs differs from the key's.
	PublicInputCount { expected: u32, got: u32 },
	/// The proof does not verify.
	InvalidProof,
}

/// A Groth16 verifying key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifyingKey {
	pub alpha_g1: G1Affine,
	pub beta_g2: G2Affine,
	pub gamma_g2: G2Affine,
	pub delta_g2: G2Affine,
	/// `IC[0]` and one point per public input.
	pub ic: Vec<G1Affine>,
}

/// A Groth16 proof.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Proof {
	pub a: G1Affine,
	pub b: G2Affine,
	pub c: G1Affine,
}

/// A verifying key ready for repeated verification.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PreparedVerifyingKey {
	alpha_beta: PairingOutput<Bn254>,
	neg_gamma_g2: G2Affine,
	neg_delta_g2: G2Affine,
	ic: Vec<G1Affine>,
}

fn read<T: CanonicalDeserialize>(
	bytes: &mut &[u8],
	compress: Compress,
	validate: Validate,
) -> Option<T> {
	T::deserialize_with_mode(bytes, compress, validate).ok()
}

fn write<T: CanonicalSerialize>(value: &T, compress: Compress, out: &mut Vec<u8>) {
	// Writing into a Vec cannot fail.
	let _ = value.serialize_with_mode(out, compress);
}

impl VerifyingKey {
	/// Number of public inputs.
	pub fn public_inputs(&self) -> usize {
		self.ic.len().saturating_sub(1)
	}

	/// Decodes and checks a key: length, version, every point on the curve and in the subgroup,
	/// α, β, γ and δ not the identity (a degenerate key), δ not ±γ nor ±the generator (a
	/// forgeable key: [`Error::DegenerateVerifyingKey`]), and the encoding canonical (the point
	/// at infinity has one encoding), so a key has exactly one encoding and one hash.
	pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
		let (&version, rest) = bytes.split_first().ok_or(Error::MalformedVerifyingKey)?;
		let (&n, mut rest) = rest.split_first().ok_or(Error::MalformedVerifyingKey)?;
		if version != KEY_VERSION {
			return Err(Error::MalformedVerifyingKey);
		}
		let n = n as usize;
		if n > MAX_PUBLIC_INPUTS {
			return Err(Error::TooManyPublicInputs);
		}
		if bytes.len() != verifying_key_len(n) {
			return Err(Error::MalformedVerifyingKey);
		}
		let (c, v) = (Compress::Yes, Validate::Yes);
		let mut key = || -> Option<Self> {
			Some(Self {
				alpha_g1: read(&mut rest, c, v)?,
				beta_g2: read(&mut rest, c, v)?,
				gamma_g2: read(&mut rest, c, v)?,
				delta_g2: read(&mut rest, c, v)?,
				ic: (0..=n).map(|_| read(&mut rest, c, v)).collect::<Option<Vec<_>>>()?,
			})
		};
		let key = key().ok_or(Error::MalformedVerifyingKey)?;
		let degenerate = key.alpha_g1.is_zero() ||
			key.beta_g2.is_zero() ||
			key.gamma_g2.is_zero() ||
			key.delta_g2.is_zero();
		if degenerate || key.encode()? != bytes {
			return Err(Error::MalformedVerifyingKey);
		}
		// With δ = ±γ, A = α, B = β, C = ∓L satisfies the check for any inputs; δ = ±g₂ is the
		// value snarkjs starts phase 2 from, so a key without its contribution has it.
		let g2 = G2Affine::generator();
		let forgeable = [key.gamma_g2, -key.gamma_g2, g2, -g2];
		if forgeable.contains(&key.delta_g2) {
			return Err(Error::DegenerateVerifyingKey);
		}
		Ok(key)
	}

	/// The compact encoding read by [`VerifyingKey::decode`].
	pub fn encode(&self) -> Result<Vec<u8>, Error> {
		let n = self.public_inputs();
		if self.ic.is_empty() {
			return Err(Error::MalformedVerifyingKey);
		}
		if n > MAX_PUBLIC_INPUTS {
			return Err(Error::TooManyPublicInputs);
		}
		let mut out = Vec::with_capacity(verifying_key_len(n));
		out.extend_from_slice(&[KEY_VERSION, n as u8]);
		write(&self.alpha_g1, Compress::Yes, &mut out);
		for p in [&self.beta_g2, &self.gamma_g2, &self.delta_g2] {
			write(p, Compress::Yes, &mut out);
		}
		for p in &self.ic {
			write(p, Compress::Yes, &mut out);
		}
		Ok(out)
	}

	/// Precomputes e(α, β) and the negated points for [`verify`].
	pub fn prepare(&self) -> PreparedVerifyingKey {
		PreparedVerifyingKey {
			alpha_beta: Bn254::pairing(self.alpha_g1, self.beta_g2),
			neg_gamma_g2: (-self.gamma_g2.into_group()).into_affine(),
			neg_delta_g2: (-self.delta_g2.into_group()).into_affine(),
			ic: self.ic.clone(),
		}
	}
}

impl PreparedVerifyingKey {
	/// Number of public inputs.
	pub fn public_inputs(&self) -> usize {
		self.ic.len().saturating_sub(1)
	}

	/// Storage form: `n | e(α,β) | −γ | −δ | IC`, uncompressed.
	pub fn to_bytes(&self) -> Vec<u8> {
		let n = self.public_inputs();
		let mut out = Vec::with_capacity(prepared_key_len(n));
		out.push(n as u8);
		write(&self.alpha_beta.0, Compress::No, &mut out);
		write(&self.neg_gamma_g2, Compress::No, &mut out);
		write(&self.neg_delta_g2, Compress::No, &mut out);
		for p in &self.ic {
			write(p, Compress::No, &mut out);
		}
		out
	}

	/// Reads what [`PreparedVerifyingKey::to_bytes`] wrote from a checked key. Lengths and field
	/// elements are still checked (a wrong byte gives an error, never a panic), but not subgroup
	/// membership: only pass bytes this crate produced, such as a chain's registered keys.
	pub fn from_trusted_bytes(bytes: &[u8]) -> Result<Self, Error> {
		let (&n, mut rest) = bytes.split_first().ok_or(Error::MalformedVerifyingKey)?;
		let n = n as usize;
		if n > MAX_PUBLIC_INPUTS || bytes.len() != prepared_key_len(n) {
			return Err(Error::MalformedVerifyingKey);
		}
		let (c, v) = (Compress::No, Validate::No);
		let mut key = || -> Option<Self> {
			Some(Self {
				alpha_beta: PairingOutput(read::<Fq12>(&mut rest, c, v)?),
				neg_gamma_g2: read(&mut rest, c, v)?,
				neg_delta_g2: read(&mut rest, c, v)?,
				ic: (0..=n).map(|_| read(&mut rest, c, v)).collect::<Option<Vec<_>>>()?,
			})
		};
		key().ok_or(Error::MalformedVerifyingKey)
	}
}

impl Proof {
	/// Decodes and checks a proof ([`PROOF_LEN`] bytes, canonically encoded).
	pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
		if bytes.len() != PROOF_LEN {
			return Err(Error::MalformedProof);
		}
		let mut rest = bytes;
		let (c, v) = (Compress::Yes, Validate::Yes);
		let mut proof = || -> Option<Self> {
			Some(Self {
				a: read(&mut rest, c, v)?,
				b: read(&mut rest, c, v)?,
				c: read(&mut rest, c, v)?,
			})
		};
		let proof = proof().ok_or(Error::MalformedProof)?;
		if proof.encode() != bytes {
			return Err(Error::MalformedProof);
		}
		Ok(proof)
	}

	/// The encoding read by [`Proof::decode`].
	pub fn encode(&self) -> Vec<u8> {
		let mut out = Vec::with_capacity(PROOF_LEN);
		write(&self.a, Compress::Yes, &mut out);
		write(&self.b, Compress::Yes, &mut out);
		write(&self.c, Compress::Yes, &mut out);
		out
	}
}

/// Reads concatenated 32-byte big-endian public inputs, refusing values ≥ the group order.
pub fn decode_public_inputs(bytes: &[u8]) -> Result<Vec<Fr>, Error> {
	if !bytes.len().is_multiple_of(PUBLIC_INPUT_LEN) {
		return Err(Error::MalformedPublicInputs);
	}
	if bytes.len() / PUBLIC_INPUT_LEN > MAX_PUBLIC_INPUTS {
		return Err(Error::TooManyPublicInputs);
	}
	bytes.chunks_exact(PUBLIC_INPUT_LEN).map(decode_scalar).collect()
}

fn decode_scalar(be: &[u8]) -> Result<Fr, Error> {
	let x = Fr::from_be_bytes_mod_order(be);
	// Reduction changed the value: the encoding was ≥ r.
	if x.into_bigint().to_bytes_be() != be {
		return Err(Error::PublicInputOutOfRange);
	}
	Ok(x)
}

/// Encodes a scalar as a public input.
pub fn encode_public_input(x: &Fr) -> [u8; PUBLIC_INPUT_LEN] {
	let mut out = [0u8; PUBLIC_INPUT_LEN];
	out.copy_from_slice(&x.into_bigint().to_bytes_be());
	out
}

/// Checks `proof` against `key` for `inputs`.
pub fn verify(key: &PreparedVerifyingKey, proof: &Proof, inputs: &[Fr]) -> Result<(), Error> {
	let expected = key.public_inputs();
	if inputs.len() != expected {
		return Err(Error::PublicInputCount { expected: expected as u32, got: inputs.len() as u32 });
	}
	let (first, rest) = key.ic.split_first().ok_or(Error::MalformedVerifyingKey)?;
	let l = (G1Projective::msm_unchecked(rest, inputs) + first).into_affine();
	// γ and δ are stored negated, so this is e(A, B) · e(L, −γ) · e(C, −δ).
	let lhs = Bn254::multi_miller_loop(
		[proof.a, l, proof.c],
		[proof.b, key.neg_gamma_g2, key.neg_delta_g2],
	);
	match Bn254::final_exponentiation(lhs) {
		Some(value) if value == key.alpha_beta => Ok(()),
		_ => Err(Error::InvalidProof),
	}
}

/// [`verify`] on encoded parts: a registered key, a proof and concatenated public inputs.
pub fn verify_encoded(prepared_key: &[u8], proof: &[u8], inputs: &[u8]) -> Result<(), Error> {
	let key = PreparedVerifyingKey::from_trusted_bytes(prepared_key)?;
	let proof = Proof::decode(proof)?;
	let inputs = decode_public_inputs(inputs)?;
	verify(&key, &proof, &inputs)
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn lengths_match_the_encodings() {
		let g1 = G1Affine::generator();
		let g2 = G2Affine::generator();
		let key = VerifyingKey {
			alpha_g1: g1,
			beta_g2: g2,
			gamma_g2: g2,
			delta_g2: g2,
			ic: alloc::vec![g1; 4],
		};
		assert_eq!(key.encode().unwrap().len(), verifying_key_len(3));
		assert_eq!(key.prepare().to_bytes().len(), prepared_key_len(3));
		let proof = Proof { a: g1, b: g2, c: g1 };
		assert_eq!(proof.encode().len(), PROOF_LEN);
		assert_eq!(Proof::decode(&proof.encode()), Ok(proof));
	}

	/// Found by the `groth16_key` fuzz target: arkworks reads any bytes with the infinity flag
	/// as the identity, which gave one key many encodings (and hashes).
	#[test]
	fn points_have_one_encoding_and_keys_are_not_degenerate() {
		let (key, proof, _) = crate::synthetic::instance(2, 1);
		let bytes = key.encode().unwrap();
		// δ (bytes 162..226) with the infinity flag (bit 6 of its last byte) set.
		let mut flagged = bytes.clone();
		flagged[225] |= 0x40;
		assert_eq!(VerifyingKey::decode(&flagged), Err(Error::MalformedVerifyingKey));
		// The identity's canonical encoding decodes as a point, but a key with it is degenerate.
		let mut identity = bytes.clone();
		identity[162..226].fill(0);
		identity[225] = 0x40;
		assert_eq!(VerifyingKey::decode(&identity), Err(Error::MalformedVerifyingKey));
		assert_eq!(VerifyingKey::decode(&bytes), Ok(key));

		let encoded = proof.encode();
		let mut flagged = encoded.clone();
		flagged[31] |= 0x40;
		assert_eq!(Proof::decode(&flagged), Err(Error::MalformedProof));
		assert_eq!(Proof::decode(&encoded), Ok(proof));
	}

	#[test]
	fn public_inputs_are_canonical() {
		let r_minus_one = encode_public_input(&-Fr::from(1u64));
		assert_eq!(decode_public_inputs(&r_minus_one).unwrap(), alloc::vec![-Fr::from(1u64)]);
		// r itself, and all ones, are refused rather than reduced.
		let mut r = Fr::MODULUS.to_bytes_be();
		assert_eq!(decode_public_inputs(&r), Err(Error::PublicInputOutOfRange));
		r.iter_mut().for_each(|b| *b = 0xff);
		assert_eq!(decode_public_inputs(&r), Err(Error::PublicInputOutOfRange));
		assert_eq!(decode_public_inputs(&[0u8; 31]), Err(Error::MalformedPublicInputs));
		assert_eq!(decode_public_inputs(&[0u8; 32 * 33]), Err(Error::TooManyPublicInputs));
		assert_eq!(decode_public_inputs(&[]), Ok(alloc::vec![]));
	}
}
