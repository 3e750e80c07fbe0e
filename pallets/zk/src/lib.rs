//! # ZK: Groth16 verifying keys, registered once and referenced by hash
//!
//! A model publisher registers the Groth16 (BN254) verifying key of its model's circuit once;
//! releases reference it by hash (blake2-256 of the key in [`opg_groth16`]'s compact encoding).
//! Registration checks every point (on the curve, in the subgroup) and stores the key
//! *prepared* (e(α, β) computed, γ and δ negated, points uncompressed), so a verification does
//! none of that work again. A deposit for the stored bytes is held from the owner until the key
//! is removed, which is refused while a release references it ([`Config::KeyUsers`]).
//!
//! The inference market verifies ZK results through [`Pallet::verify`]; what the public inputs
//! of an inference proof are is fixed by [`opg_primitives::zk_public_inputs`].
//!
//! **Trust assumption.** A Groth16 proof is sound only if nobody knows the trapdoor of the key's
//! circuit-specific setup, and the key proves only what its circuit computes. Both come from the
//! publisher's setup, which the chain cannot see: a publisher who kept the trapdoor, or compiled
//! another computation, can make "proofs" that verify. What the chain does bind: each key is
//! registered with the model (artifact hash) its circuit was compiled from, and a release may
//! refer only to a key registered for its own artifact; keys whose δ makes forging trivial are
//! refused at registration. A requester trusts the publisher's setup (or an audited ceremony)
//! as much as the model itself.
//!
//! Limits: a key has at most [`opg_groth16::MAX_PUBLIC_INPUTS`] (32) public inputs, so an
//! encoded key is at most [`MAX_KEY_LEN`] bytes and a stored one [`MAX_PREPARED_LEN`]; a proof is
//! [`opg_groth16::PROOF_LEN`] (128) bytes. Weights grow with the number of public inputs.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use opg_groth16::{prepared_key_len, verifying_key_len, MAX_PUBLIC_INPUTS};
use polkadot_sdk::{
	frame_support::{
		self,
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, Mutate, MutateHold},
			tokens::Precision,
			Contains,
		},
	},
	frame_system::{self, pallet_prelude::*},
	sp_core::H256,
	sp_runtime::traits::Saturating,
};
use scale_info::TypeInfo;

pub use pallet::*;
pub use weights::WeightInfo;

/// Longest encoded verifying key (32 public inputs).
pub const MAX_KEY_LEN: u32 = verifying_key_len(MAX_PUBLIC_INPUTS) as u32;
/// Longest stored (prepared) key.
pub const MAX_PREPARED_LEN: u32 = prepared_key_len(MAX_PUBLIC_INPUTS) as u32;

/// Balance type of the currency.
pub type BalanceOf<T> =
	<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// A registered verifying key.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct KeyRecord<AccountId, Balance> {
	/// Who registered it and pays its deposit.
	pub owner: AccountId,
	/// Deposit held from `owner`.
	pub deposit: Balance,
	/// The model (release artifact hash) the key's circuit was compiled from, as the owner
	/// states it; releases of other artifacts cannot refer to the key.
	pub model: H256,
	/// Number of public inputs a proof has.
	pub public_inputs: u32,
	/// The key in [`opg_groth16::PreparedVerifyingKey`]'s encoding.
	pub prepared: BoundedVec<u8, ConstU32<MAX_PREPARED_LEN>>,
}

/// Why a proof was refused by [`Pallet::verify`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub enum ProofError {
	/// No key is registered under the hash.
	UnknownKey,
	/// The number of public inputs differs from the key's.
	PublicInputCount,
	/// The proof is not 128 bytes of three valid points.
	MalformedProof,
	/// A public input is not a canonical field element.
	PublicInputOutOfRange,
	/// The proof does not verify.
	InvalidProof,
}

/// The hash a key is registered and referenced under: blake2-256 of its encoding.
pub fn key_hash(key: &[u8]) -> H256 {
	H256(polkadot_sdk::sp_crypto_hashing::blake2_256(key))
}

