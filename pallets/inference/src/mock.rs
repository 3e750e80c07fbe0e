//! Test runtime of the inference market, with the model hub and a scriptable verifier.

use crate::{self as pallet_inference, *};
use core::cell::RefCell;
use opg_primitives::{ElemType, Tensor, TensorSpec};
use pallet_model_hub::{ReleaseParams, TensorSpecsOf};
use polkadot_sdk::{
	frame_support::{
		self, assert_ok, derive_impl, parameter_types,
		traits::{ConstU32, ConstU64, Hooks},
	},
	frame_system, pallet_balances, sp_io,
	sp_runtime::{
		testing::{TestSignature, UintAuthorityId},
		BuildStorage, Permill,
	},
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
	#[runtime::pallet_index(3)]
	pub type Inference = pallet_inference;
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
	type ExistentialDeposit = ConstU64<5>;
}

parameter_types! {
	pub const MaxRoyalty: Permill = Permill::from_percent(20);
	pub const Fees: VerificationFees<u64> = VerificationFees {
		flat: PerMode { vanilla: 10, tee: 20, zk: 30 },
		per_byte: 1,
	};
	/// Four for the benchmarks; none in the tests unless one asks (`new_test_ext`).
	pub static AuditsPerBatch: u32 = 4;
}

impl pallet_model_hub::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type DepositBase = ConstU64<10>;
	type DepositPerByte = ConstU64<0>;
	type VerifyingKeys = RegisteredKey;
	type MaxNameLen = ConstU32<32>;
	type MaxUriLen = ConstU32<64>;
	type MaxVersionLen = ConstU32<16>;
	type MaxTensors = ConstU32<2>;
	type MaxRank = ConstU32<4>;
	type MaxReleasesPerRepository = ConstU32<8>;
	type MaxRoyalty = MaxRoyalty;
	type MaxContextLength = ConstU32<{ 128 * 1024 }>;
	type WeightInfo = ();
}

/// The one verifying key the hub treats as registered, made for the demo release's artifact.
pub const ZK_KEY: H256 = H256::repeat_byte(0xAA);
pub struct RegisteredKey;
impl opg_primitives::VerifyingKeyRegistry for RegisteredKey {
	fn model_of(vk: &H256) -> Option<H256> {
		(*vk == ZK_KEY).then_some(DEMO_ARTIFACT)
	}
}

