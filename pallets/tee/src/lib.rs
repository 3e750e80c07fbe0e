//! # TEE: trust policy for AWS Nitro enclaves and the keys they attest
//!
//! A worker answering in TEE mode runs its model inside an AWS Nitro enclave. The enclave makes
//! an ed25519 key, and the Nitro Security Module signs an attestation document that binds that
//! key to the enclave's measurements (PCR0, PCR1, PCR2: image, kernel, application). The chain
//! verifies the document itself, in the runtime, with nothing trusted off chain:
//!
//! 1. `request_challenge`: the worker gets a fresh 32-byte nonce, usable for
//!    [`Config::ChallengeLifetime`] blocks and once.
//! 2. The enclave asks the NSM for a document with `nonce` = the challenge and `public_key` = its
//!    ed25519 key (32 bytes). `user_data` is never taken for the key: it is whatever the enclave
//!    application puts there, possibly on a caller's request.
//! 3. `attest(document)`: COSE_Sign1/ES384, the payload, the X.509 chain from the leaf through the
//!    `cabundle` to the pinned AWS Nitro root (or, in a runtime built for development only, a root
//!    set in genesis as [`InsecureDevRoots`]) at the chain's time, freshness (≤ 5 min old, ≤ 1 min
//!    ahead), the PCRs against the allowlist, the nonce against the challenge ([`opg_nitro`]). The
//!    key is stored until the chain's first certificate expires or [`Config::MaxKeyLifetime`]
//!    passes, whichever is first; the worker re-attests before.
//!
//! Results in TEE mode carry the enclave key's signature over [`opg_primitives`]' `tee_message`;
//! [`Pallet::check_result_signature`] checks it. Revoking a measurement disables at once every
//! key attested under it; anyone may evict an expired or revoked key, or the key of an account
//! that is no longer a worker.
//!
//! **Development trust** ([`Config::InsecureDevTrust`]): the development CA's root and Nitro
//! debug mode's all-zero PCRs (whose enclaves the host can read) are accepted only by a runtime
//! built for development. Elsewhere a genesis that lists them does not build, `attest` ignores
//! stored development roots, and `add_measurement` refuses zero PCRs on every runtime.
//!
//! Intermediate CAs verified once are remembered until their `notAfter` ([`KnownCas`], at most
//! [`Config::MaxKnownCas`]), so a re-attestation checks 2 signatures instead of 5: `attest`
//! charges the worst case and refunds by the signatures actually checked.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(any(test, feature = "runtime-benchmarks"))]
pub mod fixture;
#[cfg(test)]
mod mock;
pub mod runtime_api;
#[cfg(test)]
mod tests;
pub mod weights;

use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use polkadot_sdk::{
	frame_support::{
		self,
		pallet_prelude::*,
		traits::{Contains, PalletError, UnixTime},
	},
	frame_system::{self, pallet_prelude::*},
	sp_core::{ed25519, H256},
	sp_io,
	sp_runtime::traits::Saturating,
};
use scale_info::TypeInfo;

pub use pallet::*;
pub use weights::WeightInfo;

/// Bytes of a PCR (SHA-384).
pub const PCR_LEN: usize = 48;
/// Largest attestation document.
pub const MAX_DOCUMENT_LEN: u32 = opg_nitro::MAX_DOCUMENT_LEN as u32;
/// Largest root certificate.
pub const MAX_ROOT_LEN: u32 = opg_nitro::MAX_CERTIFICATE_LEN as u32;
/// Whether any of a measurement's PCRs is all zeros, what Nitro reports for every PCR in
/// debug mode.
pub fn is_debug_measurement(pcrs: [&[u8]; 3]) -> bool {
	pcrs.iter().any(|pcr| pcr.iter().all(|b| *b == 0))
}

/// Most development roots a genesis may pin.
pub const MAX_DEV_ROOTS: u32 = 4;
/// Most ECDSA signatures one document costs: the bundle's CAs below the root, the leaf, the
/// document.
pub const MAX_SIGNATURES: u32 = opg_nitro::MAX_CABUNDLE as u32 + 1;

/// A PCR value.
pub type Pcr = [u8; PCR_LEN];
/// A measurement as genesis lists it: PCR0, PCR1, PCR2 (48 bytes each) and a label.
pub type GenesisMeasurement = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);
/// Id of a measurement: blake2-256 of PCR0 ‖ PCR1 ‖ PCR2.
pub type MeasurementId = H256;

