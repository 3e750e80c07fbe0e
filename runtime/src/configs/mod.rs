//! Pallet configurations of the OPG runtime.

mod verifier;
mod xcm_config;
pub use verifier::ResultVerifiers;
pub use xcm_config::*;

use polkadot_sdk::{staging_parachain_info as parachain_info, staging_xcm as xcm, *};

use cumulus_pallet_parachain_system::RelayNumberMonotonicallyIncreases;
use cumulus_primitives_core::{AggregateMessageOrigin, ParaId};
use frame_support::{
	derive_impl,
	dispatch::DispatchClass,
	dynamic_params::{dynamic_pallet_params, dynamic_params},
	parameter_types,
	traits::{
		tokens::imbalance::ResolveTo, ConstBool, ConstU32, ConstU64, ConstU8, EitherOfDiverse, Get,
		TransformOrigin, VariantCountOf,
	},
	weights::{ConstantMultiplier, Weight},
	PalletId,
};
use frame_system::{
	limits::{BlockLength, BlockWeights},
	EnsureRoot,
};
use pallet_xcm::{EnsureXcm, IsVoiceOfBody};
use parachains_common::message_queue::{NarrowOriginToSibling, ParaIdToSibling};
use polkadot_runtime_common::{
	xcm_sender::ExponentialPrice, BlockHashCount, SlowAdjustingFeeUpdate,
};
use sp_consensus_aura::sr25519::AuthorityId as AuraId;
use sp_runtime::{Perbill, Permill};
use sp_version::RuntimeVersion;
use xcm::latest::prelude::BodyId;

use super::{
	deposit, AccountId, Aura, Balance, Balances, Block, BlockNumber, CollatorSelection,
	ConsensusHook, Hash, MessageQueue, ModelHub, Nonce, PalletInfo, ParachainSystem, Runtime,
	RuntimeCall, RuntimeEvent, RuntimeFreezeReason, RuntimeHoldReason, RuntimeOrigin, RuntimeTask,
	Session, SessionKeys, Signature, System, WeightToFee, XcmpQueue, AVERAGE_ON_INITIALIZE_RATIO,
	DAYS, EXISTENTIAL_DEPOSIT, HOURS, MAXIMUM_BLOCK_WEIGHT, MICRO_UNIT, MILLI_UNIT, MINUTES,
	NORMAL_DISPATCH_RATIO, SLOT_DURATION, UNIT, VERSION,
};

parameter_types! {
	pub const Version: RuntimeVersion = VERSION;

	// Blocks may fill 5 MiB; normal extrinsics up to 75% of that.
	pub RuntimeBlockLength: BlockLength = BlockLength::builder()
		.max_length(5 * 1024 * 1024)
		.modify_max_length_for_class(DispatchClass::Normal, |m| {
			*m = NORMAL_DISPATCH_RATIO * *m
		})
		.build();
	pub RuntimeBlockWeights: BlockWeights = BlockWeights::builder()
		.base_block(frame_support::weights::constants::BlockExecutionWeight::get())
		.for_class(DispatchClass::all(), |weights| {
			weights.base_extrinsic = frame_support::weights::constants::ExtrinsicBaseWeight::get();
		})
		.for_class(DispatchClass::Normal, |weights| {
			weights.max_total = Some(NORMAL_DISPATCH_RATIO * MAXIMUM_BLOCK_WEIGHT);
		})
		.for_class(DispatchClass::Operational, |weights| {
			weights.max_total = Some(MAXIMUM_BLOCK_WEIGHT);
			// Operational extrinsics keep room beyond what normal ones may use.
			weights.reserved = Some(
				MAXIMUM_BLOCK_WEIGHT - NORMAL_DISPATCH_RATIO * MAXIMUM_BLOCK_WEIGHT
			);
		})
		.avg_block_initialization(AVERAGE_ON_INITIALIZE_RATIO)
		.build_or_panic();
	/// Address prefix. `system_properties.ss58Format` of the chain specs equals it.
	pub const SS58Prefix: u16 = 42;
}

