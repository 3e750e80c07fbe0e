//! Payment channels of the direct path (`docs/direct-path.md`): a requester's deposit, held,
//! from which its worker redeems signed cumulative vouchers in batches, committing a Merkle
//! root of the batch's receipts each time.
//!
//! Money: what is held under `ChannelDeposit` for a channel is always its deposit less what
//! was redeemed; a redemption moves the pay increase to the worker and the publisher and burns
//! the burn increase, so issuance falls by exactly what the vouchers burned.

use crate::{pallet::*, types::*};
use opg_primitives::{
	channel::{signing_payload, ChannelId, VOUCHER_TAG},
	ReleaseId, VerificationMode,
};
use pallet_model_hub::ModelRegistry;
use polkadot_sdk::{
	frame_support::{
		pallet_prelude::*,
		storage::with_storage_layer,
		traits::{
			fungible::MutateHold,
			tokens::{Fortitude, Precision, Restriction},
		},
	},
	frame_system::{self, pallet_prelude::BlockNumberFor},
	sp_core::H256,
	sp_runtime::{
		traits::{CheckedAdd, Saturating, Verify, Zero},
		Permill, SaturatedConversion,
	},
};

/// Whether `url` may be advertised: `http://` or `https://` and a host, printable ASCII, no
/// spaces (clients put it in requests as it is).
pub(crate) fn valid_endpoint(url: &[u8]) -> bool {
	let rest = url.strip_prefix(b"https://").or_else(|| url.strip_prefix(b"http://"));
	matches!(rest, Some(host) if !host.is_empty() && !host.starts_with(b"/")) &&
		url.iter().all(|b| b.is_ascii_graphic())
}

impl<T: Config> Pallet<T> {
	/// The bytes a requester signs for `voucher` on this chain.
	pub fn voucher_payload(voucher: &VoucherOf<T>) -> alloc::vec::Vec<u8> {
		Self::chain_payload(VOUCHER_TAG, voucher)
	}

	/// The bytes signed for `message` of the kind `tag` on this chain (its genesis hash).
	pub(crate) fn chain_payload<M: Encode>(tag: &[u8; 14], message: &M) -> alloc::vec::Vec<u8> {
		let genesis = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
		signing_payload(tag, &genesis, message)
	}

	pub(crate) fn do_open_channel(
		requester: T::AccountId,
		worker: T::AccountId,
		release: ReleaseId,
		mode: VerificationMode,
		deposit: BalanceOf<T>,
	) -> Result<ChannelId, DispatchError> {
		ensure!(requester != worker, Error::<T>::ChannelToSelf);
		ensure!(deposit >= T::MinChannelDeposit::get(), Error::<T>::DepositTooLow);
		// ZK answers need proofs posted on challenge: not on the direct path yet.
		ensure!(mode != VerificationMode::Zk, Error::<T>::ModeUnavailable);
		ensure!(T::Verifier::supports(mode), Error::<T>::ModeUnavailable);
		let record = Workers::<T>::get(&worker).ok_or(Error::<T>::NotWorker)?;
		ensure!(record.status == WorkerStatus::Active, Error::<T>::WorkerNotActive);
		ensure!(record.releases.contains(&release), Error::<T>::ReleaseNotServed);
		let info = T::Models::release_info(release).ok_or(Error::<T>::ReleaseNotServed)?;
		ensure!(info.active, Error::<T>::ReleaseNotServed);
		ensure!(
			record.modes.contains(mode) && info.modes.contains(mode),
			Error::<T>::ModeNotSupported
		);
		let key = (&requester, &worker, release);
		ensure!(!ChannelIndex::<T>::contains_key(key), Error::<T>::ChannelExists);
		T::Currency::hold(&HoldReason::ChannelDeposit.into(), &requester, deposit)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		let id = NextChannelId::<T>::get();
		NextChannelId::<T>::put(id.checked_add(1).ok_or(Error::<T>::Overflow)?);
		ChannelIndex::<T>::insert(key, id);
		Channels::<T>::insert(
			id,
			Channel {
				requester: requester.clone(),
				worker: worker.clone(),
				release,
				mode,
				deposit,
				redeemed_pay: Zero::zero(),
				redeemed_burn: Zero::zero(),
				last_seq: 0,
				closing_at: None,
				batches: Default::default(),
			},
		);
		Self::deposit_event(Event::ChannelOpened {
			channel: id,
			requester,
			worker,
			release,
			mode,
			deposit,
		});
		Ok(id)
	}