/// An allowed enclave image.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo,
)]
#[scale_info(skip_type_params(MaxLabel))]
pub struct Measurement<MaxLabel: Get<u32>> {
	/// PCR0: the enclave image file.
	pub pcr0: Pcr,
	/// PCR1: the Linux kernel and bootstrap.
	pub pcr1: Pcr,
	/// PCR2: the application.
	pub pcr2: Pcr,
	/// What it is (e.g. `opg-worker 0.3.1 cuda`).
	pub label: BoundedVec<u8, MaxLabel>,
}

/// The id of the measurement with these PCRs.
pub fn measurement_id(pcr0: &[u8], pcr1: &[u8], pcr2: &[u8]) -> MeasurementId {
	H256(polkadot_sdk::sp_crypto_hashing::blake2_256(&[pcr0, pcr1, pcr2].concat()))
}

/// A challenge issued to a worker.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct Challenge<BlockNumber> {
	/// What the document's `nonce` must be.
	pub nonce: [u8; 32],
	/// Last block in which it is accepted.
	pub expires_at: BlockNumber,
}

/// An attested enclave key.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct EnclaveKey<BlockNumber> {
	/// The enclave's ed25519 public key.
	pub public: [u8; 32],
	/// The measurement it was attested under.
	pub measurement: MeasurementId,
	/// Chain time (ms since the Unix epoch) from which the key is no longer accepted.
	pub expires_at_ms: u64,
	/// Block of the attestation.
	pub attested_at: BlockNumber,
}

/// Why a document was refused: the verifier's own [`opg_nitro::Error`] (SCALE-encoded by its
/// `codec` feature: one byte, the variant's index), wrapped only because [`PalletError`], which a
/// pallet error's fields need, belongs to neither crate. In metadata it is a newtype of the
/// verifier's enum, with that enum's variant names and docs (`TooLarge` … `FromTheFuture`);
/// polkadot.js unwraps such newtypes and shows the variant.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub struct DocumentError(pub opg_nitro::Error);

impl PalletError for DocumentError {
	/// The variants of `opg_nitro::Error` have no fields: one byte, the index. `integrity_test`
	/// checks this against `MaxEncodedLen`.
	const MAX_ENCODED_SIZE: usize = 1;
}

impl From<opg_nitro::Error> for DocumentError {
	fn from(e: opg_nitro::Error) -> Self {
		Self(e)
	}
}

/// Why a result signature was refused by [`Pallet::check_result_signature`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub enum SignatureError {
	/// The worker has no attested key.
	NoEnclaveKey,
	/// The key's attestation has expired.
	KeyExpired,
	/// The key's measurement was revoked.
	MeasurementRevoked,
	/// Not a 64-byte ed25519 signature.
	Malformed,
	/// The signature does not verify.
	Invalid,
}

/// Why an enclave key was evicted.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub enum EvictionReason {
	/// Its attestation expired.
	Expired,
	/// Its measurement was revoked.
	Revoked,
	/// The account is no longer a worker.
	NotAWorker,
}