#[derive_impl(frame_system::config_preludes::ParaChainDefaultConfig)]
impl frame_system::Config for Runtime {
	type AccountId = AccountId;
	type Nonce = Nonce;
	type Hash = Hash;
	type Block = Block;
	type BlockHashCount = BlockHashCount;
	type Version = Version;
	type AccountData = pallet_balances::AccountData<Balance>;
	type DbWeight = frame_support::weights::constants::RocksDbWeight;
	type BlockWeights = RuntimeBlockWeights;
	type BlockLength = RuntimeBlockLength;
	type SS58Prefix = SS58Prefix;
	type OnSetCode = cumulus_pallet_parachain_system::ParachainSetCode<Self>;
	type MaxConsumers = ConstU32<16>;
	type SystemWeightInfo = frame_system::weights::SubstrateWeight<Runtime>;
}

impl cumulus_pallet_weight_reclaim::Config for Runtime {
	// The pallet's benchmarked figures with RocksDB weights, which this runtime uses.
	type WeightInfo = ();
}

impl pallet_timestamp::Config for Runtime {
	type Moment = u64;
	type OnTimestampSet = Aura;
	type MinimumPeriod = ConstU64<0>;
	type WeightInfo = pallet_timestamp::weights::SubstrateWeight<Runtime>;
}

impl pallet_authorship::Config for Runtime {
	type FindAuthor = pallet_session::FindAccountFromAuthorIndex<Self, Aura>;
	type EventHandler = (CollatorSelection,);
}

parameter_types! {
	pub const ExistentialDeposit: Balance = EXISTENTIAL_DEPOSIT;
}

impl pallet_balances::Config for Runtime {
	type MaxLocks = ConstU32<50>;
	type Balance = Balance;
	type RuntimeEvent = RuntimeEvent;
	type DustRemoval = ();
	type ExistentialDeposit = ExistentialDeposit;
	type AccountStore = System;
	type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
	type MaxReserves = ConstU32<50>;
	type ReserveIdentifier = [u8; 8];
	type RuntimeHoldReason = RuntimeHoldReason;
	type RuntimeFreezeReason = RuntimeFreezeReason;
	type FreezeIdentifier = RuntimeFreezeReason;
	type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
	type DoneSlashHandler = ();
}

parameter_types! {
	/// Fee per byte of an extrinsic: 1 micro-OPG.
	pub const TransactionByteFee: Balance = MICRO_UNIT;
}

impl pallet_transaction_payment::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	// Fees and tips go to the collators' pot (paid out to block authors), so total issuance
	// changes only through the protocol's counted burns.
	type OnChargeTransaction = pallet_transaction_payment::FungibleAdapter<
		Balances,
		ResolveTo<pallet_collator_selection::StakingPotAccountId<Runtime>, Balances>,
	>;
	type WeightToFee = WeightToFee;
	type LengthToFee = ConstantMultiplier<Balance, TransactionByteFee>;
	type FeeMultiplierUpdate = SlowAdjustingFeeUpdate<Self>;
	type OperationalFeeMultiplier = ConstU8<5>;
	type WeightInfo = pallet_transaction_payment::weights::SubstrateWeight<Runtime>;
}

impl pallet_sudo::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
	pub const ReservedXcmpWeight: Weight = MAXIMUM_BLOCK_WEIGHT.saturating_div(4);
	pub const ReservedDmpWeight: Weight = MAXIMUM_BLOCK_WEIGHT.saturating_div(4);
	pub const RelayOrigin: AggregateMessageOrigin = AggregateMessageOrigin::Parent;
}

impl cumulus_pallet_parachain_system::Config for Runtime {
	type WeightInfo = cumulus_pallet_parachain_system::weights::SubstrateWeight<Runtime>;
	type RuntimeEvent = RuntimeEvent;
	type OnSystemEvent = RelayRandomness;
	type SelfParaId = parachain_info::Pallet<Runtime>;
	type OutboundXcmpMessageSource = XcmpQueue;
	type DmpQueue = frame_support::traits::EnqueueWithOrigin<MessageQueue, RelayOrigin>;
	type ReservedDmpWeight = ReservedDmpWeight;
	type XcmpMessageHandler = XcmpQueue;
	type ReservedXcmpWeight = ReservedXcmpWeight;
	type CheckAssociatedRelayNumber = RelayNumberMonotonicallyIncreases;
	type ConsensusHook = ConsensusHook;
	type RelayParentOffset = ConstU32<0>;
	// V3 scheduling is not enabled, so no scheduling signatures are expected.
	type SchedulingSignatureVerifier = ();
}