	pub(crate) fn do_top_up(
		who: T::AccountId,
		id: ChannelId,
		amount: BalanceOf<T>,
	) -> DispatchResult {
		let mut channel = Channels::<T>::get(id).ok_or(Error::<T>::UnknownChannel)?;
		ensure!(channel.requester == who, Error::<T>::NotChannelRequester);
		ensure!(channel.closing_at.is_none(), Error::<T>::ChannelClosing);
		ensure!(!amount.is_zero(), Error::<T>::DepositTooLow);
		channel.deposit = channel.deposit.checked_add(&amount).ok_or(Error::<T>::Overflow)?;
		T::Currency::hold(&HoldReason::ChannelDeposit.into(), &who, amount)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		let deposit = channel.deposit;
		Channels::<T>::insert(id, channel);
		Self::deposit_event(Event::ChannelToppedUp { channel: id, amount, deposit });
		Ok(())
	}

	pub(crate) fn do_redeem(
		who: T::AccountId,
		id: ChannelId,
		voucher: VoucherOf<T>,
		signature: T::ChannelSignature,
		root: H256,
	) -> DispatchResult {
		let mut channel = Channels::<T>::get(id).ok_or(Error::<T>::UnknownChannel)?;
		ensure!(channel.worker == who, Error::<T>::NotChannelWorker);
		// A batch is answered for by stake: a worker that withdrew it commits nothing.
		ensure!(Workers::<T>::contains_key(&who), Error::<T>::NotWorker);
		let now = frame_system::Pallet::<T>::block_number();
		if let Some(until) = channel.closing_at {
			ensure!(now <= until, Error::<T>::ChannelClosed);
		}
		ensure!(voucher.channel == id, Error::<T>::BadVoucher);
		ensure!(
			signature.verify(&Self::voucher_payload(&voucher)[..], &channel.requester),
			Error::<T>::BadVoucher
		);
		ensure!(
			voucher.seq > channel.last_seq &&
				voucher.cumulative_pay >= channel.redeemed_pay &&
				voucher.cumulative_burn >= channel.redeemed_burn,
			Error::<T>::StaleVoucher
		);
		let requests = voucher.seq - channel.last_seq;
		let pay = voucher.cumulative_pay.saturating_sub(channel.redeemed_pay);
		let burn = voucher.cumulative_burn.saturating_sub(channel.redeemed_burn);
		// The flat fee per request cannot be skipped, even by a requester and worker together;
		// the per-byte part is the worker's to enforce.
		let flat = T::VerificationFees::get().flat.of(channel.mode);
		ensure!(burn >= flat.saturating_mul(requests.saturated_into()), Error::<T>::BurnTooLow);
		let spent = voucher
			.cumulative_pay
			.checked_add(&voucher.cumulative_burn)
			.ok_or(Error::<T>::Overdrawn)?;
		ensure!(spent <= channel.deposit, Error::<T>::Overdrawn);

		let window = T::DisputeWindow::get();
		channel.batches.retain(|b| b.committed_at.saturating_add(window) > now);
		let first_seq = channel.last_seq + 1;
		let batch = Batch { root, first_seq, last_seq: voucher.seq, committed_at: now };
		channel.batches.try_push(batch).map_err(|_| Error::<T>::TooManyBatches)?;

		let (worker_payment, royalty) = Self::pay_from_channel(&channel, pay)?;
		let burned = T::Currency::burn_held(
			&HoldReason::ChannelDeposit.into(),
			&channel.requester,
			burn,
			Precision::Exact,
			Fortitude::Force,
		)?;
		Self::note_burn(BurnCause::VerificationFee, burned);

		channel.redeemed_pay = voucher.cumulative_pay;
		channel.redeemed_burn = voucher.cumulative_burn;
		channel.last_seq = voucher.seq;
		Channels::<T>::insert(id, channel);
		LastCommitment::<T>::insert(&who, now);
		Self::queue_audit(id, batch);
		Self::deposit_event(Event::ChannelRedeemed {
			channel: id,
			first_seq,
			last_seq: voucher.seq,
			worker_payment,
			royalty,
			burned,
			root,
		});
		Ok(())
	}

