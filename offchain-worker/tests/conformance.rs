//! Conformance against the ONNX project's own backend test models (shipped in the `onnx`
//! wheel under `onnx/backend/test/data/`). Every model in the folders below is loaded; those
//! whose operators the executor supports are run on each reference data set and compared with
//! rtol 1e-3 / atol 1e-5 (integers exactly). The test prints the pass count per folder and
//! fails if a model listed in `conformance-baseline.txt` does not pass, or if a model the
//! executor accepts gives a wrong answer.
//!
//! The data folder is found through `OPG_ONNX_TEST_DATA` or `python3 -c "import onnx"`
//! (`scripts/setup.sh` installs the wheel).

use opg_primitives::{ElemType, Tensor};
use opg_worker::{
	exec::{ExecError, Executor},
	onnx::{proto, tensor_from_proto, Model},
};
use prost::Message;
use std::path::{Path, PathBuf};

const FOLDERS: &[&str] = &["pytorch-converted", "pytorch-operator", "simple"];
const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-5;

fn data_dir() -> PathBuf {
	if let Ok(dir) = std::env::var("OPG_ONNX_TEST_DATA") {
		return PathBuf::from(dir);
	}
	let out = std::process::Command::new("python3")
		.args(["-c", "import onnx, os; print(os.path.dirname(onnx.__file__))"])
		.output()
		.expect("python3 runs");
	assert!(
		out.status.success(),
		"the `onnx` Python package is needed for the conformance data (scripts/setup.sh installs it): {}",
		String::from_utf8_lossy(&out.stderr)
	);
	PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("backend/test/data")
}

fn read_tensor(path: &Path) -> Tensor {
	let bytes = std::fs::read(path).unwrap();
	tensor_from_proto(&proto::TensorProto::decode(&bytes[..]).unwrap()).unwrap()
}

fn floats(t: &Tensor) -> Vec<f64> {
	match t.elem {
		ElemType::F64 => t
			.data
			.chunks_exact(8)
			.map(|c| f64::from_le_bytes(c.try_into().unwrap()))
			.collect(),
		_ => t
			.data
			.chunks_exact(4)
			.map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
			.collect(),
	}
}

/// `None` when the outputs match, else why not.
fn compare(got: &Tensor, want: &Tensor) -> Option<String> {
	if got.elem != want.elem || got.shape != want.shape {
		return Some(format!(
			"got {:?} {:?}, want {:?} {:?}",
			got.elem, got.shape, want.elem, want.shape
		));
	}
	if !matches!(want.elem, ElemType::F32 | ElemType::F64) {
		return (got.data != want.data).then(|| "integer outputs differ".into());
	}
	for (i, (g, w)) in floats(got).iter().zip(floats(want)).enumerate() {
		// NaN where the reference has NaN is a match (numpy's equal_nan).
		if !((g - w).abs() <= ATOL + RTOL * w.abs() || (g.is_nan() && w.is_nan())) {
			return Some(format!("element {i}: got {g}, want {w}"));
		}
	}
	None
}

enum Outcome {
	Pass,
	/// The executor refuses the model at load time (e.g. an unsupported operator).
	Refused(String),
	Fail(String),
}

