//! The worker's side of the direct path's payment channels (`docs/direct-path.md`): which
//! vouchers it accepts before it runs a request, the receipts it signs for its answers, and the
//! latest voucher of each channel, kept on disk until it is redeemed on chain.
//!
//! A voucher is accepted only if it is the requester's signature, the next in sequence, pays
//! what earlier answers earned plus this request's most (never less than the previous voucher:
//! the chain redeems cumulative amounts that only grow), burns at least its verification fee,
//! and keeps the
//! channel within its deposit as the worker last read it from a finalized block. Everything is
//! checked before the model runs; a refused voucher changes nothing. The accepted voucher is
//! written to disk (atomically, synced) before the request runs: a restarted worker can still
//! redeem every answer it gave.

use std::{
	collections::BTreeMap,
	path::{Path, PathBuf},
	sync::Mutex,
};

use codec::{Decode, Encode};
use opg_primitives::{
	channel::{batch_root, signing_payload, ChannelId, Receipt, Voucher, RECEIPT_TAG, VOUCHER_TAG},
	payload_hash, ReleaseId, VerificationMode,
};
use opg_runtime::{AccountId, Balance, Runtime, Signature};
use polkadot_sdk::{sp_core::H256, sp_runtime::traits::Verify};

use crate::{
	chain::{ChainError, Signer},
	receipts::ReceiptStore,
};

/// A channel record as the runtime stores it.
pub type ChannelRecord = pallet_inference::ChannelOf<Runtime>;

/// Most requests of one channel the worker runs at once: each is covered by its own voucher,
/// so a requester can have no more than this many answers outstanding.
pub const MAX_IN_FLIGHT: u32 = 4;

/// A voucher and the requester's signature of it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedVoucher {
	/// The voucher.
	pub voucher: Voucher<Balance>,
	/// The requester's signature over its signing payload.
	pub signature: Signature,
}

/// What one request must add to the channel's cumulative amounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge {
	/// The most the request can earn the worker: its price, and for an LLM the prompt's token
	/// bound and `max_tokens` at its token prices. What it did not earn is credited back with
	/// the receipt ([`Ledger::add_receipt`]), so the next voucher need not pay it.
	pub pay: Balance,
	/// The verification fee: the mode's flat fee and the per-byte fee of the request.
	pub burn: Balance,
}

/// Why a voucher was refused. Each maps to an HTTP status and an OpenAI-style error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoucherError {
	/// The channel is not known on chain (yet: it is read from finalized blocks).
	#[error("channel {0} is not open on chain (or not finalized yet)")]
	UnknownChannel(ChannelId),
	/// The channel pays another worker.
	#[error("channel {0} pays another worker")]
	NotOurs(ChannelId),
	/// The requester closed the channel.
	#[error("channel {0} is closing")]
	Closing(ChannelId),
	/// The channel is for another release than the one asked.
	#[error("channel {channel} is for release {release}")]
	WrongRelease {
		/// The channel.
		channel: ChannelId,
		/// Its release.
		release: ReleaseId,
	},
	/// The signature is not the requester's over this voucher on this chain.
	#[error("the voucher's signature is not the channel requester's")]
	BadSignature,
	/// The voucher names another request.
	#[error("the voucher's request hash is not the hash of this request")]
	RequestMismatch,
	/// A replayed or skipped sequence number.
	#[error("voucher sequence {got}, expected {expected}")]
	OutOfOrder {
		/// The sequence number the worker expects.
		expected: u64,
		/// The voucher's.
		got: u64,
	},
	/// `cumulative_pay` is below what earlier answers earned plus this request's price (or
	/// below the previous voucher's).
	#[error(
		"the voucher's cumulative pay is {got}; at least {need} is due (what earlier answers \
		 earned and this request's price, never less than the previous voucher)"
	)]
	ShortPayment {
		/// The least cumulative pay accepted.
		need: Balance,
		/// The voucher's.
		got: Balance,
	},
	/// The increase of `cumulative_burn` is below the verification fee.
	#[error("the voucher burns {got}, the verification fee is {need}")]
	ShortBurn {
		/// The fee.
		need: Balance,
		/// What the voucher adds.
		got: Balance,
	},
	/// The cumulative amounts exceed the deposit.
	#[error("the voucher spends {spent}, the deposit is {deposit}: top the channel up")]
	Overdrawn {
		/// `cumulative_pay + cumulative_burn`.
		spent: Balance,
		/// The channel's deposit.
		deposit: Balance,
	},
	/// `MAX_IN_FLIGHT` requests of the channel are running.
	#[error("{MAX_IN_FLIGHT} requests of this channel are running: wait for an answer")]
	Busy,
}

