//! Chain specifications built into the node: `dev` and `local`, from the runtime's presets.

use opg_runtime::{genesis_config_presets::PARACHAIN_ID, TOKEN_DECIMALS, TOKEN_SYMBOL};
use polkadot_sdk::{
	sc_chain_spec::{ChainSpecExtension, ChainSpecGroup, ChainType, Properties},
	sc_service, sp_genesis_builder,
};
use serde::{Deserialize, Serialize};

/// Chain spec of OPG: the generic spec with the parachain extensions.
pub type ChainSpec = sc_service::GenericChainSpec<Extensions>;

/// Relay chain the built-in specs name (the local relay preset of the `polkadot` binary).
pub const RELAY_CHAIN: &str = "westend-local";

/// Chain spec extensions of a parachain: which relay chain, which para id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ChainSpecGroup, ChainSpecExtension)]
pub struct Extensions {
	/// Relay chain id.
	#[serde(alias = "relayChain", alias = "RelayChain")]
	pub relay_chain: String,
	/// Para id.
	#[serde(alias = "paraId", alias = "ParaId")]
	pub para_id: u32,
}

impl Extensions {
	/// The extensions of a spec, if it has them.
	pub fn try_get(chain_spec: &dyn sc_service::ChainSpec) -> Option<&Self> {
		polkadot_sdk::sc_chain_spec::get_extension(chain_spec.extensions())
	}
}

/// `system_properties` of OPG chains: what wallets and polkadot.js show.
pub fn properties() -> Properties {
	let mut p = Properties::new();
	p.insert("tokenSymbol".into(), TOKEN_SYMBOL.into());
	p.insert("tokenDecimals".into(), TOKEN_DECIMALS.into());
	p.insert("ss58Format".into(), opg_runtime::configs::SS58Prefix::get().into());
	p
}

fn wasm() -> Result<&'static [u8], String> {
	opg_runtime::WASM_BINARY.ok_or_else(|| {
		"the wasm runtime is not built into this binary (was it built with SKIP_WASM_BUILD?)"
			.to_string()
	})
}

/// Single-collator development chain (Alice), used by `--dev`.
pub fn development_chain_spec() -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(
		wasm()?,
		Extensions { relay_chain: RELAY_CHAIN.into(), para_id: PARACHAIN_ID },
	)
	.with_name("OPG Development")
	.with_id("opg_dev")
	.with_chain_type(ChainType::Development)
	.with_genesis_config_preset_name(sp_genesis_builder::DEV_RUNTIME_PRESET)
	.with_properties(properties())
	.build())
}

/// Two-collator local testnet (Alice, Bob) for a local relay chain.
pub fn local_chain_spec() -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(
		wasm()?,
		Extensions { relay_chain: RELAY_CHAIN.into(), para_id: PARACHAIN_ID },
	)
	.with_name("OPG Local Testnet")
	.with_id("opg_local")
	.with_chain_type(ChainType::Local)
	.with_genesis_config_preset_name(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET)
	.with_protocol_id("opg-local")
	.with_properties(properties())
	.build())
}

/// Resolves `--chain`: `dev`, `local`, or a path to a JSON spec.
pub fn load(id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
	Ok(match id {
		"" | "dev" | "opg-dev" => Box::new(development_chain_spec()?),
		"local" | "opg-local" => Box::new(local_chain_spec()?),
		path => Box::new(ChainSpec::from_json_file(std::path::PathBuf::from(path))?),
	})
}
