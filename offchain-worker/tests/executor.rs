//! The executor on the committed demo model and on the errors a job can run into.

use opg_primitives::{ElemType, Tensor};
use opg_worker::{
	exec::{ExecError, Executor},
	onnx::{proto, Model},
};
use prost::Message;

type Cpu = opg_worker::exec::CpuBackend;

fn demo_bytes() -> Vec<u8> {
	std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/demo/mlp-classifier.onnx"))
		.unwrap()
}

fn f32_tensor(shape: Vec<u32>, v: &[f32]) -> Tensor {
	Tensor { elem: ElemType::F32, shape, data: v.iter().flat_map(|x| x.to_le_bytes()).collect() }
}

fn floats(t: &Tensor) -> Vec<f32> {
	t.data
		.chunks_exact(4)
		.map(|c| f32::from_le_bytes(c.try_into().unwrap()))
		.collect()
}

fn demo() -> Executor<Cpu> {
	Executor::new(Model::parse(&demo_bytes()).unwrap(), Default::default()).unwrap()
}

#[test]
fn demo_model_matches_the_onnx_reference_evaluator() {
	let reference: serde_json::Value = serde_json::from_str(
		&std::fs::read_to_string(concat!(
			env!("CARGO_MANIFEST_DIR"),
			"/../models/demo/reference.json"
		))
		.unwrap(),
	)
	.unwrap();
	let exec = demo();
	let cases = reference["cases"].as_array().unwrap();
	assert_eq!(cases.len(), 4);
	for case in cases {
		let input: Vec<f32> = case["features"]
			.as_array()
			.unwrap()
			.iter()
			.map(|v| v.as_f64().unwrap() as f32)
			.collect();
		let want: Vec<f32> = case["probabilities"]
			.as_array()
			.unwrap()
			.iter()
			.map(|v| v.as_f64().unwrap() as f32)
			.collect();
		let out = exec.run(&[f32_tensor(vec![1, 4], &input)]).unwrap();
		assert_eq!(out.len(), 1);
		assert_eq!((out[0].elem, out[0].shape.clone()), (ElemType::F32, vec![1, 3]));
		for (g, w) in floats(&out[0]).iter().zip(&want) {
			assert!((g - w).abs() <= 1e-5 + 1e-3 * w.abs(), "got {g}, want {w}");
		}
	}
}

#[test]
fn runs_are_deterministic() {
	let exec = demo();
	let input = [f32_tensor(vec![1, 4], &[0.5, -1.0, 2.0, 3.5])];
	let a = exec.run(&input).unwrap();
	let b = exec.run(&input).unwrap();
	assert_eq!(a, b);
	assert_eq!(opg_primitives::payload_hash(&a[0].data), opg_primitives::payload_hash(&b[0].data));
}

#[test]
fn bad_job_inputs_are_errors_not_panics() {
	let exec = demo();
	let err = |inputs: &[Tensor]| match exec.run(inputs) {
		Err(ExecError::Input(why)) => why,
		other => panic!("expected an input error, got {other:?}"),
	};
	assert!(err(&[]).contains("the model takes 1"), "count");
	assert!(err(&[f32_tensor(vec![1, 5], &[0.0; 5])]).contains("shape"), "shape");
	let ints = Tensor { elem: ElemType::I64, shape: vec![1, 4], data: vec![0; 32] };
	assert!(err(&[ints]).contains("F32"), "element type");
	let short = Tensor { elem: ElemType::F32, shape: vec![1, 4], data: vec![0; 15] };
	assert!(err(&[short]).contains("length"), "data length");
}

fn demo_with(edit: impl FnOnce(&mut proto::GraphProto)) -> Result<Executor<Cpu>, ExecError> {
	let mut m = proto::ModelProto::decode(demo_bytes().as_slice()).unwrap();
	edit(m.graph.as_mut().unwrap());
	Executor::new(Model::parse(&m.encode_to_vec()).unwrap(), Default::default())
}