impl VoucherError {
	/// The HTTP status of the refusal.
	pub fn status(&self) -> u16 {
		match self {
			VoucherError::UnknownChannel(_) => 404,
			VoucherError::NotOurs(_) | VoucherError::WrongRelease { .. } => 403,
			VoucherError::Closing(_) => 410,
			VoucherError::BadSignature => 401,
			VoucherError::RequestMismatch => 400,
			VoucherError::OutOfOrder { .. } => 409,
			VoucherError::ShortPayment { .. } |
			VoucherError::ShortBurn { .. } |
			VoucherError::Overdrawn { .. } => 402,
			VoucherError::Busy => 429,
		}
	}

	/// The error's `code` in an OpenAI-style error body.
	pub fn code(&self) -> &'static str {
		match self {
			VoucherError::UnknownChannel(_) => "unknown_channel",
			VoucherError::NotOurs(_) => "wrong_worker",
			VoucherError::Closing(_) => "channel_closing",
			VoucherError::WrongRelease { .. } => "wrong_release",
			VoucherError::BadSignature => "bad_voucher_signature",
			VoucherError::RequestMismatch => "request_hash_mismatch",
			VoucherError::OutOfOrder { .. } => "voucher_out_of_order",
			VoucherError::ShortPayment { .. } => "short_payment",
			VoucherError::ShortBurn { .. } => "short_burn",
			VoucherError::Overdrawn { .. } => "insufficient_deposit",
			VoucherError::Busy => "too_many_requests",
		}
	}
}

/// A request the ledger admitted: release it with [`Ledger::finish`] once answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
	/// The channel.
	pub channel: ChannelId,
	/// The voucher's sequence number (the receipt's).
	pub seq: u64,
	/// What the request may earn (its [`Charge::pay`]).
	pub reserved: Balance,
	/// The channel's mode: a TEE channel's receipts are signed by the enclave too.
	pub mode: VerificationMode,
}

/// What the worker keeps of a channel on disk: the latest voucher and the receipt leaves of
/// the requests not redeemed yet (the next batch's root is over them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
struct Kept {
	latest: Option<SignedVoucher>,
	leaves: Vec<(u64, H256)>,
	/// What the admitted requests earned, or may still earn while they run: the least the
	/// next voucher's `cumulative_pay` leaves for it, less its own price.
	owed: Balance,
}

struct Entry {
	record: ChannelRecord,
	kept: Kept,
	in_flight: u32,
	/// The latest admission and the voucher it replaced, so that an admission whose answer
	/// cannot be given can be undone ([`Ledger::withdraw`]). In memory only.
	replaced: Option<(u64, Option<SignedVoucher>)>,
}

impl Kept {
	/// The last sequence number and cumulative amounts: the latest accepted voucher's, or
	/// `chain`'s (what the chain redeemed) when none is newer.
	fn position(&self, chain: (u64, Balance, Balance)) -> (u64, Balance, Balance) {
		match &self.latest {
			Some(s) if s.voucher.seq > chain.0 =>
				(s.voucher.seq, s.voucher.cumulative_pay, s.voucher.cumulative_burn),
			_ => chain,
		}
	}
}

impl Entry {
	fn position(&self) -> (u64, Balance, Balance) {
		let r = &self.record;
		self.kept.position((r.last_seq, r.redeemed_pay, r.redeemed_burn))
	}
}

/// The channels paying this worker and their latest vouchers.
pub struct Ledger {
	worker: AccountId,
	path: PathBuf,
	channels: Mutex<BTreeMap<ChannelId, Entry>>,
	/// What was read from disk for channels not read from the chain yet.
	pending: Mutex<BTreeMap<ChannelId, Kept>>,
	/// Each answer's receipt and bytes, for opening it on chain.
	receipts: ReceiptStore,
}

impl Ledger {
	/// Opens the ledger of `worker`, with the vouchers kept in `dir/vouchers`. A file that does
	/// not decode is an error: it holds unredeemed payments.
	pub fn open(dir: &Path, worker: AccountId) -> std::io::Result<Ledger> {
		std::fs::create_dir_all(dir)?;
		let path = dir.join("vouchers");
		let pending = match std::fs::read(&path) {
			Ok(bytes) => Vec::<(ChannelId, Kept)>::decode(&mut &bytes[..])
				.map_err(|e| {
					std::io::Error::new(
						std::io::ErrorKind::InvalidData,
						format!("{}: {e}", path.display()),
					)
				})?
				.into_iter()
				.collect(),
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
			Err(e) => return Err(e),
		};
		Ok(Ledger {
			receipts: ReceiptStore::open(dir)?,
			worker,
			path,
			channels: Mutex::new(BTreeMap::new()),
			pending: Mutex::new(pending),
		})
	}

