//! Types shared by the OPG runtime, its pallets, the inference worker and clients.
//!
//! Tensors cross the chain boundary in one canonical form: SCALE-encoded [`Tensors`], each
//! tensor carrying its element type, shape and little-endian data. Inputs of a job are checked
//! against the release's [`IoSpec`]; output hashes are blake2-256 of the canonical encoding.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod channel;
pub mod chat;

use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use polkadot_sdk::{
	frame_support::{BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound},
	sp_core::{Get, H256},
};
use scale_info::TypeInfo;
use serde::{Deserialize, Serialize};

/// Id of a model repository.
pub type RepositoryId = u32;
/// Id of a model release.
pub type ReleaseId = u32;
/// Id of an inference job.
pub type JobId = u64;

/// How a result is backed.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	PartialOrd,
	Ord,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Serialize,
	Deserialize,
)]
pub enum VerificationMode {
	/// No evidence: the staked worker is trusted, the result settles on submission.
	Vanilla,
	/// A signature of an enclave key attested by an AWS Nitro attestation document.
	Tee,
	/// A Groth16 proof that the model produced the output.
	Zk,
}

impl VerificationMode {
	/// All modes, in index order.
	pub const ALL: [VerificationMode; 3] =
		[VerificationMode::Vanilla, VerificationMode::Tee, VerificationMode::Zk];

	/// Bit of the mode in a [`ModeSet`].
	pub const fn bit(self) -> u8 {
		1 << (self as u8)
	}
}

/// A set of verification modes (bit `i` = `VerificationMode::ALL[i]`).
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Default,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Serialize,
	Deserialize,
)]
pub struct ModeSet(pub u8);

impl ModeSet {
	/// The empty set.
	pub const EMPTY: ModeSet = ModeSet(0);

	/// The set of the given modes.
	pub fn of(modes: &[VerificationMode]) -> Self {
		ModeSet(modes.iter().fold(0, |acc, m| acc | m.bit()))
	}

	/// Whether `mode` is in the set.
	pub fn contains(self, mode: VerificationMode) -> bool {
		self.0 & mode.bit() != 0
	}

	/// Whether only known modes are set and at least one is.
	pub fn is_valid(self) -> bool {
		self.0 != 0 && self.0 & !0b111 == 0
	}

	/// Whether every mode of `other` is in `self`.
	pub fn is_superset(self, other: ModeSet) -> bool {
		self.0 & other.0 == other.0
	}
}

/// Model file format.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Serialize,
	Deserialize,
)]
pub enum ModelFormat {
	/// ONNX protobuf: a tensor model, jobs in and out as [`Tensors`].
	Onnx,
	/// GGUF (llama.cpp's format): a decoder-only language model, jobs in and out as
	/// [`chat::ChatRequest`] and [`chat::ChatResponse`].
	Gguf,
}

/// Element type of a tensor. Data is little-endian.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Serialize,
	Deserialize,
)]
pub enum ElemType {
	/// IEEE 754 binary32.
	F32,
	/// IEEE 754 binary64.
	F64,
	/// Signed 8-bit.
	I8,
	/// Unsigned 8-bit.
	U8,
	/// Signed 32-bit.
	I32,
	/// Signed 64-bit.
	I64,
	/// One byte, 0 or 1.
	Bool,
	/// IEEE 754 binary16 (last, so that the other variants keep their encoding).
	F16,
}

impl ElemType {
	/// Bytes per element.
	pub const fn size(self) -> usize {
		match self {
			ElemType::I8 | ElemType::U8 | ElemType::Bool => 1,
			ElemType::F16 => 2,
			ElemType::F32 | ElemType::I32 => 4,
			ElemType::F64 | ElemType::I64 => 8,
		}
	}
}

/// Declared input or output of a model. A dimension of 0 is dynamic (any size).
#[derive(
	CloneNoBound,
	PartialEqNoBound,
	EqNoBound,
	DebugNoBound,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Serialize,
	Deserialize,
)]
#[scale_info(skip_type_params(MaxName, MaxRank))]
#[codec(mel_bound())]
#[serde(bound = "")]
pub struct TensorSpec<MaxName: Get<u32>, MaxRank: Get<u32>> {
	/// Name in the model graph.
	pub name: BoundedVec<u8, MaxName>,
	/// Element type.
	pub elem: ElemType,
	/// Shape; 0 marks a dynamic dimension.
	pub shape: BoundedVec<u32, MaxRank>,
}

/// A tensor in canonical form: element type, shape and little-endian data.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct Tensor {
	/// Element type.
	pub elem: ElemType,
	/// Shape.
	pub shape: Vec<u32>,
	/// `product(shape) * elem.size()` little-endian bytes.
	pub data: Vec<u8>,
}

/// The canonical payload of a job's input or output: tensors in the IO spec's order.
pub type Tensors = Vec<Tensor>;