	/// Moves `pay` out of the channel's hold: the release's royalty to its publisher, the rest
	/// to the worker. Returns (worker's part, royalty).
	fn pay_from_channel(
		channel: &ChannelOf<T>,
		pay: BalanceOf<T>,
	) -> Result<(BalanceOf<T>, BalanceOf<T>), DispatchError> {
		let reason: T::RuntimeHoldReason = HoldReason::ChannelDeposit.into();
		let (publisher, rate) = T::Models::release_info(channel.release)
			.map(|i| (i.publisher, i.royalty))
			.unwrap_or((channel.worker.clone(), Permill::zero()));
		let royalty = rate.mul_floor(pay);
		let payment = pay.saturating_sub(royalty);
		let transfer = |to: &T::AccountId, amount: BalanceOf<T>| -> DispatchResult {
			if amount.is_zero() {
				return Ok(());
			}
			if *to == channel.requester {
				// A requester paying its own royalty: it just stops being held.
				T::Currency::release(&reason, to, amount, Precision::Exact)?;
				return Ok(());
			}
			T::Currency::transfer_on_hold(
				&reason,
				&channel.requester,
				to,
				amount,
				Precision::Exact,
				Restriction::Free,
				Fortitude::Force,
			)
			.map(|_| ())
			.map_err(|_| Error::<T>::PaymentFailed.into())
		};
		transfer(&channel.worker, payment)?;
		// A royalty the publisher cannot receive (a reaped account, below the existential
		// deposit) goes to the worker rather than being lost, as for jobs.
		if publisher == channel.worker ||
			with_storage_layer(|| transfer(&publisher, royalty)).is_err()
		{
			transfer(&channel.worker, royalty)?;
		}
		Ok((payment, royalty))
	}

	pub(crate) fn do_close(who: T::AccountId, id: ChannelId) -> DispatchResult {
		let mut channel = Channels::<T>::get(id).ok_or(Error::<T>::UnknownChannel)?;
		ensure!(channel.requester == who, Error::<T>::NotChannelRequester);
		ensure!(channel.closing_at.is_none(), Error::<T>::ChannelClosing);
		let redeem_until =
			frame_system::Pallet::<T>::block_number().saturating_add(T::ChannelCloseWindow::get());
		channel.closing_at = Some(redeem_until);
		Channels::<T>::insert(id, channel);
		Self::deposit_event(Event::ChannelClosing { channel: id, redeem_until });
		Ok(())
	}

	pub(crate) fn do_finish_close(id: ChannelId) -> DispatchResult {
		let channel = Channels::<T>::get(id).ok_or(Error::<T>::UnknownChannel)?;
		let now = frame_system::Pallet::<T>::block_number();
		let window = T::DisputeWindow::get();
		ensure!(
			channel.closing_at.is_some_and(|until| now > until) &&
				channel.batches.iter().all(|b| b.committed_at.saturating_add(window) <= now),
			Error::<T>::NotClosable
		);
		let refund = channel.held();
		T::Currency::release(
			&HoldReason::ChannelDeposit.into(),
			&channel.requester,
			refund,
			Precision::Exact,
		)?;
		ChannelIndex::<T>::remove((&channel.requester, &channel.worker, channel.release));
		Channels::<T>::remove(id);
		Self::deposit_event(Event::ChannelClosed { channel: id, refund });
		Ok(())
	}

	/// The block from which `finish_close` succeeds for a closed channel, if it is closed.
	pub fn channel_closable_at(channel: &ChannelOf<T>) -> Option<BlockNumberFor<T>> {
		let window = T::DisputeWindow::get();
		let after_close = channel.closing_at?.saturating_add(1u32.into());
		Some(
			channel
				.batches
				.iter()
				.map(|b| b.committed_at.saturating_add(window))
				.fold(after_close, |a, b| a.max(b)),
		)
	}
}
