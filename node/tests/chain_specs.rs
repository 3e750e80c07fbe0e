//! The committed chain specs (chain-specs/) carry OPG's properties and para id, and their
//! genesis state is what the current runtime's presets produce (regenerate with
//! `scripts/chain-specs.sh` after a runtime or preset change).

use std::{path::PathBuf, process::Command};

fn spec_path(name: &str) -> PathBuf {
	PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../chain-specs").join(name)
}

fn load(name: &str) -> serde_json::Value {
	let text = std::fs::read_to_string(spec_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
	serde_json::from_str(&text).unwrap()
}

/// The raw genesis storage `opg-node` builds now for a built-in chain.
fn current_raw_spec(chain: &str) -> serde_json::Value {
	let out = Command::new(env!("CARGO_BIN_EXE_opg-node"))
		.args(["build-spec", "--chain", chain, "--raw", "--disable-default-bootnode"])
		.output()
		.expect("opg-node runs");
	assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
	serde_json::from_slice(&out.stdout).unwrap()
}

/// Top-level genesis storage without `:code`. The wasm blob embeds build paths and depends on
/// the toolchain, so it differs between checkouts of the same commit; everything the presets
/// put into genesis must not.
fn genesis_without_code(spec: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
	let mut top = spec["genesis"]["raw"]["top"].as_object().expect("raw spec").clone();
	assert!(top.remove(CODE_KEY).is_some(), "raw spec has :code");
	top
}

const CODE_KEY: &str = "0x3a636f6465";

#[test]
fn committed_specs_carry_opg_properties_and_para_id() {
	for name in ["opg-dev.json", "opg-dev-raw.json", "opg-local.json", "opg-local-raw.json"] {
		let spec = load(name);
		let props = &spec["properties"];
		assert_eq!(props["tokenSymbol"], "OPG", "{name}");
		assert_eq!(props["tokenDecimals"], 18, "{name}");
		assert_eq!(props["ss58Format"], 42, "{name}");
		let para_id = spec.get("para_id").or_else(|| spec.get("paraId"));
		assert_eq!(para_id.and_then(|v| v.as_u64()), Some(1000), "{name}");
		assert!(spec["relay_chain"].is_string() || spec["relayChain"].is_string(), "{name}");
	}
	assert_eq!(load("opg-local.json")["chainType"], "Local");
	assert_eq!(load("opg-dev.json")["chainType"], "Development");
}

#[test]
fn committed_raw_specs_match_the_current_presets() {
	for (built_in, file) in [("dev", "opg-dev-raw.json"), ("local", "opg-local-raw.json")] {
		let committed = load(file);
		let current = current_raw_spec(built_in);
		assert_eq!(
			genesis_without_code(&committed),
			genesis_without_code(&current),
			"chain-specs/{file} is stale: run scripts/chain-specs.sh and commit the result"
		);
		assert_eq!(committed["genesis"]["raw"]["childrenDefault"], current["genesis"]["raw"]["childrenDefault"]);
		assert_eq!(committed["properties"], current["properties"], "{file}");
		assert_eq!(committed["id"], current["id"], "{file}");
	}
}