impl parachain_info::Config for Runtime {}

/// Gives the inference market's draw the relay parent's randomness (its BABE author's VRF
/// output, `CURRENT_BLOCK_RANDOMNESS`, read from the verified relay state proof) with the relay
/// parent's number as its round. Jobs submitted under one relay parent are drawn under a later
/// one, whose randomness did not exist when they were submitted.
pub struct RelayRandomness;
impl cumulus_pallet_parachain_system::OnSystemEvent for RelayRandomness {
	fn on_validation_data(_: &cumulus_primitives_core::PersistedValidationData) {}
	fn on_validation_code_applied() {}
	fn on_relay_state_proof(
		proof: &cumulus_pallet_parachain_system::RelayChainStateProof,
	) -> Weight {
		use cumulus_primitives_core::relay_chain::well_known_keys::CURRENT_BLOCK_RANDOMNESS;
		// Set by the same inherent just before this call.
		let round = cumulus_pallet_parachain_system::ValidationData::<Runtime>::get()
			.map(|data| data.relay_parent_number);
		// BABE stores `Option<Randomness>`; a relay without BABE gives none, and jobs wait
		// (then are cancelled and refunded after `MaxAssignmentDelay`).
		let value = proof
			.read_optional_entry::<Option<[u8; 32]>>(CURRENT_BLOCK_RANDOMNESS)
			.ok()
			.flatten()
			.flatten();
		if let (Some(round), Some(value)) = (round, value) {
			pallet_inference::Pallet::<Runtime>::note_randomness(round, value);
		}
		<Runtime as frame_system::Config>::DbWeight::get().reads_writes(2, 1)
	}
}

parameter_types! {
	pub MessageQueueServiceWeight: Weight = Perbill::from_percent(35) * RuntimeBlockWeights::get().max_block;
}

impl pallet_message_queue::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type WeightInfo = pallet_message_queue::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type MessageProcessor = pallet_message_queue::mock_helpers::NoopMessageProcessor<
		cumulus_primitives_core::AggregateMessageOrigin,
	>;
	#[cfg(not(feature = "runtime-benchmarks"))]
	type MessageProcessor = staging_xcm_builder::ProcessXcmMessage<
		AggregateMessageOrigin,
		staging_xcm_executor::XcmExecutor<xcm_config::XcmConfig>,
		RuntimeCall,
	>;
	type Size = u32;
	// The XCMP queue pallet is only ever able to handle the `Sibling(ParaId)` origin.
	type QueueChangeHandler = NarrowOriginToSibling<XcmpQueue>;
	type QueuePausedQuery = NarrowOriginToSibling<XcmpQueue>;
	type HeapSize = ConstU32<{ 103 * 1024 }>;
	type MaxStale = ConstU32<8>;
	type ServiceWeight = MessageQueueServiceWeight;
	type IdleMaxServiceWeight = ();
}

impl cumulus_pallet_aura_ext::Config for Runtime {}

parameter_types! {
	/// Fee of the first byte of a message to a sibling; grows exponentially with queue length.
	pub FeeAssetId: xcm::latest::AssetId = xcm::latest::AssetId(xcm_config::NativeLocation::get());
	pub const BaseDeliveryFee: u128 = MILLI_UNIT;
}