	/// Takes a channel's record as read from a finalized block (its deposit, what was redeemed,
	/// whether it is closing); a channel gone from the chain is forgotten with [`Self::forget`].
	pub fn update(&self, id: ChannelId, record: ChannelRecord) {
		let mut channels = self.channels.lock().expect("ledger lock");
		let redeemed = record.last_seq;
		let entry = match channels.entry(id) {
			std::collections::btree_map::Entry::Occupied(e) => {
				let entry = e.into_mut();
				entry.record = record;
				entry
			},
			std::collections::btree_map::Entry::Vacant(e) => {
				let mut kept =
					self.pending.lock().expect("ledger lock").remove(&id).unwrap_or_default();
				// Without a kept voucher, what the chain redeemed is what was earned.
				if kept.latest.is_none() {
					kept.owed = kept.owed.max(record.redeemed_pay);
				}
				e.insert(Entry { record, kept, in_flight: 0, replaced: None })
			},
		};
		// Receipts of redeemed requests are in a committed batch already.
		entry.kept.leaves.retain(|(seq, _)| *seq > redeemed);
	}

	/// The answers kept for opening their receipts.
	pub fn receipts(&self) -> &ReceiptStore {
		&self.receipts
	}

	/// Where a channel stands for this worker: the latest voucher it accepted (the requester's
	/// own signature, so a client that lost its place can check it), the sequence number and
	/// cumulative amounts it expects the next voucher to continue, what the answers earned and
	/// how many requests run. `None` for a channel it has nothing of.
	pub fn position(&self, id: ChannelId) -> Option<Position> {
		let channels = self.channels.lock().expect("ledger lock");
		if let Some(e) = channels.get(&id) {
			let (seq, pay, burn) = e.position();
			return Some(Position {
				latest: e.kept.latest.clone(),
				seq,
				pay,
				burn,
				owed: e.kept.owed,
				in_flight: e.in_flight,
			});
		}
		let pending = self.pending.lock().expect("ledger lock");
		pending.get(&id).map(|k| {
			// Not read from the chain yet: the kept voucher is all there is.
			let (seq, pay, burn) = k.position((0, 0, 0));
			Position { latest: k.latest.clone(), seq, pay, burn, owed: k.owed, in_flight: 0 }
		})
	}

	/// The chain's record of a channel as last read, if it was.
	pub fn record(&self, id: ChannelId) -> Option<ChannelRecord> {
		self.channels.lock().expect("ledger lock").get(&id).map(|e| e.record.clone())
	}

	/// Every channel with something kept: those read from the chain and those only on disk.
	pub fn channel_ids(&self) -> Vec<ChannelId> {
		let channels = self.channels.lock().expect("ledger lock");
		let pending = self.pending.lock().expect("ledger lock");
		let mut ids: Vec<ChannelId> = channels.keys().chain(pending.keys()).copied().collect();
		ids.sort_unstable();
		ids.dedup();
		ids
	}

	/// Whether a channel read from the chain is closing: its latest voucher is due now.
	pub fn closing(&self, id: ChannelId) -> bool {
		let channels = self.channels.lock().expect("ledger lock");
		channels.get(&id).is_some_and(|e| e.record.closing_at.is_some())
	}

	/// Drops a channel that ended on chain.
	pub fn forget(&self, id: ChannelId) -> std::io::Result<()> {
		let mut channels = self.channels.lock().expect("ledger lock");
		channels.remove(&id);
		self.pending.lock().expect("ledger lock").remove(&id);
		self.persist(&channels)
	}

	/// Checks a voucher for `request` (its canonical bytes) on `release` that costs `charge`,
	/// signed for the chain with `genesis`; if it is good, records it as the channel's latest
	/// (on disk before returning) and counts the request in flight.
	pub fn admit(
		&self,
		genesis: H256,
		release: ReleaseId,
		signed: SignedVoucher,
		request: &[u8],
		charge: Charge,
	) -> Result<Admission, LedgerError> {
		let voucher = &signed.voucher;
		let id = voucher.channel;
		let mut channels = self.channels.lock().expect("ledger lock");
		let entry = channels.get_mut(&id).ok_or(VoucherError::UnknownChannel(id))?;
		let record = &entry.record;
		if record.worker != self.worker {
			return Err(VoucherError::NotOurs(id).into());
		}
		if record.closing_at.is_some() {
			return Err(VoucherError::Closing(id).into());
		}
		if record.release != release {
			return Err(VoucherError::WrongRelease { channel: id, release: record.release }.into());
		}
		let payload = signing_payload(VOUCHER_TAG, &genesis, voucher);
		if !signed.signature.verify(&payload[..], &record.requester) {
			return Err(VoucherError::BadSignature.into());
		}
		if voucher.request_hash != payload_hash(request) {
			return Err(VoucherError::RequestMismatch.into());
		}
		let (seq, paid, burned) = entry.position();
		if voucher.seq != seq + 1 {
			return Err(VoucherError::OutOfOrder { expected: seq + 1, got: voucher.seq }.into());
		}
		let due = paid.max(entry.kept.owed.saturating_add(charge.pay));
		if voucher.cumulative_pay < due {
			return Err(VoucherError::ShortPayment { need: due, got: voucher.cumulative_pay }.into());
		}
		let burn = voucher.cumulative_burn.saturating_sub(burned);
		if voucher.cumulative_burn < burned || burn < charge.burn {
			return Err(VoucherError::ShortBurn { need: charge.burn, got: burn }.into());
		}
		let spent = voucher.cumulative_pay.saturating_add(voucher.cumulative_burn);
		if spent > record.deposit {
			return Err(VoucherError::Overdrawn { spent, deposit: record.deposit }.into());
		}
		if entry.in_flight >= MAX_IN_FLIGHT {
			return Err(VoucherError::Busy.into());
		}
		let previous = entry.kept.clone();
		entry.kept.latest = Some(signed.clone());
		entry.kept.owed = entry.kept.owed.saturating_add(charge.pay);
		if let Err(e) = self.persist(&channels) {
			// Not on disk: not accepted (a restart would lose its payment).
			channels.get_mut(&id).expect("present").kept = previous;
			return Err(LedgerError::Io(e.to_string()));
		}
		let entry = channels.get_mut(&id).expect("present");
		entry.in_flight += 1;
		entry.replaced = Some((signed.voucher.seq, previous.latest));
		Ok(Admission {
			channel: id,
			seq: signed.voucher.seq,
			reserved: charge.pay,
			mode: entry.record.mode,
		})
	}