thread_local! {
	/// Modes the mock verifier accepts at all.
	pub static SUPPORTED: RefCell<ModeSet> = const { RefCell::new(ModeSet(0b111)) };
	/// Workers without a usable enclave key (cannot answer TEE jobs).
	pub static NO_ENCLAVE: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
	/// Jobs reported to the consumer, with their outcome.
	pub static FINISHED: RefCell<Vec<(JobId, &'static str)>> = const { RefCell::new(Vec::new()) };
}

/// The mock enclave's signature of `payload`: what `check_enclave_signature` accepts for a
/// worker with a usable key.
pub fn enclave_sign(payload: &[u8]) -> [u8; 64] {
	let hash = polkadot_sdk::sp_crypto_hashing::blake2_256(payload);
	let mut signature = [0u8; 64];
	signature[..32].copy_from_slice(&hash);
	signature[32..].copy_from_slice(&hash);
	signature
}

/// Evidence is valid when its bytes are `b"valid"`.
pub struct MockVerifier;
impl ResultVerifier<u64> for MockVerifier {
	fn supports(mode: VerificationMode) -> bool {
		SUPPORTED.with(|s| s.borrow().contains(mode))
	}
	fn verify<M: Get<u32>>(
		context: &VerificationContext<u64>,
		evidence: &Evidence<M>,
	) -> Result<(), VerifyError> {
		// ZK statements are recomputed from the input: it must still be there; other evidence
		// does not need it, so it is not read for them.
		if (evidence.mode() == VerificationMode::Zk) != context.input.is_some() {
			return Err(VerifyError::Malformed);
		}
		match evidence {
			Evidence::TeeSignature(b) | Evidence::ZkProof(b) if &b[..] == b"valid" => Ok(()),
			Evidence::None => Err(VerifyError::UnsupportedMode),
			_ => Err(VerifyError::Invalid),
		}
	}
	fn weight(_: VerificationMode, _: u32, _: u32, _: u32) -> Weight {
		Weight::from_parts(1_000_000, 0)
	}
	fn can_answer(worker: &u64, mode: VerificationMode) -> bool {
		mode != VerificationMode::Tee || NO_ENCLAVE.with(|n| !n.borrow().contains(worker))
	}
	fn check_enclave_signature(worker: &u64, payload: &[u8], signature: &[u8; 64]) -> bool {
		Self::can_answer(worker, VerificationMode::Tee) && *signature == enclave_sign(payload)
	}
}

/// Records outcomes.
pub struct MockConsumer;
impl InferenceConsumer<u64> for MockConsumer {
	fn on_job_finished(job: JobId, outcome: JobOutcome) {
		let tag = match outcome {
			JobOutcome::Settled { .. } => "settled",
			JobOutcome::Failed => "failed",
			JobOutcome::Rejected => "rejected",
			JobOutcome::Expired => "expired",
			JobOutcome::Cancelled => "cancelled",
		};
		FINISHED.with(|f| f.borrow_mut().push((job, tag)));
	}
	fn weight() -> Weight {
		Weight::from_parts(10_000, 0)
	}
}

impl pallet_inference::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Models = ModelHub;
	type Verifier = MockVerifier;
	type Consumer = MockConsumer;
	type MinWorkerStake = ConstU64<1_000>;
	type VerificationFees = Fees;
	type SlashOnTimeout = ConstU64<300>;
	type SlashOnInvalidProof = ConstU64<500>;
	type UnbondingPeriod = ConstU64<10>;
	type DefaultJobTimeout = ConstU64<20>;
	type MinJobTimeout = ConstU64<2>;
	type MaxJobTimeout = ConstU64<100>;
	type RetentionPeriod = ConstU64<50>;
	type MaxInputLen = ConstU32<256>;
	type MaxOutputLen = ConstU32<128>;
	type MaxEvidenceLen = ConstU32<64>;
	type MaxServedReleases = ConstU32<4>;
	type MaxWorkersPerRelease = ConstU32<4>;
	type MaxWorkerCapacity = ConstU32<8>;
	type AgendaWeight = AgendaWeight;
	type MaxQueueLen = ConstU32<6>;
	type MinDrawCandidates = ConstU32<2>;
	type MaxPendingJobs = ConstU32<8>;
	type MaxAssignmentDelay = ConstU64<5>;
	type AssignmentWeight = AssignmentWeight;
	type ChannelSignature = TestSignature;
	type ChannelSigner = UintAuthorityId;
	type MinChannelDeposit = ConstU64<100>;
	type ChannelCloseWindow = ConstU64<10>;
	type DisputeWindow = ConstU64<20>;
	type MaxOpenBatches = ConstU32<3>;
	type MaxEndpointLen = ConstU32<40>;
	type AuditsPerBatch = AuditsPerBatch;
	type OpenDeadline = ConstU64<5>;
	type ChallengeBond = ConstU64<50>;
	type ReceiptSlash = ConstU64<400>;
	type WeightInfo = ();
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = ModelHub;
	#[cfg(feature = "runtime-benchmarks")]
	type ChannelBenchmarkHelper = TestSigner;
}

/// Signs as the test runtime does: a [`TestSignature`] names its signer and its message.
#[cfg(feature = "runtime-benchmarks")]
pub struct TestSigner;
#[cfg(feature = "runtime-benchmarks")]
impl ChannelBenchmarkHelper<u64, TestSignature> for TestSigner {
	fn signer() -> u64 {
		77
	}
	fn sign(signer: &u64, message: &[u8]) -> TestSignature {
		TestSignature(*signer, message.to_vec())
	}
}

/// The agenda's budget per block: visiting a block and three expiries.
pub struct AgendaWeight;
impl Get<Weight> for AgendaWeight {
	fn get() -> Weight {
		<() as crate::WeightInfo>::on_initialize_base().saturating_add(
			<() as crate::WeightInfo>::on_initialize_expire()
				.saturating_add(<MockConsumer as InferenceConsumer<u64>>::weight())
				.saturating_mul(3),
		)
	}
}

/// The draw's budget per block: the base and three draws.
pub struct AssignmentWeight;
impl Get<Weight> for AssignmentWeight {
	fn get() -> Weight {
		<() as crate::WeightInfo>::on_poll_base()
			.saturating_add(crate::Pallet::<Test>::assign_weight().saturating_mul(3))
	}
}

pub const PUBLISHER: u64 = 1;
pub const ALICE: u64 = 10; // requester
pub const BOB: u64 = 11; // requester
pub const W1: u64 = 20; // workers
pub const W2: u64 = 21;
pub const W3: u64 = 22;
pub const POOR: u64 = 30;

