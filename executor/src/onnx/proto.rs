//! The subset of the ONNX protobuf schema (`onnx.proto`, IR version ≤ 10) the worker reads.
//! Field numbers follow the upstream schema; fields the executor does not use are skipped by
//! prost when decoding.

/// A model file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
	#[prost(int64, optional, tag = "1")]
	pub ir_version: Option<i64>,
	#[prost(string, optional, tag = "2")]
	pub producer_name: Option<String>,
	#[prost(message, optional, tag = "7")]
	pub graph: Option<GraphProto>,
	#[prost(message, repeated, tag = "8")]
	pub opset_import: Vec<OperatorSetIdProto>,
	#[prost(message, repeated, tag = "25")]
	pub functions: Vec<FunctionProto>,
}

/// Operator set a model was written against.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
	#[prost(string, optional, tag = "1")]
	pub domain: Option<String>,
	#[prost(int64, optional, tag = "2")]
	pub version: Option<i64>,
}

/// Model-local functions: only detected, so that a model using them is refused clearly.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FunctionProto {
	#[prost(string, optional, tag = "1")]
	pub name: Option<String>,
}

/// A computation graph.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
	#[prost(message, repeated, tag = "1")]
	pub node: Vec<NodeProto>,
	#[prost(string, optional, tag = "2")]
	pub name: Option<String>,
	#[prost(message, repeated, tag = "5")]
	pub initializer: Vec<TensorProto>,
	#[prost(message, repeated, tag = "11")]
	pub input: Vec<ValueInfoProto>,
	#[prost(message, repeated, tag = "12")]
	pub output: Vec<ValueInfoProto>,
	#[prost(message, repeated, tag = "15")]
	pub sparse_initializer: Vec<SparseTensorProto>,
}

/// One operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
	#[prost(string, repeated, tag = "1")]
	pub input: Vec<String>,
	#[prost(string, repeated, tag = "2")]
	pub output: Vec<String>,
	#[prost(string, optional, tag = "3")]
	pub name: Option<String>,
	#[prost(string, optional, tag = "4")]
	pub op_type: Option<String>,
	#[prost(message, repeated, tag = "5")]
	pub attribute: Vec<AttributeProto>,
	#[prost(string, optional, tag = "7")]
	pub domain: Option<String>,
}

/// A named attribute of a node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
	#[prost(string, optional, tag = "1")]
	pub name: Option<String>,
	#[prost(float, optional, tag = "2")]
	pub f: Option<f32>,
	#[prost(int64, optional, tag = "3")]
	pub i: Option<i64>,
	#[prost(bytes = "vec", optional, tag = "4")]
	pub s: Option<Vec<u8>>,
	#[prost(message, optional, tag = "5")]
	pub t: Option<TensorProto>,
	/// A subgraph (If's branches).
	#[prost(message, optional, boxed, tag = "6")]
	pub g: Option<Box<GraphProto>>,
	#[prost(float, repeated, tag = "7")]
	pub floats: Vec<f32>,
	#[prost(int64, repeated, tag = "8")]
	pub ints: Vec<i64>,
	#[prost(bytes = "vec", repeated, tag = "9")]
	pub strings: Vec<Vec<u8>>,
	#[prost(int32, optional, tag = "20")]
	pub r#type: Option<i32>,
	#[prost(string, optional, tag = "21")]
	pub ref_attr_name: Option<String>,
}

/// A constant tensor (initializer, `Constant` value, test data).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
	#[prost(int64, repeated, tag = "1")]
	pub dims: Vec<i64>,
	#[prost(int32, optional, tag = "2")]
	pub data_type: Option<i32>,
	#[prost(float, repeated, tag = "4")]
	pub float_data: Vec<f32>,
	#[prost(int32, repeated, tag = "5")]
	pub int32_data: Vec<i32>,
	#[prost(int64, repeated, tag = "7")]
	pub int64_data: Vec<i64>,
	#[prost(string, optional, tag = "8")]
	pub name: Option<String>,
	#[prost(bytes = "vec", optional, tag = "9")]
	pub raw_data: Option<Vec<u8>>,
	#[prost(double, repeated, tag = "10")]
	pub double_data: Vec<f64>,
	#[prost(uint64, repeated, tag = "11")]
	pub uint64_data: Vec<u64>,
	#[prost(message, repeated, tag = "13")]
	pub external_data: Vec<StringStringEntryProto>,
	#[prost(int32, optional, tag = "14")]
	pub data_location: Option<i32>,
}

/// Only detected: sparse initializers are refused.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SparseTensorProto {
	#[prost(int64, repeated, tag = "3")]
	pub dims: Vec<i64>,
}

/// Key/value pair.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
	#[prost(string, optional, tag = "1")]
	pub key: Option<String>,
	#[prost(string, optional, tag = "2")]
	pub value: Option<String>,
}

/// A graph input or output: name and type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
	#[prost(string, optional, tag = "1")]
	pub name: Option<String>,
	#[prost(message, optional, tag = "2")]
	pub r#type: Option<TypeProto>,
}

/// Type of a value; only dense tensors are supported.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
	#[prost(message, optional, tag = "1")]
	pub tensor_type: Option<TypeProtoTensor>,
}

/// Element type and (possibly symbolic) shape of a tensor value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProtoTensor {
	#[prost(int32, optional, tag = "1")]
	pub elem_type: Option<i32>,
	#[prost(message, optional, tag = "2")]
	pub shape: Option<TensorShapeProto>,
}

/// A shape.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
	#[prost(message, repeated, tag = "1")]
	pub dim: Vec<Dimension>,
}

/// A dimension: a size or a symbolic name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
	#[prost(int64, optional, tag = "1")]
	pub dim_value: Option<i64>,
	#[prost(string, optional, tag = "2")]
	pub dim_param: Option<String>,
}