	/// Undoes an admission whose answer cannot be given (its receipt could not be signed, or
	/// its answer not kept): the channel's latest voucher is the one before it again and the
	/// request owes nothing, so the requester sends the same `seq` again and the channel is
	/// redeemed as if it never came. Possible while no later voucher was admitted; otherwise
	/// (false) its `seq` stays without a leaf and the channel is not redeemed again.
	pub fn withdraw(&self, admission: Admission) -> bool {
		let mut channels = self.channels.lock().expect("ledger lock");
		let Some(entry) = channels.get_mut(&admission.channel) else { return false };
		let latest = entry.kept.latest.as_ref().map(|s| s.voucher.seq);
		let Some((_, previous)) = entry
			.replaced
			.take_if(|(seq, _)| *seq == admission.seq && latest == Some(admission.seq))
		else {
			return false;
		};
		let kept = entry.kept.clone();
		entry.kept.latest = previous;
		entry.kept.owed = entry.kept.owed.saturating_sub(admission.reserved);
		if self.persist(&channels).is_err() {
			let entry = channels.get_mut(&admission.channel).expect("present");
			entry.kept = kept;
			return false;
		}
		true
	}

	/// The admitted request was answered (or failed): it no longer counts in flight.
	pub fn finish(&self, admission: Admission) {
		if let Some(entry) = self.channels.lock().expect("ledger lock").get_mut(&admission.channel)
		{
			entry.in_flight = entry.in_flight.saturating_sub(1);
		}
	}

	/// Keeps the receipt leaf of an admitted request's answer, which `earned` of what it
	/// reserved (the rest is credited to the requester's next voucher): the next batch root is
	/// over the leaves. Kept on disk before returning.
	pub fn add_receipt(
		&self,
		admission: Admission,
		leaf: H256,
		earned: Balance,
	) -> std::io::Result<()> {
		let mut channels = self.channels.lock().expect("ledger lock");
		if let Some(entry) = channels.get_mut(&admission.channel) {
			let credit = admission.reserved.saturating_sub(earned);
			entry.kept.owed = entry.kept.owed.saturating_sub(credit);
			let leaves = &mut entry.kept.leaves;
			let at = leaves.partition_point(|(seq, _)| *seq < admission.seq);
			leaves.insert(at, (admission.seq, leaf));
		}
		self.persist(&channels)
	}

	/// The latest voucher of each channel that pays more than the chain has redeemed, with
	/// the Merkle root of the receipts it pays for: what the worker redeems next. A channel
	/// waits while any of those receipts is missing (its answer still running): the batch's
	/// leaves are placed by sequence number, so a root without one would make every receipt
	/// of the batch impossible to open.
	pub fn to_redeem(&self) -> Vec<(SignedVoucher, H256)> {
		let channels = self.channels.lock().expect("ledger lock");
		channels
			.values()
			.filter_map(|e| {
				let latest =
					e.kept.latest.as_ref().filter(|s| s.voucher.seq > e.record.last_seq)?;
				// Sorted by sequence number, each once, all above what the chain redeemed.
				let leaves: Vec<H256> = e
					.kept
					.leaves
					.iter()
					.filter(|(seq, _)| *seq <= latest.voucher.seq)
					.map(|(_, leaf)| *leaf)
					.collect();
				let complete = leaves.len() as u64 == latest.voucher.seq - e.record.last_seq;
				complete.then(|| (latest.clone(), batch_root(&leaves)))
			})
			.collect()
	}

	fn persist(&self, channels: &BTreeMap<ChannelId, Entry>) -> std::io::Result<()> {
		let pending = self.pending.lock().expect("ledger lock");
		let all: Vec<(ChannelId, &Kept)> = channels
			.iter()
			.map(|(id, e)| (*id, &e.kept))
			.filter(|(_, k)| k.latest.is_some() || !k.leaves.is_empty())
			.chain(pending.iter().map(|(id, k)| (*id, k)))
			.collect();
		crate::write_atomically(&self.path, &all.encode())
	}
}