/// Why a payload does not fit an IO spec.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TensorError {
	/// Not a SCALE-encoded list of tensors, or trailing bytes.
	Malformed,
	/// Number of tensors differs from the spec.
	Count,
	/// Element type differs from the spec.
	ElemType,
	/// Rank or a fixed dimension differs from the spec.
	Shape,
	/// Data length is not `product(shape) * elem.size()`.
	DataLength,
}

impl Tensor {
	/// Number of elements, or `None` on overflow.
	pub fn elements(&self) -> Option<usize> {
		self.shape.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d as usize))
	}

	/// Whether `data` has exactly the length the shape and element type call for.
	pub fn is_consistent(&self) -> bool {
		self.elements().and_then(|n| n.checked_mul(self.elem.size())) == Some(self.data.len())
	}
}

/// Decodes a canonical payload and checks it against `specs` (count, element types, ranks,
/// fixed dimensions, data lengths).
pub fn check_tensors<N: Get<u32>, R: Get<u32>>(
	payload: &[u8],
	specs: &[TensorSpec<N, R>],
) -> Result<Tensors, TensorError> {
	let mut input = payload;
	let tensors = Tensors::decode(&mut input).map_err(|_| TensorError::Malformed)?;
	if !input.is_empty() {
		return Err(TensorError::Malformed);
	}
	if tensors.len() != specs.len() {
		return Err(TensorError::Count);
	}
	for (tensor, spec) in tensors.iter().zip(specs) {
		if tensor.elem != spec.elem {
			return Err(TensorError::ElemType);
		}
		if tensor.shape.len() != spec.shape.len() ||
			tensor.shape.iter().zip(spec.shape.iter()).any(|(d, s)| *s != 0 && d != s)
		{
			return Err(TensorError::Shape);
		}
		if !tensor.is_consistent() {
			return Err(TensorError::DataLength);
		}
	}
	Ok(tensors)
}

/// blake2-256 of a canonical payload: how inputs and outputs are referred to.
pub fn payload_hash(payload: &[u8]) -> H256 {
	H256(polkadot_sdk::sp_crypto_hashing::blake2_256(payload))
}

/// Evidence that comes with a result.
#[derive(
	CloneNoBound,
	PartialEqNoBound,
	EqNoBound,
	DebugNoBound,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
#[scale_info(skip_type_params(MaxProof))]
#[codec(mel_bound())]
pub enum Evidence<MaxProof: Get<u32>> {
	/// No evidence (Vanilla mode).
	None,
	/// Signature of the worker's attested enclave key over [`tee_message`].
	TeeSignature(BoundedVec<u8, MaxProof>),
	/// A zero-knowledge proof in the verifier's compact binary form.
	ZkProof(BoundedVec<u8, MaxProof>),
}

impl<M: Get<u32>> Evidence<M> {
	/// The mode this evidence belongs to.
	pub fn mode(&self) -> VerificationMode {
		match self {
			Evidence::None => VerificationMode::Vanilla,
			Evidence::TeeSignature(_) => VerificationMode::Tee,
			Evidence::ZkProof(_) => VerificationMode::Zk,
		}
	}

	/// Bytes of evidence (what the per-byte verification fee counts).
	pub fn len(&self) -> usize {
		match self {
			Evidence::None => 0,
			Evidence::TeeSignature(b) | Evidence::ZkProof(b) => b.len(),
		}
	}

	/// Whether there are no evidence bytes.
	pub fn is_empty(&self) -> bool {
		self.len() == 0
	}
}

/// What a TEE enclave signs for a result: blake2-256 of SCALE(job id, release artifact hash,
/// input hash, output hash).
pub fn tee_message(job: JobId, artifact: H256, input_hash: H256, output_hash: H256) -> [u8; 32] {
	polkadot_sdk::sp_crypto_hashing::blake2_256(&(job, artifact, input_hash, output_hash).encode())
}

/// Registered zero-knowledge verifying keys, as the model hub sees them when a release refers to
/// one.
pub trait VerifyingKeyRegistry {
	/// The model (artifact hash) `key` was registered for, if `key` is registered and a release
	/// may refer to it. A key only proves what its circuit computes, and the circuit comes from
	/// the publisher's setup: recording the model with the key lets the chain refuse a release
	/// that pairs a model with another model's key.
	fn model_of(key: &H256) -> Option<H256>;
}

/// Public inputs of a ZK inference proof.
pub const ZK_PUBLIC_INPUTS: usize = 4;

