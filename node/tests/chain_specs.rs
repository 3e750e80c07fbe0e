//! The committed chain specs (chain-specs/) carry OPG's properties and para id, and their
//! genesis state is what the current runtime's presets produce (regenerate with
//! `scripts/regen/chain-specs.sh` after a runtime or preset change).

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
			"chain-specs/{file} is stale: run scripts/regen/chain-specs.sh and commit the result"
		);
		assert_eq!(
			committed["genesis"]["raw"]["childrenDefault"],
			current["genesis"]["raw"]["childrenDefault"]
		);
		assert_eq!(committed["properties"], current["properties"], "{file}");
		assert_eq!(committed["id"], current["id"], "{file}");
	}
}

/// `opg-node <args>` with a scratch base path; its stdout.
fn node_stdout(args: &[&str]) -> String {
	let base =
		std::env::temp_dir().join(format!("opg-spec-test-{}-{}", std::process::id(), args[0]));
	let out = Command::new(env!("CARGO_BIN_EXE_opg-node"))
		.args(args)
		.arg("--base-path")
		.arg(&base)
		.output()
		.expect("opg-node runs");
	let _ = std::fs::remove_dir_all(&base);
	assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
	String::from_utf8(out.stdout).expect("hex output").trim().to_string()
}

/// What zombienet registers on the relay chain for parachain 1000: the genesis head and code
/// that `export-genesis-head`/`export-genesis-wasm` derive from the committed local spec.
#[test]
fn the_local_spec_exports_the_genesis_head_and_code_the_relay_chain_registers() {
	let path = spec_path("opg-local-raw.json");
	let path = path.to_str().expect("utf-8 path");
	let spec = load("opg-local-raw.json");

	let wasm = node_stdout(&["export-genesis-wasm", "--chain", path]);
	assert_eq!(
		wasm,
		spec["genesis"]["raw"]["top"][CODE_KEY].as_str().unwrap(),
		"the validation code is the spec's :code"
	);

	// A genesis header: zero parent, number 0, the state root, the empty extrinsics root, no
	// digest.
	let head = node_stdout(&["export-genesis-head", "--chain", path]);
	let head = head.strip_prefix("0x").expect("hex");
	assert_eq!(head.len(), 2 * 98, "{head}");
	assert_eq!(&head[..66], &"0".repeat(66), "parent hash and number");
	let state_root = &head[66..130];
	assert_ne!(state_root, "0".repeat(64));
	assert_eq!(&head[130..194], "03170a2e7597b7b7e3d84c05391d139a62b157e78786d8c082f29dcf4c111314");
	assert_eq!(&head[194..], "00");
	// Deterministic: the relay chain and every collator must derive the same head.
	assert_eq!(
		node_stdout(&["export-genesis-head", "--chain", path]).trim_start_matches("0x"),
		head
	);
}
