//! Benchmarks (frame v2). Keys and proofs come from [`opg_groth16::synthetic`]: valid Groth16
//! instances of any input count, so every benchmark runs the full check.

use super::*;
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_system::RawOrigin;
use polkadot_sdk::frame_benchmarking;

fn funded<T: Config>() -> T::AccountId {
	let who: T::AccountId = account("owner", 0, 0);
	let amount = Pallet::<T>::deposit_for(MAX_PREPARED_LEN).saturating_mul(100u32.into());
	T::Currency::set_balance(&who, amount);
	who
}

fn key(n: u32) -> (Vec<u8>, Vec<u8>, Vec<[u8; 32]>) {
	let (key, proof, inputs) = opg_groth16::synthetic::instance(n as usize, n as u64);
	let inputs = inputs.iter().map(opg_groth16::encode_public_input).collect();
	(key.encode().expect("a synthetic key encodes"), proof.encode(), inputs)
}

fn registered<T: Config>(n: u32) -> (H256, Vec<u8>, Vec<[u8; 32]>) {
	let (encoded, proof, inputs) = key(n);
	let owner = funded::<T>();
	Pallet::<T>::register_verifying_key(
		RawOrigin::Signed(owner).into(),
		encoded.clone().try_into().expect("fits"),
		H256::repeat_byte(1),
	)
	.expect("a valid key registers");
	(key_hash(&encoded), proof, inputs)
}

#[benchmarks]
mod benchmarks {
	use super::*;

	/// Decoding and checking a key of `n` public inputs (subgroup checks), preparing it (one
	/// pairing) and storing it.
	#[benchmark]
	fn register_verifying_key(n: Linear<0, { MAX_PUBLIC_INPUTS as u32 }>) {
		let owner = funded::<T>();
		let (encoded, _, _) = key(n);
		let hash = key_hash(&encoded);

		#[extrinsic_call]
		_(RawOrigin::Signed(owner), encoded.try_into().expect("fits"), H256::repeat_byte(1));

		assert_eq!(Pallet::<T>::public_inputs(hash), Some(n));
	}

	#[benchmark]
	fn unregister_verifying_key() {
		let (hash, _, _) = registered::<T>(MAX_PUBLIC_INPUTS as u32);
		let owner = VerifyingKeys::<T>::get(hash).expect("registered").owner;

		#[extrinsic_call]
		_(RawOrigin::Signed(owner), hash);

		assert!(VerifyingKeys::<T>::get(hash).is_none());
	}

	/// Verifying a valid proof with `n` public inputs against a stored key.
	#[benchmark]
	fn verify_proof(n: Linear<0, { MAX_PUBLIC_INPUTS as u32 }>) {
		let (hash, proof, inputs) = registered::<T>(n);
		let result;

		#[block]
		{
			result = Pallet::<T>::verify(hash, &proof, &inputs);
		}

		assert_eq!(result, Ok(()));
	}

	/// Computing the public inputs of an inference proof from `b` bytes of input and output
	/// (blake2s-256 of each).
	#[benchmark]
	fn inference_statement(b: Linear<0, { 256 * 1024 }>) {
		let data = alloc::vec![0x5au8; b as usize];
		let (input, output) = data.split_at(b as usize / 2);
		let inputs;

		#[block]
		{
			inputs = opg_primitives::zk_public_inputs(input, output);
		}

		assert_eq!(inputs.len(), opg_primitives::ZK_PUBLIC_INPUTS);
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_bench_ext(), crate::mock::Test);
}
