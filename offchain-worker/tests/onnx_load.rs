//! Loading ONNX files: the committed demo model, and files the worker must refuse.

use opg_primitives::ElemType;
use opg_worker::onnx::{proto, Dim, Model, ModelError};
use prost::Message;

fn demo_bytes() -> Vec<u8> {
	std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/demo/mlp-classifier.onnx"))
		.unwrap()
}

#[test]
fn demo_model_loads_with_its_io_spec_weights_and_ops() {
	let model = Model::parse(&demo_bytes()).expect("the demo model loads");
	assert_eq!(model.opset, 17);
	assert_eq!(model.inputs.len(), 1);
	assert_eq!(model.inputs[0].name, "features");
	assert_eq!(model.inputs[0].elem, ElemType::F32);
	assert_eq!(model.inputs[0].shape, Some(vec![Dim::Fixed(1), Dim::Fixed(4)]));
	assert_eq!(model.outputs[0].name, "probabilities");
	assert_eq!(model.outputs[0].shape, Some(vec![Dim::Fixed(1), Dim::Fixed(3)]));
	let w1 = &model.initializers["w1"];
	assert_eq!((w1.elem, w1.shape.clone(), w1.data.len()), (ElemType::F32, vec![4, 8], 4 * 8 * 4));
	assert_eq!(model.initializers["b2"].shape, vec![3]);
	assert_eq!(model.ops(), vec!["Add", "MatMul", "Relu", "Softmax"]);
	let softmax = model.nodes.iter().find(|n| n.op == "Softmax").unwrap();
	assert_eq!(softmax.attributes["axis"], opg_worker::onnx::Attribute::Int(-1));
}

#[test]
fn garbage_and_truncated_files_are_refused() {
	assert!(matches!(Model::parse(b"not a model at all"), Err(ModelError::Decode(_))));
	let bytes = demo_bytes();
	assert!(Model::parse(&bytes[..bytes.len() / 2]).is_err());
	assert_eq!(Model::parse(&[]), Err(ModelError::NoOpset));
}

fn demo_proto() -> proto::ModelProto {
	proto::ModelProto::decode(demo_bytes().as_slice()).unwrap()
}

#[test]
fn unsupported_features_are_named() {
	let mut m = demo_proto();
	m.opset_import
		.push(proto::OperatorSetIdProto { domain: Some("com.microsoft".into()), version: Some(1) });
	assert_eq!(
		Model::parse(&m.encode_to_vec()),
		Err(ModelError::UnsupportedDomain("com.microsoft".into()))
	);

	let mut m = demo_proto();
	m.graph.as_mut().unwrap().initializer[0]
		.external_data
		.push(proto::StringStringEntryProto {
			key: Some("location".into()),
			value: Some("weights.bin".into()),
		});
	assert_eq!(Model::parse(&m.encode_to_vec()), Err(ModelError::ExternalData("w1".into())));

	let mut m = demo_proto();
	m.graph.as_mut().unwrap().initializer[0].data_type = Some(16); // bfloat16
	assert_eq!(
		Model::parse(&m.encode_to_vec()),
		Err(ModelError::UnsupportedDataType { name: "w1".into(), data_type: 16 })
	);

	let mut m = demo_proto();
	m.graph.as_mut().unwrap().initializer[0].dims = vec![4, 9]; // data for 4 x 8 only
	assert!(matches!(Model::parse(&m.encode_to_vec()), Err(ModelError::BadTensor { .. })));

	let mut m = demo_proto();
	m.graph = None;
	assert_eq!(Model::parse(&m.encode_to_vec()), Err(ModelError::NoGraph));
}

#[test]
fn typed_tensor_fields_decode_like_raw_data() {
	let raw = proto::TensorProto {
		dims: vec![2],
		data_type: Some(7),
		raw_data: Some([3i64, -4].iter().flat_map(|v| v.to_le_bytes()).collect()),
		..Default::default()
	};
	let typed = proto::TensorProto {
		dims: vec![2],
		data_type: Some(7),
		int64_data: vec![3, -4],
		..Default::default()
	};
	let bools = proto::TensorProto {
		dims: vec![3],
		data_type: Some(9),
		int32_data: vec![1, 0, 5],
		..Default::default()
	};
	use opg_worker::onnx::tensor_from_proto;
	assert_eq!(tensor_from_proto(&raw).unwrap(), tensor_from_proto(&typed).unwrap());
	assert_eq!(tensor_from_proto(&bools).unwrap().data, vec![1, 0, 1]);
}
