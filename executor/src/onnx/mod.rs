//! Loading ONNX models at run time: the protobuf is decoded, checked and turned into a
//! [`Model`] the executor interprets. Anything the worker cannot run faithfully (external or
//! sparse data, model-local functions, non-tensor values, unknown element types) is refused
//! here with a [`ModelError`] naming it, before any job is touched.

mod external;
pub mod proto;

use external::Source;

use opg_primitives::{ElemType, Tensor};
use prost::Message;
use std::collections::{BTreeMap, HashMap};

/// Why a model file cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
	#[error("not an ONNX model: {0}")]
	Decode(String),
	#[error("the model has no graph")]
	NoGraph,
	#[error("operator set domain `{0}` is not supported (only the default ONNX domain is)")]
	UnsupportedDomain(String),
	#[error("the model imports no default-domain operator set")]
	NoOpset,
	#[error("model-local functions are not supported (`{0}`)")]
	Functions(String),
	#[error("sparse initializers are not supported")]
	SparseInitializer,
	#[error("tensor `{name}`: ONNX data type {data_type} is not supported")]
	UnsupportedDataType { name: String, data_type: i32 },
	#[error("tensor `{0}` keeps its data in an external file: load the model from its directory, or publish it as a bundle (a tar of the .onnx and its data files)")]
	ExternalData(String),
	#[error("model bundle: {0}")]
	Bundle(String),
	#[error("tensor `{name}`: {reason}")]
	BadTensor { name: String, reason: String },
	#[error("graph value `{0}` is not a dense tensor")]
	NotATensor(String),
	#[error("node `{node}` ({op}): attribute `{attribute}` uses a reference, which is only valid inside functions")]
	AttributeReference { node: String, op: String, attribute: String },
	#[error("graph input `{0}` is declared twice")]
	DuplicateInput(String),
	#[error("node `{node}` ({op}): subgraphs nest deeper than {MAX_SUBGRAPH_DEPTH} levels")]
	TooDeep { node: String, op: String },
}

/// Most levels of subgraphs (an If inside an If's branch ...) a model may nest.
pub const MAX_SUBGRAPH_DEPTH: usize = 8;

/// A dimension of a declared graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
	/// A fixed size.
	Fixed(u64),
	/// Symbolic or unknown: any size.
	Any,
}

/// A declared graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSpec {
	/// Name in the graph.
	pub name: String,
	/// Element type.
	pub elem: ElemType,
	/// Declared shape, if the model declares one.
	pub shape: Option<Vec<Dim>>,
}

/// A node attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
	Float(f32),
	Int(i64),
	String(Vec<u8>),
	Tensor(Tensor),
	Floats(Vec<f32>),
	Ints(Vec<i64>),
	Strings(Vec<Vec<u8>>),
	/// A subgraph, such as an If's branch.
	Graph(Box<Graph>),
}

/// A subgraph: its nodes read the values of the graphs around it by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
	/// Its declared inputs' names (an If branch has none).
	pub inputs: Vec<String>,
	/// Its outputs' names, in order.
	pub outputs: Vec<String>,
	/// Its own constant tensors.
	pub initializers: HashMap<String, Tensor>,
	/// Its nodes, in topological order.
	pub nodes: Vec<Node>,
}

/// One operator application.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
	/// Node name (or `#index` when the model names none), for error messages and logs.
	pub name: String,
	/// Operator type, e.g. `MatMul`.
	pub op: String,
	/// Input value names; an empty name is an omitted optional input.
	pub inputs: Vec<String>,
	/// Output value names.
	pub outputs: Vec<String>,
	/// Attributes by name.
	pub attributes: BTreeMap<String, Attribute>,
}

