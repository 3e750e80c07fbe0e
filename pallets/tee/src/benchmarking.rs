//! Benchmarks (frame v2). Attestation documents come from [`crate::fixture`]: the insecure
//! development CA's, pinned as a development root, for chains of every length a bundle allows.

use super::*;
use frame_benchmarking::v2::*;
use frame_system::RawOrigin;
use polkadot_sdk::frame_benchmarking;

fn worker<T: Config>() -> T::AccountId {
	let who: T::AccountId = account("worker", 0, 0);
	T::BenchmarkHelper::make_worker(&who);
	who
}

fn longest_label<T: Config>() -> BoundedVec<u8, T::MaxLabelLen> {
	BoundedVec::try_from(alloc::vec![b'x'; T::MaxLabelLen::get() as usize]).expect("fits")
}

fn allow_fixture_pcrs<T: Config>() -> MeasurementId {
	let [pcr0, pcr1, pcr2] = fixture::PCRS;
	let label = longest_label::<T>();
	Pallet::<T>::do_add_measurement(pcr0, pcr1, pcr2, label).expect("room for one");
	measurement_id(&pcr0, &pcr1, &pcr2)
}

/// Pins `root` last among the most development roots a chain may have (each compared).
fn pin_last<T: Config>(root: &[u8]) {
	let mut roots: Vec<BoundedVec<u8, ConstU32<MAX_ROOT_LEN>>> = (1..MAX_DEV_ROOTS)
		.map(|i| alloc::vec![i as u8; root.len()].try_into().expect("fits"))
		.collect();
	roots.push(root.to_vec().try_into().expect("fits"));
	InsecureDevRoots::<T>::put(BoundedVec::try_from(roots).expect("MAX_DEV_ROOTS"));
}

fn attested<T: Config>(who: &T::AccountId, public: [u8; 32], measurement: MeasurementId) {
	EnclaveKeys::<T>::insert(
		who,
		EnclaveKey {
			public,
			measurement,
			expires_at_ms: (fixture::NOW_S + 3600) * 1000,
			attested_at: frame_system::Pallet::<T>::block_number(),
		},
	);
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn add_measurement() {
		let label = longest_label::<T>();
		let before = MeasurementCount::<T>::get();

		#[extrinsic_call]
		_(RawOrigin::Root, [1; 48], [2; 48], [3; 48], label);

		assert_eq!(MeasurementCount::<T>::get(), before + 1);
	}

	#[benchmark]
	fn revoke_measurement() {
		let id = allow_fixture_pcrs::<T>();
		let before = MeasurementCount::<T>::get();

		#[extrinsic_call]
		_(RawOrigin::Root, id);

		assert_eq!(MeasurementCount::<T>::get(), before - 1);
	}

	#[benchmark]
	fn request_challenge() {
		let who = worker::<T>();

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));

		assert!(Challenges::<T>::contains_key(&who));
	}

	/// A document whose check costs `s` ECDSA P-384 signatures (`s - 2` intermediate CAs, none
	/// remembered, all remembered afterwards).
	#[benchmark]
	fn attest(s: Linear<2, MAX_SIGNATURES>) {
		let fixture = fixture::load();
		let (root, document) = fixture.documents[s as usize - 2].clone();
		pin_last::<T>(&root);
		T::BenchmarkHelper::set_time(fixture::NOW_S * 1000);
		let who = worker::<T>();
		allow_fixture_pcrs::<T>();
		Challenges::<T>::insert(
			&who,
			Challenge {
				nonce: fixture::NONCE,
				expires_at: frame_system::Pallet::<T>::block_number() + 1u32.into(),
			},
		);

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), document.try_into().expect("fits"));

		assert_eq!(EnclaveKeys::<T>::get(&who).expect("attested").public, fixture.public);
		assert_eq!(KnownCaCount::<T>::get(), (s - 2).min(T::MaxKnownCas::get()));
	}

	#[benchmark]
	fn evict() {
		let who = worker::<T>();
		let measurement = allow_fixture_pcrs::<T>();
		attested::<T>(&who, [7; 32], measurement);
		T::BenchmarkHelper::set_time((fixture::NOW_S + 7200) * 1000);
		let caller: T::AccountId = whitelisted_caller();

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), who.clone());

		assert!(!EnclaveKeys::<T>::contains_key(&who));
	}

	#[benchmark]
	fn forget_ca() {
		KnownCas::<T>::insert([9; 32], fixture::NOW_S);
		KnownCaCount::<T>::put(1);
		T::BenchmarkHelper::set_time((fixture::NOW_S + 1) * 1000);
		let caller: T::AccountId = whitelisted_caller();

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), [9; 32]);

		assert_eq!(KnownCaCount::<T>::get(), 0);
	}

	/// Checking a valid result signature: key, measurement, time, one ed25519 verification.
	#[benchmark]
	fn check_result_signature() {
		let fixture = fixture::load();
		let who = worker::<T>();
		let measurement = allow_fixture_pcrs::<T>();
		attested::<T>(&who, fixture.public, measurement);
		T::BenchmarkHelper::set_time(fixture::NOW_S * 1000);
		let result;

		#[block]
		{
			result =
				Pallet::<T>::check_result_signature(&who, &fixture.message, &fixture.signature);
		}

		assert_eq!(result, Ok(()));
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_bench_ext(), crate::mock::Test);
}