/// A channel's position as the worker holds it ([`Ledger::position`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
	/// The latest accepted voucher, if newer than what the chain redeemed or not read yet.
	pub latest: Option<SignedVoucher>,
	/// The last sequence number: the next voucher's is one more.
	pub seq: u64,
	/// Its cumulative pay.
	pub pay: Balance,
	/// Its cumulative burn.
	pub burn: Balance,
	/// What the answers earned (and the running ones may still): the least the next voucher's
	/// pay covers besides its own request.
	pub owed: Balance,
	/// Requests running now.
	pub in_flight: u32,
}

/// Why the ledger did not admit a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
	/// The voucher was refused.
	#[error(transparent)]
	Voucher(#[from] VoucherError),
	/// The voucher could not be kept on disk.
	#[error("cannot keep the voucher: {0}")]
	Io(String),
}

/// A receipt for an answer and the worker's signature of it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedReceipt {
	/// The receipt.
	pub receipt: Receipt,
	/// The worker account's signature over its signing payload.
	pub signature: Signature,
	/// On a TEE channel: the attested enclave key's ed25519 signature over the same payload,
	/// made by the enclave over the request and response it hashed itself.
	pub enclave_signature: Option<[u8; 64]>,
}

/// Signs `receipt` with the worker key, for the chain with `genesis`.
pub fn sign_receipt(
	signer: &dyn Signer,
	genesis: H256,
	receipt: Receipt,
) -> Result<SignedReceipt, ChainError> {
	let signature = signer.sign(&signing_payload(RECEIPT_TAG, &genesis, &receipt))?;
	Ok(SignedReceipt { receipt, signature, enclave_signature: None })
}

/// Whether `signed` is `worker`'s receipt on the chain with `genesis`: what a client checks
/// before it uses an answer.
pub fn verify_receipt(signed: &SignedReceipt, genesis: H256, worker: &AccountId) -> bool {
	let payload = signing_payload(RECEIPT_TAG, &genesis, &signed.receipt);
	signed.signature.verify(&payload[..], worker)
}

/// Whether `signed` carries the enclave signature of `enclave_key` (the worker's attested key,
/// `tee.enclaveKeys`, usable when the receipt was made): what a TEE channel's client checks
/// besides [`verify_receipt`].
pub fn verify_enclave_receipt(
	signed: &SignedReceipt,
	genesis: H256,
	enclave_key: &[u8; 32],
) -> bool {
	use polkadot_sdk::sp_core::ed25519;
	let Some(signature) = signed.enclave_signature else { return false };
	let payload = signing_payload(RECEIPT_TAG, &genesis, &signed.receipt);
	ed25519::Signature::from_raw(signature)
		.verify(&payload[..], &ed25519::Public::from_raw(*enclave_key))
}

#[cfg(test)]
mod tests {
	use super::*;
	use polkadot_sdk::sp_core::{sr25519, Pair};

	const GENESIS: H256 = H256::repeat_byte(0x42);
	const RELEASE: ReleaseId = 3;

	fn pair(uri: &str) -> sr25519::Pair {
		sr25519::Pair::from_string(uri, None).unwrap()
	}

	fn account(uri: &str) -> AccountId {
		pair(uri).public().into()
	}

	fn record(deposit: Balance) -> ChannelRecord {
		pallet_inference::Channel {
			requester: account("//Bob"),
			worker: account("//Alice"),
			release: RELEASE,
			mode: VerificationMode::Vanilla,
			deposit,
			redeemed_pay: 0,
			redeemed_burn: 0,
			last_seq: 0,
			closing_at: None,
			batches: Default::default(),
		}
	}

	fn signed(
		by: &str,
		channel: ChannelId,
		seq: u64,
		pay: Balance,
		burn: Balance,
		request: &[u8],
	) -> SignedVoucher {
		let voucher = Voucher {
			channel,
			seq,
			cumulative_pay: pay,
			cumulative_burn: burn,
			request_hash: payload_hash(request),
		};
		let signature =
			Pair::sign(&pair(by), &signing_payload(VOUCHER_TAG, &GENESIS, &voucher)).into();
		SignedVoucher { voucher, signature }
	}

	const CHARGE: Charge = Charge { pay: 100, burn: 10 };

	fn ledger(dir: &Path) -> Ledger {
		let ledger = Ledger::open(dir, account("//Alice")).unwrap();
		ledger.update(7, record(1_000));
		ledger
	}

	fn refused(ledger: &Ledger, voucher: SignedVoucher, request: &[u8]) -> VoucherError {
		match ledger.admit(GENESIS, RELEASE, voucher, request, CHARGE) {
			Err(LedgerError::Voucher(e)) => e,
			other => panic!("admitted: {other:?}"),
		}
	}

