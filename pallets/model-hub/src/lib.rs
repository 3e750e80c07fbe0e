//! # Model hub
//!
//! Publishers create model **repositories** and publish immutable **releases** in them: a
//! version, the blake2-256 hash and size of the model file, where to download it, its input and
//! output tensors (ONNX) or its language-model spec (GGUF: chat jobs, priced per token), the
//! verification modes it supports, an optional ZK verifying-key hash and a royalty on every
//! job.
//!
//! Storage is paid for: a deposit proportional to the stored bytes is held (fungible holds,
//! [`HoldReason`]) while a repository or release is live, and released when it is removed or
//! retired. Jobs reference releases by id; a retired release takes no new jobs, finishes its
//! open ones, and its record is removed once the last one ends.
//!
//! The inference market uses the hub through [`ModelRegistry`].
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;

use alloc::boxed::Box;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use opg_primitives::{
	chat::{check_chat_request, check_chat_response, ChatError, LlmSpec, TokenBudget, TokenUsage},
	check_tensors, ModeSet, ModelFormat, ReleaseId, RepositoryId, TensorError, TensorSpec,
	VerificationMode,
};
use polkadot_sdk::{
	frame_support::{
		self,
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, MutateHold},
			tokens::Precision,
			Contains,
		},
	},
	frame_system::{self, pallet_prelude::*},
	sp_core::H256,
	sp_runtime::{traits::Saturating, Permill},
};
use scale_info::TypeInfo;

pub use pallet::*;
pub use weights::WeightInfo;

/// Balance type of the currency.
pub type BalanceOf<T> =
	<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// A tensor spec with the pallet's bounds.
pub type TensorSpecOf<T> = TensorSpec<<T as Config>::MaxNameLen, <T as Config>::MaxRank>;
/// Inputs or outputs of a release.
pub type TensorSpecsOf<T> = BoundedVec<TensorSpecOf<T>, <T as Config>::MaxTensors>;
/// A language-model spec with the pallet's bounds.
pub type LlmSpecOf<T> = LlmSpec<<T as Config>::MaxNameLen>;

/// A model repository.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct Repository<T: Config> {
	/// Who publishes releases into it.
	pub owner: T::AccountId,
	/// Name (UTF-8).
	pub name: BoundedVec<u8, T::MaxNameLen>,
	/// URI of a description (README, model card).
	pub description_uri: BoundedVec<u8, T::MaxUriLen>,
	/// Deposit held from the owner for this record.
	pub deposit: BalanceOf<T>,
	/// Releases of the repository that still have a record.
	pub releases: u32,
}

/// Whether a release takes new jobs.
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
pub enum ReleaseStatus {
	/// Takes new jobs.
	Active,
	/// Takes no new jobs; the record goes once its open jobs end.
	Retired,
}

/// An immutable model release: what its publisher gave and the hub's bookkeeping.
///
/// `params` stands where its ten fields stood when they were `Release`'s own, so the SCALE
/// encoding of a stored release is those fields in a row, as before (SCALE has no struct
/// framing); only the metadata's shape nests them (polkadot.js: `release.params.artifact`).
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct Release<T: Config> {
	/// Repository it belongs to.
	pub repository: RepositoryId,
	/// What was published: version, model file, tensors, modes, verifying key, royalty.
	pub params: ReleaseParams<T>,
	/// Deposit held from the publisher for this record (zero once retired).
	pub deposit: BalanceOf<T>,
	/// Active or retired.
	pub status: ReleaseStatus,
	/// Jobs that reference this release and have not ended.
	pub open_jobs: u32,
}

/// What a release publishes: the parameters of `publish_release`, stored as they are in
/// [`Release::params`].
#[derive(
	CloneNoBound,
	PartialEqNoBound,
	EqNoBound,
	DebugNoBound,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	serde::Serialize,
	serde::Deserialize,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
