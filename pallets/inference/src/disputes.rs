//! Challenges and random audits of the direct path's receipts (`docs/direct-path.md`).
//!
//! A receipt its worker must open is a [`Dispute`]: drawn at random from a committed batch
//! (an audit), or brought by anyone holding a receipt the worker signed (a challenge, which
//! holds a bond). The worker opens it with `open_receipt`: the receipt under its signature,
//! the request and response whose hashes it names, the Merkle proof that it is in the
//! committed batch and, on a TEE channel, the attested enclave key's signature of it. A
//! dispute still open at its deadline slashes the worker; a challenge's slash first repays
//! the request to its requester and the challenger gets its bond back. A challenge the worker
//! answers burns the bond.
//!
//! Money: the bond is held under `ChallengeBond` while the dispute is open; a slash moves the
//! repayment from the worker's stake to the requester and burns the rest, so issuance falls
//! only by what is burned.

use crate::{pallet::*, types::*, weights::WeightInfo};
use codec::DecodeAll;
use opg_primitives::{
	channel::{receipt_leaf, verify_batch_proof, ChannelId, Receipt, RECEIPT_TAG},
	chat::{ChatResponse, TokenUsage},
	payload_hash, VerificationMode,
};
use pallet_model_hub::ModelRegistry;
use polkadot_sdk::{
	frame_support::{
		pallet_prelude::*,
		storage::with_storage_layer,
		traits::{
			fungible::MutateHold,
			tokens::{Fortitude, Precision, Restriction},
			Defensive,
		},
		weights::WeightMeter,
	},
	frame_system::{self, pallet_prelude::BlockNumberFor},
	sp_core::H256,
	sp_crypto_hashing::blake2_256,
	sp_runtime::traits::{Saturating, Verify, Zero},
};

/// Most disputes `open_disputes` lists at once: a worker answers them and asks again.
pub const MAX_OPEN_DISPUTES: usize = 256;

impl<T: Config> Pallet<T> {
	/// The bytes a worker (and, on a TEE channel, its enclave) signs for `receipt` on this
	/// chain.
	pub fn receipt_payload(receipt: &Receipt) -> alloc::vec::Vec<u8> {
		Self::chain_payload(RECEIPT_TAG, receipt)
	}

	/// What [`crate::runtime_api::InferenceApi::open_disputes`] answers: the disputes `worker`
	/// must answer, oldest deadline not guaranteed first, at most [`MAX_OPEN_DISPUTES`].
	pub fn open_disputes(worker: &T::AccountId) -> alloc::vec::Vec<(DisputeKey, u64, u64)> {
		WorkerDisputes::<T>::iter_key_prefix(worker)
			.take(MAX_OPEN_DISPUTES)
			.filter_map(|key| {
				Disputes::<T>::get(key).map(|d| (key, d.batch.first_seq, d.batch.last_seq))
			})
			.collect()
	}

	/// Queues a just-committed batch for its audit draw, under a randomness round newer than
	/// the current one.
	pub(crate) fn queue_audit(channel: ChannelId, batch: Batch<BlockNumberFor<T>>) {
		if T::AuditsPerBatch::get() == 0 {
			return;
		}
		let tail = AuditTail::<T>::get();
		AuditQueue::<T>::insert(
			tail,
			PendingAudit { channel, batch, round: Randomness::<T>::get().0 },
		);
		AuditTail::<T>::put(tail.saturating_add(1));
	}

	/// Draws the audits of queued batches, oldest first, while `meter` allows a batch's draw
	/// and the batch was committed under an older round than the current one.
	pub(crate) fn draw_audits(meter: &mut WeightMeter) {
		let worst = T::WeightInfo::draw_audits(T::AuditsPerBatch::get());
		let (round, randomness) = Randomness::<T>::get();
		let (mut head, tail) = (AuditHead::<T>::get(), AuditTail::<T>::get());
		while head < tail && meter.can_consume(worst) {
			let Some(pending) = AuditQueue::<T>::get(head) else {
				defensive!("an audit between head and tail is not queued");
				meter.consume(T::DbWeight::get().reads(1));
				head += 1;
				continue;
			};
			// Later entries were committed no earlier: they wait too.
			if pending.round >= round {
				break;
			}
			AuditQueue::<T>::remove(head);
			let drawn = Self::draw_batch(&pending, &randomness);
			meter.consume(T::WeightInfo::draw_audits(drawn));
			head += 1;
		}
		AuditHead::<T>::put(head);
	}