/// The statement a ZK result proves, as public inputs in the Groth16 verifier's encoding:
/// blake2s-256 of the canonical input and of the canonical output, each split into its high and
/// low 128 bits, each half a 32-byte big-endian field element (below any ~254-bit field's order).
/// Four inputs keep the on-chain multi-scalar multiplication small whatever the tensor sizes;
/// blake2s because circuits hash in 32-bit words. The worker's circuit computes the same hashes
/// over the same bytes, so the chain recomputes the statement from the job alone.
pub fn zk_public_inputs(input: &[u8], output: &[u8]) -> [[u8; 32]; ZK_PUBLIC_INPUTS] {
	use blake2::{Blake2s256, Digest};
	let mut inputs = [[0u8; 32]; ZK_PUBLIC_INPUTS];
	for (i, payload) in [input, output].into_iter().enumerate() {
		let digest = Blake2s256::digest(payload);
		inputs[2 * i][16..].copy_from_slice(&digest[..16]);
		inputs[2 * i + 1][16..].copy_from_slice(&digest[16..]);
	}
	inputs
}

#[cfg(test)]
mod tests {
	use super::*;
	use polkadot_sdk::sp_core::ConstU32;

	type Spec = TensorSpec<ConstU32<16>, ConstU32<4>>;

	fn spec(elem: ElemType, shape: &[u32]) -> Spec {
		TensorSpec {
			name: b"x".to_vec().try_into().unwrap(),
			elem,
			shape: shape.to_vec().try_into().unwrap(),
		}
	}

	fn tensor(elem: ElemType, shape: &[u32]) -> Tensor {
		let n: usize = shape.iter().map(|d| *d as usize).product();
		Tensor { elem, shape: shape.to_vec(), data: alloc::vec![0u8; n * elem.size()] }
	}

	#[test]
	fn payload_matching_spec_is_accepted() {
		let specs = [spec(ElemType::F32, &[0, 4]), spec(ElemType::I64, &[2])];
		let payload =
			alloc::vec![tensor(ElemType::F32, &[3, 4]), tensor(ElemType::I64, &[2])].encode();
		assert_eq!(check_tensors(&payload, &specs).unwrap().len(), 2);
	}

	#[test]
	fn every_mismatch_has_its_error() {
		let specs = [spec(ElemType::F32, &[1, 4])];
		let check = |t: Vec<Tensor>| check_tensors(&t.encode(), &specs);
		assert_eq!(check(alloc::vec![]), Err(TensorError::Count));
		assert_eq!(check(alloc::vec![tensor(ElemType::I32, &[1, 4])]), Err(TensorError::ElemType));
		assert_eq!(check(alloc::vec![tensor(ElemType::F32, &[1, 5])]), Err(TensorError::Shape));
		assert_eq!(check(alloc::vec![tensor(ElemType::F32, &[4])]), Err(TensorError::Shape));
		let mut short = tensor(ElemType::F32, &[1, 4]);
		short.data.pop();
		assert_eq!(check(alloc::vec![short]), Err(TensorError::DataLength));
		assert_eq!(check_tensors(&[0xff, 0xff], &specs), Err(TensorError::Malformed));
		let mut trailing = alloc::vec![tensor(ElemType::F32, &[1, 4])].encode();
		trailing.push(0);
		assert_eq!(check_tensors(&trailing, &specs), Err(TensorError::Malformed));
	}

	#[test]
	fn overflowing_shape_is_rejected_not_panicking() {
		let t = Tensor {
			elem: ElemType::F64,
			shape: alloc::vec![u32::MAX, u32::MAX, u32::MAX],
			data: alloc::vec![],
		};
		assert!(!t.is_consistent());
	}

	#[test]
	fn mode_sets() {
		let set = ModeSet::of(&[VerificationMode::Vanilla, VerificationMode::Zk]);
		assert!(set.contains(VerificationMode::Zk) && !set.contains(VerificationMode::Tee));
		assert!(set.is_valid() && !ModeSet(0).is_valid() && !ModeSet(0b1000).is_valid());
		assert!(set.is_superset(ModeSet::of(&[VerificationMode::Zk])));
		assert!(!set.is_superset(ModeSet::of(&[VerificationMode::Tee])));
	}

	#[test]
	fn zk_statement_is_the_split_blake2s_of_input_and_output() {
		let inputs = zk_public_inputs(b"abc", b"");
		// blake2s-256("abc") and blake2s-256("") from RFC 7693 / the reference implementation.
		let abc = hex_literal("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
		let empty = hex_literal("69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9");
		assert_eq!(inputs[0][..16], [0u8; 16]);
		assert_eq!((&inputs[0][16..], &inputs[1][16..]), (&abc[..16], &abc[16..]));
		assert_eq!((&inputs[2][16..], &inputs[3][16..]), (&empty[..16], &empty[16..]));
		assert_ne!(zk_public_inputs(b"abd", b""), inputs);
		assert_ne!(zk_public_inputs(b"abc", b"\0"), inputs);
	}

	fn hex_literal(s: &str) -> Vec<u8> {
		(0..s.len())
			.step_by(2)
			.map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
			.collect()
	}
}