impl cumulus_pallet_xcmp_queue::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type ChannelInfo = ParachainSystem;
	type VersionWrapper = ();
	// Enqueue XCMP messages from siblings for later processing.
	type XcmpQueue = TransformOrigin<MessageQueue, AggregateMessageOrigin, ParaId, ParaIdToSibling>;
	type MaxInboundSuspended = ConstU32<1_000>;
	type MaxActiveOutboundChannels = ConstU32<128>;
	type MaxPageSize = ConstU32<{ 1 << 16 }>;
	type ControllerOrigin = EnsureRoot<AccountId>;
	type ControllerOriginConverter = XcmOriginToTransactDispatchOrigin;
	type WeightInfo = cumulus_pallet_xcmp_queue::weights::SubstrateWeight<Runtime>;
	type PriceForSiblingDelivery =
		ExponentialPrice<FeeAssetId, BaseDeliveryFee, TransactionByteFee, XcmpQueue>;
}

parameter_types! {
	pub const Period: u32 = 6 * HOURS;
	pub const Offset: u32 = 0;
	/// No deposit for session keys: collators are vetted by `CollatorSelection` bonds.
	pub const SessionKeyDeposit: Balance = 0;
}

impl pallet_session::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type ValidatorId = <Self as frame_system::Config>::AccountId;
	// The validator id is the account id of the collator.
	type ValidatorIdOf = pallet_collator_selection::IdentityCollator;
	type ShouldEndSession = pallet_session::PeriodicSessions<Period, Offset>;
	type NextSessionRotation = pallet_session::PeriodicSessions<Period, Offset>;
	type SessionManager = CollatorSelection;
	// Essentially just Aura, but let's be pedantic.
	type SessionHandler = <SessionKeys as sp_runtime::traits::OpaqueKeys>::KeyTypeIdProviders;
	type Keys = SessionKeys;
	type DisablingStrategy = ();
	type WeightInfo = pallet_session::weights::SubstrateWeight<Runtime>;
	type Currency = Balances;
	type KeyDeposit = SessionKeyDeposit;
}

impl pallet_aura::Config for Runtime {
	type AuthorityId = AuraId;
	type DisabledValidators = ();
	type MaxAuthorities = ConstU32<100_000>;
	type AllowMultipleBlocksPerSlot = ConstBool<true>;
	type SlotDuration = ConstU64<SLOT_DURATION>;
}

parameter_types! {
	pub const PotId: PalletId = PalletId(*b"PotStake");
	pub const SessionLength: BlockNumber = 6 * HOURS;
	/// Pluralistic body of the relay chain's executive.
	pub const StakingAdminBodyId: BodyId = BodyId::Defense;
}

/// Root, or the relay chain's staking admin body.
pub type CollatorSelectionUpdateOrigin = EitherOfDiverse<
	EnsureRoot<AccountId>,
	EnsureXcm<IsVoiceOfBody<xcm_config::RelayLocation, StakingAdminBodyId>>,
>;

impl pallet_collator_selection::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type Currency = Balances;
	type UpdateOrigin = CollatorSelectionUpdateOrigin;
	type PotId = PotId;
	type MaxCandidates = ConstU32<100>;
	type MinEligibleCollators = ConstU32<1>;
	type MaxInvulnerables = ConstU32<20>;
	// Should be a multiple of the session length, or things get weird.
	type KickThreshold = Period;
	type ValidatorId = <Self as frame_system::Config>::AccountId;
	type ValidatorIdOf = pallet_collator_selection::IdentityCollator;
	type ValidatorRegistration = Session;
	type WeightInfo = pallet_collator_selection::weights::SubstrateWeight<Runtime>;
}

impl pallet_utility::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type PalletsOrigin = super::OriginCaller;
	type WeightInfo = pallet_utility::weights::SubstrateWeight<Runtime>;
}

/// Protocol parameters that root tunes at run time through `Parameters::set_parameter`.
/// The protocol pallets read them through these `Get` types.
#[dynamic_params(RuntimeParameters, pallet_parameters::Parameters::<Runtime>)]
pub mod dynamic_params {
	use super::*;