pub const START_BALANCE: u64 = 1_000_000;

/// Input matching the demo release: one f32 tensor of shape [1, 2].
pub fn input() -> BoundedVec<u8, ConstU32<256>> {
	vec![Tensor { elem: ElemType::F32, shape: vec![1, 2], data: vec![0; 8] }]
		.encode()
		.try_into()
		.unwrap()
}

/// Output matching the demo release: one f32 tensor of shape [1].
pub fn output() -> BoundedVec<u8, ConstU32<128>> {
	vec![Tensor { elem: ElemType::F32, shape: vec![1], data: vec![1; 4] }]
		.encode()
		.try_into()
		.unwrap()
}

fn specs(shape: &[u32]) -> TensorSpecsOf<Test> {
	vec![TensorSpec {
		name: b"x".to_vec().try_into().unwrap(),
		elem: ElemType::F32,
		shape: shape.to_vec().try_into().unwrap(),
	}]
	.try_into()
	.unwrap()
}

/// The demo release's model (artifact hash).
pub const DEMO_ARTIFACT: H256 = H256::repeat_byte(9);

/// Parameters of a demo release (`[1, 2]` f32 in, `[1]` f32 out, royalty 10%) in `modes`.
pub fn release_params(version: &[u8], modes: ModeSet) -> ReleaseParams<Test> {
	ReleaseParams {
		version: version.to_vec().try_into().unwrap(),
		artifact: DEMO_ARTIFACT,
		artifact_size: 100,
		format: opg_primitives::ModelFormat::Onnx,
		source_uri: b"file:///models/demo.onnx".to_vec().try_into().unwrap(),
		inputs: specs(&[1, 2]),
		outputs: specs(&[1]),
		modes,
		zk_verifying_key: modes.contains(VerificationMode::Zk).then_some(ZK_KEY),
		royalty: Permill::from_percent(10),
		llm: None,
	}
}

/// Publishes a release with `modes` (royalty 10%) and returns its id.
pub fn publish_release(modes: ModeSet) -> ReleaseId {
	publish_with(|version| release_params(version, modes))
}

/// Publishes `params(version)` in the publisher's repository (created on first use), the
/// version being the new release's id; returns the id.
fn publish_with(params: impl FnOnce(&[u8]) -> ReleaseParams<Test>) -> ReleaseId {
	if pallet_model_hub::Repositories::<Test>::get(0).is_none() {
		assert_ok!(ModelHub::create_repository(
			RuntimeOrigin::signed(PUBLISHER),
			b"demo".to_vec().try_into().unwrap(),
			Default::default()
		));
	}
	let id = pallet_model_hub::NextReleaseId::<Test>::get();
	assert_ok!(ModelHub::publish_release(
		RuntimeOrigin::signed(PUBLISHER),
		0,
		Box::new(params(&id.to_le_bytes()))
	));
	id
}

/// The LLM release's model (artifact hash).
pub const LLM_ARTIFACT: H256 = H256::repeat_byte(7);

/// Parameters of an LLM release (GGUF; context 64 tokens, vocabulary 100, prompt overhead 10
/// and 5 per message; royalty 10%) in `modes`.
pub fn llm_release_params(version: &[u8], modes: ModeSet) -> ReleaseParams<Test> {
	ReleaseParams {
		version: version.to_vec().try_into().unwrap(),
		artifact: LLM_ARTIFACT,
		artifact_size: 1000,
		format: opg_primitives::ModelFormat::Gguf,
		source_uri: b"file:///models/llm.gguf".to_vec().try_into().unwrap(),
		inputs: Default::default(),
		outputs: Default::default(),
		modes,
		zk_verifying_key: None,
		royalty: Permill::from_percent(10),
		llm: Some(opg_primitives::chat::LlmSpec {
			architecture: b"llama".to_vec().try_into().unwrap(),
			context_length: 64,
			vocab_size: 100,
			template_hash: H256::repeat_byte(3),
			prompt_overhead: 10,
			message_overhead: 5,
		}),
	}
}

/// Publishes an LLM release with `modes` and returns its id.
pub fn publish_llm_release(modes: ModeSet) -> ReleaseId {
	publish_with(|version| llm_release_params(version, modes))
}

/// A chat request of one user message, greedy, with `max_tokens`.
pub fn chat_request(content: &str, max_tokens: u32) -> opg_primitives::chat::ChatRequest {
	use opg_primitives::chat::*;
	ChatRequest {
		prompt: Prompt::Chat(vec![ChatMessage {
			role: Role::User,
			content: content.as_bytes().to_vec(),
		}]),
		max_tokens,
		sampling: Sampling::default(),
		stop: vec![],
	}
}

