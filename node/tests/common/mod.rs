//! Helpers of the node's process tests: free ports, a minimal JSON-RPC client over HTTP, a dev
//! node child process that is stopped with SIGINT, and chain reads and signed extrinsics in the
//! runtime's own types.
#![allow(dead_code)]

use std::{
	io::{Read, Write},
	net::{TcpListener, TcpStream},
	path::PathBuf,
	process::{Child, Command, ExitStatus, Stdio},
	time::{Duration, Instant},
};

use codec::{Decode, Encode};
use opg_runtime::{
	AccountId, Balance, Nonce, RuntimeCall, RuntimeEvent, UncheckedExtrinsic, VERSION,
};
use polkadot_sdk::{
	sp_core::{bytes, H256},
	sp_crypto_hashing as hashing,
	sp_keyring::Sr25519Keyring,
	sp_runtime::{generic::SignedPayload, MultiAddress},
	*,
};
use serde_json::{json, Value};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
	TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn post(port: u16, body: &str) -> std::io::Result<String> {
	let mut stream = TcpStream::connect(("127.0.0.1", port))?;
	stream.set_read_timeout(Some(Duration::from_secs(30)))?;
	write!(
		stream,
		"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
		 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
		body.len()
	)?;
	let mut response = String::new();
	stream.read_to_string(&mut response)?;
	let body = response
		.split_once("\r\n\r\n")
		.map(|(_, b)| b.to_string())
		.ok_or_else(|| std::io::Error::other("malformed HTTP response"))?;
	Ok(body)
}

fn call(port: u16, method: &str, params: Value) -> std::io::Result<Value> {
	let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
	let text = post(port, &body)?;
	serde_json::from_str(&text).map_err(std::io::Error::other)
}

/// Calls `method` and returns its result; panics on an RPC error.
pub fn rpc(port: u16, method: &str, params: Value) -> Value {
	let response = call(port, method, params).expect("RPC reachable");
	if let Some(error) = response.get("error") {
		panic!("{method} failed: {error}");
	}
	response["result"].clone()
}

/// Calls `method`, expecting an RPC error, and returns its text.
pub fn rpc_error(port: u16, method: &str, params: Value) -> String {
	let response = call(port, method, params).expect("RPC reachable");
	response
		.get("error")
		.unwrap_or_else(|| panic!("{method} succeeded: {response}"))
		.to_string()
}

/// An `opg-node --dev` child process with its own base path and ports.
pub struct DevNode {
	child: Option<Child>,
	/// RPC port (HTTP and WebSocket).
	pub rpc_port: u16,
	/// Base path (chain database, keystore, worker state).
	pub base: PathBuf,
	log: PathBuf,
	args: Vec<String>,
}

impl DevNode {
	/// Starts the node with `--dev` and extra arguments, and waits until RPC answers.
	pub fn start(extra: &[&str]) -> Self {
		let rpc_port = free_port();
		let base =
			std::env::temp_dir().join(format!("opg-node-test-{}-{rpc_port}", std::process::id()));
		let _ = std::fs::remove_dir_all(&base);
		std::fs::create_dir_all(&base).unwrap();
		let log = base.join("node.log");
		let args = extra.iter().map(|a| a.to_string()).collect();
		let mut node = Self { child: None, rpc_port, base, log, args };
		node.spawn();
		node
	}

	fn spawn(&mut self) {
		let log_file =
			std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
		let child = Command::new(env!("CARGO_BIN_EXE_opg-node"))
			.args(["--dev", "--no-hardware-benchmarks", "--no-telemetry", "--no-prometheus"])
			.args(["--base-path", self.base.to_str().unwrap()])
			.args(["--rpc-port", &self.rpc_port.to_string()])
			.args(["--port", &free_port().to_string()])
			.args(&self.args)
			.stdout(Stdio::null())
			.stderr(log_file)
			.spawn()
			.expect("opg-node starts");
		self.child = Some(child);
		let deadline = Instant::now() + Duration::from_secs(120);
		while call(self.rpc_port, "system_health", json!([])).is_err() {
			assert!(Instant::now() < deadline, "RPC did not come up:\n{}", self.log());
			std::thread::sleep(Duration::from_millis(250));
		}
	}

	/// Stops the node and starts it again on the same base path and RPC port.
	pub fn restart(&mut self) -> ExitStatus {
		let status = self.stop();
		self.spawn();
		status
	}

	/// The node's log so far.
	pub fn log(&self) -> String {
		std::fs::read_to_string(&self.log).unwrap_or_default()
	}

	/// The last `lines` lines of the node's log (for failure messages: the directory is
	/// removed when the node is dropped).
	pub fn log_tail(&self, lines: usize) -> String {
		let log = self.log();
		let all: Vec<&str> = log.lines().collect();
		all[all.len().saturating_sub(lines)..].join("\n")
	}

	/// Waits until the finalized head reaches `number`.
	pub fn wait_for_finalized(&self, number: u64, timeout: Duration) {
		let deadline = Instant::now() + timeout;
		loop {
			let head = rpc(self.rpc_port, "chain_getFinalizedHead", json!([]));
			let header = rpc(self.rpc_port, "chain_getHeader", json!([head]));
			let n = u64::from_str_radix(
				header["number"].as_str().unwrap().trim_start_matches("0x"),
				16,
			)
			.unwrap();
			if n >= number {
				return;
			}
			assert!(Instant::now() < deadline, "finalized #{n} < #{number}:\n{}", self.log());
			std::thread::sleep(Duration::from_millis(500));
		}
	}