#[serde(bound = "")]
pub struct ReleaseParams<T: Config> {
	/// Version string (non-empty), unique within the repository while the release has a record.
	pub version: BoundedVec<u8, T::MaxVersionLen>,
	/// blake2-256 of the model file.
	pub artifact: H256,
	/// Size of the model file in bytes (non-zero).
	pub artifact_size: u64,
	/// File format.
	pub format: ModelFormat,
	/// Where workers download the file (file://, http(s)://, IPFS gateway URL); non-empty.
	pub source_uri: BoundedVec<u8, T::MaxUriLen>,
	/// Input tensors (ONNX: at least one; GGUF: none), in the order a job's input lists them.
	pub inputs: TensorSpecsOf<T>,
	/// Output tensors (ONNX: at least one; GGUF: none), in the order a result lists them.
	pub outputs: TensorSpecsOf<T>,
	/// Verification modes jobs may ask for (at least one).
	pub modes: ModeSet,
	/// Hash of the registered Groth16 verifying key; required exactly when `modes` has ZK.
	pub zk_verifying_key: Option<H256>,
	/// Share of each job's price paid to the repository owner, at most `MaxRoyalty`.
	pub royalty: Permill,
	/// The language model's spec: present exactly when `format` is GGUF. Its jobs take a
	/// SCALE `ChatRequest` and answer a `ChatResponse` (`opg_primitives::chat`).
	#[serde(default)]
	pub llm: Option<LlmSpecOf<T>>,
}

/// What the market needs to know of a release.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReleaseInfo<AccountId> {
	/// Repository owner, who receives royalties.
	pub publisher: AccountId,
	/// blake2-256 of the model file.
	pub artifact: H256,
	/// Supported modes.
	pub modes: ModeSet,
	/// Royalty share.
	pub royalty: Permill,
	/// ZK verifying-key hash.
	pub zk_verifying_key: Option<H256>,
	/// Whether it takes new jobs.
	pub active: bool,
	/// Whether its jobs are chats (a GGUF release), priced per token.
	pub llm: bool,
}

/// Why a job input does not fit a release.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InputError {
	/// No such release.
	UnknownRelease,
	/// The payload does not match the IO spec.
	Tensor(TensorError),
	/// The payload is not a valid chat request (or response) for the release.
	Chat(ChatError),
}

/// The hub as the inference market sees it.
pub trait ModelRegistry<AccountId> {
	/// A release's market-relevant facts.
	fn release_info(release: ReleaseId) -> Option<ReleaseInfo<AccountId>>;
	/// Checks a job input against the release: canonical tensors against its input spec, or
	/// a chat request against its LLM spec, whose token budget is returned.
	fn check_input(release: ReleaseId, input: &[u8]) -> Result<Option<TokenBudget>, InputError>;
	/// Checks a result against the release: canonical tensors against its output spec, or a
	/// chat response, whose token counts are returned.
	fn check_output(release: ReleaseId, output: &[u8]) -> Result<Option<TokenUsage>, InputError>;
	/// A job now references the release (fails if it is unknown or retired).
	fn job_opened(release: ReleaseId) -> DispatchResult;
	/// A job that referenced the release has ended.
	fn job_closed(release: ReleaseId);
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;

