//! Test runtime of the model hub.

use crate as pallet_model_hub;
use polkadot_sdk::{
	frame_support::{
		self, derive_impl, parameter_types,
		traits::{ConstU32, ConstU64},
	},
	frame_system, pallet_balances,
	sp_core::H256,
	sp_io,
	sp_runtime::{BuildStorage, Permill},
};

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
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(2)]
	pub type ModelHub = pallet_model_hub;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountData = pallet_balances::AccountData<u64>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type AccountStore = System;
	type RuntimeHoldReason = RuntimeHoldReason;
}

/// The model (artifact hash) of the tests' releases, which their registered keys were made for.
pub const ZK_MODEL: H256 = H256::repeat_byte(7);

/// Verifying keys the tests treat as registered: those whose first byte is 0xAA, all made for
/// [`ZK_MODEL`].
pub struct RegisteredKeys;
impl opg_primitives::VerifyingKeyRegistry for RegisteredKeys {
	fn model_of(vk: &H256) -> Option<H256> {
		(vk.0[0] == 0xAA).then_some(ZK_MODEL)
	}
}

parameter_types! {
	pub const MaxRoyalty: Permill = Permill::from_percent(20);
}

impl pallet_model_hub::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type DepositBase = ConstU64<100>;
	type DepositPerByte = ConstU64<1>;
	type VerifyingKeys = RegisteredKeys;
	type MaxNameLen = ConstU32<32>;
	type MaxUriLen = ConstU32<128>;
	type MaxVersionLen = ConstU32<16>;
	type MaxTensors = ConstU32<4>;
	type MaxRank = ConstU32<4>;
	type MaxReleasesPerRepository = ConstU32<3>;
	type MaxRoyalty = MaxRoyalty;
	type MaxContextLength = ConstU32<{ 128 * 1024 }>;
	type WeightInfo = ();
}

pub const ALICE: u64 = 1;
pub const BOB: u64 = 2;
pub const POOR: u64 = 3;

/// Genesis storage of the system pallet with `balances` endowed.
pub fn storage_with(balances: Vec<(u64, u64)>) -> polkadot_sdk::sp_runtime::Storage {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> { balances, ..Default::default() }
		.assimilate_storage(&mut storage)
		.unwrap();
	storage
}

/// Runs `test` on fresh state, then checks the pallet's invariants.
pub fn new_test_ext(test: impl FnOnce()) {
	let storage = storage_with(vec![(ALICE, 1_000_000), (BOB, 1_000_000), (POOR, 150)]);
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| {
		System::set_block_number(1);
		test();
		ModelHub::do_try_state().expect("invariants hold");
	});
}

/// Plain externalities for the benchmark test suite.
#[cfg(feature = "runtime-benchmarks")]
pub fn new_bench_ext() -> sp_io::TestExternalities {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	sp_io::TestExternalities::new(storage)
}