#[test]
fn unsupported_operators_and_attributes_are_refused_at_load() {
	let err = demo_with(|g| g.node[1].op_type = Some("NonMaxSuppression".into()))
		.err()
		.unwrap();
	assert!(matches!(&err, ExecError::UnsupportedOp { op, .. } if op == "NonMaxSuppression"));
	assert!(err.to_string().contains("`NonMaxSuppression`"));

	let err = demo_with(|g| {
		g.node[1].op_type = Some("Gelu".into());
		g.node[1].attribute.push(proto::AttributeProto {
			name: Some("approximate".into()),
			r#type: Some(3),
			s: Some(b"cubic".to_vec()),
			..Default::default()
		});
	})
	.err()
	.unwrap();
	assert!(matches!(&err, ExecError::Unsupported { what, .. } if what.contains("cubic")));

	let err = demo_with(|g| g.node[0].input[0] = "nowhere".into()).err().unwrap();
	assert_eq!(err, ExecError::Undefined("nowhere".into()));
}

#[test]
fn shape_errors_inside_the_graph_fail_the_run_with_the_node_named() {
	// Feed the second MatMul a weight whose inner dimension no longer matches.
	let exec = demo_with(|g| {
		let w = g.initializer.iter_mut().find(|t| t.name.as_deref() == Some("w2")).unwrap();
		let n = w.dims.iter().product::<i64>();
		w.dims = vec![n / 4, 4];
	})
	.unwrap();
	let err = exec.run(&[f32_tensor(vec![1, 4], &[1.0; 4])]).unwrap_err();
	assert!(
		matches!(&err, ExecError::Invalid { op, reason, .. } if op == "MatMul" && reason.contains("inner")),
		"{err}"
	);
}

#[test]
fn digits_model_matches_the_reference_in_one_batch_and_answers_an_empty_one() {
	let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/digits");
	let reference: serde_json::Value =
		serde_json::from_str(&std::fs::read_to_string(format!("{dir}/reference.json")).unwrap())
			.unwrap();
	let bytes = std::fs::read(format!("{dir}/digits-cnn.onnx")).unwrap();
	assert_eq!(
		format!("{:?}", opg_worker::store::blake2_256(&bytes)),
		reference["blake2_256"].as_str().unwrap()
	);
	let exec: Executor<Cpu> =
		Executor::new(Model::parse(&bytes).unwrap(), Default::default()).unwrap();
	let cases = reference["cases"].as_array().unwrap();
	let number = |v: &serde_json::Value| v.as_f64().unwrap() as f32;
	let pixels: Vec<f32> = cases
		.iter()
		.flat_map(|c| c["pixels"].as_array().unwrap().iter().map(number))
		.collect();
	let out = exec.run(&[f32_tensor(vec![cases.len() as u32, 1, 8, 8], &pixels)]).unwrap();
	assert_eq!(out[0].shape, vec![cases.len() as u32, 10]);
	let got = floats(&out[0]);
	for (case, row) in cases.iter().zip(got.chunks_exact(10)) {
		for (g, w) in row.iter().zip(case["probabilities"].as_array().unwrap().iter().map(number)) {
			assert!((g - w).abs() <= 1e-5 + 1e-3 * w.abs(), "got {g}, want {w}");
		}
		let predicted = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
		assert_eq!(predicted as u64, case["label"].as_u64().unwrap());
	}
	// An empty batch (zero-size dimensions are valid ONNX) has an empty answer.
	let out = exec.run(&[f32_tensor(vec![0, 1, 8, 8], &[])]).unwrap();
	assert_eq!((out[0].shape.clone(), out[0].data.len()), (vec![0, 10], 0));
}

/// The digits CNN, edited by `edit`.
fn digits_with(edit: impl FnOnce(&mut proto::GraphProto)) -> Executor<Cpu> {
	let bytes =
		std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/digits/digits-cnn.onnx"))
			.unwrap();
	let mut m = proto::ModelProto::decode(bytes.as_slice()).unwrap();
	edit(m.graph.as_mut().unwrap());
	Executor::new(Model::parse(&m.encode_to_vec()).unwrap(), Default::default()).unwrap()
}

fn node(op: &str, input: &str, output: &str) -> proto::NodeProto {
	proto::NodeProto {
		op_type: Some(op.into()),
		input: vec![input.into()],
		output: vec![output.into()],
		..Default::default()
	}
}

/// Puts a Relu between the Gemm and the Softmax (`logits` → `logits_relu`).
fn relu_after_gemm(g: &mut proto::GraphProto) {
	let softmax = g.node.iter().position(|n| n.op_type.as_deref() == Some("Softmax")).unwrap();
	g.node[softmax].input[0] = "logits_relu".into();
	g.node.insert(softmax, node("Relu", "logits", "logits_relu"));
}

