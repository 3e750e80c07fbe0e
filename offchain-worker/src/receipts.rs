//! What the worker keeps of each answer of the direct path so that it can open the receipt on
//! chain (`docs/direct-path.md`, audits and challenges): the signed receipt, the request and
//! the response, one file per receipt (`DIR/receipts/CHANNEL/SEQ`), written and synced before
//! the answer leaves the worker. A receipt drawn for audit or challenged is opened with those
//! bytes and the Merkle proof of its place in the committed batch, rebuilt from the kept
//! receipts of that batch. Files are dropped once no batch holding them can be disputed.

use std::path::{Path, PathBuf};

use codec::{Decode, Encode};
use opg_primitives::channel::{batch_proof, receipt_leaf, ChannelId};
use polkadot_sdk::sp_core::H256;

use crate::channels::SignedReceipt;

/// A kept answer: the receipt and the bytes it names.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct KeptAnswer {
	/// The receipt as given to the requester.
	pub signed: SignedReceipt,
	/// The request's canonical bytes.
	pub request: Vec<u8>,
	/// The response's canonical bytes.
	pub response: Vec<u8>,
}

/// Everything `open_receipt` takes for one disputed receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opening {
	/// The kept answer.
	pub answer: KeptAnswer,
	/// The sibling hashes from its leaf to the batch root.
	pub proof: Vec<H256>,
}

/// Why a disputed receipt cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpeningError {
	/// A receipt of the batch is not on disk.
	#[error("receipt {channel}/{seq} is not kept")]
	Missing {
		/// The channel.
		channel: ChannelId,
		/// Its sequence number.
		seq: u64,
	},
	/// The challenged receipt is not the one this worker kept (and committed).
	#[error("the challenged receipt {channel}/{seq} is not the one this worker kept")]
	NotOurs {
		/// The channel.
		channel: ChannelId,
		/// Its sequence number.
		seq: u64,
	},
	/// The batch bounds do not hold the receipt.
	#[error("receipt {seq} is outside its batch {first}..={last}")]
	OutsideBatch {
		/// The receipt's sequence number.
		seq: u64,
		/// The batch's first.
		first: u64,
		/// And last.
		last: u64,
	},
	/// Reading from disk failed, or a file does not decode.
	#[error("reading a kept receipt: {0}")]
	Io(#[from] std::io::Error),
}

/// The receipts kept on disk.
pub struct ReceiptStore {
	dir: PathBuf,
}

impl ReceiptStore {
	/// The store under `dir/receipts`.
	pub fn open(dir: &Path) -> std::io::Result<ReceiptStore> {
		let dir = dir.join("receipts");
		std::fs::create_dir_all(&dir)?;
		Ok(ReceiptStore { dir })
	}

	fn path(&self, channel: ChannelId, seq: u64) -> PathBuf {
		self.dir.join(channel.to_string()).join(seq.to_string())
	}

	/// Keeps an answer, synced to disk before returning.
	pub fn keep(
		&self,
		signed: &SignedReceipt,
		request: &[u8],
		response: &[u8],
	) -> std::io::Result<()> {
		let path = self.path(signed.receipt.channel, signed.receipt.seq);
		if let Some(parent) = path.parent().filter(|p| !p.exists()) {
			// A channel's first receipt: its folder's entry is synced too.
			std::fs::create_dir_all(parent)?;
			crate::sync_dir(&self.dir)?;
		}
		let kept = KeptAnswer {
			signed: signed.clone(),
			request: request.to_vec(),
			response: response.to_vec(),
		};
		crate::write_atomically(&path, &kept.encode())
	}

	/// The kept answer of `channel`'s request `seq`, if any.
	pub fn get(&self, channel: ChannelId, seq: u64) -> std::io::Result<Option<KeptAnswer>> {
		let path = self.path(channel, seq);
		match std::fs::read(&path) {
			Ok(bytes) => KeptAnswer::decode(&mut &bytes[..]).map(Some).map_err(|e| {
				std::io::Error::new(
					std::io::ErrorKind::InvalidData,
					format!("{}: {e}", path.display()),
				)
			}),
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
			Err(e) => Err(e),
		}
	}

	/// What opening receipt `seq` of `channel` takes, committed in the batch `first..=last`;
	/// `leaf` is the challenged receipt's Merkle leaf (zero for an audit, which any receipt of
	/// ours answers).
	pub fn opening(
		&self,
		channel: ChannelId,
		seq: u64,
		leaf: H256,
		first: u64,
		last: u64,
	) -> Result<Opening, OpeningError> {
		if !(first..=last).contains(&seq) {
			return Err(OpeningError::OutsideBatch { seq, first, last });
		}
		let leaves = self.leaves(channel, first, last)?;
		self.opening_in(channel, seq, leaf, first, &leaves)
	}

	/// The Merkle leaves of the kept receipts `first..=last` of `channel`: what every opening
	/// of that batch's receipts proves against (read once per batch, not per opening).
	pub fn leaves(
		&self,
		channel: ChannelId,
		first: u64,
		last: u64,
	) -> Result<Vec<H256>, OpeningError> {
		(first..=last)
			.map(|s| {
				let kept =
					self.get(channel, s)?.ok_or(OpeningError::Missing { channel, seq: s })?;
				Ok(receipt_leaf(&kept.signed.receipt))
			})
			.collect()
	}