	/// Sends SIGINT and waits (at most 60 s) for the process to exit.
	pub fn stop(&mut self) -> ExitStatus {
		let mut child = self.child.take().unwrap();
		let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
		let deadline = Instant::now() + Duration::from_secs(60);
		loop {
			if let Some(status) = child.try_wait().unwrap() {
				return status;
			}
			if Instant::now() > deadline {
				let _ = child.kill();
				panic!("node did not stop within 60 s after SIGINT:\n{}", self.log());
			}
			std::thread::sleep(Duration::from_millis(200));
		}
	}
}

impl Drop for DevNode {
	fn drop(&mut self) {
		if let Some(mut child) = self.child.take() {
			let _ = child.kill();
			let _ = child.wait();
		}
		let _ = std::fs::remove_dir_all(&self.base);
	}
}

/// Hash given as a JSON hex string.
pub fn hash_of(value: &Value) -> H256 {
	H256::from_slice(&bytes::from_hex(value.as_str().expect("a hex hash")).unwrap())
}

/// Hex of SCALE-encoded `value`.
pub fn hex(value: &impl Encode) -> String {
	bytes::to_hex(&value.encode(), false)
}

/// A signed extrinsic of `who` with its next nonce (pool included), built as any Rust client
/// builds one with `opg_runtime::tx_extension`.
pub fn signed(port: u16, who: Sr25519Keyring, call: RuntimeCall) -> UncheckedExtrinsic {
	let genesis = hash_of(&rpc(port, "chain_getBlockHash", json!([0])));
	let nonce = rpc(port, "system_accountNextIndex", json!([who.to_account_id().to_string()]))
		.as_u64()
		.unwrap() as Nonce;
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
		(),
	);
	let payload = SignedPayload::from_raw(call.clone(), ext.clone(), implicit);
	let signature = payload.using_encoded(|bytes| who.sign(bytes));
	UncheckedExtrinsic::new_signed(
		call,
		MultiAddress::Id(who.to_account_id()),
		signature.into(),
		ext,
	)
}

/// Signs and submits `call` as `who`; returns the transaction hash.
pub fn submit(port: u16, who: Sr25519Keyring, call: RuntimeCall) -> H256 {
	hash_of(&rpc(port, "author_submitExtrinsic", json!([hex(&signed(port, who, call))])))
}

/// Raw storage value at `key` in block `at`.
pub fn storage(port: u16, key: &[u8], at: H256) -> Option<Vec<u8>> {
	let value = rpc(port, "state_getStorage", json!([bytes::to_hex(key, false), at]));
	value.as_str().map(|v| bytes::from_hex(v).unwrap())
}

/// Key of a storage value (`pallet`, `item`).
pub fn value_key(pallet: &str, item: &str) -> Vec<u8> {
	[hashing::twox_128(pallet.as_bytes()), hashing::twox_128(item.as_bytes())].concat()
}

/// Free balance of `who` at `at`, `None` if the account does not exist.
pub fn try_free_balance(port: u16, who: &AccountId, at: H256) -> Option<Balance> {
	let mut key = value_key("System", "Account");
	key.extend(hashing::blake2_128(who.as_ref()));
	key.extend(who.encode());
	let raw = storage(port, &key, at)?;
	let info = frame_system::AccountInfo::<Nonce, pallet_balances::AccountData<Balance>>::decode(
		&mut &raw[..],
	)
	.expect("account decodes");
	Some(info.data.free)
}

/// Free balance of an existing account `who` at `at`.
pub fn free_balance(port: u16, who: &AccountId, at: H256) -> Balance {
	try_free_balance(port, who, at).expect("account exists")
}

/// Events of block `at`.
pub fn events(port: u16, at: H256) -> Vec<RuntimeEvent> {
	let raw = storage(port, &value_key("System", "Events"), at).unwrap_or_default();
	Vec::<frame_system::EventRecord<RuntimeEvent, H256>>::decode(&mut &raw[..])
		.expect("events decode")
		.into_iter()
		.map(|r| r.event)
		.collect()
}

/// Number of block `hash`.
pub fn number_of(port: u16, hash: H256) -> u32 {
	let header = rpc(port, "chain_getHeader", json!([hash]));
	u32::from_str_radix(header["number"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// Hash of the best block.
pub fn best(port: u16) -> H256 {
	hash_of(&rpc(port, "chain_getBlockHash", json!([])))
}

/// Calls runtime API `function` with SCALE `args` at `at` and decodes the result.
pub fn runtime_call<R: Decode>(port: u16, function: &str, args: impl Encode, at: H256) -> R {
	let raw = rpc(port, "state_call", json!([function, hex(&args), at]));
	R::decode(&mut &bytes::from_hex(raw.as_str().unwrap()).unwrap()[..])
		.expect("runtime API result decodes")
}

/// Scans blocks after `from` (exclusive) until `done` returns `Some` for a block's events, or
/// `timeout` passes; returns the hash of that block and the value.
pub fn wait_for_event<T>(
	port: u16,
	from: H256,
	timeout: Duration,
	mut done: impl FnMut(&[RuntimeEvent]) -> Option<T>,
) -> (H256, T) {
	let deadline = Instant::now() + timeout;
	let mut next = number_of(port, from) + 1;
	loop {
		let hash = rpc(port, "chain_getBlockHash", json!([next]));
		if hash.is_null() {
			assert!(Instant::now() < deadline, "the awaited event did not come by block #{next}");
			std::thread::sleep(Duration::from_millis(250));
			continue;
		}
		let hash = hash_of(&hash);
		if let Some(found) = done(&events(port, hash)) {
			return (hash, found);
		}
		next += 1;
	}
}
