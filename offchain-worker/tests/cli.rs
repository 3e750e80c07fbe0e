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

/// The LLM test model (`scripts/lib/llm-model.sh` fetches it; `scripts/setup.sh` runs it).
fn smollm2() -> String {
	let path = std::path::Path::new(&std::env::var("HOME").unwrap())
		.join(".cache/opg/models/SmolLM2-135M-Instruct.Q4_1.gguf");
	assert!(path.exists(), "{} is missing: scripts/lib/llm-model.sh fetches it", path.display());
	path.to_str().unwrap().into()
}

fn json(args: &[&str]) -> serde_json::Value {
	let out = Command::new(env!("CARGO_BIN_EXE_opg-worker")).args(args).output().unwrap();
	assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
	serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn two_processes_on_other_thread_counts_sample_the_same_tokens_and_logits() {
	let model = smollm2();
	// The same sampled request with `seed`, on `threads` threads (the default when `None`).
	let run = |seed: &str, threads: Option<&str>| {
		let mut args = vec![
			"generate",
			"--model",
			&model,
			"--prompt",
			"Once upon a time",
			"--max-tokens",
			"24",
			"--temperature",
			"0.8",
			"--top-p",
			"0.9",
			"--seed",
			seed,
			"--json",
		];
		if let Some(t) = threads {
			args.extend(["--threads", t]);
		}
		json(&args)
	};
	let (one, two) = (run("7", Some("1")), run("7", Some("2")));
	assert_eq!(one["token_ids"], two["token_ids"]);
	assert_eq!(one["logits_digest"], two["logits_digest"]);
	assert_eq!(one["token_ids"].as_array().unwrap().len(), 24);
	// Another seed draws other tokens: the seed is used.
	let other = run("8", None);
	assert_ne!(one["token_ids"], other["token_ids"]);
}

#[test]
fn inspect_prints_the_llm_spec_a_release_declares() {
	let v = json(&["inspect", "--model", &smollm2()]);
	assert_eq!(v["format"], "Gguf");
	assert_eq!(v["artifact_size"], 98_362_432);
	assert_eq!(
		v["artifact"], "0xd63af87b96e2fd6551e9e7320602f3934f34c41a91004117dd24981571d02f79",
		"b2sum -l 256"
	);
	let llm = &v["llm"];
	assert_eq!(
		(&llm["architecture"], &llm["vocab_size"], &llm["context_length"]),
		(&serde_json::json!("llama"), &serde_json::json!(49152), &serde_json::json!(8192))
	);
	// The tokenizer hash as gguf-py's reader and Python's blake2b compute it from the file.
	assert_eq!(
		llm["template_hash"],
		"0x54b3e4caf463842dd4ba4317f93a176105f0b6d7e3bbc5b9a40c2bcd66392a76"
	);
	let (prompt, message) =
		(llm["prompt_overhead"].as_u64().unwrap(), llm["message_overhead"].as_u64().unwrap());
	// The default system turn and the assistant's opening; a turn's markers and role.
	assert!((25..=60).contains(&prompt) && (3..=10).contains(&message), "{llm}");
}

#[test]
fn run_executes_an_onnx_model_as_a_job_would() {
	let dir = tempfile::tempdir().unwrap();
	let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/demo/mlp-classifier.onnx");
	let input = dir.path().join("input.json");
	std::fs::write(&input, r#"[{"elem": "F32", "shape": [1, 4], "values": [5.1, 3.5, 1.4, 0.2]}]"#)
		.unwrap();
	let v = json(&["run", "--model", model, "--input", input.to_str().unwrap(), "--runs", "3"]);
	let out = &v["outputs"][0];
	assert_eq!(
		(&out["elem"], &out["shape"]),
		(&serde_json::json!("F32"), &serde_json::json!([1, 3]))
	);
	let sum: f64 = out["values"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).sum();
	assert!((sum - 1.0).abs() < 1e-5, "probabilities: {out}");
	assert_eq!(v["timings"]["runs"], 3);

	// The same input as a job carries it (canonical SCALE, hex): the same result.
	let tensor = opg_primitives::Tensor {
		elem: opg_primitives::ElemType::F32,
		shape: vec![1, 4],
		data: [5.1f32, 3.5, 1.4, 0.2].iter().flat_map(|x| x.to_le_bytes()).collect(),
	};
	let scale = dir.path().join("input.scale");
	let hex: String = codec::Encode::encode(&vec![tensor])
		.iter()
		.map(|b| format!("{b:02x}"))
		.collect();
	std::fs::write(&scale, format!("0x{hex}\n")).unwrap();
	let again = json(&["run", "--model", model, "--input-scale", scale.to_str().unwrap()]);
	assert_eq!(again["output_hash"], v["output_hash"]);

	// Values that do not fill the shape: a clear error, not a panic.
	std::fs::write(&input, r#"[{"elem": "F32", "shape": [1, 4], "values": [1, 2]}]"#).unwrap();
	let out = Command::new(env!("CARGO_BIN_EXE_opg-worker"))
		.args(["run", "--model", model, "--input", input.to_str().unwrap()])
		.output()
		.unwrap();
	assert!(!out.status.success());
	assert!(String::from_utf8_lossy(&out.stderr).contains("2 values do not fill shape [1, 4]"));
}