/// A decoded and checked ONNX model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
	/// Version of the default-domain operator set the model targets.
	pub opset: i64,
	/// Inputs a caller provides (graph inputs that are not initializers).
	pub inputs: Vec<ValueSpec>,
	/// Outputs, in order.
	pub outputs: Vec<ValueSpec>,
	/// Constant tensors (weights).
	pub initializers: HashMap<String, Tensor>,
	/// Nodes, in the topological order the ONNX format requires.
	pub nodes: Vec<Node>,
}

impl Model {
	/// Decodes and checks a model file: an `.onnx`, or a bundle (a tar of one `.onnx` and the
	/// external data files it names).
	pub fn parse(bytes: &[u8]) -> Result<Model, ModelError> {
		match external::bundle(bytes) {
			Some(bundle) => {
				let (model, files) = bundle?;
				Model::parse_with(model, &files)
			},
			None => Model::parse_with(bytes, &Source::None),
		}
	}

	/// [`Model::parse`] of a file on disk, whose external data files (if any) are read from
	/// the model's directory.
	pub fn load(path: &std::path::Path) -> Result<Model, ModelError> {
		let bytes = std::fs::read(path)
			.map_err(|e| ModelError::Decode(format!("{}: {e}", path.display())))?;
		match external::bundle(&bytes) {
			Some(bundle) => {
				let (model, files) = bundle?;
				Model::parse_with(model, &files)
			},
			None => Model::parse_with(&bytes, &external::dir_of(path)),
		}
	}

	fn parse_with(bytes: &[u8], src: &Source) -> Result<Model, ModelError> {
		let model =
			proto::ModelProto::decode(bytes).map_err(|e| ModelError::Decode(e.to_string()))?;
		let mut opset = None;
		for import in &model.opset_import {
			match import.domain.as_deref().unwrap_or("") {
				"" | "ai.onnx" => opset = Some(import.version.unwrap_or(1)),
				other => return Err(ModelError::UnsupportedDomain(other.to_string())),
			}
		}
		let opset = opset.ok_or(ModelError::NoOpset)?;
		if let Some(f) = model.functions.first() {
			return Err(ModelError::Functions(f.name.clone().unwrap_or_default()));
		}
		let graph = model.graph.ok_or(ModelError::NoGraph)?;
		if !graph.sparse_initializer.is_empty() {
			return Err(ModelError::SparseInitializer);
		}

		let mut initializers = HashMap::new();
		for t in &graph.initializer {
			let tensor = tensor_in(t, src)?;
			initializers.insert(t.name.clone().unwrap_or_default(), tensor);
		}
		let mut inputs = Vec::new();
		for v in &graph.input {
			let spec = value_spec(v)?;
			// Before IR 4, initializers are listed among the inputs too; they are not inputs.
			if initializers.contains_key(&spec.name) {
				continue;
			}
			if inputs.iter().any(|i: &ValueSpec| i.name == spec.name) {
				return Err(ModelError::DuplicateInput(spec.name));
			}
			inputs.push(spec);
		}
		let outputs = graph.output.iter().map(value_spec).collect::<Result<Vec<_>, _>>()?;

		let nodes = nodes(&graph, "", 0, src)?;
		Ok(Model { opset, inputs, outputs, initializers, nodes })
	}

	/// The distinct operator types the model uses (its subgraphs' included), sorted.
	pub fn ops(&self) -> Vec<&str> {
		fn walk<'a>(nodes: &'a [Node], ops: &mut Vec<&'a str>) {
			for n in nodes {
				ops.push(&n.op);
				for a in n.attributes.values() {
					if let Attribute::Graph(g) = a {
						walk(&g.nodes, ops);
					}
				}
			}
		}
		let mut ops = Vec::new();
		walk(&self.nodes, &mut ops);
		ops.sort_unstable();
		ops.dedup();
		ops
	}
}

/// The element type of an ONNX data type code, where OPG supports it.
pub fn elem_type(data_type: i32) -> Option<ElemType> {
	Some(match data_type {
		1 => ElemType::F32,
		2 => ElemType::U8,
		3 => ElemType::I8,
		6 => ElemType::I32,
		7 => ElemType::I64,
		9 => ElemType::Bool,
		10 => ElemType::F16,
		11 => ElemType::F64,
		_ => return None,
	})
}

