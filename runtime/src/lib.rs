//! # OPG runtime
//!
//! The parachain runtime of OPG, a market for verifiable AI inference: workers run models off
//! chain, the chain escrows fees, verifies evidence and settles. This crate holds the FRAME
//! composition (cumulus system pallets, balances/fees, collators, XCM); the protocol pallets
//! live under `pallets/` and take the indices reserved below (50..=69).
#![cfg_attr(not(feature = "std"), no_std)]
// `construct_runtime` recurses deeply.
#![recursion_limit = "256"]

// The wasm blob, built by `build.rs`.
#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

extern crate alloc;

pub mod apis;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarks;
pub mod configs;
pub mod genesis_config_presets;

use alloc::vec::Vec;
use polkadot_sdk::{staging_parachain_info as parachain_info, *};
use smallvec::smallvec;
use sp_runtime::{
	generic, impl_opaque_keys,
	traits::{BlakeTwo256, IdentifyAccount, Verify},
	MultiSignature,
};
use sp_version::RuntimeVersion;

use frame_support::weights::{
	constants::{ExtrinsicBaseWeight, WEIGHT_REF_TIME_PER_SECOND},
	Weight, WeightToFeeCoefficient, WeightToFeeCoefficients, WeightToFeePolynomial,
};
pub use genesis_config_presets::PARACHAIN_ID;
pub use sp_consensus_aura::sr25519::AuthorityId as AuraId;
pub use sp_runtime::{MultiAddress, Perbill, Permill};

/// Signature of a transaction (sr25519, ed25519 or ecdsa).
pub type Signature = MultiSignature;
/// An account: the public key of the signing scheme.
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// A balance of OPG, in its smallest unit (10^-18 OPG).
pub type Balance = u128;
/// Transaction counter of an account.
pub type Nonce = u32;
/// Block hash.
pub type Hash = sp_core::H256;
/// Block number.
pub type BlockNumber = u32;
/// Address format of extrinsics.
pub type Address = MultiAddress<AccountId, ()>;
/// Block header.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
/// Block.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;
/// A block with justifications.
pub type SignedBlock = generic::SignedBlock<Block>;
/// Block id.
pub type BlockId = generic::BlockId<Block>;

/// Transaction extensions, in the order signers encode them.
/// `StorageWeightReclaim` wraps the rest so that unused proof size is given back to the block.
/// `PrioritizeAnswers` (no data) admits workers' answers (operational) only while the call would
/// accept them, first in the pool.
pub type TxExtension = cumulus_pallet_weight_reclaim::StorageWeightReclaim<
	Runtime,
	(
		frame_system::AuthorizeCall<Runtime>,
		frame_system::CheckNonZeroSender<Runtime>,
		frame_system::CheckSpecVersion<Runtime>,
		frame_system::CheckTxVersion<Runtime>,
		frame_system::CheckGenesis<Runtime>,
		frame_system::CheckEra<Runtime>,
		frame_system::CheckNonce<Runtime>,
		frame_system::CheckWeight<Runtime>,
		pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
		frame_metadata_hash_extension::CheckMetadataHash<Runtime>,
		pallet_inference::PrioritizeAnswers<Runtime>,
	),
>;

/// The extensions a signer of this runtime attaches: immortal era, `nonce`, `tip`, and no
/// metadata hash. Rust clients (tests, the inference worker) build signed extrinsics with it.
pub fn tx_extension(nonce: Nonce, tip: Balance) -> TxExtension {
	(
		frame_system::AuthorizeCall::<Runtime>::new(),
		frame_system::CheckNonZeroSender::<Runtime>::new(),
		frame_system::CheckSpecVersion::<Runtime>::new(),
		frame_system::CheckTxVersion::<Runtime>::new(),
		frame_system::CheckGenesis::<Runtime>::new(),
		frame_system::CheckEra::<Runtime>::from(generic::Era::Immortal),
		frame_system::CheckNonce::<Runtime>::from(nonce),
		frame_system::CheckWeight::<Runtime>::new(),
		pallet_transaction_payment::ChargeTransactionPayment::<Runtime>::from(tip),
		frame_metadata_hash_extension::CheckMetadataHash::<Runtime>::new(false),
		pallet_inference::PrioritizeAnswers::<Runtime>::new(),
	)
		.into()
}