	/// Fees and stakes of the inference market.
	#[dynamic_pallet_params]
	#[codec(index = 0)]
	pub mod inference {
		use super::*;
		/// Stake a worker must hold to serve jobs.
		#[codec(index = 0)]
		pub static MinWorkerStake: Balance = 100 * UNIT;
		/// Flat verification fee of a Vanilla (unverified) result; burned on settlement.
		#[codec(index = 1)]
		pub static VanillaVerificationFee: Balance = 10 * MILLI_UNIT;
		/// Flat verification fee of a TEE-attested result; burned on settlement.
		#[codec(index = 2)]
		pub static TeeVerificationFee: Balance = 50 * MILLI_UNIT;
		/// Flat verification fee of a zero-knowledge result; burned on settlement.
		#[codec(index = 3)]
		pub static ZkVerificationFee: Balance = 200 * MILLI_UNIT;
		/// Verification fee per byte of input, output and proof; burned on settlement, and for
		/// the input alone on every other outcome.
		#[codec(index = 4)]
		pub static VerificationFeePerByte: Balance = 10 * MICRO_UNIT;
		/// Stake burned when a worker misses a job's deadline.
		#[codec(index = 5)]
		pub static SlashOnTimeout: Balance = 5 * UNIT;
		/// Stake burned when a worker's evidence fails verification.
		#[codec(index = 6)]
		pub static SlashOnInvalidProof: Balance = 50 * UNIT;
		/// Held from whoever challenges a direct-path receipt; burned if the worker opens it.
		#[codec(index = 7)]
		pub static ChallengeBond: Balance = UNIT;
		/// Stake taken when a worker does not open an audited or challenged receipt in time.
		#[codec(index = 8)]
		pub static ReceiptSlash: Balance = 50 * UNIT;
	}
}

#[cfg(feature = "runtime-benchmarks")]
impl Default for RuntimeParameters {
	fn default() -> Self {
		RuntimeParameters::Inference(dynamic_params::inference::Parameters::MinWorkerStake(
			dynamic_params::inference::MinWorkerStake,
			Some(100 * UNIT),
		))
	}
}

impl pallet_parameters::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeParameters = RuntimeParameters;
	type AdminOrigin = frame_support::traits::AsEnsureOriginWithArg<EnsureRoot<AccountId>>;
	// The pallet's benchmarked figures with RocksDB weights, which this runtime uses.
	type WeightInfo = ();
}

parameter_types! {
	/// Flat part of a model hub deposit (per repository or release).
	pub const HubDepositBase: Balance = deposit(1, 0);
	/// Per encoded byte of a repository or release.
	pub const HubDepositPerByte: Balance = deposit(0, 1);
	/// Highest royalty a publisher may take from each job's price.
	pub const MaxRoyalty: Permill = Permill::from_percent(20);
	/// Expiries and prunings per block: 5% of a block (≈ 300 expiries at the benchmarked
	/// weights, more prunings); a backlog carries over.
	pub InferenceAgendaWeight: Weight = Perbill::from_percent(5) * RuntimeBlockWeights::get().max_block;
	/// Draws per block: 10% of a block (≈ 30 draws from full 64-worker pools, whose TEE key
	/// checks count too, ≈ 120 from pools of four); a backlog waits for the next block.
	pub InferenceAssignmentWeight: Weight = Perbill::from_percent(10) * RuntimeBlockWeights::get().max_block;
}

impl pallet_model_hub::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type DepositBase = HubDepositBase;
	type DepositPerByte = HubDepositPerByte;
	// Keys registered in `pallet_zk` for the inference statement (4 public inputs).
	type VerifyingKeys =
		pallet_zk::KeysWithInputs<Runtime, ConstU32<{ opg_primitives::ZK_PUBLIC_INPUTS as u32 }>>;
	type MaxNameLen = ConstU32<64>;
	type MaxUriLen = ConstU32<256>;
	type MaxVersionLen = ConstU32<32>;
	type MaxTensors = ConstU32<8>;
	type MaxRank = ConstU32<8>;
	type MaxReleasesPerRepository = ConstU32<64>;
	type MaxRoyalty = MaxRoyalty;
	type MaxContextLength = ConstU32<{ 128 * 1024 }>;
	type WeightInfo = pallet_model_hub::weights::SubstrateWeight<Runtime>;
}