/// Number of public inputs of an encoded key of `len` bytes, if the length is one a key can have.
pub fn public_inputs_of_len(len: usize) -> Option<u32> {
	(0..=MAX_PUBLIC_INPUTS).find(|n| verifying_key_len(*n) == len).map(|n| n as u32)
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;

	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	/// Why the pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// Storage deposit of a verifying key.
		#[codec(index = 0)]
		KeyDeposit,
	}

	#[pallet::config]
	pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// Currency in which deposits are held.
		type Currency: MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
			+ Mutate<Self::AccountId>;
		/// The runtime's hold reasons.
		type RuntimeHoldReason: From<HoldReason>;
		/// Deposit per key.
		#[pallet::constant]
		type DepositBase: Get<BalanceOf<Self>>;
		/// Deposit per stored byte of a key.
		#[pallet::constant]
		type DepositPerByte: Get<BalanceOf<Self>>;
		/// Keys something refers to (a model release): they cannot be removed.
		type KeyUsers: Contains<H256>;
		/// Weights of the calls and of verification.
		type WeightInfo: WeightInfo;
	}

	/// Registered keys by hash.
	#[pallet::storage]
	pub type VerifyingKeys<T: Config> =
		StorageMap<_, Identity, H256, KeyRecord<T::AccountId, BalanceOf<T>>>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A key was registered.
		VerifyingKeyRegistered {
			hash: H256,
			owner: T::AccountId,
			model: H256,
			public_inputs: u32,
			deposit: BalanceOf<T>,
		},
		/// A key was removed and its deposit released.
		VerifyingKeyRemoved { hash: H256, owner: T::AccountId, deposit: BalanceOf<T> },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// The key's length, version or a point is wrong.
		MalformedVerifyingKey,
		/// The key declares more than 32 public inputs.
		TooManyPublicInputs,
		/// This key is registered already.
		AlreadyRegistered,
		/// No key is registered under the hash.
		UnknownVerifyingKey,
		/// Only the key's owner may remove it.
		NotOwner,
		/// A release references the key.
		KeyInUse,
		/// δ is ±γ or ±the G2 generator: anyone could prove any statement under this key (a
		/// snarkjs key without its phase-2 contribution looks like this).
		DegenerateVerifyingKey,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		#[cfg(feature = "try-runtime")]
		fn try_state(
			_: BlockNumberFor<T>,
		) -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Registers `key` (compact encoding, see [`opg_groth16::VerifyingKey::decode`]) for the
		/// model whose artifact hash is `model`, and holds the deposit for its prepared form. Its
		/// hash, blake2-256 of `key`, is what releases of that model reference.
		///
		/// Soundness rests on the owner's circuit-specific setup: whoever knows its trapdoor can
		/// prove anything under the key, and the chain cannot tell. Requesters trust the owner's
		/// setup as they trust the model. Keys that are forgeable in the open (δ = ±γ, ±g₂) are
		/// refused.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::register_verifying_key(
			public_inputs_of_len(key.len()).unwrap_or(MAX_PUBLIC_INPUTS as u32)
		))]
		pub fn register_verifying_key(
			origin: OriginFor<T>,
			key: BoundedVec<u8, ConstU32<MAX_KEY_LEN>>,
			model: H256,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			let hash = key_hash(&key);
			ensure!(!VerifyingKeys::<T>::contains_key(hash), Error::<T>::AlreadyRegistered);
			let decoded = opg_groth16::VerifyingKey::decode(&key).map_err(|e| match e {
				opg_groth16::Error::TooManyPublicInputs => Error::<T>::TooManyPublicInputs,
				opg_groth16::Error::DegenerateVerifyingKey => Error::<T>::DegenerateVerifyingKey,
				_ => Error::<T>::MalformedVerifyingKey,
			})?;
			let prepared: BoundedVec<u8, ConstU32<MAX_PREPARED_LEN>> = decoded
				.prepare()
				.to_bytes()
				.try_into()
				.map_err(|_| Error::<T>::MalformedVerifyingKey)?;
			let public_inputs = decoded.public_inputs() as u32;
			let deposit = Self::deposit_for(prepared.len() as u32);
			T::Currency::hold(&HoldReason::KeyDeposit.into(), &owner, deposit)?;
			VerifyingKeys::<T>::insert(
				hash,
				KeyRecord { owner: owner.clone(), deposit, model, public_inputs, prepared },
			);
			Self::deposit_event(Event::VerifyingKeyRegistered {
				hash,
				owner,
				model,
				public_inputs,
				deposit,
			});
			Ok(())
		}

		/// Removes the owner's key that no release references, releasing its deposit.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::unregister_verifying_key())]
		pub fn unregister_verifying_key(origin: OriginFor<T>, hash: H256) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let record = VerifyingKeys::<T>::get(hash).ok_or(Error::<T>::UnknownVerifyingKey)?;
			ensure!(record.owner == who, Error::<T>::NotOwner);
			ensure!(!T::KeyUsers::contains(&hash), Error::<T>::KeyInUse);
			T::Currency::release(
				&HoldReason::KeyDeposit.into(),
				&who,
				record.deposit,
				Precision::Exact,
			)?;
			VerifyingKeys::<T>::remove(hash);
			Self::deposit_event(Event::VerifyingKeyRemoved {
				hash,
				owner: who,
				deposit: record.deposit,
			});
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// Deposit of a stored key of `bytes` prepared bytes.
		pub fn deposit_for(bytes: u32) -> BalanceOf<T> {
			T::DepositBase::get()
				.saturating_add(T::DepositPerByte::get().saturating_mul(bytes.into()))
		}

		/// Checks `proof` against the key registered under `key` for `inputs` (32-byte
		/// big-endian field elements). Costs [`WeightInfo::verify_proof`] of the key's input
		/// count at most.
		pub fn verify(key: H256, proof: &[u8], inputs: &[[u8; 32]]) -> Result<(), ProofError> {
			let record = VerifyingKeys::<T>::get(key).ok_or(ProofError::UnknownKey)?;
			if inputs.len() != record.public_inputs as usize {
				return Err(ProofError::PublicInputCount);
			}
			let prepared = opg_groth16::PreparedVerifyingKey::from_trusted_bytes(&record.prepared)
				.map_err(|_| {
					// Only keys that decoded and prepared are stored.
					defensive!("stored verifying key does not decode");
					ProofError::UnknownKey
				})?;
			let proof =
				opg_groth16::Proof::decode(proof).map_err(|_| ProofError::MalformedProof)?;
			let inputs = opg_groth16::decode_public_inputs(&inputs.concat())
				.map_err(|_| ProofError::PublicInputOutOfRange)?;
			opg_groth16::verify(&prepared, &proof, &inputs).map_err(|e| match e {
				opg_groth16::Error::PublicInputCount { .. } => ProofError::PublicInputCount,
				_ => ProofError::InvalidProof,
			})
		}

		/// The number of public inputs of a registered key.
		pub fn public_inputs(key: H256) -> Option<u32> {
			VerifyingKeys::<T>::get(key).map(|r| r.public_inputs)
		}

		/// Deposits held equal what the records say, and every record is a usable key.
		#[cfg(any(feature = "try-runtime", test))]
		pub fn do_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
			use alloc::collections::btree_map::BTreeMap;
			use frame_support::traits::fungible::InspectHold;
			let mut held: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
			for (_, record) in VerifyingKeys::<T>::iter() {
				let e = held.entry(record.owner.clone()).or_default();
				*e = e.saturating_add(record.deposit);
				let prepared =
					opg_groth16::PreparedVerifyingKey::from_trusted_bytes(&record.prepared)
						.map_err(|_| "stored key does not decode")?;
				ensure!(
					prepared.public_inputs() as u32 == record.public_inputs,
					"input count mismatch"
				);
				ensure!(
					record.deposit == Self::deposit_for(record.prepared.len() as u32),
					"deposit mismatch"
				);
			}
			for (who, amount) in held {
				ensure!(
					T::Currency::balance_on_hold(&HoldReason::KeyDeposit.into(), &who) == amount,
					"held deposits differ from the records"
				);
			}
			Ok(())
		}
	}
}

/// Keys registered with exactly `N` public inputs, with their models: what model releases may
/// reference (an inference proof has [`opg_primitives::ZK_PUBLIC_INPUTS`]).
pub struct KeysWithInputs<T, N>(core::marker::PhantomData<(T, N)>);
impl<T: Config, N: Get<u32>> opg_primitives::VerifyingKeyRegistry for KeysWithInputs<T, N> {
	fn model_of(key: &H256) -> Option<H256> {
		VerifyingKeys::<T>::get(key)
			.filter(|record| record.public_inputs == N::get())
			.map(|record| record.model)
	}
}