/// Extrinsic as it arrives from the outside.
pub type UncheckedExtrinsic =
	generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;

/// Runtime migrations beyond the pallets' own.
#[allow(unused_parens)]
type Migrations = ();

/// Dispatches blocks and extrinsics to the pallets.
pub type Executive = frame_executive::Executive<
	Runtime,
	Block,
	frame_system::ChainContext<Runtime>,
	Runtime,
	AllPalletsWithSystem,
	Migrations,
>;

/// Native token: OPG, 18 decimals.
pub const TOKEN_SYMBOL: &str = "OPG";

/// Whether this build trusts the **insecure** development CA and Nitro debug mode's zero PCRs
/// from genesis ([`pallet_tee::Config::InsecureDevTrust`]): the node's bundled runtime (feature
/// `insecure-dev-trust`, for the development and local specs) and benchmark builds. A runtime
/// built on its own (`cargo build -p opg-runtime`, srtool) does not, and a genesis asking for it
/// does not build.
pub const INSECURE_DEV_TRUST: bool =
	cfg!(any(feature = "insecure-dev-trust", feature = "runtime-benchmarks"));
/// Decimals of OPG.
pub const TOKEN_DECIMALS: u8 = 18;
/// 1 OPG.
pub const UNIT: Balance = 1_000_000_000_000_000_000;
/// 0.001 OPG.
pub const MILLI_UNIT: Balance = UNIT / 1_000;
/// 0.000001 OPG.
pub const MICRO_UNIT: Balance = UNIT / 1_000_000;
/// Minimum balance that keeps an account alive: 0.001 OPG.
pub const EXISTENTIAL_DEPOSIT: Balance = MILLI_UNIT;

/// Storage deposit: a flat part per item plus a part per byte.
pub const fn deposit(items: u32, bytes: u32) -> Balance {
	(items as Balance) * 20 * MILLI_UNIT + (bytes as Balance) * 100 * MICRO_UNIT
}

/// Maps weight to a fee: the base weight of an extrinsic costs 0.1 milli-OPG.
pub struct WeightToFee;
impl WeightToFeePolynomial for WeightToFee {
	type Balance = Balance;
	fn polynomial() -> WeightToFeeCoefficients<Self::Balance> {
		let p = MILLI_UNIT / 10;
		let q = Balance::from(ExtrinsicBaseWeight::get().ref_time());
		smallvec![WeightToFeeCoefficient {
			degree: 1,
			negative: false,
			coeff_frac: Perbill::from_rational(p % q, q),
			coeff_integer: p / q,
		}]
	}
}

/// Types that the node uses without knowing the runtime's extrinsic format.
pub mod opaque {
	use super::*;
	pub use polkadot_sdk::sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;
	use polkadot_sdk::sp_runtime::{
		generic,
		traits::{BlakeTwo256, Hash as HashT},
	};
	/// Opaque block header.
	pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
	/// Opaque block.
	pub type Block = generic::Block<Header, UncheckedExtrinsic>;
	/// Opaque block id.
	pub type BlockId = generic::BlockId<Block>;
	/// Opaque block hash.
	pub type Hash = <BlakeTwo256 as HashT>::Output;
}

impl_opaque_keys! {
	/// Session keys of a collator.
	pub struct SessionKeys {
		pub aura: Aura,
	}
}

#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: alloc::borrow::Cow::Borrowed("opg"),
	impl_name: alloc::borrow::Cow::Borrowed("opg-node"),
	authoring_version: 1,
	spec_version: 1,
	impl_version: 0,
	apis: apis::RUNTIME_API_VERSIONS,
	transaction_version: 1,
	system_version: 1,
};

