//! Test runtime of the TEE pallet: timestamp for the chain's time, a settable worker set.

use crate as pallet_tee;
use polkadot_sdk::{
	frame_support::{self, derive_impl, parameter_types, traits::Contains},
	frame_system::{self, EnsureRoot},
	pallet_timestamp, sp_io,
	sp_runtime::BuildStorage,
};
use std::{cell::RefCell, collections::BTreeSet};

type Block = frame_system::mocking::MockBlock<Test>;

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Test;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type Timestamp = pallet_timestamp;
	#[runtime::pallet_index(2)]
	pub type Tee = pallet_tee;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
}

impl pallet_timestamp::Config for Test {
	type Moment = u64;
	type OnTimestampSet = ();
	type MinimumPeriod = frame_support::traits::ConstU64<1>;
	type WeightInfo = ();
}

thread_local! {
	pub static WORKERS: RefCell<BTreeSet<u64>> = const { RefCell::new(BTreeSet::new()) };
}

pub struct Workers;
impl Contains<u64> for Workers {
	fn contains(who: &u64) -> bool {
		WORKERS.with(|w| w.borrow().contains(who))
	}
}

parameter_types! {
	pub static MaxKnownCas: u32 = 16;
	pub static MaxMeasurements: u32 = 4;
	/// A development runtime unless a test says otherwise.
	pub static InsecureDevTrust: bool = true;
}

/// Keys live 12 hours at most.
pub const KEY_LIFETIME_MS: u64 = 12 * 3600 * 1000;

impl pallet_tee::Config for Test {
	type PolicyOrigin = EnsureRoot<u64>;
	type Workers = Workers;
	type UnixTime = Timestamp;
	type ChallengeLifetime = frame_support::traits::ConstU64<10>;
	type MaxKeyLifetime = frame_support::traits::ConstU64<KEY_LIFETIME_MS>;
	type MaxMeasurements = MaxMeasurements;
	type MaxLabelLen = frame_support::traits::ConstU32<32>;
	type MaxKnownCas = MaxKnownCas;
	type InsecureDevTrust = InsecureDevTrust;
	type WeightInfo = ();
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = Helper;
}

#[cfg(feature = "runtime-benchmarks")]
pub struct Helper;
#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper<u64> for Helper {
	fn make_worker(who: &u64) {
		WORKERS.with(|w| w.borrow_mut().insert(*who));
	}
	fn set_time(ms: u64) {
		pallet_timestamp::Now::<Test>::put(ms);
	}
}

pub const W1: u64 = 1;
pub const W2: u64 = 2;
/// Not a worker.
pub const NOBODY: u64 = 9;

/// Runs `test` on a chain with `dev_roots` pinned besides AWS's, W1 and W2 workers, and checks
/// the pallet's invariants after it.
pub fn new_test_ext(dev_roots: Vec<Vec<u8>>, test: impl FnOnce()) {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_tee::GenesisConfig::<Test> { insecure_dev_roots: dev_roots, ..Default::default() }
		.assimilate_storage(&mut storage)
		.unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| {
		System::set_block_number(1);
		WORKERS.with(|w| *w.borrow_mut() = [W1, W2].into());
		MaxKnownCas::set(16);
		MaxMeasurements::set(4);
		test();
		Tee::do_try_state().expect("invariants hold");
	});
}

#[cfg(feature = "runtime-benchmarks")]
pub fn new_bench_ext() -> sp_io::TestExternalities {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	sp_io::TestExternalities::new(storage)
}
