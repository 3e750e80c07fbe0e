//! Benchmarks of the model hub (frame-benchmarking v2). Every case is the worst case of its
//! call: longest strings, most tensors of the highest rank.

use super::*;
use alloc::{boxed::Box, vec, vec::Vec};
use opg_primitives::ElemType;
use polkadot_sdk::{
	frame_benchmarking::v2::*, frame_support::traits::fungible::Mutate, frame_system::RawOrigin,
};

fn funded<T: Config>(name: &'static str) -> T::AccountId
where
	T::Currency: Mutate<T::AccountId>,
{
	let who: T::AccountId = account(name, 0, 0);
	let amount = T::Currency::minimum_balance()
		.saturating_add(T::DepositBase::get().saturating_mul(100u32.into()))
		.saturating_add(T::DepositPerByte::get().saturating_mul(1_000_000u32.into()));
	T::Currency::set_balance(&who, amount);
	who
}

fn full<S: Get<u32>>(byte: u8) -> BoundedVec<u8, S> {
	vec![byte; S::get() as usize].try_into().expect("exactly the bound")
}

fn worst_specs<T: Config>() -> TensorSpecsOf<T> {
	let spec = TensorSpec {
		name: full::<T::MaxNameLen>(b'n'),
		elem: ElemType::F32,
		shape: vec![1u32; T::MaxRank::get() as usize].try_into().expect("exactly the bound"),
	};
	vec![spec; T::MaxTensors::get() as usize].try_into().expect("exactly the bound")
}

fn worst_params<T: Config>(version: u32) -> ReleaseParams<T> {
	let mut v: Vec<u8> = vec![b'v'; T::MaxVersionLen::get() as usize];
	let tag = version.to_le_bytes();
	let n = v.len().min(4);
	v[..n].copy_from_slice(&tag[..n]);
	ReleaseParams {
		version: v.try_into().expect("exactly the bound"),
		artifact: H256::repeat_byte(1),
		artifact_size: u64::MAX,
		format: ModelFormat::Onnx,
		source_uri: full::<T::MaxUriLen>(b'u'),
		inputs: worst_specs::<T>(),
		outputs: worst_specs::<T>(),
		modes: ModeSet::of(&[VerificationMode::Vanilla, VerificationMode::Tee]),
		zk_verifying_key: None,
		royalty: T::MaxRoyalty::get(),
		llm: None,
	}
}

fn repository<T: Config>(owner: &T::AccountId) -> RepositoryId
where
	T::Currency: Mutate<T::AccountId>,
{
	let id = NextRepositoryId::<T>::get();
	Pallet::<T>::create_repository(
		RawOrigin::Signed(owner.clone()).into(),
		full::<T::MaxNameLen>(b'r'),
		full::<T::MaxUriLen>(b'd'),
	)
	.expect("funded owner");
	id
}

#[benchmarks(where T::Currency: Mutate<T::AccountId>)]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn create_repository() {
		let owner = funded::<T>("owner");
		let id = NextRepositoryId::<T>::get();

		#[extrinsic_call]
		_(RawOrigin::Signed(owner), full::<T::MaxNameLen>(b'r'), full::<T::MaxUriLen>(b'd'));

		assert!(Repositories::<T>::contains_key(id));
	}

	#[benchmark]
	fn update_repository() {
		let owner = funded::<T>("owner");
		let id = repository::<T>(&owner);

		#[extrinsic_call]
		_(RawOrigin::Signed(owner), id, full::<T::MaxUriLen>(b'e'));

		assert_eq!(Repositories::<T>::get(id).unwrap().description_uri, full::<T::MaxUriLen>(b'e'));
	}

	#[benchmark]
	fn remove_repository() {
		let owner = funded::<T>("owner");
		let id = repository::<T>(&owner);

		#[extrinsic_call]
		_(RawOrigin::Signed(owner), id);

		assert!(!Repositories::<T>::contains_key(id));
	}

	#[benchmark]
	fn publish_release() {
		let owner = funded::<T>("owner");
		let repo = repository::<T>(&owner);
		let id = NextReleaseId::<T>::get();

		#[extrinsic_call]
		_(RawOrigin::Signed(owner), repo, Box::new(worst_params::<T>(0)));

		assert!(Releases::<T>::contains_key(id));
	}

	#[benchmark]
	fn retire_release() {
		let owner = funded::<T>("owner");
		let repo = repository::<T>(&owner);
		let id = NextReleaseId::<T>::get();
		Pallet::<T>::publish_release(
			RawOrigin::Signed(owner.clone()).into(),
			repo,
			Box::new(worst_params::<T>(0)),
		)
		.expect("funded owner");

		#[extrinsic_call]
		_(RawOrigin::Signed(owner), id);

		assert!(!Releases::<T>::contains_key(id));
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_bench_ext(), crate::mock::Test);
}