	/// Opens audits of `min(AuditsPerBatch, batch size)` distinct receipts of a batch; returns
	/// how many.
	fn draw_batch(pending: &PendingAudit<BlockNumberFor<T>>, randomness: &[u8; 32]) -> u32 {
		let Some(channel) = Channels::<T>::get(pending.channel) else { return 0 };
		let batch = pending.batch;
		let size = batch.last_seq.saturating_sub(batch.first_seq).saturating_add(1);
		let wanted = u64::from(T::AuditsPerBatch::get()).min(size);
		let mut picked = alloc::vec::Vec::with_capacity(wanted as usize);
		let mut i = 0u32;
		while (picked.len() as u64) < wanted {
			let seed = blake2_256(
				&(b"opg/audit", randomness, pending.channel, batch.first_seq, i).encode(),
			);
			let mut at = u64::from_le_bytes(seed[..8].try_into().expect("8 of 32 bytes")) % size;
			// A repeat takes the next free place: distinct, and still uniform per draw.
			while picked.contains(&at) {
				at = (at + 1) % size;
			}
			picked.push(at);
			i += 1;
		}
		let deadline =
			frame_system::Pallet::<T>::block_number().saturating_add(T::OpenDeadline::get());
		for at in &picked {
			let seq = batch.first_seq + at;
			let key = (pending.channel, seq, H256::zero());
			Self::open_dispute(key, Self::dispute(&channel, batch, deadline, DisputeKind::Audit));
			Self::deposit_event(Event::AuditDrawn {
				channel: pending.channel,
				seq,
				worker: channel.worker.clone(),
				deadline,
			});
		}
		picked.len() as u32
	}

	/// A dispute of a receipt of `channel`'s `batch`: what judging it needs, kept with it.
	fn dispute(
		channel: &ChannelOf<T>,
		batch: Batch<BlockNumberFor<T>>,
		deadline: BlockNumberFor<T>,
		kind: DisputeKind<T::AccountId, BalanceOf<T>>,
	) -> DisputeOf<T> {
		Dispute {
			worker: channel.worker.clone(),
			requester: channel.requester.clone(),
			release: channel.release,
			mode: channel.mode,
			batch,
			deadline,
			kind,
		}
	}

	pub(crate) fn open_dispute(key: DisputeKey, dispute: DisputeOf<T>) {
		WorkerDisputes::<T>::insert(&dispute.worker, key, ());
		DisputeAgenda::<T>::insert(Self::expiry_block(dispute.deadline), key, ());
		Disputes::<T>::insert(key, dispute);
		Self::start_agenda();
	}

	fn close_dispute(key: &DisputeKey, dispute: &DisputeOf<T>) {
		Disputes::<T>::remove(key);
		WorkerDisputes::<T>::remove(&dispute.worker, key);
		DisputeAgenda::<T>::remove(Self::expiry_block(dispute.deadline), key);
	}

	/// What a request cost its requester, as far as the chain can tell from its bytes: the
	/// worker's price, and for an LLM release the tokens the signed response reports, billed
	/// as a settled job would be.
	fn request_price(channel: &ChannelOf<T>, request: &[u8], response: &[u8]) -> BalanceOf<T> {
		let Some(worker) = Workers::<T>::get(&channel.worker) else { return Zero::zero() };
		match T::Models::check_input(channel.release, request) {
			Ok(Some(budget)) => {
				let usage = ChatResponse::decode_all(&mut &response[..])
					.map(|r| TokenUsage {
						prompt: r.prompt_tokens,
						completion: r.completion_tokens,
					})
					.unwrap_or_default();
				Self::billed_charge(worker.price, &worker.token_prices, budget, usage)
			},
			_ => worker.price,
		}
	}

