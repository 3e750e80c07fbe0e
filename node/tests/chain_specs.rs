//! The committed chain specs (chain-specs/) carry OPG's properties and para id, and still
//! produce the genesis that the current runtime produces (regenerate with
//! `scripts/chain-specs.sh` after a runtime change).

use std::{path::PathBuf, process::Command};

fn spec_path(name: &str) -> PathBuf {
	PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../chain-specs").join(name)
}

fn load(name: &str) -> serde_json::Value {
	let text = std::fs::read_to_string(spec_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
	serde_json::from_str(&text).unwrap()
}

fn genesis_head(chain: &str) -> String {
	let out = Command::new(env!("CARGO_BIN_EXE_opg-node"))
		.args(["export-genesis-head", "--chain", chain])
		.output()
		.expect("opg-node runs");
	assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
	String::from_utf8(out.stdout).unwrap().trim().to_string()
}

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
fn committed_raw_specs_match_the_current_runtime() {
	for (built_in, file) in [("dev", "opg-dev-raw.json"), ("local", "opg-local-raw.json")] {
		let committed = genesis_head(spec_path(file).to_str().unwrap());
		let current = genesis_head(built_in);
		assert_eq!(
			committed, current,
			"chain-specs/{file} is stale: run scripts/chain-specs.sh and commit the result"
		);
	}
}