	/// In-code storage version.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	/// Why the hub holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// Storage deposit of a repository or release.
		#[codec(index = 0)]
		StorageDeposit,
	}

	#[pallet::config]
	pub trait Config: polkadot_sdk::frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// Currency in which deposits are held.
		type Currency: MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;
		/// The runtime's hold reasons.
		type RuntimeHoldReason: From<HoldReason>;
		/// Deposit per stored record.
		#[pallet::constant]
		type DepositBase: Get<BalanceOf<Self>>;
		/// Deposit per stored byte.
		#[pallet::constant]
		type DepositPerByte: Get<BalanceOf<Self>>;
		/// Registered ZK verifying keys (by hash), with the model each was made for.
		type VerifyingKeys: opg_primitives::VerifyingKeyRegistry;
		/// Longest repository name, tensor name.
		#[pallet::constant]
		type MaxNameLen: Get<u32>;
		/// Longest URI.
		#[pallet::constant]
		type MaxUriLen: Get<u32>;
		/// Longest version string.
		#[pallet::constant]
		type MaxVersionLen: Get<u32>;
		/// Most inputs, and most outputs, of a model.
		#[pallet::constant]
		type MaxTensors: Get<u32>;
		/// Highest tensor rank.
		#[pallet::constant]
		type MaxRank: Get<u32>;
		/// Most releases with a record per repository.
		#[pallet::constant]
		type MaxReleasesPerRepository: Get<u32>;
		/// Highest royalty a release may set.
		#[pallet::constant]
		type MaxRoyalty: Get<Permill>;
		/// Longest context an LLM release may declare, in tokens.
		#[pallet::constant]
		type MaxContextLength: Get<u32>;
		/// Weights of the calls.
		type WeightInfo: WeightInfo;
	}

	/// Next repository id.
	#[pallet::storage]
	pub type NextRepositoryId<T> = StorageValue<_, RepositoryId, ValueQuery>;

	/// Next release id.
	#[pallet::storage]
	pub type NextReleaseId<T> = StorageValue<_, ReleaseId, ValueQuery>;

	/// Repositories by id.
	#[pallet::storage]
	pub type Repositories<T: Config> = StorageMap<_, Blake2_128Concat, RepositoryId, Repository<T>>;

	/// Releases by id.
	#[pallet::storage]
	pub type Releases<T: Config> = StorageMap<_, Blake2_128Concat, ReleaseId, Release<T>>;

	/// Number of release records referencing each ZK verifying key (such keys cannot be
	/// removed from the key registry).
	#[pallet::storage]
	pub type VerifyingKeyUsers<T> = StorageMap<_, Identity, H256, u32, OptionQuery>;

	/// Release id of a version within a repository.
	#[pallet::storage]
	pub type ReleaseByVersion<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		RepositoryId,
		Blake2_128Concat,
		BoundedVec<u8, T::MaxVersionLen>,
		ReleaseId,
	>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A repository was created.
		RepositoryCreated { repository: RepositoryId, owner: T::AccountId, deposit: BalanceOf<T> },
		/// A repository's description changed.
		RepositoryUpdated { repository: RepositoryId, deposit: BalanceOf<T> },
		/// A repository was removed and its deposit released.
		RepositoryRemoved { repository: RepositoryId },
		/// A release was published.
		ReleasePublished {
			release: ReleaseId,
			repository: RepositoryId,
			artifact: H256,
			deposit: BalanceOf<T>,
		},
		/// A release was retired: no new jobs, deposit released.
		ReleaseRetired { release: ReleaseId, open_jobs: u32 },
		/// The record of a retired release was removed (no open jobs left).
		ReleaseRemoved { release: ReleaseId },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No repository with this id.
		UnknownRepository,
		/// No release with this id.
		UnknownRelease,
		/// The caller does not own the repository.
		NotOwner,
		/// The repository name is empty.
		EmptyName,
		/// The repository still has releases with a record.
		RepositoryNotEmpty,
		/// The repository has `MaxReleasesPerRepository` releases with a record.
		TooManyReleases,
		/// The repository already has a release with this version.
		VersionTaken,
		/// The version string is empty.
		EmptyVersion,
		/// The model file size is zero.
		EmptyArtifact,
		/// The source URI is empty.
		EmptySourceUri,
		/// A release needs at least one input and one output.
		NoTensors,
		/// The mode set is empty or has unknown bits.
		InvalidModes,
		/// ZK mode needs a verifying-key hash, and a key hash needs ZK mode.
		VerifyingKeyMismatch,
		/// The verifying key is not registered.
		UnknownVerifyingKey,
		/// The royalty exceeds `MaxRoyalty`.
		RoyaltyTooHigh,
		/// The release is retired.
		ReleaseRetired,
		/// An id counter is exhausted.
		IdOverflow,
		/// Too many open jobs on a release.
		TooManyOpenJobs,
		/// The verifying key was registered for another model (artifact hash).
		VerifyingKeyOfAnotherModel,
		/// An ONNX release declares tensors and no LLM spec; a GGUF release an LLM spec and
		/// no tensors.
		FormatMismatch,
		/// The LLM spec has an empty architecture, a zero context length or vocabulary, or a
		/// context length above `MaxContextLength`.
		InvalidLlmSpec,
		/// ZK mode is for small tensor models: a GGUF release cannot offer it.
		ZkModeNotForLlm,
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

	/// A repository in the genesis config: `(owner, name, description URI, releases)`.
	pub type GenesisRepository<T> = (
		<T as frame_system::Config>::AccountId,
		alloc::vec::Vec<u8>,
		alloc::vec::Vec<u8>,
		alloc::vec::Vec<ReleaseParams<T>>,
	);

	/// Repositories and releases that exist from genesis (e.g. a demo model on dev chains).
	/// They are created as by the calls, deposits held from their owners.
	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Ids are assigned in order from 0.
		pub repositories: alloc::vec::Vec<GenesisRepository<T>>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			for (owner, name, uri, releases) in &self.repositories {
				let origin = || frame_system::RawOrigin::Signed(owner.clone()).into();
				let repository = NextRepositoryId::<T>::get();
				Pallet::<T>::create_repository(
					origin(),
					name.clone().try_into().expect("genesis repository name exceeds MaxNameLen"),
					uri.clone().try_into().expect("genesis description URI exceeds MaxUriLen"),
				)
				.expect("genesis repository is valid and its owner can pay the deposit");
				for release in releases {
					Pallet::<T>::publish_release(origin(), repository, Box::new(release.clone()))
						.expect("genesis release is valid and its owner can pay the deposit");
				}
			}
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Creates a repository owned by the caller. Holds `DepositBase + DepositPerByte *
		/// bytes` (name and URI).
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::create_repository())]
		pub fn create_repository(
			origin: OriginFor<T>,
			name: BoundedVec<u8, T::MaxNameLen>,
			description_uri: BoundedVec<u8, T::MaxUriLen>,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			ensure!(!name.is_empty(), Error::<T>::EmptyName);
			let id = NextRepositoryId::<T>::get();
			let next = id.checked_add(1).ok_or(Error::<T>::IdOverflow)?;
			let mut repo = Repository::<T> {
				owner: owner.clone(),
				name,
				description_uri,
				deposit: Default::default(),
				releases: 0,
			};
			repo.deposit = Self::deposit_for(&repo);
			T::Currency::hold(&HoldReason::StorageDeposit.into(), &owner, repo.deposit)?;
			let deposit = repo.deposit;
			Repositories::<T>::insert(id, repo);
			NextRepositoryId::<T>::put(next);
			Self::deposit_event(Event::RepositoryCreated { repository: id, owner, deposit });
			Ok(())
		}

		/// Changes a repository's description URI; the deposit follows the new size.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::update_repository())]
		pub fn update_repository(
			origin: OriginFor<T>,
			repository: RepositoryId,
			description_uri: BoundedVec<u8, T::MaxUriLen>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Repositories::<T>::try_mutate(repository, |maybe| -> DispatchResult {
				let repo = maybe.as_mut().ok_or(Error::<T>::UnknownRepository)?;
				ensure!(repo.owner == who, Error::<T>::NotOwner);
				repo.description_uri = description_uri;
				let new = Self::deposit_for(repo);
				Self::adjust_hold(&who, repo.deposit, new)?;
				repo.deposit = new;
				Self::deposit_event(Event::RepositoryUpdated { repository, deposit: new });
				Ok(())
			})
		}

		/// Removes an empty repository and releases its deposit.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::remove_repository())]
		pub fn remove_repository(origin: OriginFor<T>, repository: RepositoryId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let repo = Repositories::<T>::get(repository).ok_or(Error::<T>::UnknownRepository)?;
			ensure!(repo.owner == who, Error::<T>::NotOwner);
			ensure!(repo.releases == 0, Error::<T>::RepositoryNotEmpty);
			T::Currency::release(
				&HoldReason::StorageDeposit.into(),
				&who,
				repo.deposit,
				Precision::Exact,
			)?;
			Repositories::<T>::remove(repository);
			Self::deposit_event(Event::RepositoryRemoved { repository });
			Ok(())
		}

		/// Publishes an immutable release into the caller's repository. Holds a deposit for
		/// its encoded size.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::publish_release())]
		pub fn publish_release(
			origin: OriginFor<T>,
			repository: RepositoryId,
			params: Box<ReleaseParams<T>>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut repo =
				Repositories::<T>::get(repository).ok_or(Error::<T>::UnknownRepository)?;
			ensure!(repo.owner == who, Error::<T>::NotOwner);
			ensure!(
				repo.releases < T::MaxReleasesPerRepository::get(),
				Error::<T>::TooManyReleases
			);
			let p = *params;
			ensure!(!p.version.is_empty(), Error::<T>::EmptyVersion);
			ensure!(p.artifact_size > 0, Error::<T>::EmptyArtifact);
			ensure!(!p.source_uri.is_empty(), Error::<T>::EmptySourceUri);
			match (p.format, &p.llm) {
				(ModelFormat::Onnx, None) =>
					ensure!(!p.inputs.is_empty() && !p.outputs.is_empty(), Error::<T>::NoTensors),
				(ModelFormat::Gguf, Some(spec)) => {
					ensure!(
						p.inputs.is_empty() && p.outputs.is_empty(),
						Error::<T>::FormatMismatch
					);
					ensure!(
						!spec.architecture.is_empty() &&
							spec.vocab_size > 0 && spec.context_length > 0 &&
							spec.context_length <= T::MaxContextLength::get(),
						Error::<T>::InvalidLlmSpec
					);
					ensure!(!p.modes.contains(VerificationMode::Zk), Error::<T>::ZkModeNotForLlm);
				},
				_ => return Err(Error::<T>::FormatMismatch.into()),
			}
			ensure!(p.modes.is_valid(), Error::<T>::InvalidModes);
			ensure!(
				p.modes.contains(VerificationMode::Zk) == p.zk_verifying_key.is_some(),
				Error::<T>::VerifyingKeyMismatch
			);
			if let Some(vk) = p.zk_verifying_key {
				let model =
					<T::VerifyingKeys as opg_primitives::VerifyingKeyRegistry>::model_of(&vk)
						.ok_or(Error::<T>::UnknownVerifyingKey)?;
				ensure!(model == p.artifact, Error::<T>::VerifyingKeyOfAnotherModel);
			}
			ensure!(p.royalty <= T::MaxRoyalty::get(), Error::<T>::RoyaltyTooHigh);
			ensure!(
				!ReleaseByVersion::<T>::contains_key(repository, &p.version),
				Error::<T>::VersionTaken
			);

			let id = NextReleaseId::<T>::get();
			let next = id.checked_add(1).ok_or(Error::<T>::IdOverflow)?;
			let mut release = Release::<T> {
				repository,
				params: p,
				deposit: Default::default(),
				status: ReleaseStatus::Active,
				open_jobs: 0,
			};
			release.deposit = Self::deposit_for(&release);
			T::Currency::hold(&HoldReason::StorageDeposit.into(), &who, release.deposit)?;

			let (artifact, deposit) = (release.params.artifact, release.deposit);
			ReleaseByVersion::<T>::insert(repository, &release.params.version, id);
			if let Some(vk) = release.params.zk_verifying_key {
				Self::add_key_user(vk);
			}
			Releases::<T>::insert(id, release);
			repo.releases += 1;
			Repositories::<T>::insert(repository, repo);
			NextReleaseId::<T>::put(next);
			Self::deposit_event(Event::ReleasePublished {
				release: id,
				repository,
				artifact,
				deposit,
			});
			Ok(())
		}

		/// Retires a release: it takes no new jobs and its deposit is released. The record
		/// stays until its open jobs end.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::retire_release())]
		pub fn retire_release(origin: OriginFor<T>, release: ReleaseId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut rel = Releases::<T>::get(release).ok_or(Error::<T>::UnknownRelease)?;
			let repo =
				Repositories::<T>::get(rel.repository).ok_or(Error::<T>::UnknownRepository)?;
			ensure!(repo.owner == who, Error::<T>::NotOwner);
			ensure!(rel.status == ReleaseStatus::Active, Error::<T>::ReleaseRetired);
			T::Currency::release(
				&HoldReason::StorageDeposit.into(),
				&who,
				rel.deposit,
				Precision::Exact,
			)?;
			rel.deposit = Default::default();
			rel.status = ReleaseStatus::Retired;
			let open_jobs = rel.open_jobs;
			Releases::<T>::insert(release, rel);
			Self::deposit_event(Event::ReleaseRetired { release, open_jobs });
			if open_jobs == 0 {
				Self::remove_release(release);
			}
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// Deposit of a stored item: base plus per encoded byte.
		pub fn deposit_for<E: Encode>(item: &E) -> BalanceOf<T> {
			let bytes: BalanceOf<T> = (item.encoded_size() as u32).into();
			T::DepositBase::get().saturating_add(T::DepositPerByte::get().saturating_mul(bytes))
		}

		fn adjust_hold(who: &T::AccountId, old: BalanceOf<T>, new: BalanceOf<T>) -> DispatchResult {
			let reason = HoldReason::StorageDeposit.into();
			if new > old {
				T::Currency::hold(&reason, who, new - old)
			} else if old > new {
				T::Currency::release(&reason, who, old - new, Precision::Exact).map(|_| ())
			} else {
				Ok(())
			}
		}

		/// Releases of `repository` that still have a record (at most `MaxReleasesPerRepository`).
		pub fn repository_releases(
			repository: RepositoryId,
		) -> alloc::vec::Vec<(ReleaseId, Release<T>)> {
			ReleaseByVersion::<T>::iter_prefix_values(repository)
				.filter_map(|id| Releases::<T>::get(id).map(|r| (id, r)))
				.collect()
		}

		/// One more release record references the verifying key `vk`.
		fn add_key_user(vk: H256) {
			VerifyingKeyUsers::<T>::mutate(vk, |n| *n = Some(n.unwrap_or(0).saturating_add(1)));
		}

		pub(crate) fn remove_release(release: ReleaseId) {
			if let Some(rel) = Releases::<T>::take(release) {
				ReleaseByVersion::<T>::remove(rel.repository, &rel.params.version);
				if let Some(vk) = rel.params.zk_verifying_key {
					VerifyingKeyUsers::<T>::mutate_exists(vk, |n| {
						*n = n.and_then(|n| n.checked_sub(1)).filter(|n| *n > 0)
					});
				}
				Repositories::<T>::mutate(rel.repository, |repo| {
					if let Some(repo) = repo {
						repo.releases = repo.releases.saturating_sub(1);
					}
				});
				Self::deposit_event(Event::ReleaseRemoved { release });
			}
		}

		/// Benchmark set-up for the market: an active release with one dynamic `U8` input and
		/// output of any length, in `modes`, published by `publisher`; no deposit is held.
		#[cfg(feature = "runtime-benchmarks")]
		pub fn benchmark_release(publisher: &T::AccountId, modes: ModeSet) -> ReleaseId {
			let spec = || -> TensorSpecsOf<T> {
				alloc::vec![TensorSpec {
					name: Default::default(),
					elem: opg_primitives::ElemType::U8,
					shape: alloc::vec![0u32].try_into().expect("rank 1 fits"),
				}]
				.try_into()
				.expect("one tensor fits")
			};
			let repository = NextRepositoryId::<T>::get();
			NextRepositoryId::<T>::put(repository + 1);
			let release = NextReleaseId::<T>::get();
			NextReleaseId::<T>::put(release + 1);
			Repositories::<T>::insert(
				repository,
				Repository::<T> {
					owner: publisher.clone(),
					name: Default::default(),
					description_uri: Default::default(),
					deposit: Default::default(),
					releases: 1,
				},
			);
			let version: BoundedVec<u8, T::MaxVersionLen> = Default::default();
			ReleaseByVersion::<T>::insert(repository, &version, release);
			let zk_verifying_key =
				modes.contains(VerificationMode::Zk).then(|| H256::repeat_byte(2));
			if let Some(vk) = zk_verifying_key {
				Self::add_key_user(vk);
			}
			Releases::<T>::insert(
				release,
				Release::<T> {
					repository,
					params: ReleaseParams {
						version,
						artifact: H256::repeat_byte(1),
						artifact_size: 1,
						format: ModelFormat::Onnx,
						source_uri: Default::default(),
						inputs: spec(),
						outputs: spec(),
						modes,
						zk_verifying_key,
						royalty: T::MaxRoyalty::get(),
						llm: None,
					},
					deposit: Default::default(),
					status: ReleaseStatus::Active,
					open_jobs: 0,
				},
			);
			release
		}

		/// Checks that held deposits equal the records and that counters agree.
		#[cfg(any(feature = "try-runtime", feature = "std", test))]
		pub fn do_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
			use alloc::collections::btree_map::BTreeMap;
			use frame_support::traits::fungible::InspectHold;
			let mut held: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
			let mut live: BTreeMap<RepositoryId, u32> = BTreeMap::new();
			let mut key_users: BTreeMap<H256, u32> = BTreeMap::new();
			let next_release = NextReleaseId::<T>::get();
			for (id, rel) in Releases::<T>::iter() {
				ensure!(id < next_release, "release id beyond the counter");
				if let Some(vk) = rel.params.zk_verifying_key {
					*key_users.entry(vk).or_default() += 1;
				}
				let repo =
					Repositories::<T>::get(rel.repository).ok_or("release of no repository")?;
				let entry = held.entry(repo.owner.clone()).or_default();
				*entry = entry.saturating_add(rel.deposit);
				*live.entry(rel.repository).or_default() += 1;
				ensure!(
					ReleaseByVersion::<T>::get(rel.repository, &rel.params.version) == Some(id),
					"version index out of sync"
				);
				ensure!(
					rel.status == ReleaseStatus::Active || rel.deposit == Default::default(),
					"retired release still holds a deposit"
				);
				ensure!(
					rel.status == ReleaseStatus::Active || rel.open_jobs > 0,
					"retired release without open jobs kept"
				);
			}
			ensure!(
				ReleaseByVersion::<T>::iter().count() == Releases::<T>::iter().count(),
				"version index has stale entries"
			);
			ensure!(
				VerifyingKeyUsers::<T>::iter().collect::<BTreeMap<_, _>>() == key_users,
				"verifying-key users differ from the releases"
			);
			let next_repo = NextRepositoryId::<T>::get();
			for (id, repo) in Repositories::<T>::iter() {
				ensure!(id < next_repo, "repository id beyond the counter");
				ensure!(repo.releases == live.get(&id).copied().unwrap_or(0), "release count off");
				let entry = held.entry(repo.owner.clone()).or_default();
				*entry = entry.saturating_add(repo.deposit);
			}
			for (who, amount) in held {
				ensure!(
					T::Currency::balance_on_hold(&HoldReason::StorageDeposit.into(), &who) ==
						amount,
					"held deposit differs from the records"
				);
			}
			Ok(())
		}
	}
}

