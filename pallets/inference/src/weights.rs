//! Weights of `pallet_inference`.
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

/// Weight functions needed for `pallet_inference`.
pub trait WeightInfo {
	fn register_worker(r: u32) -> Weight;
	fn update_worker(o: u32, n: u32) -> Weight;
	fn bond_extra() -> Weight;
	fn pause_worker() -> Weight;
	fn resume_worker() -> Weight;
	fn unregister_worker(r: u32) -> Weight;
	fn withdraw_stake() -> Weight;
	fn submit_job(i: u32, w: u32) -> Weight;
	fn submit_result(o: u32, e: u32) -> Weight;
	fn reject_job() -> Weight;
	fn verify_result() -> Weight;
	fn settle() -> Weight;
	fn on_initialize_base() -> Weight;
	fn on_initialize_expire() -> Weight;
	fn on_initialize_prune() -> Weight;
	fn on_idle_base() -> Weight;
	fn on_idle_verify() -> Weight;
}

/// Weights for `pallet_inference` using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: polkadot_sdk::frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn register_worker(r: u32) -> Weight {
		Weight::from_parts(50_000_000, 4000)
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(r.into()))
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	fn update_worker(o: u32, n: u32) -> Weight {
		Weight::from_parts(50_000_000, 4000)
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(o.into()))
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	fn bond_extra() -> Weight {
		Weight::from_parts(40_000_000, 4000)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn pause_worker() -> Weight {
		Weight::from_parts(20_000_000, 4000)
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	fn resume_worker() -> Weight {
		Weight::from_parts(20_000_000, 4000)
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	fn unregister_worker(r: u32) -> Weight {
		Weight::from_parts(40_000_000, 4000)
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(r.into()))
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn withdraw_stake() -> Weight {
		Weight::from_parts(50_000_000, 4000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	fn submit_job(i: u32, w: u32) -> Weight {
		Weight::from_parts(120_000_000, 20000)
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(i.into()))
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(w.into()))
			.saturating_add(T::DbWeight::get().reads(10_u64))
			.saturating_add(T::DbWeight::get().writes(8_u64))
	}
	fn submit_result(o: u32, e: u32) -> Weight {
		Weight::from_parts(150_000_000, 20000)
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(o.into()))
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(e.into()))
			.saturating_add(T::DbWeight::get().reads(10_u64))
			.saturating_add(T::DbWeight::get().writes(10_u64))
	}
	fn reject_job() -> Weight {
		Weight::from_parts(100_000_000, 20000)
			.saturating_add(T::DbWeight::get().reads(8_u64))
			.saturating_add(T::DbWeight::get().writes(8_u64))
	}
	fn verify_result() -> Weight {
		Weight::from_parts(30_000_000, 20000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	fn settle() -> Weight {
		Weight::from_parts(150_000_000, 20000)
			.saturating_add(T::DbWeight::get().reads(10_u64))
			.saturating_add(T::DbWeight::get().writes(10_u64))
	}
	fn on_initialize_base() -> Weight {
		Weight::from_parts(5_000_000, 3000)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn on_initialize_expire() -> Weight {
		Weight::from_parts(120_000_000, 20000)
			.saturating_add(T::DbWeight::get().reads(8_u64))
			.saturating_add(T::DbWeight::get().writes(8_u64))
	}
	fn on_initialize_prune() -> Weight {
		Weight::from_parts(30_000_000, 20000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	fn on_idle_base() -> Weight {
		Weight::from_parts(5_000_000, 1000)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	fn on_idle_verify() -> Weight {
		Weight::from_parts(150_000_000, 20000)
			.saturating_add(T::DbWeight::get().reads(10_u64))
			.saturating_add(T::DbWeight::get().writes(10_u64))
	}
}

// For tests: the same figures with RocksDB weights.
impl WeightInfo for () {
	fn register_worker(r: u32) -> Weight {
		Weight::from_parts(50_000_000, 4000)
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(r.into()))
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn update_worker(o: u32, n: u32) -> Weight {
		Weight::from_parts(50_000_000, 4000)
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(o.into()))
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(n.into()))
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn bond_extra() -> Weight {
		Weight::from_parts(40_000_000, 4000)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn pause_worker() -> Weight {
		Weight::from_parts(20_000_000, 4000)
			.saturating_add(RocksDbWeight::get().reads(1_u64))
			.saturating_add(RocksDbWeight::get().writes(1_u64))
	}
	fn resume_worker() -> Weight {
		Weight::from_parts(20_000_000, 4000)
			.saturating_add(RocksDbWeight::get().reads(1_u64))
			.saturating_add(RocksDbWeight::get().writes(1_u64))
	}
	fn unregister_worker(r: u32) -> Weight {
		Weight::from_parts(40_000_000, 4000)
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(r.into()))
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn withdraw_stake() -> Weight {
		Weight::from_parts(50_000_000, 4000)
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn submit_job(i: u32, w: u32) -> Weight {
		Weight::from_parts(120_000_000, 20000)
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(i.into()))
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(w.into()))
			.saturating_add(RocksDbWeight::get().reads(10_u64))
			.saturating_add(RocksDbWeight::get().writes(8_u64))
	}
	fn submit_result(o: u32, e: u32) -> Weight {
		Weight::from_parts(150_000_000, 20000)
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(o.into()))
			.saturating_add(Weight::from_parts(10_000, 1).saturating_mul(e.into()))
			.saturating_add(RocksDbWeight::get().reads(10_u64))
			.saturating_add(RocksDbWeight::get().writes(10_u64))
	}
	fn reject_job() -> Weight {
		Weight::from_parts(100_000_000, 20000)
			.saturating_add(RocksDbWeight::get().reads(8_u64))
			.saturating_add(RocksDbWeight::get().writes(8_u64))
	}
	fn verify_result() -> Weight {
		Weight::from_parts(30_000_000, 20000)
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(1_u64))
	}
	fn settle() -> Weight {
		Weight::from_parts(150_000_000, 20000)
			.saturating_add(RocksDbWeight::get().reads(10_u64))
			.saturating_add(RocksDbWeight::get().writes(10_u64))
	}
	fn on_initialize_base() -> Weight {
		Weight::from_parts(5_000_000, 3000)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn on_initialize_expire() -> Weight {
		Weight::from_parts(120_000_000, 20000)
			.saturating_add(RocksDbWeight::get().reads(8_u64))
			.saturating_add(RocksDbWeight::get().writes(8_u64))
	}
	fn on_initialize_prune() -> Weight {
		Weight::from_parts(30_000_000, 20000)
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(3_u64))
	}
	fn on_idle_base() -> Weight {
		Weight::from_parts(5_000_000, 1000)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(1_u64))
	}
	fn on_idle_verify() -> Weight {
		Weight::from_parts(150_000_000, 20000)
			.saturating_add(RocksDbWeight::get().reads(10_u64))
			.saturating_add(RocksDbWeight::get().writes(10_u64))
	}
}