/// The verification fees of `dynamic_params::inference`, as the market reads them.
pub struct VerificationFeeSchedule;
impl Get<pallet_inference::VerificationFees<Balance>> for VerificationFeeSchedule {
	fn get() -> pallet_inference::VerificationFees<Balance> {
		use dynamic_params::inference as p;
		pallet_inference::VerificationFees {
			flat: pallet_inference::PerMode {
				vanilla: p::VanillaVerificationFee::get(),
				tee: p::TeeVerificationFee::get(),
				zk: p::ZkVerificationFee::get(),
			},
			per_byte: p::VerificationFeePerByte::get(),
		}
	}
}

impl pallet_inference::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Models = ModelHub;
	type Verifier = ResultVerifiers;
	// No on-chain consumer pallet yet.
	type Consumer = ();
	type MinWorkerStake = dynamic_params::inference::MinWorkerStake;
	type VerificationFees = VerificationFeeSchedule;
	type SlashOnTimeout = dynamic_params::inference::SlashOnTimeout;
	type SlashOnInvalidProof = dynamic_params::inference::SlashOnInvalidProof;
	type UnbondingPeriod = ConstU32<DAYS>;
	type DefaultJobTimeout = ConstU32<{ 10 * MINUTES }>;
	// A minute at 6 s blocks: a requester cannot pick a deadline so short that an honest
	// worker misses it (and is slashed) because its answer waited a block or two in the pool.
	type MinJobTimeout = ConstU32<{ MINUTES }>;
	type MaxJobTimeout = ConstU32<DAYS>;
	type RetentionPeriod = ConstU32<DAYS>;
	type MaxInputLen = ConstU32<{ 64 * 1024 }>;
	type MaxOutputLen = ConstU32<{ 64 * 1024 }>;
	type MaxEvidenceLen = ConstU32<{ 4 * 1024 }>;
	type MaxServedReleases = ConstU32<32>;
	type MaxWorkersPerRelease = ConstU32<64>;
	type MaxWorkerCapacity = ConstU32<64>;
	type AgendaWeight = InferenceAgendaWeight;
	type MaxQueueLen = ConstU32<1024>;
	// A requester's price cap and timeout leave at least three workers to draw from (all of
	// them, if fewer serve).
	type MinDrawCandidates = ConstU32<3>;
	type MaxPendingJobs = ConstU32<1024>;
	// A minute at 6 s blocks without a new relay parent: the job is refunded.
	type MaxAssignmentDelay = ConstU32<{ MINUTES }>;
	type AssignmentWeight = InferenceAssignmentWeight;
	type ChannelSignature = Signature;
	type ChannelSigner = <Signature as sp_runtime::traits::Verify>::Signer;
	type MinChannelDeposit = MinChannelDeposit;
	// An hour at 6 s blocks: a worker that redeems at least hourly never loses an answer.
	type ChannelCloseWindow = ConstU32<HOURS>;
	type DisputeWindow = ConstU32<HOURS>;
	// A batch every 5 minutes at most, per channel, within the hour's window.
	type MaxOpenBatches = ConstU32<12>;
	type MaxEndpointLen = ConstU32<256>;
	// Four receipts per batch: a worker cheating on a quarter of a batch is caught with
	// probability 1 - 0.75^4 = 68% per batch (`docs/direct-path.md`).
	type AuditsPerBatch = ConstU32<4>;
	// Ten minutes at 6 s blocks to open a receipt.
	type OpenDeadline = ConstU32<{ 10 * MINUTES }>;
	type ChallengeBond = dynamic_params::inference::ChallengeBond;
	type ReceiptSlash = dynamic_params::inference::ReceiptSlash;
	type WeightInfo = pallet_inference::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = ModelHub;
	#[cfg(feature = "runtime-benchmarks")]
	type ChannelBenchmarkHelper = ChannelSigner;
}

parameter_types! {
	/// Smallest channel deposit: a channel's record and index (about 1 KiB at most) cost at
	/// least their storage deposit.
	pub const MinChannelDeposit: Balance = deposit(2, 1024);
}