	/// [`Self::opening`] in the batch starting at `first` whose `leaves` are already read.
	pub fn opening_in(
		&self,
		channel: ChannelId,
		seq: u64,
		leaf: H256,
		first: u64,
		leaves: &[H256],
	) -> Result<Opening, OpeningError> {
		let last = first + leaves.len() as u64 - 1;
		if leaves.is_empty() || !(first..=last).contains(&seq) {
			return Err(OpeningError::OutsideBatch { seq, first, last });
		}
		let answer = self.get(channel, seq)?.ok_or(OpeningError::Missing { channel, seq })?;
		let at = (seq - first) as usize;
		if leaf != H256::zero() && leaves[at] != leaf {
			return Err(OpeningError::NotOurs { channel, seq });
		}
		let proof = batch_proof(leaves, at).expect("seq is within the batch");
		Ok(Opening { answer, proof })
	}

	/// The channels with kept receipts.
	pub fn channels(&self) -> std::io::Result<Vec<ChannelId>> {
		let mut ids = Vec::new();
		for entry in std::fs::read_dir(&self.dir)? {
			if let Some(id) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) {
				ids.push(id);
			}
		}
		Ok(ids)
	}

	/// Drops the kept receipts of `channel` for which `keep` says no; returns how many.
	pub fn drop_unless(
		&self,
		channel: ChannelId,
		keep: impl Fn(u64) -> bool,
	) -> std::io::Result<usize> {
		let dir = self.dir.join(channel.to_string());
		let entries = match std::fs::read_dir(&dir) {
			Ok(entries) => entries,
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
			Err(e) => return Err(e),
		};
		let mut dropped = 0;
		for entry in entries {
			let entry = entry?;
			let Some(seq) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) else {
				continue;
			};
			if !keep(seq) {
				std::fs::remove_file(entry.path())?;
				dropped += 1;
			}
		}
		// An emptied channel's folder goes too (it fails harmlessly if a receipt just came).
		let _ = std::fs::remove_dir(&dir);
		Ok(dropped)
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use opg_primitives::channel::{batch_root, verify_batch_proof, Receipt};
	use opg_runtime::Signature;
	use polkadot_sdk::sp_core::sr25519;

	fn answer(channel: ChannelId, seq: u64) -> SignedReceipt {
		SignedReceipt {
			receipt: Receipt {
				channel,
				seq,
				release: 0,
				request_hash: H256::repeat_byte(seq as u8),
				response_hash: H256::repeat_byte(!seq as u8),
				engine: Default::default(),
				device_class: Default::default(),
				unix_ms: seq,
			},
			signature: Signature::Sr25519(sr25519::Signature::from_raw([seq as u8; 64])),
			enclave_signature: None,
		}
	}

	#[test]
	fn a_kept_batch_opens_each_receipt_with_a_proof_of_its_root() {
		let dir = tempfile::tempdir().unwrap();
		let store = ReceiptStore::open(dir.path()).unwrap();
		let signed: Vec<_> = (3..=9).map(|seq| answer(1, seq)).collect();
		for s in &signed {
			store.keep(s, &[s.receipt.seq as u8], b"out").unwrap();
		}
		let leaves: Vec<H256> = signed.iter().map(|s| receipt_leaf(&s.receipt)).collect();
		let root = batch_root(&leaves);
		for (i, s) in signed.iter().enumerate() {
			let seq = s.receipt.seq;
			let opening = store.opening(1, seq, H256::zero(), 3, 9).unwrap();
			assert_eq!(opening.answer.signed, *s);
			assert_eq!(
				(opening.answer.request.clone(), opening.answer.response.clone()),
				(vec![seq as u8], b"out".to_vec())
			);
			assert!(verify_batch_proof(&root, &leaves[i], i as u64, 7, &opening.proof));
			// A challenge names the leaf: ours opens, another does not.
			assert!(store.opening(1, seq, leaves[i], 3, 9).is_ok());
			assert!(matches!(
				store.opening(1, seq, H256::repeat_byte(1), 3, 9),
				Err(OpeningError::NotOurs { .. })
			));
		}
		// A batch reaching beyond what is kept cannot be opened; nor a receipt outside it.
		assert!(matches!(
			store.opening(1, 5, H256::zero(), 3, 10),
			Err(OpeningError::Missing { seq: 10, .. })
		));
		assert!(matches!(
			store.opening(1, 2, H256::zero(), 3, 9),
			Err(OpeningError::OutsideBatch { .. })
		));
		// Dropping keeps what is asked for and survives reopening.
		assert_eq!(store.drop_unless(1, |seq| seq > 6).unwrap(), 4);
		let store = ReceiptStore::open(dir.path()).unwrap();
		assert_eq!(store.get(1, 6).unwrap(), None);
		assert_eq!(store.get(1, 7).unwrap().unwrap().signed, signed[4]);
		assert_eq!(store.channels().unwrap(), vec![1]);
		assert_eq!(store.drop_unless(1, |_| false).unwrap(), 3);
		assert!(store.channels().unwrap().is_empty());
	}

	#[test]
	fn a_kept_file_that_does_not_decode_is_an_error() {
		let dir = tempfile::tempdir().unwrap();
		let store = ReceiptStore::open(dir.path()).unwrap();
		std::fs::create_dir_all(dir.path().join("receipts/4")).unwrap();
		std::fs::write(dir.path().join("receipts/4/1"), b"\xff").unwrap();
		assert!(store.get(4, 1).is_err());
		assert!(matches!(store.opening(4, 1, H256::zero(), 1, 1), Err(OpeningError::Io(_))));
	}
}
