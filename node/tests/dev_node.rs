//! Starts `opg-node --dev` as a process on free ports, waits for blocks to be produced and
//! finalized over JSON-RPC, submits a signed balance transfer, sees it included, and shuts the
//! node down with SIGINT.

mod common;

use std::time::Duration;

use codec::{Decode, Encode};
use common::{rpc, DevNode};
use opg_runtime::{
	AccountId, Balance, Nonce, RuntimeCall, UncheckedExtrinsic, UNIT,
	VERSION,
};
use polkadot_sdk::{
	sp_core::{bytes, H256},
	sp_crypto_hashing as hashing,
	sp_keyring::Sr25519Keyring,
	sp_runtime::{generic::SignedPayload, MultiAddress},
	*,
};
use serde_json::json;

fn account_storage_key(who: &AccountId) -> String {
	let mut key = hashing::twox_128(b"System").to_vec();
	key.extend(hashing::twox_128(b"Account"));
	key.extend(hashing::blake2_128(who.as_ref()));
	key.extend(who.encode());
	bytes::to_hex(&key, false)
}

fn free_balance(port: u16, who: &AccountId) -> Balance {
	let value = rpc(port, "state_getStorage", json!([account_storage_key(who)]));
	let raw = bytes::from_hex(value.as_str().expect("account exists")).unwrap();
	let info =
		frame_system::AccountInfo::<Nonce, pallet_balances::AccountData<Balance>>::decode(
			&mut &raw[..],
		)
		.unwrap();
	info.data.free
}

fn hash_of(value: &serde_json::Value) -> H256 {
	let raw = bytes::from_hex(value.as_str().unwrap()).unwrap();
	H256::from_slice(&raw)
}

fn signed_transfer(port: u16, dest: &AccountId, value: Balance) -> UncheckedExtrinsic {
	let genesis = hash_of(&rpc(port, "chain_getBlockHash", json!([0])));
	let alice = Sr25519Keyring::Alice;
	let nonce = rpc(port, "system_accountNextIndex", json!([alice.to_account_id().to_string()]))
		.as_u64()
		.unwrap() as Nonce;
	let call = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
		dest: MultiAddress::Id(dest.clone()),
		value,
	});
	let ext = opg_runtime::tx_extension(nonce, 0);
	let implicit = (
		(),
		(),
		VERSION.spec_version,
		VERSION.transaction_version,
		genesis,
		genesis,
		(),
		(),
		(),
		None,
	);
	let payload = SignedPayload::from_raw(call.clone(), ext.clone(), implicit);
	let signature = payload.using_encoded(|bytes| alice.sign(bytes));
	UncheckedExtrinsic::new_signed(
		call,
		MultiAddress::Id(alice.to_account_id()),
		signature.into(),
		ext,
	)
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
	let xt = signed_transfer(port, &dest, amount);
	let tx_hash = rpc(port, "author_submitExtrinsic", json!([bytes::to_hex(&xt.encode(), false)]));
	assert!(tx_hash.as_str().unwrap().starts_with("0x"));

	let deadline = std::time::Instant::now() + Duration::from_secs(60);
	loop {
		let value = rpc(port, "state_getStorage", json!([account_storage_key(&dest)]));
		if !value.is_null() {
			break;
		}
		assert!(std::time::Instant::now() < deadline, "transfer not included within 60 s");
		std::thread::sleep(Duration::from_millis(500));
	}
	assert_eq!(free_balance(port, &dest), amount);

	// An invalid transaction (bad signature) is refused by the pool with an error.
	let mut bad = signed_transfer(port, &dest, amount);
	if let sp_runtime::generic::Preamble::Signed(_, ref mut sig, _) = bad.preamble {
		*sig = Sr25519Keyring::Bob.sign(b"not the payload").into();
	}
	let err = common::rpc_error(
		port,
		"author_submitExtrinsic",
		json!([bytes::to_hex(&bad.encode(), false)]),
	);
	assert!(err.contains("Invalid") || err.contains("invalid"), "{err}");

	let status = node.stop();
	assert!(status.success(), "node exited with {status:?}");
}

#[test]
fn help_lists_the_inference_flags() {
	let out = std::process::Command::new(env!("CARGO_BIN_EXE_opg-node"))
		.arg("--help")
		.output()
		.expect("runs");
	assert!(out.status.success());
	let help = String::from_utf8_lossy(&out.stdout);
	for flag in ["--inference", "--inference-gpu", "--inference-device", "--model-dir", "--inference-key", "--dev-block-time"] {
		assert!(help.contains(flag), "--help lacks {flag}");
	}
}

#[test]
fn inference_flag_without_worker_is_reported_not_ignored() {
	let mut node = DevNode::start(&["--inference", "--model-dir", "/tmp/opg-models"]);
	node.wait_for_finalized(1, Duration::from_secs(90));
	let status = node.stop();
	assert!(status.success());
	let log = node.log();
	assert!(
		log.contains("no inference worker is compiled into this opg-node build"),
		"log does not report the missing worker"
	);
}
