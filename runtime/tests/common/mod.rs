//! Helpers shared by the runtime's native tests: preset externalities, signed extrinsics,
//! block starts through `Executive`.
#![allow(dead_code)]

use codec::Encode;
use opg_runtime::{
	genesis_config_presets, Executive, Header, RuntimeCall, RuntimeGenesisConfig, System,
	UncheckedExtrinsic,
};
use polkadot_sdk::{
	sp_io::TestExternalities,
	sp_keyring::Sr25519Keyring,
	sp_runtime::{
		generic::{Digest, SignedPayload},
		traits::Header as _,
		BuildStorage, MultiAddress,
	},
};

/// RFC 7386 merge patch, as the node applies preset patches to the default config.
pub fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
	match (base, patch) {
		(serde_json::Value::Object(base), serde_json::Value::Object(patch)) =>
			for (key, value) in patch {
				if value.is_null() {
					base.remove(&key);
				} else {
					merge(base.entry(key).or_insert(serde_json::Value::Null), value);
				}
			},
		(base, patch) => *base = patch,
	}
}

pub fn externalities(preset: &str) -> TestExternalities {
	let patch = genesis_config_presets::get_preset(&preset.into()).expect("preset exists");
	let mut config = serde_json::to_value(RuntimeGenesisConfig::default()).unwrap();
	merge(&mut config, serde_json::from_slice(&patch).unwrap());
	let config: RuntimeGenesisConfig = serde_json::from_value(config).expect("preset is valid");
	let storage = config.build_storage().expect("genesis builds");
	TestExternalities::new(storage)
}

pub fn signed(who: Sr25519Keyring, call: RuntimeCall, nonce: u32) -> UncheckedExtrinsic {
	let ext = opg_runtime::tx_extension(nonce, 0);
	let payload = SignedPayload::new(call.clone(), ext.clone()).expect("payload builds");
	let signature = payload.using_encoded(|bytes| who.sign(bytes));
	UncheckedExtrinsic::new_signed(
		call,
		MultiAddress::Id(who.to_account_id()),
		signature.into(),
		ext,
	)
}

pub fn start_block(number: u32) {
	let header = Header::new(
		number,
		Default::default(),
		Default::default(),
		System::block_hash(number - 1),
		Digest::default(),
	);
	Executive::initialize_block(&header);
}

/// What the next block's relay parent brings the inference market's draw: a new randomness
/// round. Then the draw runs (`on_poll`) in this block.
pub fn draw() {
	use polkadot_sdk::frame_support::{traits::OnPoll, weights::WeightMeter};
	let (round, _) = pallet_inference::Randomness::<opg_runtime::Runtime>::get();
	opg_runtime::Inference::note_randomness(
		round + 1,
		polkadot_sdk::sp_io::hashing::blake2_256(&round.encode()),
	);
	<opg_runtime::AllPalletsWithSystem as OnPoll<u32>>::on_poll(
		System::block_number(),
		&mut WeightMeter::new(),
	);
}
