//! Payment channels of the direct path (`docs/direct-path.md`): the voucher a requester signs
//! with each request, the receipt a worker signs with each answer, and the Merkle tree of a
//! batch's receipts that the worker commits on chain when it redeems.
//!
//! Every signature is over [`signing_payload`]: a domain tag, the chain's genesis hash and the
//! message, so a signature is valid for one message kind on one chain only.

use crate::{payload_hash, ReleaseId};
use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use polkadot_sdk::{
	frame_support::{traits::ConstU32, BoundedVec},
	sp_core::H256,
	sp_crypto_hashing::blake2_256,
};
use scale_info::TypeInfo;

/// Id of a payment channel.
pub type ChannelId = u64;

/// Domain tag of a voucher signature.
pub const VOUCHER_TAG: &[u8; 14] = b"opg/voucher/v1";
/// Domain tag of a receipt signature.
pub const RECEIPT_TAG: &[u8; 14] = b"opg/receipt/v1";

/// Longest engine version or device class in a receipt, in bytes.
pub const MAX_LABEL_LEN: u32 = 64;
/// An engine version (`opg-exec/0.1.0`) or device class (`cpu-x86_64-v3`, `cuda-sm90`).
pub type Label = BoundedVec<u8, ConstU32<MAX_LABEL_LEN>>;

/// What a requester signs with each request: it authorises the worker to redeem, in total,
/// `cumulative_pay` for itself (royalty included) and to burn `cumulative_burn` as the
/// verification fee. Vouchers are cumulative: redeeming the latest settles every earlier one.
#[derive(
	Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct Voucher<Balance> {
	/// The channel.
	pub channel: ChannelId,
	/// One more than the previous voucher's (the first is 1).
	pub seq: u64,
	/// Everything paid to the worker on this channel so far, this request included.
	pub cumulative_pay: Balance,
	/// Every verification fee of this channel so far, this request included; burned.
	pub cumulative_burn: Balance,
	/// blake2-256 of the request's canonical bytes.
	pub request_hash: H256,
}

/// What a worker signs with each answer: it binds the answer to the request and to the
/// engine that computed it. In TEE mode the enclave key signs the same bytes.
#[derive(
	Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct Receipt {
	/// The channel.
	pub channel: ChannelId,
	/// The sequence number of the voucher that paid for the request.
	pub seq: u64,
	/// The release that answered.
	pub release: ReleaseId,
	/// blake2-256 of the request's canonical bytes.
	pub request_hash: H256,
	/// blake2-256 of the response's canonical bytes.
	pub response_hash: H256,
	/// The engine's name and version: re-execution must use the same.
	pub engine: Label,
	/// The class of device that ran it: bit-exact results hold within one class.
	pub device_class: Label,
	/// When the worker answered, in milliseconds since the Unix epoch.
	pub unix_ms: u64,
}

/// The bytes a signature covers: `(tag, genesis hash, message)`, SCALE-encoded. `genesis` is
/// the chain's block hash type (32 bytes).
pub fn signing_payload<G: Encode, M: Encode>(tag: &[u8; 14], genesis: &G, message: &M) -> Vec<u8> {
	(tag, genesis, message).encode()
}

/// The Merkle leaf of a receipt.
pub fn receipt_leaf(receipt: &Receipt) -> H256 {
	// Leaves and inner nodes hash under different prefixes, so an inner node can never pass
	// for a receipt.
	let mut bytes = Vec::with_capacity(1 + receipt.encoded_size());
	bytes.push(0u8);
	receipt.encode_to(&mut bytes);
	payload_hash(&bytes)
}

fn node(left: &H256, right: &H256) -> H256 {
	let mut bytes = [0u8; 65];
	bytes[0] = 1;
	bytes[1..33].copy_from_slice(left.as_bytes());
	bytes[33..].copy_from_slice(right.as_bytes());
	H256(blake2_256(&bytes))
}

fn next_level(level: &[H256]) -> Vec<H256> {
	// An odd last node moves up unchanged.
	level
		.chunks(2)
		.map(|pair| match pair {
			[left, right] => node(left, right),
			[single] => *single,
			_ => unreachable!("chunks of two"),
		})
		.collect()
}

/// The root of a batch's leaves, in sequence order (zero for an empty batch).
pub fn batch_root(leaves: &[H256]) -> H256 {
	let mut level = leaves.to_vec();
	if level.is_empty() {
		return H256::zero();
	}
	while level.len() > 1 {
		level = next_level(&level);
	}
	level[0]
}

