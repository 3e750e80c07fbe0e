//! Weights of `pallet_model_hub`.
//!
//! NOT YET GENERATED: hand estimates used only by the mock runtime. `scripts/benchmarks.sh`
//! (frame-omni-bencher against the wasm runtime) replaces this file before the pallet is wired
//! into `opg-runtime`.
#![allow(unused_parens, unused_imports, missing_docs)]

use core::marker::PhantomData;
use polkadot_sdk::frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions needed for `pallet_model_hub`.
pub trait WeightInfo {
	fn create_repository() -> Weight;
	fn update_repository() -> Weight;
	fn remove_repository() -> Weight;
	fn publish_release() -> Weight;
	fn retire_release() -> Weight;
}

/// Weights for `pallet_model_hub` using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: polkadot_sdk::frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn create_repository() -> Weight {
		Weight::from_parts(60_000_000, 3_800)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	fn update_repository() -> Weight {
		Weight::from_parts(55_000_000, 3_800)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn remove_repository() -> Weight {
		Weight::from_parts(55_000_000, 3_800)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn publish_release() -> Weight {
		Weight::from_parts(90_000_000, 12_000)
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(5_u64))
	}
	fn retire_release() -> Weight {
		Weight::from_parts(80_000_000, 12_000)
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(5_u64))
	}
}

// For tests: the same figures with RocksDB weights.
impl WeightInfo for () {
	fn create_repository() -> Weight {
		Weight::from_parts(60_000_000, 3_800)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(3_u64))
	}
	fn update_repository() -> Weight {
		Weight::from_parts(55_000_000, 3_800)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn remove_repository() -> Weight {
		Weight::from_parts(55_000_000, 3_800)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn publish_release() -> Weight {
		Weight::from_parts(90_000_000, 12_000)
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(5_u64))
	}
	fn retire_release() -> Weight {
		Weight::from_parts(80_000_000, 12_000)
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(5_u64))
	}
}