fn run_model(dir: &Path) -> Outcome {
	// A bundle (the model and its external data in one tar) where the case has one.
	let file = Some(dir.join("bundle.tar")).filter(|b| b.exists());
	let model = match Model::load(&file.unwrap_or_else(|| dir.join("model.onnx"))) {
		Ok(m) => m,
		Err(e) => return Outcome::Refused(e.to_string()),
	};
	let exec = match Executor::<opg_worker::exec::CpuBackend>::new(model, Default::default()) {
		Ok(x) => x,
		Err(e @ (ExecError::UnsupportedOp { .. } | ExecError::Unsupported { .. })) =>
			return Outcome::Refused(e.to_string()),
		Err(e) => return Outcome::Fail(format!("load: {e}")),
	};
	let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
		.unwrap()
		.map(|e| e.unwrap().path())
		.filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("test_data_set_"))
		.collect();
	sets.sort();
	for set in sets {
		let numbered = |prefix: &str| {
			(0..)
				.map(|i| set.join(format!("{prefix}_{i}.pb")))
				.take_while(|p| p.exists())
				.map(|p| read_tensor(&p))
				.collect::<Vec<_>>()
		};
		let (inputs, wanted) = (numbered("input"), numbered("output"));
		let got = match exec.run(&inputs) {
			Ok(out) => out,
			Err(e) => return Outcome::Fail(format!("{}: {e}", set.display())),
		};
		if got.len() != wanted.len() {
			return Outcome::Fail(format!("{} outputs, want {}", got.len(), wanted.len()));
		}
		for (i, (g, w)) in got.iter().zip(&wanted).enumerate() {
			if let Some(why) = compare(g, w) {
				return Outcome::Fail(format!("{} output {i}: {why}", set.display()));
			}
		}
	}
	Outcome::Pass
}

#[test]
fn onnx_backend_test_models() {
	let root = data_dir();
	let baseline: Vec<String> = include_str!("conformance-baseline.txt")
		.lines()
		.map(str::trim)
		.filter(|l| !l.is_empty() && !l.starts_with('#'))
		.map(String::from)
		.collect();
	let (mut failures, mut passing) = (Vec::new(), Vec::new());
	for folder in FOLDERS {
		let mut models: Vec<PathBuf> = std::fs::read_dir(root.join(folder))
			.expect("conformance folder")
			.map(|e| e.unwrap().path())
			.collect();
		models.sort();
		let (mut pass, mut refused, mut total) = (0, 0, 0);
		for dir in models.iter().filter(|d| d.join("model.onnx").exists()) {
			total += 1;
			let name = format!("{folder}/{}", dir.file_name().unwrap().to_string_lossy());
			match run_model(dir) {
				Outcome::Pass => {
					pass += 1;
					passing.push(name);
				},
				Outcome::Refused(why) => {
					refused += 1;
					println!("  refused {name}: {why}");
				},
				Outcome::Fail(why) => {
					println!("  FAILED  {name}: {why}");
					failures.push(name);
				},
			}
		}
		println!(
			"{folder}: {pass}/{total} pass, {refused} refused at load, {} wrong",
			total - pass - refused
		);
	}
	let regressions: Vec<&String> = baseline.iter().filter(|b| !passing.contains(b)).collect();
	let new: Vec<&String> = passing.iter().filter(|p| !baseline.contains(p)).collect();
	if !new.is_empty() {
		println!("passing but not in the baseline (add them): {new:?}");
	}
	assert!(regressions.is_empty(), "baseline models no longer pass: {regressions:?}");
	// A model the executor accepts must never give a wrong answer.
	assert!(failures.is_empty(), "accepted models gave wrong answers or failed: {failures:?}");
}

/// The operator cases of `tests/ops/` (written by `scripts/regen/onnx-op-cases.py`, outputs
/// from onnxruntime): every one must load and match.
#[test]
fn onnxruntime_operator_cases() {
	let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ops");
	let mut cases: Vec<PathBuf> =
		std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
	cases.sort();
	assert!(cases.len() >= 60, "the operator cases are missing from {}", root.display());
	let mut failures = Vec::new();
	for dir in &cases {
		let name = dir.file_name().unwrap().to_string_lossy().into_owned();
		match run_model(dir) {
			Outcome::Pass => {},
			Outcome::Refused(why) | Outcome::Fail(why) => {
				println!("  FAILED  {name}: {why}");
				failures.push(name);
			},
		}
	}
	println!("onnxruntime operator cases: {}/{} pass", cases.len() - failures.len(), cases.len());
	assert!(failures.is_empty(), "operator cases that do not match onnxruntime: {failures:?}");
}