/// Moves the reading of `value` by its Relu behind an Identity, which keeps the Relu apart.
fn identity_before_relu(g: &mut proto::GraphProto, value: &str) {
	let relu = g
		.node
		.iter()
		.position(|n| n.op_type.as_deref() == Some("Relu") && n.input[0] == value)
		.unwrap();
	g.node[relu].input[0] = format!("{value}_copy");
	g.node.insert(relu, node("Identity", value, &format!("{value}_copy")));
}

#[test]
fn relu_and_max_pool_fused_into_conv_and_gemm_change_no_bit() {
	let fused = digits_with(relu_after_gemm);
	assert_eq!(fused.fused(), ["Relu", "MaxPool", "Relu"], "Conv → Relu → MaxPool and Gemm → Relu");
	let apart = digits_with(|g| {
		relu_after_gemm(g);
		identity_before_relu(g, "conv");
		identity_before_relu(g, "logits");
	});
	assert!(apart.fused().is_empty());
	// A pooling the CPU kernel does not take (ceil mode) still runs after the Conv, as a node.
	let ceil = |g: &mut proto::GraphProto| {
		let pool = g.node.iter_mut().find(|n| n.op_type.as_deref() == Some("MaxPool")).unwrap();
		pool.attribute.push(proto::AttributeProto {
			name: Some("ceil_mode".into()),
			r#type: Some(2),
			i: Some(1),
			..Default::default()
		});
	};
	let ceil_fused = digits_with(|g| {
		relu_after_gemm(g);
		ceil(g);
	});
	assert_eq!(ceil_fused.fused(), ["Relu", "MaxPool", "Relu"]);
	let ceil_apart = digits_with(|g| {
		relu_after_gemm(g);
		ceil(g);
		identity_before_relu(g, "conv");
	});
	// Three batches of seeded values in [-1, 1), some of every sign after the Conv and Gemm.
	let mut s = 0x2545_F491_4F6C_DD1Du64;
	for batch in [1u32, 3, 8] {
		let pixels: Vec<f32> = (0..batch * 64)
			.map(|_| {
				s ^= s << 13;
				s ^= s >> 7;
				s ^= s << 17;
				(s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
			})
			.collect();
		let input = [f32_tensor(vec![batch, 1, 8, 8], &pixels)];
		assert_eq!(fused.run(&input).unwrap(), apart.run(&input).unwrap(), "batch {batch}");
		assert_eq!(
			ceil_fused.run(&input).unwrap(),
			ceil_apart.run(&input).unwrap(),
			"ceil mode, batch {batch}"
		);
	}

	// A Conv output read by a second node, or that is a graph output, keeps its own Relu.
	let shared = digits_with(|g| {
		g.node.push(node("Identity", "conv", "conv_seen"));
		g.output
			.push(proto::ValueInfoProto { name: Some("conv_seen".into()), ..g.output[0].clone() });
	});
	assert!(shared.fused().is_empty());
	let exposed = digits_with(|g| {
		g.output
			.push(proto::ValueInfoProto { name: Some("conv".into()), ..g.output[0].clone() })
	});
	assert!(exposed.fused().is_empty());
	let out = exposed.run(&[f32_tensor(vec![1, 1, 8, 8], &[0.5; 64])]).unwrap();
	assert!(floats(&out[1]).iter().any(|&v| v < 0.0), "the Conv output is given before its Relu");
}

/// The demo model with its output `probabilities` passed through `op(probabilities, shape)`,
/// `shape` an int64 initializer.
fn demo_then(op: &str, shape: Vec<i64>) -> Executor<Cpu> {
	demo_with(|g| {
		let last = g.node.len() - 1;
		g.node[last].output[0] = "softmax".into();
		g.node.push(proto::NodeProto {
			op_type: Some(op.into()),
			input: vec!["softmax".into(), "sizes".into()],
			output: vec!["probabilities".into()],
			..Default::default()
		});
		g.initializer.push(proto::TensorProto {
			name: Some("sizes".into()),
			dims: vec![shape.len() as i64],
			data_type: Some(7),
			int64_data: shape,
			..Default::default()
		});
	})
	.unwrap()
}

#[test]
fn operators_that_multiply_sizes_are_capped_before_they_allocate() {
	let input = [f32_tensor(vec![1, 4], &[0.5, -1.0, 2.0, 3.5])];
	// Within the cap: as onnxruntime does.
	let out = demo_then("Tile", vec![2, 3]).run(&input).unwrap();
	assert_eq!(out[0].shape, vec![2, 9]);
	let out = demo_then("Expand", vec![4, 1, 3]).run(&input).unwrap();
	assert_eq!(out[0].shape, vec![4, 1, 3]);
	// 2^40 elements (or a count that overflows) is refused, not attempted.
	for (op, shape) in [
		("Expand", vec![1 << 20, 1 << 20, 3]),
		("Tile", vec![1 << 20, 1 << 20]),
		("Tile", vec![i64::MAX, 2]),
	] {
		match demo_then(op, shape.clone()).run(&input) {
			Err(ExecError::Invalid { op: o, reason, .. }) =>
				assert!(o == op && reason.contains("over the limit"), "{op} {shape:?}: {reason}"),
			other => panic!("{op} {shape:?}: {other:?}"),
		}
	}
}

#[test]
fn a_job_whose_live_tensors_exceed_the_memory_limit_fails_at_the_node_that_crosses_it() {
	let input = [f32_tensor(vec![1, 4], &[0.5, -1.0, 2.0, 3.5])];
	// Tile to [64, 12]: 768 f32 = 3,072 bytes for that one output (each under the per-tensor
	// cap). The input and the demo model's intermediates add a few dozen bytes.
	let exec = demo_then("Tile", vec![64, 4]);
	assert_eq!(exec.run(&input).unwrap()[0].shape, vec![64, 12]);
	let exec = demo_then("Tile", vec![64, 4]).with_memory_limit(3_000);
	match exec.run(&input) {
		Err(ExecError::OverMemory { bytes, limit: 3_000, .. }) =>
			assert!(bytes >= 3_072, "{bytes}"),
		other => panic!("{other:?}"),
	}
	// The same model within a limit that fits it.
	let exec = demo_then("Tile", vec![64, 4]).with_memory_limit(8_000);
	assert_eq!(exec.run(&input).unwrap()[0].shape, vec![64, 12]);
}

#[test]
fn float_inputs_of_different_types_are_an_error_before_any_kernel() {
	// Found by the `onnx_model` fuzz target: Add of an f32 tensor and an f64 one reached
	// burn-flex, which asserts on the dtype. ONNX gives both inputs one type constraint.
	let exec = demo_with(|g| {
		let last = g.node.len() - 1;
		g.node[last].output[0] = "softmax".into();
		g.node.push(proto::NodeProto {
			op_type: Some("Add".into()),
			input: vec!["softmax".into(), "offset".into()],
			output: vec!["probabilities".into()],
			..Default::default()
		});
		g.initializer.push(proto::TensorProto {
			name: Some("offset".into()),
			dims: vec![1],
			data_type: Some(11),
			double_data: vec![0.5],
			..Default::default()
		});
	})
	.unwrap();
	let err = exec.run(&[f32_tensor(vec![1, 4], &[0.5, -1.0, 2.0, 3.5])]).unwrap_err();
	assert!(
		matches!(&err, ExecError::Invalid { op, reason, .. }
			if op == "Add" && reason.contains("different types")),
		"{err}"
	);
}

#[test]
fn an_empty_kernel_or_input_window_is_an_error_not_a_wrapped_size() {
	// A Conv weight with a zero-size kernel axis: nothing for the window arithmetic.
	let exec = digits_with(|g| {
		let w = g.initializer.iter_mut().find(|t| t.name.as_deref() == Some("conv_w")).unwrap();
		w.dims = vec![8, 1, 0, 3];
		w.float_data.clear();
		w.raw_data = Some(Vec::new());
	});
	let err = exec.run(&[f32_tensor(vec![1, 1, 8, 8], &[0.0; 64])]).unwrap_err();
	assert!(
		matches!(&err, ExecError::Invalid { op, reason, .. } if op == "Conv" && reason.contains("empty")),
		"{err}"
	);
}

/// A branch graph of `nodes` with output `out` (read from the demo graph by name).
fn branch(nodes: Vec<proto::NodeProto>, out: &str) -> proto::GraphProto {
	proto::GraphProto {
		node: nodes,
		output: vec![proto::ValueInfoProto { name: Some(out.into()), ..Default::default() }],
		..Default::default()
	}
}

fn graph_attr(name: &str, g: proto::GraphProto) -> proto::AttributeProto {
	proto::AttributeProto {
		name: Some(name.into()),
		r#type: Some(5),
		g: Some(Box::new(g)),
		..Default::default()
	}
}

/// The demo model with its probabilities passed through an If on the initializer `cond`.
fn demo_if(
	cond: proto::TensorProto,
	then: proto::GraphProto,
	otherwise: proto::GraphProto,
) -> Result<Executor<Cpu>, ExecError> {
	demo_with(|g| {
		let last = g.node.len() - 1;
		g.node[last].output[0] = "softmax".into();
		g.node.push(proto::NodeProto {
			op_type: Some("If".into()),
			input: vec!["cond".into()],
			output: vec!["probabilities".into()],
			attribute: vec![graph_attr("then_branch", then), graph_attr("else_branch", otherwise)],
			..Default::default()
		});
		g.initializer.push(proto::TensorProto { name: Some("cond".into()), ..cond });
	})
}

fn scalar(data_type: i32, v: i64) -> proto::TensorProto {
	proto::TensorProto { data_type: Some(data_type), int64_data: vec![v], ..Default::default() }
}

fn bool_cond(v: bool) -> proto::TensorProto {
	proto::TensorProto { data_type: Some(9), int32_data: vec![v as i32], ..Default::default() }
}

#[test]
fn if_branches_read_the_outer_graph_and_their_errors_name_the_branch() {
	let input = [f32_tensor(vec![1, 4], &[0.5, -1.0, 2.0, 3.5])];
	let plain = demo().run(&input).unwrap();
	let neg = || branch(vec![node("Neg", "softmax", "n")], "n");
	// A branch may return a value of the graph around it as it is.
	for (cond, sign) in [(true, 1.0), (false, -1.0)] {
		let exec = demo_if(bool_cond(cond), branch(vec![], "softmax"), neg()).unwrap();
		let out = exec.run(&input).unwrap();
		let want: Vec<f32> = floats(&plain[0]).iter().map(|v| v * sign).collect();
		assert_eq!(floats(&out[0]), want, "cond {cond}");
	}
	// A condition that is not one boolean fails the run, naming the node.
	let exec = demo_if(scalar(7, 1), neg(), neg()).unwrap();
	match exec.run(&input) {
		Err(ExecError::Invalid { op, reason, .. }) =>
			assert!(op == "If" && reason.contains("one boolean"), "{reason}"),
		other => panic!("{other:?}"),
	}
	// A branch that reads a value nobody defines is refused at load.
	let err = demo_if(bool_cond(true), branch(vec![node("Neg", "nowhere", "n")], "n"), neg());
	assert!(matches!(err, Err(ExecError::Undefined(v)) if v.contains("nowhere")));
	// The job's memory limit holds inside the branch: 768 f32 made there are over 3,000 bytes.
	let tile = || {
		let mut n = node("Tile", "softmax", "t");
		n.input.push("reps".into());
		let reps = proto::TensorProto {
			name: Some("reps".into()),
			dims: vec![2],
			data_type: Some(7),
			int64_data: vec![64, 4],
			..Default::default()
		};
		proto::GraphProto { initializer: vec![reps], ..branch(vec![n], "t") }
	};
	let exec = demo_if(bool_cond(true), tile(), neg()).unwrap();
	assert_eq!(exec.run(&input).unwrap()[0].shape, vec![64, 12]);
	let exec = demo_if(bool_cond(true), tile(), neg()).unwrap().with_memory_limit(3_000);
	assert!(matches!(exec.run(&input), Err(ExecError::OverMemory { .. })));
}

#[test]
fn subgraphs_nested_too_deep_are_refused_when_the_model_is_parsed() {
	let mut g = branch(vec![node("Neg", "softmax", "n")], "n");
	for _ in 0..opg_worker::onnx::MAX_SUBGRAPH_DEPTH {
		let mut nested = node("If", "cond", "n");
		nested.attribute = vec![graph_attr("then_branch", g.clone()), graph_attr("else_branch", g)];
		g = branch(vec![nested], "n");
	}
	let mut m = proto::ModelProto::decode(demo_bytes().as_slice()).unwrap();
	let graph = m.graph.as_mut().unwrap();
	let mut top = node("If", "cond", "extra");
	top.attribute = vec![graph_attr("then_branch", g.clone()), graph_attr("else_branch", g)];
	graph.node.push(top);
	let err = Model::parse(&m.encode_to_vec()).unwrap_err();
	assert!(matches!(err, opg_worker::onnx::ModelError::TooDeep { .. }), "{err}");
}

/// A ustar archive of `members`, as `tar cf` writes one.
fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
	let mut out = Vec::new();
	for (name, data) in members {
		let mut h = [0u8; 512];
		h[..name.len()].copy_from_slice(name.as_bytes());
		h[100..108].copy_from_slice(b"0000644\0");
		h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
		h[156] = b'0';
		h[257..263].copy_from_slice(b"ustar\0");
		h[263..265].copy_from_slice(b"00");
		h[148..156].fill(b' ');
		let sum: u32 = h.iter().map(|&b| b as u32).sum();
		h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
		out.extend(h);
		out.extend(*data);
		out.resize(out.len().next_multiple_of(512), 0);
	}
	out.extend([0u8; 1024]);
	out
}