/// The sibling hashes from leaf `index` up to the root; `None` if `index` is outside.
pub fn batch_proof(leaves: &[H256], index: usize) -> Option<Vec<H256>> {
	if index >= leaves.len() {
		return None;
	}
	let (mut level, mut at, mut proof) = (leaves.to_vec(), index, Vec::new());
	while level.len() > 1 {
		let sibling = at ^ 1;
		if sibling < level.len() {
			proof.push(level[sibling]);
		}
		level = next_level(&level);
		at /= 2;
	}
	Some(proof)
}

/// Whether `proof` shows `leaf` at `index` of a batch of `count` leaves with this `root`.
pub fn verify_batch_proof(
	root: &H256,
	leaf: &H256,
	index: u64,
	count: u64,
	proof: &[H256],
) -> bool {
	if index >= count {
		return false;
	}
	let (mut hash, mut at, mut width, mut used) = (*leaf, index, count, 0usize);
	while width > 1 {
		let sibling = at ^ 1;
		if sibling < width {
			let Some(other) = proof.get(used) else { return false };
			used += 1;
			hash = if at % 2 == 0 { node(&hash, other) } else { node(other, &hash) };
		}
		at /= 2;
		width = width.div_ceil(2);
	}
	used == proof.len() && hash == *root
}

#[cfg(test)]
mod tests {
	use super::*;

	fn leaves(n: usize) -> Vec<H256> {
		(0..n).map(|i| payload_hash(&(i as u64).to_le_bytes())).collect()
	}

	#[test]
	fn every_leaf_proves_and_no_other_does() {
		for n in 1..=17 {
			let leaves = leaves(n);
			let root = batch_root(&leaves);
			for (i, leaf) in leaves.iter().enumerate() {
				let proof = batch_proof(&leaves, i).unwrap();
				assert!(verify_batch_proof(&root, leaf, i as u64, n as u64, &proof), "{n} {i}");
				// Another position, another count, another leaf or a longer proof fail.
				if n > 1 {
					let j = (i + 1) % n;
					assert!(!verify_batch_proof(&root, leaf, j as u64, n as u64, &proof));
					assert!(!verify_batch_proof(&root, &leaves[j], i as u64, n as u64, &proof));
				}
				let mut long = proof.clone();
				long.push(H256::zero());
				assert!(!verify_batch_proof(&root, leaf, i as u64, n as u64, &long));
			}
			assert!(batch_proof(&leaves, n).is_none());
			assert!(!verify_batch_proof(&root, &leaves[0], n as u64, n as u64, &[]));
		}
	}

	#[test]
	fn an_inner_node_is_not_a_leaf() {
		let leaves = leaves(4);
		let root = batch_root(&leaves);
		let inner = node(&leaves[0], &leaves[1]);
		// The two-leaf tree over (inner, right half) has the same root: inner nodes are
		// hashed, and a receipt's leaf is prefixed differently, so no receipt encodes to it.
		assert_eq!(batch_root(&[inner, node(&leaves[2], &leaves[3])]), root);
		let receipt = Receipt {
			channel: 1,
			seq: 1,
			release: 0,
			request_hash: H256::zero(),
			response_hash: H256::zero(),
			engine: Default::default(),
			device_class: Default::default(),
			unix_ms: 0,
		};
		assert_ne!(receipt_leaf(&receipt), payload_hash(&receipt.encode()));
	}

	#[test]
	fn payloads_differ_by_tag_and_chain() {
		let v = Voucher {
			channel: 3,
			seq: 1,
			cumulative_pay: 10u128,
			cumulative_burn: 2u128,
			request_hash: H256::repeat_byte(7),
		};
		let a = signing_payload(VOUCHER_TAG, &H256::zero(), &v);
		assert_ne!(a, signing_payload(RECEIPT_TAG, &H256::zero(), &v));
		assert_ne!(a, signing_payload(VOUCHER_TAG, &H256::repeat_byte(1), &v));
		assert_eq!(&a[..14], VOUCHER_TAG);
	}

	#[test]
	fn empty_batch_has_zero_root() {
		assert_eq!(batch_root(&[]), H256::zero());
		let one = leaves(1);
		assert_eq!(batch_root(&one), one[0]);
		assert_eq!(batch_proof(&one, 0), Some(vec![]));
	}
}