	/// Admits channel 7's request `seq`, paying `CHARGE` for each request so far.
	fn admit_nth(ledger: &Ledger, seq: u64) -> Result<Admission, LedgerError> {
		let request = seq.to_le_bytes();
		let voucher = signed("//Bob", 7, seq, 100 * seq as Balance, 10 * seq as Balance, &request);
		ledger.admit(GENESIS, RELEASE, voucher, &request, CHARGE)
	}

	#[test]
	fn vouchers_are_admitted_in_sequence_and_survive_a_restart() {
		let dir = tempfile::tempdir().unwrap();
		let ledger = ledger(dir.path());
		let a = ledger
			.admit(GENESIS, RELEASE, signed("//Bob", 7, 1, 100, 10, b"one"), b"one", CHARGE)
			.unwrap();
		assert_eq!(
			a,
			Admission { channel: 7, seq: 1, reserved: 100, mode: VerificationMode::Vanilla }
		);
		ledger.finish(a);
		// Paying more than the price is fine; the next expects seq 3.
		ledger
			.admit(GENESIS, RELEASE, signed("//Bob", 7, 2, 250, 25, b"two"), b"two", CHARGE)
			.unwrap();
		ledger
			.add_receipt(
				Admission { channel: 7, seq: 2, reserved: 100, mode: VerificationMode::Vanilla },
				H256::repeat_byte(2),
				100,
			)
			.unwrap();
		ledger.add_receipt(a, H256::repeat_byte(1), 100).unwrap();
		let due = ledger.to_redeem();
		assert_eq!(due.iter().map(|(s, _)| s.voucher.seq).collect::<Vec<_>>(), vec![2]);
		// The root is over the receipts in sequence order, whatever order they came in.
		assert_eq!(due[0].1, batch_root(&[H256::repeat_byte(1), H256::repeat_byte(2)]));
		drop(ledger);

		// A new process: the voucher is back once the chain's record is read again.
		let ledger = Ledger::open(dir.path(), account("//Alice")).unwrap();
		assert!(ledger.to_redeem().is_empty(), "no record read yet");
		ledger.update(7, record(1_000));
		let due = ledger.to_redeem();
		assert_eq!(due[0].0.voucher.cumulative_pay, 250);
		assert_eq!(due[0].1, batch_root(&[H256::repeat_byte(1), H256::repeat_byte(2)]));
		let e = refused(&ledger, signed("//Bob", 7, 2, 350, 35, b"x"), b"x");
		assert_eq!(e, VoucherError::OutOfOrder { expected: 3, got: 2 });
		let third = ledger
			.admit(GENESIS, RELEASE, signed("//Bob", 7, 3, 350, 35, b"x"), b"x", CHARGE)
			.unwrap();
		ledger.add_receipt(third, H256::repeat_byte(3), 100).unwrap();
		// Once the chain has redeemed seq 2, the next batch is seq 3 alone.
		let mut redeemed = record(1_000);
		(redeemed.last_seq, redeemed.redeemed_pay, redeemed.redeemed_burn) = (2, 250, 25);
		ledger.update(7, redeemed);
		assert_eq!(ledger.to_redeem()[0].1, batch_root(&[H256::repeat_byte(3)]));

		// Once the chain has redeemed seq 3 there is nothing left to redeem.
		let mut redeemed = record(1_000);
		(redeemed.last_seq, redeemed.redeemed_pay, redeemed.redeemed_burn) = (3, 350, 35);
		ledger.update(7, redeemed);
		assert!(ledger.to_redeem().is_empty());
		// A channel that ended is forgotten, on disk too.
		ledger.forget(7).unwrap();
		let ledger = Ledger::open(dir.path(), account("//Alice")).unwrap();
		ledger.update(7, record(1_000));
		assert!(ledger.to_redeem().is_empty());
	}

	#[test]
	fn a_voucher_is_redeemed_only_once_every_receipt_it_pays_for_is_kept() {
		let dir = tempfile::tempdir().unwrap();
		let ledger = ledger(dir.path());
		let admit = |seq| admit_nth(&ledger, seq).unwrap();
		let leaf = |seq: u64| H256::repeat_byte(seq as u8);
		let (one, two) = (admit(1), admit(2));
		ledger.add_receipt(two, leaf(2), 100).unwrap();
		// Seq 2 is the latest voucher, seq 1 still running: a root now would leave it out.
		assert!(ledger.to_redeem().is_empty());
		ledger.add_receipt(one, leaf(1), 100).unwrap();
		assert_eq!(ledger.to_redeem()[0].1, batch_root(&[leaf(1), leaf(2)]));
		// The chain redeemed seq 1 meanwhile; seq 3 runs: the next batch waits for it.
		let mut redeemed = record(1_000);
		(redeemed.last_seq, redeemed.redeemed_pay, redeemed.redeemed_burn) = (1, 100, 10);
		ledger.update(7, redeemed);
		let three = admit(3);
		assert!(ledger.to_redeem().is_empty());
		ledger.add_receipt(three, leaf(3), 100).unwrap();
		let due = ledger.to_redeem();
		assert_eq!((due[0].0.voucher.seq, due[0].1), (3, batch_root(&[leaf(2), leaf(3)])));
	}

