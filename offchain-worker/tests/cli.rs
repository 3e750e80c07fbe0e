//! The `opg-worker` command line: a mode that cannot work on this machine stops the worker at
//! start, with the reason, before it connects anywhere.

use std::process::Command;

fn worker(args: &[&str]) -> (bool, String) {
	let base = tempfile::tempdir().unwrap();
	let out = Command::new(env!("CARGO_BIN_EXE_opg-worker"))
		.args(["--rpc", "ws://127.0.0.1:9", "--key", "//Alice", "--no-prometheus"])
		.args(["--base-path", base.path().to_str().unwrap()])
		.args(args)
		.output()
		.expect("opg-worker runs");
	(out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn tee_nitro_needs_the_nitro_security_module() {
	if std::path::Path::new(opg_worker::tee::NSM_DEVICE).exists() {
		eprintln!("inside a Nitro enclave: nothing to check");
		return;
	}
	let (ok, err) = worker(&["--tee-nitro"]);
	assert!(!ok, "started without /dev/nsm:\n{err}");
	assert!(err.contains("/dev/nsm") && err.contains("AWS Nitro enclave only"), "{err}");
	let nsm = opg_worker::tee::NsmAttester::open().err().expect("no NSM here");
	assert!(nsm.starts_with("/dev/nsm: "), "{nsm}");
}

#[test]
fn one_enclave_kind_at_a_time() {
	let (ok, err) = worker(&["--tee-nitro", "--tee-dev"]);
	assert!(!ok);
	assert!(err.contains("cannot be used with"), "{err}");
}
