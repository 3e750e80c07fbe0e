//! Any bytes as an ONNX model file and the shapes of its inputs: parsing, loading and running
//! must end in a value or an error. A crash, a hang (libFuzzer's -timeout) or memory past
//! -rss_limit_mb is a failure. Kernel panics are caught by the executor and become errors (the
//! worker's contract); memory errors in the unsafe kernels are not, and crash the target.
//!
//! Input: `[rank][dims: rank bytes][model file]`. Each model input takes its declared fixed
//! dimensions; a dynamic one (or an input with no declared shape) takes the fuzzed dimensions,
//! each `1 + d % 8`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opg_exec::{
	exec::{CpuBackend, Executor},
	onnx::{Dim, Model},
};
use opg_primitives::{ElemType, Tensor};

/// Most elements of one fuzzed input: work per run must stay small.
const MAX_INPUT_ELEMENTS: u64 = 1 << 14;
/// The job memory limit the target runs under: the worker's mechanism, at fuzzing scale.
const MEMORY_LIMIT: usize = 256 << 20;

fuzz_target!(
	// libfuzzer-sys aborts on every panic, even one the executor catches; keep only the abort
	// of a panic that escapes (libfuzzer-sys's own catch around this target).
	init: std::panic::set_hook(Box::new(|_| {})),
	|data: &[u8]| {
	let Some((&rank, rest)) = data.split_first() else { return };
	let rank = usize::from(rank % 5);
	if rest.len() < rank {
		return;
	}
	let (fuzzed, file) = rest.split_at(rank);
	let fuzzed: Vec<u64> = fuzzed.iter().map(|d| 1 + u64::from(d % 8)).collect();
	let Ok(model) = Model::parse(file) else { return };
	let Ok(exec) = Executor::<CpuBackend>::new(model, Default::default()) else { return };
	let exec = exec.with_memory_limit(MEMORY_LIMIT);

	let mut inputs = Vec::new();
	for spec in &exec.model().inputs {
		let shape: Vec<u64> = match &spec.shape {
			Some(dims) => dims
				.iter()
				.enumerate()
				.map(|(i, d)| match d {
					Dim::Fixed(n) => *n,
					Dim::Any => fuzzed.get(i).copied().unwrap_or(1),
				})
				.collect(),
			None => fuzzed.clone(),
		};
		let elements = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
		let Some(elements) = elements.filter(|&n| n <= MAX_INPUT_ELEMENTS) else { return };
		let Ok(shape) = shape.iter().map(|&d| u32::try_from(d)).collect::<Result<Vec<_>, _>>()
		else {
			return;
		};
		inputs.push(Tensor { elem: spec.elem, shape, data: ramp(spec.elem, elements as usize) });
	}
	// An error is a fine answer; only what the executor cannot turn into one fails.
	let _ = exec.run(&inputs);
	}
);

/// `n` small, varied values of `elem`, little-endian.
fn ramp(elem: ElemType, n: usize) -> Vec<u8> {
	(0..n)
		.flat_map(|i| {
			let v = (i % 7) as i64 - 3;
			match elem {
				ElemType::F32 => (v as f32 * 0.5).to_le_bytes().to_vec(),
				ElemType::F64 => (v as f64 * 0.5).to_le_bytes().to_vec(),
				ElemType::I32 => (v as i32).to_le_bytes().to_vec(),
				ElemType::I64 => v.to_le_bytes().to_vec(),
				ElemType::I8 => (v as i8).to_le_bytes().to_vec(),
				ElemType::U8 => vec![(i % 7) as u8],
				ElemType::Bool => vec![(i % 2) as u8],
			}
		})
		.collect()
}
