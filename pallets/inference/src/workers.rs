//! Workers: offers, release pools, slashing.

use crate::{pallet::*, types::*};
use opg_primitives::{JobId, ModeSet, ReleaseId, VerificationMode};
use pallet_model_hub::ModelRegistry;
use polkadot_sdk::{frame_support::pallet_prelude::*, sp_runtime::traits::Zero};

impl<T: Config> Pallet<T> {
	pub(crate) fn check_offer(
		releases: &[ReleaseId],
		modes: ModeSet,
		capacity: u32,
	) -> DispatchResult {
		ensure!(!releases.is_empty(), Error::<T>::BadReleaseList);
		ensure!(modes.is_valid(), Error::<T>::InvalidModes);
		ensure!(capacity > 0 && capacity <= T::MaxWorkerCapacity::get(), Error::<T>::BadCapacity);
		for mode in VerificationMode::ALL {
			if modes.contains(mode) {
				ensure!(T::Verifier::supports(mode), Error::<T>::ModeUnavailable);
			}
		}
		for (i, release) in releases.iter().enumerate() {
			ensure!(!releases[..i].contains(release), Error::<T>::DuplicateRelease);
			let info = T::Models::release_info(*release).ok_or(Error::<T>::UnknownRelease)?;
			ensure!(info.active, Error::<T>::UnknownRelease);
			// A worker serves a release in the modes both support; it must share one.
			ensure!(info.modes.0 & modes.0 != 0, Error::<T>::ModeNotSupported);
		}
		Ok(())
	}

	pub(crate) fn join_pools(who: &T::AccountId, releases: &[ReleaseId]) -> DispatchResult {
		for release in releases {
			ReleaseWorkers::<T>::try_mutate(release, |pool| {
				pool.try_push(who.clone()).map_err(|_| Error::<T>::ReleaseFull)
			})?;
		}
		Ok(())
	}

	pub(crate) fn leave_pools(who: &T::AccountId, releases: &[ReleaseId]) {
		for release in releases {
			ReleaseWorkers::<T>::mutate_exists(release, |maybe| {
				if let Some(pool) = maybe {
					pool.retain(|w| w != who);
					if pool.is_empty() {
						*maybe = None;
					}
				}
			});
		}
	}

	/// Burns up to `amount` of a worker's stake for a job, pauses it below the minimum;
	/// returns what was burned.
	pub(crate) fn slash(who: &T::AccountId, job: JobId, amount: BalanceOf<T>) -> BalanceOf<T> {
		if !Workers::<T>::contains_key(who) {
			return Zero::zero();
		}
		let (burned, _) = Self::slash_stake(who, amount, None);
		Self::deposit_event(Event::WorkerSlashed { worker: who.clone(), job, amount: burned });
		burned
	}
}
