//! Starts `opg-node --dev` as a process on free ports, waits for blocks to be produced and
//! finalized over JSON-RPC, submits a signed balance transfer, sees it included, and shuts the
//! node down with SIGINT.

mod common;

use std::time::Duration;

use common::{best, free_balance, hex, rpc, signed, submit, try_free_balance, DevNode};
use opg_runtime::{AccountId, Balance, RuntimeCall, UNIT};
use polkadot_sdk::{sp_keyring::Sr25519Keyring, sp_runtime::MultiAddress, *};
use serde_json::json;

fn transfer(dest: &AccountId, value: Balance) -> RuntimeCall {
	RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
		dest: MultiAddress::Id(dest.clone()),
		value,
	})
}

#[test]
fn dev_node_produces_finalizes_and_includes_a_transfer() {
	let mut node = DevNode::start(&["--dev-block-time", "1000"]);
	let port = node.rpc_port;

	// Chain properties as polkadot.js reads them.
	let props = rpc(port, "system_properties", json!([]));
	assert_eq!(props["tokenSymbol"], "OPG");
	assert_eq!(props["tokenDecimals"], 18);
	assert_eq!(props["ss58Format"], 42);
	assert_eq!(rpc(port, "system_chain", json!([])), "OPG Development");

	// Blocks are produced and finalized.
	node.wait_for_finalized(3, Duration::from_secs(90));

	// A signed transfer from Alice to a fresh account is included.
	let dest: AccountId = [42u8; 32].into();
	let amount = 3 * UNIT;
	submit(port, Sr25519Keyring::Alice, transfer(&dest, amount));
	let deadline = std::time::Instant::now() + Duration::from_secs(60);
	while try_free_balance(port, &dest, best(port)).is_none() {
		assert!(std::time::Instant::now() < deadline, "transfer not included within 60 s");
		std::thread::sleep(Duration::from_millis(500));
	}
	assert_eq!(free_balance(port, &dest, best(port)), amount);

	// An invalid transaction (bad signature) is refused by the pool with an error.
	let mut bad = signed(port, Sr25519Keyring::Alice, transfer(&dest, amount));
	if let sp_runtime::generic::Preamble::Signed(_, ref mut sig, _) = bad.preamble {
		*sig = Sr25519Keyring::Bob.sign(b"not the payload").into();
	}
	let err = common::rpc_error(port, "author_submitExtrinsic", json!([hex(&bad)]));
	assert!(err.contains("Invalid") || err.contains("invalid"), "{err}");

	let status = node.stop();
	assert!(status.success(), "node exited with {status:?}; its log ends:\n{}", node.log_tail(80));
}

#[test]
fn help_lists_the_inference_flags() {
	let out = std::process::Command::new(env!("CARGO_BIN_EXE_opg-node"))
		.arg("--help")
		.output()
		.expect("runs");
	assert!(out.status.success());
	let help = String::from_utf8_lossy(&out.stdout);
	for flag in [
		"--inference",
		"--inference-gpu",
		"--inference-device",
		"--model-dir",
		"--inference-key",
		"--dev-block-time",
	] {
		assert!(help.contains(flag), "--help lacks {flag}");
	}
}