/// Target block time. Aura's slot duration; it cannot change once the chain runs.
pub const MILLI_SECS_PER_BLOCK: u64 = 6000;
/// Aura slot duration.
pub const SLOT_DURATION: u64 = MILLI_SECS_PER_BLOCK;
/// Blocks per minute.
pub const MINUTES: BlockNumber = 60_000 / (MILLI_SECS_PER_BLOCK as BlockNumber);
/// Blocks per hour.
pub const HOURS: BlockNumber = MINUTES * 60;
/// Blocks per day.
pub const DAYS: BlockNumber = HOURS * 24;

/// Share of a block that `on_initialize` is assumed to take (limits a single extrinsic).
const AVERAGE_ON_INITIALIZE_RATIO: Perbill = Perbill::from_percent(5);
/// Share of a block for `Normal` extrinsics; the rest is kept for `Operational` ones.
const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);
/// 2 s of compute per 6 s block, and the relay chain's PoV limit.
const MAXIMUM_BLOCK_WEIGHT: Weight = Weight::from_parts(
	WEIGHT_REF_TIME_PER_SECOND.saturating_mul(2),
	cumulus_primitives_core::relay_chain::MAX_POV_SIZE as u64,
);

/// Parachain blocks accepted by the runtime but not yet included in the relay chain.
const UNINCLUDED_SEGMENT_CAPACITY: u32 = 3;
/// Parachain blocks per relay parent.
const BLOCK_PROCESSING_VELOCITY: u32 = 1;
/// Relay chain slot duration.
const RELAY_CHAIN_SLOT_DURATION_MILLIS: u32 = 6000;

/// Async-backing consensus hook of Aura.
type ConsensusHook = cumulus_pallet_aura_ext::FixedVelocityConsensusHook<
	Runtime,
	RELAY_CHAIN_SLOT_DURATION_MILLIS,
	BLOCK_PROCESSING_VELOCITY,
	UNINCLUDED_SEGMENT_CAPACITY,
>;

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
	pub struct Runtime;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type ParachainSystem = cumulus_pallet_parachain_system;
	#[runtime::pallet_index(2)]
	pub type Timestamp = pallet_timestamp;
	#[runtime::pallet_index(3)]
	pub type ParachainInfo = parachain_info;
	#[runtime::pallet_index(4)]
	pub type WeightReclaim = cumulus_pallet_weight_reclaim;

	// Money.
	#[runtime::pallet_index(10)]
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(11)]
	pub type TransactionPayment = pallet_transaction_payment;

	// Governance.
	#[runtime::pallet_index(15)]
	pub type Sudo = pallet_sudo;

	// Collators. Authorship, CollatorSelection, Session, Aura: this order matters.
	#[runtime::pallet_index(20)]
	pub type Authorship = pallet_authorship;
	#[runtime::pallet_index(21)]
	pub type CollatorSelection = pallet_collator_selection;
	#[runtime::pallet_index(22)]
	pub type Session = pallet_session;
	#[runtime::pallet_index(23)]
	pub type Aura = pallet_aura;
	#[runtime::pallet_index(24)]
	pub type AuraExt = cumulus_pallet_aura_ext;

	// XCM.
	#[runtime::pallet_index(30)]
	pub type XcmpQueue = cumulus_pallet_xcmp_queue;
	#[runtime::pallet_index(31)]
	pub type PolkadotXcm = pallet_xcm;
	#[runtime::pallet_index(32)]
	pub type CumulusXcm = cumulus_pallet_xcm;
	#[runtime::pallet_index(33)]
	pub type MessageQueue = pallet_message_queue;

	// Utilities.
	#[runtime::pallet_index(40)]
	pub type Utility = pallet_utility;
	#[runtime::pallet_index(41)]
	pub type Parameters = pallet_parameters;

	// 50..=69: the OPG protocol pallets.
	#[runtime::pallet_index(50)]
	pub type ModelHub = pallet_model_hub;
	#[runtime::pallet_index(51)]
	pub type Inference = pallet_inference;
	#[runtime::pallet_index(52)]
	pub type Tee = pallet_tee;
	#[runtime::pallet_index(53)]
	pub type Zk = pallet_zk;
}

cumulus_pallet_parachain_system::register_validate_block! {
	Runtime = Runtime,
	BlockExecutor = cumulus_pallet_aura_ext::BlockExecutor::<Runtime, Executive>,
}
