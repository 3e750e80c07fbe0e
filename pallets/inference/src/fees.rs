//! Fees and burns: verification fees, quotes, and the burn counters.

use crate::{pallet::*, types::*};
use opg_primitives::{ReleaseId, VerificationMode};
use polkadot_sdk::{
	frame_support::pallet_prelude::*,
	sp_runtime::traits::{Saturating, Zero},
};

impl<T: Config> Pallet<T> {
	/// Verification fee of a job whose data (input, output, evidence) has `bytes` bytes.
	pub fn verification_fee(mode: VerificationMode, bytes: u32) -> BalanceOf<T> {
		T::VerificationFees::get().flat.of(mode).saturating_add(Self::data_fee(bytes))
	}

	/// The per-byte part of the verification fee for `bytes` bytes. Over a job's stored input
	/// alone, it is what a job that does not settle (rejected, failed, expired) still pays.
	pub fn data_fee(bytes: u32) -> BalanceOf<T> {
		T::VerificationFees::get().per_byte.saturating_mul(bytes.into())
	}

	/// Largest verification fee a job with `input_len` bytes of input can owe.
	pub fn max_verification_fee(mode: VerificationMode, input_len: u32) -> BalanceOf<T> {
		let evidence = if mode == VerificationMode::Vanilla { 0 } else { T::MaxEvidenceLen::get() };
		Self::verification_fee(
			mode,
			input_len.saturating_add(T::MaxOutputLen::get()).saturating_add(evidence),
		)
	}

	/// Fee quote for a job with the default timeout: the lowest `max_fee` the draw accepts and
	/// the maximum verification fee.
	pub fn quote(
		release: ReleaseId,
		mode: VerificationMode,
		input_len: u32,
	) -> Option<FeeQuote<BalanceOf<T>>> {
		let price = Self::lowest_max_fee(release, mode, T::DefaultJobTimeout::get())?;
		let verification_fee = Self::max_verification_fee(mode, input_len);
		Some(FeeQuote { price, verification_fee, total: price.saturating_add(verification_fee) })
	}

	pub(crate) fn note_burn(cause: BurnCause, amount: BalanceOf<T>) {
		if amount.is_zero() {
			return;
		}
		TotalBurned::<T>::mutate(|t| *t = t.saturating_add(amount));
		BurnedByCause::<T>::mutate(cause, |t| *t = t.saturating_add(amount));
		Self::deposit_event(Event::Burned { cause, amount });
	}

	/// What the market has burned, in total and by cause.
	pub fn burn_totals() -> BurnTotals<BalanceOf<T>> {
		BurnTotals {
			total: TotalBurned::<T>::get(),
			verification_fees: BurnedByCause::<T>::get(BurnCause::VerificationFee),
			slashes: BurnedByCause::<T>::get(BurnCause::Slash),
		}
	}
}