fn value_spec(v: &proto::ValueInfoProto) -> Result<ValueSpec, ModelError> {
	let name = v.name.clone().unwrap_or_default();
	let tensor = v
		.r#type
		.as_ref()
		.and_then(|t| t.tensor_type.as_ref())
		.ok_or_else(|| ModelError::NotATensor(name.clone()))?;
	let data_type = tensor.elem_type.unwrap_or(0);
	let elem = elem_type(data_type)
		.ok_or_else(|| ModelError::UnsupportedDataType { name: name.clone(), data_type })?;
	let shape = tensor.shape.as_ref().map(|s| {
		s.dim
			.iter()
			.map(|d| match d.dim_value {
				Some(v) if v >= 0 => Dim::Fixed(v as u64),
				_ => Dim::Any,
			})
			.collect()
	});
	Ok(ValueSpec { name, elem, shape })
}

/// A graph's nodes; those of a subgraph are named after the node that holds it (`prefix`),
/// `depth` levels down.
fn nodes(
	graph: &proto::GraphProto,
	prefix: &str,
	depth: usize,
	src: &Source,
) -> Result<Vec<Node>, ModelError> {
	let mut nodes = Vec::with_capacity(graph.node.len());
	for (index, n) in graph.node.iter().enumerate() {
		let op = n.op_type.clone().unwrap_or_default();
		let name = n
			.name
			.clone()
			.filter(|s| !s.is_empty())
			.unwrap_or_else(|| format!("{prefix}#{index}"));
		match n.domain.as_deref().unwrap_or("") {
			"" | "ai.onnx" => {},
			other => return Err(ModelError::UnsupportedDomain(other.to_string())),
		}
		let mut attributes = BTreeMap::new();
		for a in &n.attribute {
			let key = a.name.clone().unwrap_or_default();
			if a.ref_attr_name.is_some() {
				return Err(ModelError::AttributeReference { node: name, op, attribute: key });
			}
			let value = match &a.g {
				Some(g) if a.r#type.is_none_or(|t| t == 5) => {
					if depth + 1 > MAX_SUBGRAPH_DEPTH {
						return Err(ModelError::TooDeep { node: name, op });
					}
					let prefix = format!("{name}/{key}");
					Attribute::Graph(Box::new(subgraph(g, &prefix, depth + 1, src)?))
				},
				_ => attribute(a, src)?,
			};
			attributes.insert(key, value);
		}
		nodes.push(Node {
			name,
			op,
			inputs: n.input.clone(),
			outputs: n.output.clone(),
			attributes,
		});
	}
	Ok(nodes)
}

fn subgraph(
	g: &proto::GraphProto,
	prefix: &str,
	depth: usize,
	src: &Source,
) -> Result<Graph, ModelError> {
	if !g.sparse_initializer.is_empty() {
		return Err(ModelError::SparseInitializer);
	}
	let mut initializers = HashMap::new();
	for t in &g.initializer {
		initializers.insert(t.name.clone().unwrap_or_default(), tensor_in(t, src)?);
	}
	let names = |v: &[proto::ValueInfoProto]| -> Vec<String> {
		v.iter()
			.map(|v| v.name.clone().unwrap_or_default())
			.filter(|n| !initializers.contains_key(n))
			.collect()
	};
	Ok(Graph {
		inputs: names(&g.input),
		outputs: g.output.iter().map(|v| v.name.clone().unwrap_or_default()).collect(),
		nodes: nodes(g, prefix, depth, src)?,
		initializers,
	})
}