impl<T: Config> ModelRegistry<T::AccountId> for Pallet<T> {
	fn release_info(release: ReleaseId) -> Option<ReleaseInfo<T::AccountId>> {
		let rel = Releases::<T>::get(release)?;
		let repo = Repositories::<T>::get(rel.repository)?;
		Some(ReleaseInfo {
			publisher: repo.owner,
			artifact: rel.params.artifact,
			modes: rel.params.modes,
			royalty: rel.params.royalty,
			zk_verifying_key: rel.params.zk_verifying_key,
			active: rel.status == ReleaseStatus::Active,
			llm: rel.params.llm.is_some(),
		})
	}

	fn check_input(release: ReleaseId, input: &[u8]) -> Result<Option<TokenBudget>, InputError> {
		let rel = Releases::<T>::get(release).ok_or(InputError::UnknownRelease)?;
		match &rel.params.llm {
			Some(spec) => check_chat_request(input, spec)
				.map(|(_, budget)| Some(budget))
				.map_err(InputError::Chat),
			None => check_tensors(input, &rel.params.inputs)
				.map(|_| None)
				.map_err(InputError::Tensor),
		}
	}

	fn check_output(release: ReleaseId, output: &[u8]) -> Result<Option<TokenUsage>, InputError> {
		let rel = Releases::<T>::get(release).ok_or(InputError::UnknownRelease)?;
		match &rel.params.llm {
			Some(spec) => check_chat_response(output, spec.vocab_size)
				.map(|r| Some(r.usage()))
				.map_err(InputError::Chat),
			None => check_tensors(output, &rel.params.outputs)
				.map(|_| None)
				.map_err(InputError::Tensor),
		}
	}

	fn job_opened(release: ReleaseId) -> DispatchResult {
		Releases::<T>::try_mutate(release, |maybe| {
			let rel = maybe.as_mut().ok_or(Error::<T>::UnknownRelease)?;
			ensure!(rel.status == ReleaseStatus::Active, Error::<T>::ReleaseRetired);
			rel.open_jobs = rel.open_jobs.checked_add(1).ok_or(Error::<T>::TooManyOpenJobs)?;
			Ok(())
		})
	}

	fn job_closed(release: ReleaseId) {
		let remove = Releases::<T>::mutate(release, |maybe| match maybe {
			Some(rel) => {
				rel.open_jobs = rel.open_jobs.saturating_sub(1);
				rel.status == ReleaseStatus::Retired && rel.open_jobs == 0
			},
			None => false,
		});
		if remove {
			Self::remove_release(release);
		}
	}
}

/// Verifying keys some release record references: the key registry's `KeyUsers`.
pub struct KeysInUse<T>(core::marker::PhantomData<T>);
impl<T: Config> Contains<H256> for KeysInUse<T> {
	fn contains(key: &H256) -> bool {
		VerifyingKeyUsers::<T>::contains_key(key)
	}
}