/// Signs vouchers in the benchmarks with an sr25519 key of the benchmark's keystore.
#[cfg(feature = "runtime-benchmarks")]
pub struct ChannelSigner;
#[cfg(feature = "runtime-benchmarks")]
impl pallet_inference::ChannelBenchmarkHelper<AccountId, Signature> for ChannelSigner {
	fn signer() -> AccountId {
		use sp_runtime::traits::IdentifyAccount;
		let public = sp_io::crypto::sr25519_generate(0.into(), None);
		sp_runtime::MultiSigner::Sr25519(public).into_account()
	}
	fn sign(signer: &AccountId, message: &[u8]) -> Signature {
		let public = sp_core::sr25519::Public::from_raw(*signer.as_ref());
		let signature = sp_io::crypto::sr25519_sign(0.into(), &public, message)
			.expect("the key was generated in the keystore");
		sp_runtime::MultiSignature::Sr25519(signature)
	}
}

parameter_types! {
	/// Deposit per registered verifying key.
	pub const ZkKeyDepositBase: Balance = deposit(1, 0);
	/// Per stored byte of a prepared key (≤ 2,753 bytes).
	pub const ZkKeyDepositPerByte: Balance = deposit(0, 1);
}

impl pallet_zk::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type DepositBase = ZkKeyDepositBase;
	type DepositPerByte = ZkKeyDepositPerByte;
	type KeyUsers = pallet_model_hub::KeysInUse<Runtime>;
	type WeightInfo = pallet_zk::weights::SubstrateWeight<Runtime>;
}

impl pallet_tee::Config for Runtime {
	// Root (sudo, later governance) curates the enclave images the network trusts.
	type PolicyOrigin = EnsureRoot<AccountId>;
	type Workers = pallet_inference::RegisteredWorkers<Runtime>;
	type UnixTime = super::Timestamp;
	// A minute at 6 s blocks: time to fetch the document from the NSM and submit it.
	type ChallengeLifetime = ConstU32<{ MINUTES }>;
	// Nitro leaf certificates live about 3 hours, which usually ends a key first.
	type MaxKeyLifetime = ConstU64<{ 24 * 3600 * 1000 }>;
	type MaxMeasurements = ConstU32<64>;
	type MaxLabelLen = ConstU32<64>;
	// AWS's regional and zonal CAs in use at one time are a few dozen.
	type MaxKnownCas = ConstU32<256>;
	// Only the node's bundled runtime (its `insecure-dev-trust` feature, for the development and
	// local specs) and benchmark builds trust the development CA; `cargo build -p opg-runtime`,
	// what a network deploys, does not.
	type InsecureDevTrust = ConstBool<{ super::INSECURE_DEV_TRUST }>;
	type WeightInfo = pallet_tee::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = TeeBenchmarkHelper;
}

/// Benchmark set-up of `pallet_tee`: workers and the chain's time.
#[cfg(feature = "runtime-benchmarks")]
pub struct TeeBenchmarkHelper;
#[cfg(feature = "runtime-benchmarks")]
impl pallet_tee::BenchmarkHelper<AccountId> for TeeBenchmarkHelper {
	fn make_worker(who: &AccountId) {
		use frame_support::traits::fungible::Mutate;
		let stake = dynamic_params::inference::MinWorkerStake::get();
		Balances::set_balance(who, stake.saturating_mul(10));
		let release = pallet_model_hub::Pallet::<Runtime>::benchmark_release(
			who,
			opg_primitives::ModeSet::of(&[opg_primitives::VerificationMode::Tee]),
		);
		pallet_inference::Pallet::<Runtime>::register_worker(
			RuntimeOrigin::signed(who.clone()),
			stake,
			alloc::vec![release].try_into().expect("one release"),
			opg_primitives::ModeSet::of(&[opg_primitives::VerificationMode::Tee]),
			0,
			1,
			pallet_inference::Hardware::Cpu,
		)
		.expect("a funded account registers");
	}
	fn set_time(ms: u64) {
		pallet_timestamp::Now::<Runtime>::put(ms);
	}
}