	/// Checks that `receipt` is `worker`'s for `release` and names `request` and `response`;
	/// returns the payload it signed.
	fn check_receipt(
		receipt: &Receipt,
		signature: &T::ChannelSignature,
		worker: &T::AccountId,
		release: opg_primitives::ReleaseId,
		request: &[u8],
		response: &[u8],
	) -> Result<alloc::vec::Vec<u8>, Error<T>> {
		ensure!(receipt.release == release, Error::<T>::BadReceipt);
		let payload = Self::receipt_payload(receipt);
		ensure!(signature.verify(&payload[..], worker), Error::<T>::BadReceipt);
		ensure!(
			payload_hash(request) == receipt.request_hash &&
				payload_hash(response) == receipt.response_hash,
			Error::<T>::DataMismatch
		);
		Ok(payload)
	}

	pub(crate) fn do_challenge(
		challenger: T::AccountId,
		receipt: Receipt,
		signature: T::ChannelSignature,
		request: &[u8],
		response: &[u8],
	) -> DispatchResult {
		let channel = Channels::<T>::get(receipt.channel).ok_or(Error::<T>::UnknownChannel)?;
		Self::check_receipt(
			&receipt,
			&signature,
			&channel.worker,
			channel.release,
			request,
			response,
		)?;
		let now = frame_system::Pallet::<T>::block_number();
		let window = T::DisputeWindow::get();
		let batch = *channel
			.batches
			.iter()
			.find(|b| {
				(b.first_seq..=b.last_seq).contains(&receipt.seq) &&
					b.committed_at.saturating_add(window) > now
			})
			.ok_or(Error::<T>::NotCommitted)?;
		let key = (receipt.channel, receipt.seq, receipt_leaf(&receipt));
		ensure!(!Disputes::<T>::contains_key(key), Error::<T>::AlreadyDisputed);
		let bond = T::ChallengeBond::get();
		T::Currency::hold(&HoldReason::ChallengeBond.into(), &challenger, bond)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		let refund = Self::request_price(&channel, request, response);
		let deadline = now.saturating_add(T::OpenDeadline::get());
		let kind = DisputeKind::Challenge { challenger: challenger.clone(), bond, refund };
		Self::open_dispute(key, Self::dispute(&channel, batch, deadline, kind));
		Self::deposit_event(Event::ReceiptChallenged {
			channel: receipt.channel,
			seq: receipt.seq,
			challenger,
			leaf: key.2,
			deadline,
		});
		Ok(())
	}

	pub(crate) fn do_open_receipt(
		receipt: Receipt,
		signature: T::ChannelSignature,
		enclave_signature: Option<[u8; 64]>,
		request: &[u8],
		response: &[u8],
		proof: &[H256],
	) -> DispatchResult {
		let leaf = receipt_leaf(&receipt);
		let challenge_key = (receipt.channel, receipt.seq, leaf);
		let audit_key = (receipt.channel, receipt.seq, H256::zero());
		let challenge = Disputes::<T>::get(challenge_key);
		let audit = Disputes::<T>::get(audit_key);
		let dispute = challenge.as_ref().or(audit.as_ref()).ok_or(Error::<T>::NoSuchDispute)?;
		// Both name the same channel and sequence number, so the same batch and worker.
		ensure!(
			frame_system::Pallet::<T>::block_number() <= dispute.deadline,
			Error::<T>::DeadlinePassed
		);
		let payload = Self::check_receipt(
			&receipt,
			&signature,
			&dispute.worker,
			dispute.release,
			request,
			response,
		)?;
		let batch = &dispute.batch;
		ensure!(
			verify_batch_proof(
				&batch.root,
				&leaf,
				receipt.seq.saturating_sub(batch.first_seq),
				batch.last_seq.saturating_sub(batch.first_seq).saturating_add(1),
				proof,
			),
			Error::<T>::NotInBatch
		);
		if dispute.mode == VerificationMode::Tee {
			ensure!(
				enclave_signature.is_some_and(|s| {
					T::Verifier::check_enclave_signature(&dispute.worker, &payload, &s)
				}),
				Error::<T>::BadEnclaveSignature
			);
		}
		let worker = dispute.worker.clone();
		if let Some(audit) = audit {
			Self::close_dispute(&audit_key, &audit);
		}
		if let Some(challenge) = challenge {
			Self::close_dispute(&challenge_key, &challenge);
			if let DisputeKind::Challenge { challenger, bond, .. } = challenge.kind {
				let burned = T::Currency::burn_held(
					&HoldReason::ChallengeBond.into(),
					&challenger,
					bond,
					Precision::BestEffort,
					Fortitude::Force,
				)?;
				Self::note_burn(BurnCause::FailedChallenge, burned);
				Self::deposit_event(Event::ChallengeFailed {
					channel: receipt.channel,
					seq: receipt.seq,
					challenger,
					burned,
				});
			}
		}
		Self::deposit_event(Event::ReceiptOpened {
			channel: receipt.channel,
			seq: receipt.seq,
			worker,
		});
		Ok(())
	}