/// An answer with `prompt` prompt tokens and `completion` generated tokens.
pub fn chat_response(prompt: u32, completion: u32) -> BoundedVec<u8, ConstU32<128>> {
	use opg_primitives::chat::*;
	ChatResponse {
		text: b"4".to_vec(),
		token_ids: (0..completion).map(|i| i % 100).collect(),
		finish_reason: FinishReason::Stop,
		prompt_tokens: prompt,
		completion_tokens: completion,
		engine: b"opg-llm/test".to_vec(),
		device_class: b"cpu".to_vec(),
		logits_digest: 1,
	}
	.encode()
	.try_into()
	.unwrap()
}

/// Vanilla and TEE.
pub fn vanilla_and_tee() -> ModeSet {
	ModeSet::of(&[VerificationMode::Vanilla, VerificationMode::Tee])
}

/// Registers `who` with `stake` and `price`, serving `release` in `modes`.
pub fn register(who: u64, release: ReleaseId, stake: u64, price: u64, modes: ModeSet) {
	assert_ok!(Inference::register_worker(
		RuntimeOrigin::signed(who),
		stake,
		vec![release].try_into().unwrap(),
		modes,
		price,
		4,
		Hardware::Cpu
	));
}

/// A fresh randomness round, as the relay parent of a new block would bring.
pub fn new_randomness() {
	let round = crate::Randomness::<Test>::get().0 + 1;
	Inference::note_randomness(round, sp_io::hashing::blake2_256(&round.to_le_bytes()));
}

/// Draws the pending jobs now, with fresh randomness (what the next block's `on_poll` would
/// do, without moving the block number).
pub fn draw() {
	new_randomness();
	Inference::on_poll(System::block_number(), &mut WeightMeter::new());
}

/// Advances to block `n`, running the hooks as the executive would; each block brings fresh
/// randomness, as a relay parent does.
pub fn run_to_block(n: u64) {
	while System::block_number() < n {
		let next = System::block_number() + 1;
		Inference::on_finalize(System::block_number());
		// A new block starts empty, as `System::initialize` would leave it.
		frame_system::BlockWeight::<Test>::kill();
		System::set_block_number(next);
		Inference::on_initialize(next);
		new_randomness();
		Inference::on_poll(next, &mut WeightMeter::new());
		Inference::on_idle(next, Weight::MAX);
	}
}

pub fn finished() -> Vec<(JobId, &'static str)> {
	FINISHED.with(|f| f.borrow().clone())
}

/// Genesis storage of the system pallet with `balances` endowed.
pub fn storage_with(balances: Vec<(u64, u64)>) -> polkadot_sdk::sp_runtime::Storage {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> { balances, ..Default::default() }
		.assimilate_storage(&mut storage)
		.unwrap();
	storage
}

/// Fresh state; after `test` the invariants of both pallets are checked, and issuance must
/// have fallen by exactly what the market burned.
pub fn new_test_ext(test: impl FnOnce()) {
	let storage = storage_with(vec![
		(PUBLISHER, START_BALANCE),
		(ALICE, START_BALANCE),
		(BOB, START_BALANCE),
		(W1, START_BALANCE),
		(W2, START_BALANCE),
		(W3, START_BALANCE),
		(POOR, 100),
	]);
	SUPPORTED.with(|s| *s.borrow_mut() = ModeSet(0b111));
	FINISHED.with(|f| f.borrow_mut().clear());
	AuditsPerBatch::set(0);
	NO_ENCLAVE.with(|n| n.borrow_mut().clear());
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| {
		System::set_block_number(1);
		let issuance = Balances::total_issuance();
		test();
		check_invariants(issuance);
	});
}

/// try_state of both pallets and the burn/issuance identity.
pub fn check_invariants(initial_issuance: u64) {
	ModelHub::do_try_state().expect("hub invariants");
	Inference::do_try_state().expect("market invariants");
	assert_eq!(
		Balances::total_issuance(),
		initial_issuance - TotalBurned::<Test>::get(),
		"issuance fell by exactly what was burned"
	);
}

#[cfg(feature = "runtime-benchmarks")]
pub fn new_bench_ext() -> sp_io::TestExternalities {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	sp_io::TestExternalities::new(storage)
}

/// All three modes.
pub fn all_modes() -> ModeSet {
	ModeSet(0b111)
}