	#[test]
	fn an_admission_without_an_answer_is_withdrawn_while_no_later_voucher_came() {
		let dir = tempfile::tempdir().unwrap();
		let ledger = ledger(dir.path());
		let leaf = |seq: u64| H256::repeat_byte(seq as u8);
		let one = admit_nth(&ledger, 1).unwrap();
		ledger.add_receipt(one, leaf(1), 100).unwrap();
		let owed = |l: &Ledger| l.position(7).unwrap().owed;
		assert_eq!(owed(&ledger), 100);

		// Seq 2 could not be answered: withdrawn, the channel stands where seq 1 left it, on
		// disk too, and seq 2 is admitted again with the same amounts.
		let two = admit_nth(&ledger, 2).unwrap();
		assert_eq!(owed(&ledger), 200);
		assert!(ledger.withdraw(two));
		assert!(!ledger.withdraw(two), "once");
		let position = ledger.position(7).unwrap();
		assert_eq!((position.seq, position.owed, position.pay), (1, 100, 100));
		assert_eq!(ledger.to_redeem()[0].1, batch_root(&[leaf(1)]));
		drop(ledger);
		let ledger = Ledger::open(dir.path(), account("//Alice")).unwrap();
		ledger.update(7, record(1_000));
		assert_eq!(ledger.position(7).unwrap().seq, 1);
		let two = admit_nth(&ledger, 2).unwrap();
		ledger.add_receipt(two, leaf(2), 100).unwrap();
		assert_eq!(ledger.to_redeem()[0].1, batch_root(&[leaf(1), leaf(2)]));

		// Seq 4 came while seq 3 ran: seq 3 cannot be withdrawn (seq 4 pays for it), and the
		// channel waits for a leaf it will not get.
		let (three, four) = (admit_nth(&ledger, 3).unwrap(), admit_nth(&ledger, 4).unwrap());
		assert!(!ledger.withdraw(three));
		ledger.add_receipt(four, leaf(4), 100).unwrap();
		assert_eq!(ledger.position(7).unwrap().seq, 4);
		assert!(ledger.to_redeem().is_empty());
	}

	#[test]
	fn every_bad_voucher_is_refused_and_changes_nothing() {
		let dir = tempfile::tempdir().unwrap();
		let ledger = ledger(dir.path());
		let ok = |seq, pay, burn| signed("//Bob", 7, seq, pay, burn, b"req");
		assert_eq!(
			refused(&ledger, signed("//Bob", 8, 1, 100, 10, b"req"), b"req"),
			VoucherError::UnknownChannel(8)
		);
		assert_eq!(
			refused(&ledger, signed("//Alice", 7, 1, 100, 10, b"req"), b"req"),
			VoucherError::BadSignature
		);
		assert_eq!(refused(&ledger, ok(1, 100, 10), b"other"), VoucherError::RequestMismatch);
		assert_eq!(
			refused(&ledger, ok(2, 100, 10), b"req"),
			VoucherError::OutOfOrder { expected: 1, got: 2 }
		);
		assert_eq!(
			refused(&ledger, ok(0, 100, 10), b"req"),
			VoucherError::OutOfOrder { expected: 1, got: 0 }
		);
		assert_eq!(
			refused(&ledger, ok(1, 99, 10), b"req"),
			VoucherError::ShortPayment { need: 100, got: 99 }
		);
		assert_eq!(
			refused(&ledger, ok(1, 100, 9), b"req"),
			VoucherError::ShortBurn { need: 10, got: 9 }
		);
		assert_eq!(
			refused(&ledger, ok(1, 991, 10), b"req"),
			VoucherError::Overdrawn { spent: 1_001, deposit: 1_000 }
		);
		assert_eq!(
			refused(&ledger, ok(1, Balance::MAX, 10), b"req"),
			VoucherError::Overdrawn { spent: Balance::MAX, deposit: 1_000 }
		);
		// Signed for another chain.
		let mut other = ok(1, 100, 10);
		other.signature = Pair::sign(
			&pair("//Bob"),
			&signing_payload(VOUCHER_TAG, &H256::zero(), &other.voucher),
		)
		.into();
		assert_eq!(refused(&ledger, other, b"req"), VoucherError::BadSignature);
		// Another release, another worker, a closing channel.
		assert_eq!(
			match ledger.admit(GENESIS, RELEASE + 1, ok(1, 100, 10), b"req", CHARGE) {
				Err(LedgerError::Voucher(e)) => e,
				other => panic!("{other:?}"),
			},
			VoucherError::WrongRelease { channel: 7, release: RELEASE }
		);
		let mut theirs = record(1_000);
		theirs.worker = account("//Charlie");
		ledger.update(9, theirs);
		assert_eq!(
			refused(&ledger, signed("//Bob", 9, 1, 100, 10, b"req"), b"req"),
			VoucherError::NotOurs(9)
		);
		let mut closing = record(1_000);
		closing.closing_at = Some(10);
		ledger.update(10, closing);
		assert_eq!(
			refused(&ledger, signed("//Bob", 10, 1, 100, 10, b"req"), b"req"),
			VoucherError::Closing(10)
		);
		// Nothing was recorded: the first good voucher is still seq 1, and exactly the
		// deposit may be spent.
		assert!(ledger.to_redeem().is_empty());
		ledger.admit(GENESIS, RELEASE, ok(1, 990, 10), b"req", CHARGE).unwrap();
		// The statuses clients see.
		assert_eq!(VoucherError::BadSignature.status(), 401);
		assert_eq!(VoucherError::OutOfOrder { expected: 1, got: 2 }.status(), 409);
		assert_eq!(VoucherError::Overdrawn { spent: 1, deposit: 0 }.status(), 402);
	}