	/// A dispute's deadline has passed with the receipt unopened: the worker is slashed; a
	/// challenge's requester is repaid from the slash and its challenger gets the bond back.
	pub(crate) fn process_dispute_deadline(key: DisputeKey) {
		let Some(dispute) = Disputes::<T>::take(key) else { return };
		WorkerDisputes::<T>::remove(&dispute.worker, key);
		let slash = T::ReceiptSlash::get();
		let (burned, refund) = match dispute.kind {
			DisputeKind::Audit => Self::slash_stake(&dispute.worker, slash, None),
			DisputeKind::Challenge { challenger, bond, refund } => {
				// Whatever is still held of it: the bond is the challenger's again.
				let _ = T::Currency::release(
					&HoldReason::ChallengeBond.into(),
					&challenger,
					bond,
					Precision::BestEffort,
				);
				Self::slash_stake(&dispute.worker, slash, Some((&dispute.requester, refund)))
			},
		};
		Self::deposit_event(Event::DisputeLost {
			channel: key.0,
			seq: key.1,
			worker: dispute.worker,
			burned,
			refund,
		});
	}

	/// Takes up to `amount` of a worker's stake: `repay` (to whom, at most how much) first,
	/// the rest burned; pauses the worker below the minimum stake. Returns (burned, repaid).
	pub(crate) fn slash_stake(
		who: &T::AccountId,
		amount: BalanceOf<T>,
		repay: Option<(&T::AccountId, BalanceOf<T>)>,
	) -> (BalanceOf<T>, BalanceOf<T>) {
		let Some(mut worker) = Workers::<T>::get(who) else { return (Zero::zero(), Zero::zero()) };
		let reason: T::RuntimeHoldReason = HoldReason::WorkerStake.into();
		let amount = amount.min(worker.stake);
		let mut repaid = Zero::zero();
		if let Some((to, most)) = repay {
			let part = most.min(amount);
			// A requester that cannot receive it (reaped, below the existential deposit) is
			// not repaid: that part is burned with the rest.
			if !part.is_zero() &&
				with_storage_layer(|| {
					T::Currency::transfer_on_hold(
						&reason,
						who,
						to,
						part,
						Precision::Exact,
						Restriction::Free,
						Fortitude::Force,
					)
				})
				.is_ok()
			{
				repaid = part;
			}
		}
		let burned = T::Currency::burn_held(
			&reason,
			who,
			amount.saturating_sub(repaid),
			Precision::Exact,
			Fortitude::Force,
		)
		.defensive_unwrap_or_default();
		worker.stake = worker.stake.saturating_sub(burned).saturating_sub(repaid);
		let paused =
			worker.status == WorkerStatus::Active && worker.stake < T::MinWorkerStake::get();
		if paused {
			worker.status = WorkerStatus::Paused;
			// Pools hold only workers that can serve: the slot goes to someone who can.
			Self::leave_pools(who, &worker.releases);
		}
		Workers::<T>::insert(who, worker);
		Self::note_burn(BurnCause::Slash, burned);
		if paused {
			Self::deposit_event(Event::WorkerPaused { worker: who.clone() });
		}
		(burned, repaid)
	}
}