/// Benchmark set-up the pallet cannot do itself.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId> {
	/// Makes `who` a worker (what [`Config::Workers`] contains).
	fn make_worker(who: &AccountId);
	/// Sets the chain's time ([`Config::UnixTime`]) to `ms`.
	fn set_time(ms: u64);
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;

	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// Who manages the allowlist of measurements.
		type PolicyOrigin: EnsureOrigin<Self::RuntimeOrigin>;
		/// Accounts that may attest (registered workers).
		type Workers: Contains<Self::AccountId>;
		/// The chain's time, which certificates and freshness are checked against.
		type UnixTime: UnixTime;
		/// Blocks a challenge stays usable.
		#[pallet::constant]
		type ChallengeLifetime: Get<BlockNumberFor<Self>>;
		/// Longest an attested key is accepted, in ms (the certificates may end it sooner).
		#[pallet::constant]
		type MaxKeyLifetime: Get<u64>;
		/// Most allowed measurements.
		#[pallet::constant]
		type MaxMeasurements: Get<u32>;
		/// Longest measurement label.
		#[pallet::constant]
		type MaxLabelLen: Get<u32>;
		/// Most remembered intermediate CAs.
		#[pallet::constant]
		type MaxKnownCas: Get<u32>;
		/// Whether this runtime is a development build, which may trust [`InsecureDevRoots`]
		/// and Nitro debug mode's zero PCRs from genesis. `false` for any runtime a real
		/// network runs: forged documents would attest otherwise.
		#[pallet::constant]
		type InsecureDevTrust: Get<bool>;
		/// Weights of the calls and of the result check.
		type WeightInfo: WeightInfo;
		/// Benchmark set-up.
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId>;
	}

	/// Allowed enclave measurements.
	#[pallet::storage]
	pub type Measurements<T: Config> =
		StorageMap<_, Identity, MeasurementId, Measurement<T::MaxLabelLen>>;

	/// Number of [`Measurements`].
	#[pallet::storage]
	pub type MeasurementCount<T> = StorageValue<_, u32, ValueQuery>;

	/// **Insecure** roots trusted besides AWS's, set in the genesis of development and test
	/// chains only (e.g. [`opg_nitro::dev::DevCa`]'s): anyone can forge documents under them.
	#[pallet::storage]
	pub type InsecureDevRoots<T> = StorageValue<
		_,
		BoundedVec<BoundedVec<u8, ConstU32<MAX_ROOT_LEN>>, ConstU32<MAX_DEV_ROOTS>>,
		ValueQuery,
	>;

	/// Open challenges by worker.
	#[pallet::storage]
	pub type Challenges<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, Challenge<BlockNumberFor<T>>>;

	/// Attested enclave keys by worker.
	#[pallet::storage]
	pub type EnclaveKeys<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, EnclaveKey<BlockNumberFor<T>>>;

	/// Intermediate CAs verified under a pinned root: SHA-256 of the DER → notAfter (seconds).
	#[pallet::storage]
	pub type KnownCas<T> = StorageMap<_, Identity, [u8; 32], u64>;

	/// Number of [`KnownCas`].
	#[pallet::storage]
	pub type KnownCaCount<T> = StorageValue<_, u32, ValueQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A measurement was allowed.
		MeasurementAdded { id: MeasurementId, label: BoundedVec<u8, T::MaxLabelLen> },
		/// A measurement was revoked; keys attested under it are no longer accepted.
		MeasurementRevoked { id: MeasurementId },
		/// A challenge was issued: the enclave's document must carry `nonce`.
		ChallengeIssued { worker: T::AccountId, nonce: [u8; 32], expires_at: BlockNumberFor<T> },
		/// An enclave key was attested.
		EnclaveAttested {
			worker: T::AccountId,
			key: [u8; 32],
			measurement: MeasurementId,
			expires_at_ms: u64,
		},
		/// An enclave key was removed.
		EnclaveKeyEvicted { worker: T::AccountId, reason: EvictionReason },
		/// A remembered CA expired and was forgotten.
		CaForgotten { fingerprint: [u8; 32] },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// The measurement is allowed already.
		MeasurementExists,
		/// The allowlist is full.
		TooManyMeasurements,
		/// No such measurement.
		UnknownMeasurement,
		/// The caller is not a registered worker.
		NotAWorker,
		/// No challenge was issued to the caller (or it was used).
		NoChallenge,
		/// The challenge expired: request a new one.
		ChallengeExpired,
		/// The document does not verify.
		Document(DocumentError),
		/// The document's nonce is not the caller's challenge.
		NonceMismatch,
		/// The document lacks PCR0, PCR1 or PCR2, or they are not 48 bytes.
		MissingPcrs,
		/// The enclave's measurement is not allowed.
		MeasurementNotAllowed,
		/// The document's `public_key` is not a 32-byte ed25519 key.
		BadEnclaveKey,
		/// The attestation would expire at once.
		AttestationExpired,
		/// The worker has no enclave key.
		NoEnclaveKey,
		/// The key is valid, its measurement allowed and its owner a worker.
		KeyStillValid,
		/// The CA is not remembered.
		UnknownCa,
		/// The CA has not expired.
		CaStillValid,
		/// A PCR is all zeros: Nitro debug mode, whose enclaves the host can read. Only a
		/// development runtime's genesis may allow it.
		DebugModeMeasurement,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			assert!(!T::ChallengeLifetime::get().is_zero(), "a challenge must live a block");
			assert!(T::MaxKeyLifetime::get() > 0, "keys must live");
			assert_eq!(
				DocumentError::max_encoded_len(),
				<DocumentError as PalletError>::MAX_ENCODED_SIZE,
				"a document error fits its declared size"
			);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(
			_: BlockNumberFor<T>,
		) -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	/// Trust policy of a chain from genesis.
	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Allowed measurements: (PCR0, PCR1, PCR2 of 48 bytes each, label).
		pub measurements: Vec<GenesisMeasurement>,
		/// **Insecure** extra roots (DER): development and test chains only.
		pub insecure_dev_roots: Vec<Vec<u8>>,
		#[serde(skip)]
		pub _config: core::marker::PhantomData<T>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			let dev_trust = T::InsecureDevTrust::get();
			assert!(
				dev_trust || self.insecure_dev_roots.is_empty(),
				"insecure development roots in the genesis of a runtime not built for development: \
				 documents forged with them would attest"
			);
			for (pcr0, pcr1, pcr2, label) in &self.measurements {
				let pcr = |p: &Vec<u8>| -> Pcr {
					p.as_slice().try_into().expect("genesis PCRs are 48 bytes")
				};
				assert!(
					dev_trust || !is_debug_measurement([pcr0, pcr1, pcr2].map(Vec::as_slice)),
					"Nitro debug mode's zero PCRs in the genesis of a runtime not built for \
					 development: the host can read such enclaves"
				);
				Pallet::<T>::do_add_measurement(
					pcr(pcr0),
					pcr(pcr1),
					pcr(pcr2),
					label.clone().try_into().expect("genesis label within MaxLabelLen"),
				)
				.expect("genesis measurements are distinct and within MaxMeasurements");
			}
			let roots: Vec<BoundedVec<u8, ConstU32<MAX_ROOT_LEN>>> = self
				.insecure_dev_roots
				.iter()
				.map(|r| r.clone().try_into().expect("genesis root within MAX_ROOT_LEN"))
				.collect();
			InsecureDevRoots::<T>::put(
				BoundedVec::try_from(roots).expect("at most MAX_DEV_ROOTS genesis roots"),
			);
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Allows enclaves with these PCRs.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::add_measurement())]
		pub fn add_measurement(
			origin: OriginFor<T>,
			pcr0: Pcr,
			pcr1: Pcr,
			pcr2: Pcr,
			label: BoundedVec<u8, T::MaxLabelLen>,
		) -> DispatchResult {
			T::PolicyOrigin::ensure_origin(origin)?;
			ensure!(
				!is_debug_measurement([&pcr0[..], &pcr1[..], &pcr2[..]]),
				Error::<T>::DebugModeMeasurement
			);
			Self::do_add_measurement(pcr0, pcr1, pcr2, label)
		}

		/// Revokes a measurement: keys attested under it are refused from now on.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::revoke_measurement())]
		pub fn revoke_measurement(origin: OriginFor<T>, id: MeasurementId) -> DispatchResult {
			T::PolicyOrigin::ensure_origin(origin)?;
			ensure!(Measurements::<T>::take(id).is_some(), Error::<T>::UnknownMeasurement);
			MeasurementCount::<T>::mutate(|c| *c = c.saturating_sub(1));
			Self::deposit_event(Event::MeasurementRevoked { id });
			Ok(())
		}

		/// Issues the caller (a worker) a fresh challenge, replacing any open one.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::request_challenge())]
		pub fn request_challenge(origin: OriginFor<T>) -> DispatchResult {
			let worker = ensure_signed(origin)?;
			ensure!(T::Workers::contains(&worker), Error::<T>::NotAWorker);
			let now = frame_system::Pallet::<T>::block_number();
			// Unknown before this block: the parent hash, the worker and its position in the block.
			let nonce = polkadot_sdk::sp_crypto_hashing::blake2_256(
				&(
					b"opg/tee/challenge",
					frame_system::Pallet::<T>::parent_hash(),
					&worker,
					now,
					frame_system::Pallet::<T>::extrinsic_index(),
				)
					.encode(),
			);
			let expires_at = now.saturating_add(T::ChallengeLifetime::get());
			Challenges::<T>::insert(&worker, Challenge { nonce, expires_at });
			Self::deposit_event(Event::ChallengeIssued { worker, nonce, expires_at });
			Ok(())
		}

		/// Verifies the enclave's attestation `document` and stores its key for the caller. The
		/// weight is that of the longest chain; what is not used (CAs remembered, shorter
		/// bundle) is refunded.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::attest(MAX_SIGNATURES))]
		pub fn attest(
			origin: OriginFor<T>,
			document: BoundedVec<u8, ConstU32<MAX_DOCUMENT_LEN>>,
		) -> DispatchResultWithPostInfo {
			let worker = ensure_signed(origin)?;
			ensure!(T::Workers::contains(&worker), Error::<T>::NotAWorker);
			let challenge = Challenges::<T>::get(&worker).ok_or(Error::<T>::NoChallenge)?;
			let block = frame_system::Pallet::<T>::block_number();
			ensure!(block <= challenge.expires_at, Error::<T>::ChallengeExpired);
			let now_ms = Self::now_ms();
			let dev_roots = InsecureDevRoots::<T>::get();
			let mut roots: Vec<&[u8]> = alloc::vec![opg_nitro::AWS_NITRO_ROOT_G1];
			if T::InsecureDevTrust::get() {
				roots.extend(dev_roots.iter().map(|r| &r[..]));
			}
			let now_s = now_ms / 1000;
			let known = |fingerprint: &[u8; 32]| {
				KnownCas::<T>::get(fingerprint).is_some_and(|not_after| not_after >= now_s)
			};
			let attestation =
				opg_nitro::verify_cached(&document, &roots, now_ms, Default::default(), &known)
					.map_err(|e| Error::<T>::Document(e.into()))?;

			ensure!(attestation.nonce == Some(&challenge.nonce[..]), Error::<T>::NonceMismatch);
			let pcr = |i| {
				attestation.pcr(i).filter(|p| p.len() == PCR_LEN).ok_or(Error::<T>::MissingPcrs)
			};
			let measurement = measurement_id(pcr(0)?, pcr(1)?, pcr(2)?);
			ensure!(
				Measurements::<T>::contains_key(measurement),
				Error::<T>::MeasurementNotAllowed
			);
			let key: [u8; 32] = attestation
				.public_key
				.and_then(|k| k.try_into().ok())
				.ok_or(Error::<T>::BadEnclaveKey)?;
			let expires_at_ms = attestation
				.valid_until
				.saturating_mul(1000)
				.min(attestation.timestamp_ms.saturating_add(T::MaxKeyLifetime::get()));
			ensure!(expires_at_ms > now_ms, Error::<T>::AttestationExpired);

			for (fingerprint, not_after) in &attestation.verified_cas {
				if KnownCaCount::<T>::get() >= T::MaxKnownCas::get() {
					break;
				}
				if !KnownCas::<T>::contains_key(fingerprint) {
					KnownCas::<T>::insert(fingerprint, not_after);
					KnownCaCount::<T>::mutate(|c| *c = c.saturating_add(1));
				}
			}
			Challenges::<T>::remove(&worker);
			EnclaveKeys::<T>::insert(
				&worker,
				EnclaveKey { public: key, measurement, expires_at_ms, attested_at: block },
			);
			Self::deposit_event(Event::EnclaveAttested { worker, key, measurement, expires_at_ms });
			Ok(Some(T::WeightInfo::attest(attestation.signatures.min(MAX_SIGNATURES))).into())
		}

		/// Removes `worker`'s enclave key if it expired, its measurement was revoked or the
		/// account is no longer a worker. Anyone may call.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::evict())]
		pub fn evict(origin: OriginFor<T>, worker: T::AccountId) -> DispatchResult {
			ensure_signed(origin)?;
			let key = EnclaveKeys::<T>::get(&worker).ok_or(Error::<T>::NoEnclaveKey)?;
			let reason = if !Measurements::<T>::contains_key(key.measurement) {
				EvictionReason::Revoked
			} else if Self::now_ms() >= key.expires_at_ms {
				EvictionReason::Expired
			} else if !T::Workers::contains(&worker) {
				EvictionReason::NotAWorker
			} else {
				return Err(Error::<T>::KeyStillValid.into());
			};
			EnclaveKeys::<T>::remove(&worker);
			Self::deposit_event(Event::EnclaveKeyEvicted { worker, reason });
			Ok(())
		}

		/// Forgets a remembered CA after its `notAfter`, freeing its place. Anyone may call.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::forget_ca())]
		pub fn forget_ca(origin: OriginFor<T>, fingerprint: [u8; 32]) -> DispatchResult {
			ensure_signed(origin)?;
			let not_after = KnownCas::<T>::get(fingerprint).ok_or(Error::<T>::UnknownCa)?;
			ensure!(T::UnixTime::now().as_secs() > not_after, Error::<T>::CaStillValid);
			KnownCas::<T>::remove(fingerprint);
			KnownCaCount::<T>::mutate(|c| *c = c.saturating_sub(1));
			Self::deposit_event(Event::CaForgotten { fingerprint });
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// The chain's time in ms since the Unix epoch.
		fn now_ms() -> u64 {
			T::UnixTime::now().as_millis() as u64
		}

		/// Whether `worker` has an enclave key that signs results the chain accepts now:
		/// unexpired, under a measurement still allowed.
		pub fn has_usable_key(worker: &T::AccountId) -> bool {
			Self::key_usable(EnclaveKeys::<T>::get(worker).as_ref(), Self::now_ms())
		}

		fn key_usable(key: Option<&EnclaveKey<BlockNumberFor<T>>>, now_ms: u64) -> bool {
			key.is_some_and(|k| {
				now_ms < k.expires_at_ms && Measurements::<T>::contains_key(k.measurement)
			})
		}

		/// What [`runtime_api::TeeApi::worker_status`] answers.
		pub fn worker_status(worker: &T::AccountId) -> runtime_api::WorkerTee<BlockNumberFor<T>> {
			let now_ms = Self::now_ms();
			let key = EnclaveKeys::<T>::get(worker);
			let key_usable = Self::key_usable(key.as_ref(), now_ms);
			runtime_api::WorkerTee {
				now_ms,
				key,
				key_usable,
				challenge: Challenges::<T>::get(worker),
				is_worker: T::Workers::contains(worker),
			}
		}

		pub(crate) fn do_add_measurement(
			pcr0: Pcr,
			pcr1: Pcr,
			pcr2: Pcr,
			label: BoundedVec<u8, T::MaxLabelLen>,
		) -> DispatchResult {
			let id = measurement_id(&pcr0, &pcr1, &pcr2);
			ensure!(!Measurements::<T>::contains_key(id), Error::<T>::MeasurementExists);
			let count = MeasurementCount::<T>::get();
			ensure!(count < T::MaxMeasurements::get(), Error::<T>::TooManyMeasurements);
			Measurements::<T>::insert(id, Measurement { pcr0, pcr1, pcr2, label: label.clone() });
			MeasurementCount::<T>::put(count + 1);
			Self::deposit_event(Event::MeasurementAdded { id, label });
			Ok(())
		}

		/// Checks `signature` by `worker`'s enclave key over `message` (the `tee_message` of a
		/// result, or a direct-path receipt's signing payload): the key must be attested,
		/// unexpired and under an allowed measurement. Costs
		/// [`WeightInfo::check_result_signature`] (for a message of at most a few hundred bytes).
		pub fn check_result_signature(
			worker: &T::AccountId,
			message: &[u8],
			signature: &[u8],
		) -> Result<(), SignatureError> {
			let key = EnclaveKeys::<T>::get(worker).ok_or(SignatureError::NoEnclaveKey)?;
			ensure!(
				Measurements::<T>::contains_key(key.measurement),
				SignatureError::MeasurementRevoked
			);
			ensure!(Self::now_ms() < key.expires_at_ms, SignatureError::KeyExpired);
			let signature: [u8; 64] =
				signature.try_into().map_err(|_| SignatureError::Malformed)?;
			let valid = sp_io::crypto::ed25519_verify(
				&ed25519::Signature::from_raw(signature),
				message,
				&ed25519::Public::from_raw(key.public),
			);
			ensure!(valid, SignatureError::Invalid);
			Ok(())
		}

		/// Counters match their maps.
		#[cfg(any(feature = "try-runtime", test))]
		pub fn do_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
			ensure!(
				Measurements::<T>::iter_keys().count() as u32 == MeasurementCount::<T>::get(),
				"measurement count differs"
			);
			ensure!(
				MeasurementCount::<T>::get() <= T::MaxMeasurements::get(),
				"too many measurements"
			);
			for (id, m) in Measurements::<T>::iter() {
				ensure!(
					id == measurement_id(&m.pcr0, &m.pcr1, &m.pcr2),
					"measurement under a wrong id"
				);
			}
			ensure!(
				KnownCas::<T>::iter_keys().count() as u32 == KnownCaCount::<T>::get(),
				"CA count differs"
			);
			ensure!(KnownCaCount::<T>::get() <= T::MaxKnownCas::get(), "too many CAs");
			if !T::InsecureDevTrust::get() {
				ensure!(InsecureDevRoots::<T>::get().is_empty(), "development roots stored");
				ensure!(
					Measurements::<T>::iter_values().all(|m| !is_debug_measurement([
						&m.pcr0[..],
						&m.pcr1[..],
						&m.pcr2[..]
					])),
					"debug-mode measurement allowed"
				);
			}
			Ok(())
		}
	}
}
