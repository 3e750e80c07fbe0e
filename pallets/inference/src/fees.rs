//! Fees and burns: verification fees, quotes, and the burn counters.

use crate::{pallet::*, types::*};
use opg_primitives::{
	chat::{TokenBudget, TokenUsage},
	ReleaseId, VerificationMode,
};
use pallet_model_hub::ModelRegistry;
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

	/// Fee quote for a tensor job with the default timeout: the lowest `max_fee` the draw
	/// accepts and the maximum verification fee. `None` for an LLM release, whose price depends
	/// on the request: see [`Self::quote_input`].
	pub fn quote(
		release: ReleaseId,
		mode: VerificationMode,
		input_len: u32,
	) -> Option<FeeQuote<BalanceOf<T>>> {
		if T::Models::release_info(release)?.llm {
			return None;
		}
		Self::quote_budget(release, mode, input_len, None)
	}

	/// Fee quote for a job with this input and the default timeout, for any release: for an
	/// LLM release, the price covers the request's token budget. `None` if the input does not
	/// fit the release or no worker would take the job.
	pub fn quote_input(
		release: ReleaseId,
		mode: VerificationMode,
		input: &[u8],
	) -> Option<FeeQuote<BalanceOf<T>>> {
		let budget = T::Models::check_input(release, input).ok()?;
		Self::quote_budget(release, mode, input.len() as u32, budget)
	}

	fn quote_budget(
		release: ReleaseId,
		mode: VerificationMode,
		input_len: u32,
		budget: Option<TokenBudget>,
	) -> Option<FeeQuote<BalanceOf<T>>> {
		let price = Self::lowest_max_fee(release, mode, T::DefaultJobTimeout::get(), budget)?;
		let verification_fee = Self::max_verification_fee(mode, input_len);
		Some(FeeQuote { price, verification_fee, total: price.saturating_add(verification_fee) })
	}

	/// What `tokens` cost at `prices` (per 1,000 tokens, rounded down).
	pub fn token_charge(prices: &TokenPrices<BalanceOf<T>>, tokens: TokenUsage) -> BalanceOf<T> {
		let milli = prices
			.prompt_per_1k
			.saturating_mul(tokens.prompt.into())
			.saturating_add(prices.completion_per_1k.saturating_mul(tokens.completion.into()));
		milli / 1000u32.into()
	}

	/// The most a worker charges for a job: its per-job price, plus the token budget at its
	/// token prices for an LLM job.
	pub fn max_charge(worker: &WorkerOf<T>, budget: Option<TokenBudget>) -> BalanceOf<T> {
		match budget {
			None => worker.price,
			Some(b) => worker.price.saturating_add(Self::token_charge(
				&worker.token_prices,
				TokenUsage { prompt: b.prompt, completion: b.completion },
			)),
		}
	}

	/// What an LLM answer that reports `usage` earns: the per-request `base` price and the
	/// tokens at `prices`, each count capped at the `budget`. A settled job and a direct-path
	/// answer are billed by it alike.
	pub fn billed_charge(
		base: BalanceOf<T>,
		prices: &TokenPrices<BalanceOf<T>>,
		budget: TokenBudget,
		usage: TokenUsage,
	) -> BalanceOf<T> {
		let billed = TokenUsage {
			prompt: usage.prompt.min(budget.prompt),
			completion: usage.completion.min(budget.completion),
		};
		base.saturating_add(Self::token_charge(prices, billed))
	}

	/// What a settled job pays its worker (royalty included): its price, or for an LLM job
	/// its [`Self::billed_charge`], never more than was held.
	pub(crate) fn charge(record: &JobOf<T>, usage: Option<TokenUsage>) -> BalanceOf<T> {
		match &record.tokens {
			None => record.price,
			Some(terms) => {
				// The output was checked at submission; no counts would bill no tokens.
				let usage = usage.unwrap_or_default();
				Self::billed_charge(terms.base, &terms.prices, terms.budget, usage)
					.min(record.price)
			},
		}
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