/// The demo model with its initializer `w2` kept in external data at `location` (its bytes
/// from `offset`), and those bytes.
fn demo_external(location: &str, offset: u64) -> (Vec<u8>, Vec<u8>) {
	let mut m = proto::ModelProto::decode(demo_bytes().as_slice()).unwrap();
	let g = m.graph.as_mut().unwrap();
	let w = g.initializer.iter_mut().find(|t| t.name.as_deref() == Some("w2")).unwrap();
	let bytes = opg_worker::onnx::tensor_from_proto(w).unwrap().data;
	let entry =
		|k: &str, v: String| proto::StringStringEntryProto { key: Some(k.into()), value: Some(v) };
	w.float_data.clear();
	w.raw_data = None;
	w.data_location = Some(1);
	w.external_data = vec![
		entry("location", location.into()),
		entry("offset", offset.to_string()),
		entry("length", bytes.len().to_string()),
	];
	let mut data = vec![7u8; offset as usize];
	data.extend(&bytes);
	(m.encode_to_vec(), data)
}

#[test]
fn external_data_is_read_from_a_bundle_or_the_model_directory_and_stays_inside() {
	use opg_worker::onnx::ModelError;
	let input = [f32_tensor(vec![1, 4], &[0.5, -1.0, 2.0, 3.5])];
	let want = demo().run(&input).unwrap();
	let run = |m: Model| Executor::<Cpu>::new(m, Default::default()).unwrap().run(&input).unwrap();
	let (onnx, data) = demo_external("weights/w2.bin", 100);
	// A bundle: one .onnx, its data at the location relative to it.
	let bundle = tar(&[("m/demo.onnx", &onnx), ("m/weights/w2.bin", &data)]);
	assert_eq!(run(Model::parse(&bundle).unwrap()), want);
	// The model's directory.
	let dir = std::env::temp_dir().join(format!("opg-external-{}", std::process::id()));
	std::fs::create_dir_all(dir.join("weights")).unwrap();
	std::fs::write(dir.join("demo.onnx"), &onnx).unwrap();
	std::fs::write(dir.join("weights/w2.bin"), &data).unwrap();
	assert_eq!(run(Model::load(&dir.join("demo.onnx")).unwrap()), want);
	std::fs::remove_dir_all(&dir).unwrap();
	// The .onnx alone names data it does not have.
	assert!(matches!(Model::parse(&onnx), Err(ModelError::ExternalData(t)) if t == "w2"));

	let refused = |bytes: &[u8], what: &str| match Model::parse(bytes) {
		Err(e) => assert!(e.to_string().contains(what), "{e} (wanted {what:?})"),
		Ok(_) => panic!("accepted, wanted {what:?}"),
	};
	for location in ["../w2.bin", "/etc/passwd", "weights/../../w2.bin"] {
		let (onnx, data) = demo_external(location, 0);
		refused(&tar(&[("demo.onnx", &onnx), ("w2.bin", &data)]), "relative path");
	}
	refused(&tar(&[("demo.onnx", &onnx)]), "no file `weights/w2.bin`");
	refused(&tar(&[("demo.onnx", &onnx), ("weights/w2.bin", &data[..150])]), "overrun");
	refused(&tar(&[("a.onnx", &onnx), ("b.onnx", &onnx)]), "exactly one .onnx");
	refused(&bundle[..512 + onnx.len() / 2], "past the end of the archive");
	refused(&bundle[..bundle.len() - 1024], "without its end marker");
}
