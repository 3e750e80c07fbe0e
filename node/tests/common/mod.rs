//! Helpers of the node's process tests: free ports, a minimal JSON-RPC client over HTTP, and
//! a dev node child process that is stopped with SIGINT.
#![allow(dead_code)]

use std::{
	io::{Read, Write},
	net::{TcpListener, TcpStream},
	path::PathBuf,
	process::{Child, Command, ExitStatus, Stdio},
	time::{Duration, Instant},
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
	response.get("error").unwrap_or_else(|| panic!("{method} succeeded: {response}")).to_string()
}

/// An `opg-node --dev` child process with its own base path and ports.
pub struct DevNode {
	child: Option<Child>,
	/// RPC port (HTTP and WebSocket).
	pub rpc_port: u16,
	base: PathBuf,
	log: PathBuf,
}

impl DevNode {
	/// Starts the node with `--dev` and extra arguments, and waits until RPC answers.
	pub fn start(extra: &[&str]) -> Self {
		let rpc_port = free_port();
		let base = std::env::temp_dir().join(format!("opg-node-test-{}-{rpc_port}", std::process::id()));
		let _ = std::fs::remove_dir_all(&base);
		std::fs::create_dir_all(&base).unwrap();
		let log = base.join("node.log");
		let log_file = std::fs::File::create(&log).unwrap();
		let child = Command::new(env!("CARGO_BIN_EXE_opg-node"))
			.args(["--dev", "--no-hardware-benchmarks", "--no-telemetry", "--no-prometheus"])
			.args(["--base-path", base.to_str().unwrap()])
			.args(["--rpc-port", &rpc_port.to_string()])
			.args(["--port", &free_port().to_string()])
			.args(extra)
			.stdout(Stdio::null())
			.stderr(log_file)
			.spawn()
			.expect("opg-node starts");
		let node = Self { child: Some(child), rpc_port, base, log };
		let deadline = Instant::now() + Duration::from_secs(120);
		while call(rpc_port, "system_health", json!([])).is_err() {
			assert!(Instant::now() < deadline, "RPC did not come up:\n{}", node.log());
			std::thread::sleep(Duration::from_millis(250));
		}
		node
	}

	/// The node's log so far.
	pub fn log(&self) -> String {
		std::fs::read_to_string(&self.log).unwrap_or_default()
	}

	/// Waits until the finalized head reaches `number`.
	pub fn wait_for_finalized(&self, number: u64, timeout: Duration) {
		let deadline = Instant::now() + timeout;
		loop {
			let head = rpc(self.rpc_port, "chain_getFinalizedHead", json!([]));
			let header = rpc(self.rpc_port, "chain_getHeader", json!([head]));
			let n = u64::from_str_radix(header["number"].as_str().unwrap().trim_start_matches("0x"), 16)
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