fn attribute(a: &proto::AttributeProto, src: &Source) -> Result<Attribute, ModelError> {
	// The `type` discriminator is authoritative; files written before it existed are read by
	// which field is set.
	Ok(match a.r#type {
		Some(1) => Attribute::Float(a.f.unwrap_or_default()),
		Some(2) => Attribute::Int(a.i.unwrap_or_default()),
		Some(3) => Attribute::String(a.s.clone().unwrap_or_default()),
		Some(4) => Attribute::Tensor(tensor_in(a.t.as_ref().ok_or_else(|| bad_attr(a))?, src)?),
		Some(6) => Attribute::Floats(a.floats.clone()),
		Some(7) => Attribute::Ints(a.ints.clone()),
		Some(8) => Attribute::Strings(a.strings.clone()),
		Some(_) => return Err(bad_attr(a)),
		None if a.f.is_some() => Attribute::Float(a.f.unwrap_or_default()),
		None if a.i.is_some() => Attribute::Int(a.i.unwrap_or_default()),
		None if a.s.is_some() => Attribute::String(a.s.clone().unwrap_or_default()),
		None if a.t.is_some() => Attribute::Tensor(tensor_in(a.t.as_ref().expect("checked"), src)?),
		None if !a.floats.is_empty() => Attribute::Floats(a.floats.clone()),
		None if !a.ints.is_empty() => Attribute::Ints(a.ints.clone()),
		None => Attribute::Strings(a.strings.clone()),
	})
}

fn bad_attr(a: &proto::AttributeProto) -> ModelError {
	ModelError::BadTensor {
		name: a.name.clone().unwrap_or_default(),
		reason: format!("attribute of unsupported type {:?}", a.r#type),
	}
}

/// Decodes a constant tensor into OPG's canonical form (little-endian data). A tensor whose
/// data is in an external file is refused (see [`Model::load`]).
pub fn tensor_from_proto(t: &proto::TensorProto) -> Result<Tensor, ModelError> {
	tensor_in(t, &Source::None)
}

/// [`tensor_from_proto`], external data read from `src`.
fn tensor_in(t: &proto::TensorProto, src: &Source) -> Result<Tensor, ModelError> {
	let name = t.name.clone().unwrap_or_default();
	let external = if t.data_location == Some(1) || !t.external_data.is_empty() {
		let (location, offset, length) = external::entries(&name, &t.external_data)?;
		Some(src.read(&name, &location, offset, length)?)
	} else {
		None
	};
	let data_type = t.data_type.unwrap_or(0);
	let elem = elem_type(data_type)
		.ok_or_else(|| ModelError::UnsupportedDataType { name: name.clone(), data_type })?;
	let bad = |reason: String| ModelError::BadTensor { name: name.clone(), reason };
	let shape = t
		.dims
		.iter()
		.map(|&d| u32::try_from(d).map_err(|_| bad(format!("dimension {d} out of range"))))
		.collect::<Result<Vec<u32>, _>>()?;
	let count = shape
		.iter()
		.try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
		.ok_or_else(|| bad("too many elements".into()))?;

	let data: Vec<u8> = if let Some(data) = external {
		data
	} else if let Some(raw) = &t.raw_data {
		raw.clone()
	} else {
		match elem {
			ElemType::F32 => t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
			ElemType::F64 => t.double_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
			ElemType::I64 => t.int64_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
			ElemType::I32 => t.int32_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
			// Narrow integer and bool types are stored one value per int32.
			ElemType::I8 => t.int32_data.iter().map(|&v| v as i8 as u8).collect(),
			ElemType::U8 => t.int32_data.iter().map(|&v| v as u8).collect(),
			ElemType::Bool => t.int32_data.iter().map(|&v| (v != 0) as u8).collect(),
			// float16 bits, one value per int32.
			ElemType::F16 => t.int32_data.iter().flat_map(|&v| (v as u16).to_le_bytes()).collect(),
		}
	};
	if data.len() != count * elem.size() {
		return Err(bad(format!("{} bytes of data for {count} elements of {elem:?}", data.len())));
	}
	Ok(Tensor { elem, shape, data })
}