	#[test]
	fn a_channel_runs_at_most_max_in_flight_requests() {
		let dir = tempfile::tempdir().unwrap();
		let ledger = ledger(dir.path());
		let admit = |seq| admit_nth(&ledger, seq);
		let running: Vec<_> = (1..=MAX_IN_FLIGHT as u64).map(|s| admit(s).unwrap()).collect();
		assert_eq!(admit(5), Err(LedgerError::Voucher(VoucherError::Busy)));
		ledger.finish(running[0]);
		admit(5).unwrap();
	}

	#[test]
	fn what_an_answer_did_not_earn_is_credited_to_the_next_voucher_and_survives_a_restart() {
		let dir = tempfile::tempdir().unwrap();
		let ledger = ledger(dir.path());
		// An LLM request that may earn 300 (its token budget) earns 120 (its real tokens).
		let most = Charge { pay: 300, burn: 10 };
		let a = ledger
			.admit(GENESIS, RELEASE, signed("//Bob", 7, 1, 300, 10, b"one"), b"one", most)
			.unwrap();
		ledger.finish(a);
		ledger.add_receipt(a, H256::repeat_byte(1), 120).unwrap();
		drop(ledger);
		let ledger = Ledger::open(dir.path(), account("//Alice")).unwrap();
		ledger.update(7, record(1_000));
		// Next: 120 earned plus 300 at most.
		let short =
			ledger.admit(GENESIS, RELEASE, signed("//Bob", 7, 2, 419, 20, b"two"), b"two", most);
		assert_eq!(
			short,
			Err(LedgerError::Voucher(VoucherError::ShortPayment { need: 420, got: 419 }))
		);
		let b = ledger
			.admit(GENESIS, RELEASE, signed("//Bob", 7, 2, 420, 20, b"two"), b"two", most)
			.unwrap();
		ledger.finish(b);
		ledger.add_receipt(b, H256::repeat_byte(2), 10).unwrap();
		// 130 earned, and a cheaper request: the cumulative never falls below the last voucher.
		let small = Charge { pay: 100, burn: 10 };
		let short =
			ledger.admit(GENESIS, RELEASE, signed("//Bob", 7, 3, 230, 30, b"3"), b"3", small);
		assert_eq!(
			short,
			Err(LedgerError::Voucher(VoucherError::ShortPayment { need: 420, got: 230 }))
		);
		ledger
			.admit(GENESIS, RELEASE, signed("//Bob", 7, 3, 420, 30, b"3"), b"3", small)
			.unwrap();
	}

	#[test]
	fn a_ledger_file_that_does_not_decode_is_an_error() {
		let dir = tempfile::tempdir().unwrap();
		std::fs::write(dir.path().join("vouchers"), b"\xff\xff").unwrap();
		let e = Ledger::open(dir.path(), account("//Alice")).err().unwrap();
		assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
	}

	#[test]
	fn receipts_verify_for_their_worker_and_chain_only() {
		let receipt = Receipt {
			channel: 7,
			seq: 1,
			release: RELEASE,
			request_hash: payload_hash(b"req"),
			response_hash: payload_hash(b"resp"),
			engine: b"opg-exec/0.1.0".to_vec().try_into().unwrap(),
			device_class: b"cpu-x86_64-v3".to_vec().try_into().unwrap(),
			unix_ms: 1,
		};
		let signed = sign_receipt(&pair("//Alice"), GENESIS, receipt).unwrap();
		assert!(verify_receipt(&signed, GENESIS, &account("//Alice")));
		assert!(!verify_receipt(&signed, GENESIS, &account("//Bob")));
		assert!(!verify_receipt(&signed, H256::zero(), &account("//Alice")));
		let mut altered = signed.clone();
		altered.receipt.response_hash = payload_hash(b"other");
		assert!(!verify_receipt(&altered, GENESIS, &account("//Alice")));
	}
}
