//! The executor: interprets a loaded ONNX graph with burn's backend operations.
//!
//! Float tensors live on the backend device (burn-flex on the CPU, CUDA with the `cuda`
//! feature) and every float op is a burn primitive; integer and boolean tensors (shapes,
//! indices, masks) are computed on the host, see [`host`]. Models are checked when loaded:
//! an operator or attribute the executor cannot run faithfully is an error naming it, never
//! a wrong answer at run time.
//!
//! Loading resolves each node once: to its typed op from the registry in [`ops`] (attributes
//! read and checked there), and its values to slots. A run walks the nodes without looking up
//! an operator, an attribute or a value by name.

mod cpu;
mod engine;
pub mod host;
mod ops;
mod spin;

use crate::onnx::{Model, Node};
use burn::tensor::{
	backend::Backend,
	ops::{BoolTensor, FloatTensor, IntTensor},
	DType, Shape, TensorData, TensorMetadata,
};
pub use engine::{CpuBackend, Device, Engine, LoadError};
use host::Host;
use opg_primitives::{ElemType, Tensor};
use ops::{Args, Cx, Fused, Op};
use std::{borrow::Cow, collections::HashMap};

/// The operators the executor implements, from the registry, in alphabetical order.
pub fn supported_ops() -> Vec<&'static str> {
	let mut names = ops::Registry::<CpuBackend>::new().names();
	// Control flow is loaded by the executor itself (its branches are graphs).
	names.push("If");
	names.sort_by_key(|name| name.to_ascii_lowercase());
	names
}

/// Why a model cannot be run, or a run failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
	#[error("operator `{op}` (node `{node}`) is not supported by the OPG executor")]
	UnsupportedOp { node: String, op: String },
	#[error("node `{node}` ({op}): {what} is not supported")]
	Unsupported { node: String, op: String, what: String },
	#[error("node `{node}` ({op}): {reason}")]
	Invalid { node: String, op: String, reason: String },
	#[error("value `{0}` is used before any node produces it")]
	Undefined(String),
	#[error("input: {0}")]
	Input(String),
	#[error("backend failure: {0}")]
	Backend(String),
	#[error("node `{node}`: the job's tensors would take {bytes} bytes, over this worker's limit of {limit} (--max-job-memory-mib)")]
	OverMemory { node: String, bytes: usize, limit: usize },
}

/// A value flowing through the graph.
#[derive(Debug)]
pub(crate) enum Value<B: Backend> {
	/// A float32 or float64 tensor on the device.
	Float(FloatTensor<B>),
	/// An integer or boolean tensor on the host.
	Host(Host),
}

impl<B: Backend> Clone for Value<B> {
	fn clone(&self) -> Self {
		match self {
			Value::Float(t) => Value::Float(t.clone()),
			Value::Host(h) => Value::Host(h.clone()),
		}
	}
}

impl<B: Backend> Value<B> {
	pub(crate) fn shape(&self) -> Vec<usize> {
		match self {
			Value::Float(t) => t.shape().to_vec(),
			Value::Host(h) => h.shape.clone(),
		}
	}

	pub(crate) fn elem(&self) -> ElemType {
		match self {
			Value::Float(t) if t.dtype() == DType::F64 => ElemType::F64,
			Value::Float(_) => ElemType::F32,
			Value::Host(h) => h.elem,
		}
	}

	/// Bytes of its elements.
	fn bytes(&self) -> usize {
		match self {
			Value::Float(t) => t.shape().num_elements().saturating_mul(t.dtype().size()),
			Value::Host(h) => h.data.len().saturating_mul(std::mem::size_of::<i64>()),
		}
	}
}

pub(crate) fn float_from_vec<B: Backend>(
	data: Vec<f32>,
	shape: &[usize],
	device: &B::Device,
) -> FloatTensor<B> {
	B::float_from_data(
		TensorData::new(data, Shape::from(shape.to_vec())).convert::<B::FloatElem>(),
		device,
	)
}

pub(crate) fn int_from_host<B: Backend>(h: &Host, device: &B::Device) -> IntTensor<B> {
	B::int_from_data(
		TensorData::new(h.data.clone(), Shape::from(h.shape.clone())).convert::<B::IntElem>(),
		device,
	)
}

/// A boolean mask on the device. Built by comparing 0/1 floats, so it has whatever bool
/// representation the backend uses (native bools on the CPU, u8 on CUDA).
pub(crate) fn bool_from_host<B: Backend>(h: &Host, device: &B::Device) -> BoolTensor<B> {
	let ones: Vec<f32> = h.data.iter().map(|&v| (v != 0) as u8 as f32).collect();
	let dtype = burn::tensor::get_device_settings::<B>(device).bool_dtype;
	B::float_greater_elem(float_from_vec::<B>(ones, &h.shape, device), 0.5f32.into(), dtype)
}

fn read<B: Backend>(t: FloatTensor<B>) -> Result<TensorData, ExecError> {
	burn::tensor::try_read_sync(B::float_into_data(t))
		.ok_or_else(|| ExecError::Backend("tensor read did not complete".into()))?
		.map_err(|e| ExecError::Backend(format!("{e:?}")))
}

/// Reads a device tensor back as `f32`s.
pub(crate) fn float_to_vec<B: Backend>(t: FloatTensor<B>) -> Result<Vec<f32>, ExecError> {
	let data = read::<B>(t)?;
	let data = if data.dtype == DType::F32 { data } else { data.convert::<f32>() };
	data.into_vec::<f32>().map_err(|e| ExecError::Backend(format!("{e:?}")))
}

fn host_from_tensor(t: &Tensor) -> Host {
	let shape = t.shape.iter().map(|&d| d as usize).collect();
	let data = match t.elem {
		ElemType::I64 => t
			.data
			.chunks_exact(8)
			.map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
			.collect(),
		ElemType::I32 => t
			.data
			.chunks_exact(4)
			.map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64)
			.collect(),
		ElemType::I8 => t.data.iter().map(|&b| b as i8 as i64).collect(),
		ElemType::U8 | ElemType::Bool => t.data.iter().map(|&b| b as i64).collect(),
		ElemType::F32 | ElemType::F64 | ElemType::F16 =>
			unreachable!("float tensors go to the device"),
	};
	Host::new(t.elem, shape, data)
}

fn tensor_from_host(h: &Host) -> Tensor {
	let shape = h.shape.iter().map(|&d| d as u32).collect();
	let data = match h.elem {
		ElemType::I64 => h.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
		ElemType::I32 => h.data.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect(),
		_ => h.data.iter().map(|&v| v as u8).collect(),
	};
	Tensor { elem: h.elem, shape, data }
}

/// A model prepared for one backend device: checked, each node resolved to its typed op, with
/// its weights uploaded once.
pub struct Executor<B: Backend> {
	model: Model,
	device: B::Device,
	/// Each node's op, its attributes read and checked at load.
	ops: Vec<Box<dyn Op<B>>>,
	/// The graph's value names by slot. A run keeps its values in a vector indexed by slot.
	names: Vec<String>,
	/// Initializers and the outputs of Constant nodes, by slot.
	constants: Vec<Option<Value<B>>>,
	/// The slots of the model's inputs and outputs.
	inputs: Vec<usize>,
	outputs: Vec<usize>,
	/// The nodes a run walks, in order: all but Constant nodes and the nodes fused into the
	/// node before them.
	steps: Vec<Step>,
	/// Nodes run by the node before them, skipped in the walk.
	absorbed: Vec<bool>,
	/// Most bytes a run's live tensors (inputs and intermediates, not the weights) may take.
	memory_limit: usize,
}

/// Default of [`Executor::memory_limit`]: 4 GiB of live tensors per job.
pub const DEFAULT_JOB_MEMORY: usize = 4 << 30;

/// A node as a run walks it, its values resolved to slots at load.
struct Step {
	node: usize,
	/// Each input's slot (`None`: omitted) and whether this node is its last reader, which
	/// takes the value instead of a copy, so that kernels can reuse its buffer.
	inputs: Vec<Option<(usize, bool)>>,
	/// The nodes it runs right after itself, on its output (see [`fuse_epilogues`]).
	epilogue: Vec<usize>,
	/// Where its outputs go (with an epilogue, its last node's outputs); `None`: unused.
	outputs: Vec<Option<usize>>,
	/// The values whose last reader it is, freed after it runs.
	frees: Vec<usize>,
	/// Whether its float inputs must share one type (see [`MIXED_FLOAT_OPS`]).
	uniform_floats: bool,
	/// Which of its outputs the model types float16 (rounded after it runs).
	round: Vec<bool>,
}

/// Operators whose ONNX type constraints let float inputs differ (`Pow`'s exponent, the
/// statistics of `BatchNormalization`, the scales of `Resize`, ...). Every other operator's
/// float inputs share one type constraint: a model that mixes f32 and f64 there is invalid,
/// and is refused before a kernel sees it (burn's kernels assert on the dtype).
const MIXED_FLOAT_OPS: &[&str] = &[
	"BatchNormalization",
	"CastLike",
	"Dropout",
	"LayerNormalization",
	"Pow",
	"Resize",
	"Upsample",
];

/// Value names numbered in the order they are first seen.
#[derive(Default)]
struct Slots<'m> {
	index: HashMap<&'m str, usize>,
	names: Vec<String>,
}

impl<'m> Slots<'m> {
	fn of(&mut self, name: &'m str) -> usize {
		*self.index.entry(name).or_insert_with(|| {
			self.names.push(name.to_string());
			self.names.len() - 1
		})
	}
}

/// The nodes each node runs right after itself, on its output: a Relu after a Conv or Gemm,
/// and a MaxPool after a Conv (or its Relu), as the ops' [`Op::fuses`] accept them, each the
/// only reader of the value before it, which is not a graph output. The CPU kernels apply
/// them to each image while it is still in cache, saving a pass over memory and a buffer per
/// node; elsewhere they run as usual.
fn fuse_epilogues<B: Backend>(
	model: &Model,
	ops: &[Box<dyn Op<B>>],
	folded: &[bool],
) -> Vec<Vec<usize>> {
	let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
	for (i, node) in model.nodes.iter().enumerate() {
		for input in node.inputs.iter().filter(|n| !n.is_empty()) {
			readers.entry(input).or_default().push(i);
		}
	}
	let is_output = |name: &str| model.outputs.iter().any(|o| o.name == name);
	// The single reader of `node`'s single output, if it has one input.
	let next = |node: &Node| -> Option<usize> {
		if node.outputs.len() != 1 || is_output(&node.outputs[0]) {
			return None;
		}
		match readers.get(node.outputs[0].as_str()).map(Vec::as_slice) {
			Some(&[j]) if model.nodes[j].inputs.len() == 1 => Some(j),
			_ => None,
		}
	};
	model
		.nodes
		.iter()
		.zip(ops)
		.zip(folded)
		.map(|((node, op), &folded)| {
			let (mut chain, mut kinds, mut last) = (Vec::new(), Vec::new(), node);
			if folded {
				return chain;
			}
			while let Some(j) = next(last) {
				let Some(kind) = ops[j].as_epilogue() else { break };
				kinds.push(kind);
				if !op.fuses(&kinds) {
					break;
				}
				chain.push(j);
				last = &model.nodes[j];
			}
			chain
		})
		.collect()
}

/// Most elements a value computed at load may have (64 Mi, 256 MiB of f32): beyond that a
/// folded constant costs more memory than recomputing it per run saves time.
const MAX_FOLDED_ELEMENTS: usize = 1 << 26;

/// Constant folding: runs, once and in graph order, every node whose inputs are all constants
/// (initializers, Constant nodes, nodes folded before it), such as the dequantization of int8
/// weights or shape arithmetic on them, and keeps its outputs as constants. A node that fails
/// here, or whose outputs are too large, is left to run (and fail) with the job. Returns which
/// nodes were folded.
fn fold_constants<B: Backend>(
	model: &Model,
	ops: &[Box<dyn Op<B>>],
	constants: &mut HashMap<String, Value<B>>,
	half: &std::collections::HashSet<String>,
	device: &B::Device,
) -> Vec<bool> {
	let mut folded = vec![false; model.nodes.len()];
	for (i, (node, op)) in model.nodes.iter().zip(ops).enumerate() {
		let inputs: Vec<&String> = node.inputs.iter().filter(|n| !n.is_empty()).collect();
		if op.is_constant() ||
			inputs.is_empty() ||
			!inputs.iter().all(|n| constants.contains_key(*n))
		{
			continue;
		}
		let args = node.inputs.iter().map(|n| constants.get(n).map(Cow::Borrowed)).collect();
		let run = std::panic::AssertUnwindSafe(|| {
			let out = op.run(&Cx { node, device }, Args(args))?;
			round_outputs(out, |i| node.outputs.get(i).is_some_and(|n| half.contains(n)), device)
		});
		let Ok(Ok(out)) = std::panic::catch_unwind(run) else { continue };
		let small = out.iter().all(|v| v.shape().iter().product::<usize>() <= MAX_FOLDED_ELEMENTS);
		if out.len() < node.outputs.iter().filter(|n| !n.is_empty()).count() || !small {
			continue;
		}
		for (name, value) in node.outputs.iter().zip(out) {
			if !name.is_empty() {
				constants.insert(name.clone(), value);
			}
		}
		folded[i] = true;
	}
	folded
}

/// Each node's operator (with its fused epilogue's) and wall time, in run order.
pub type NodeTimes = Vec<(String, std::time::Duration)>;

impl<B: Backend> Executor<B> {
	/// Checks every node and uploads the weights. Unsupported operators and attributes, and
	/// values read before they are produced, are refused here.
	///
	/// An If node's inputs are extended, after its condition, with the values its branches
	/// read from the graph (see `ops::control`): [`Executor::model`] shows them so.
	pub fn new(mut model: Model, device: B::Device) -> Result<Self, ExecError> {
		let registry = ops::Registry::<B>::new();
		for node in model.nodes.iter_mut().filter(|n| n.op == "If") {
			ops::bind_outer_values(node);
		}
		// The values the model types float16.
		let mut half: std::collections::HashSet<String> = model
			.inputs
			.iter()
			.filter(|i| i.elem == ElemType::F16)
			.map(|i| i.name.clone())
			.chain(
				model
					.initializers
					.iter()
					.filter(|(_, t)| t.elem == ElemType::F16)
					.map(|(n, _)| n.clone()),
			)
			.collect();
		half_values::infer(&model.nodes, &mut half);
		let ops = model
			.nodes
			.iter()
			.map(|node| match node.op.as_str() {
				"If" => ops::load_if(node, model.opset, &device, &half),
				_ => registry.parse(node, model.opset),
			})
			.collect::<Result<Vec<_>, _>>()?;
		let mut constants = HashMap::new();
		for (name, t) in &model.initializers {
			constants.insert(name.clone(), to_value::<B>(t, &device)?);
		}
		// Constant nodes are evaluated once, here, like initializers.
		for (node, op) in model.nodes.iter().zip(&ops).filter(|(_, op)| op.is_constant()) {
			let out = op.run(&Cx { node, device: &device }, Args(Vec::new()))?;
			for (name, value) in node.outputs.iter().zip(out) {
				constants.insert(name.clone(), value);
			}
		}
		let folded = fold_constants(&model, &ops, &mut constants, &half, &device);
		let mut ops = ops;
		for (i, node) in model.nodes.iter().enumerate().filter(|(i, _)| !folded[*i]) {
			let known: Vec<Option<&Value<B>>> =
				node.inputs.iter().map(|n| constants.get(n.as_str())).collect();
			if known.iter().any(Option::is_some) {
				if let Some(op) = ops[i].specialize(&Cx { node, device: &device }, &known) {
					ops[i] = op;
				}
			}
		}

		// Every value must be defined before use; remember where each is read last.
		let mut defined: std::collections::HashSet<&str> = model
			.inputs
			.iter()
			.map(|i| i.name.as_str())
			.chain(constants.keys().map(|k| k.as_str()))
			.collect();
		let mut last_use: HashMap<&str, usize> = HashMap::new();
		for (i, node) in model.nodes.iter().enumerate() {
			for input in node.inputs.iter().filter(|n| !n.is_empty()) {
				if !defined.contains(input.as_str()) {
					return Err(ExecError::Undefined(input.clone()));
				}
				last_use.insert(input, i);
			}
			defined.extend(node.outputs.iter().filter(|n| !n.is_empty()).map(|n| n.as_str()));
		}
		for out in &model.outputs {
			if !defined.contains(out.name.as_str()) {
				return Err(ExecError::Undefined(out.name.clone()));
			}
			last_use.remove(out.name.as_str());
		}

		// One slot per value name.
		let mut slots = Slots::default();
		let inputs: Vec<usize> = model.inputs.iter().map(|i| slots.of(&i.name)).collect();
		let outputs: Vec<usize> = model.outputs.iter().map(|o| slots.of(&o.name)).collect();
		let mut frees = vec![Vec::new(); model.nodes.len()];
		for (name, i) in last_use {
			if !constants.contains_key(name) {
				frees[i].push(slots.of(name));
			}
		}
		let epilogues = fuse_epilogues(&model, &ops, &folded);
		let mut absorbed = vec![false; model.nodes.len()];
		for &j in epilogues.iter().flatten() {
			absorbed[j] = true;
		}
		let mut steps = Vec::new();
		for (i, ((node, op), (epilogue, frees))) in
			model.nodes.iter().zip(&ops).zip(epilogues.into_iter().zip(frees)).enumerate()
		{
			if op.is_constant() || absorbed[i] || folded[i] {
				continue;
			}
			let inputs = node
				.inputs
				.iter()
				.enumerate()
				.map(|(j, name)| {
					let slot = (!name.is_empty()).then(|| slots.of(name))?;
					Some((slot, frees.contains(&slot) && !node.inputs[j + 1..].contains(name)))
				})
				.collect();
			// With an epilogue, the outputs are its last node's.
			let last = epilogue.last().map_or(node, |&j| &model.nodes[j]);
			let outputs = last
				.outputs
				.iter()
				.map(|name| (!name.is_empty()).then(|| slots.of(name)))
				.collect();
			let uniform_floats = !MIXED_FLOAT_OPS.contains(&node.op.as_str());
			let round = last.outputs.iter().map(|n| half.contains(n)).collect();
			steps.push(Step { node: i, inputs, epilogue, outputs, frees, uniform_floats, round });
		}
		let mut slotted = Vec::new();
		slotted.resize_with(slots.names.len(), || None);
		for (name, value) in constants {
			if let Some(&slot) = slots.index.get(name.as_str()) {
				slotted[slot] = Some(value);
			}
		}
		let names = slots.names;
		Ok(Executor {
			model,
			device,
			ops,
			names,
			constants: slotted,
			inputs,
			outputs,
			steps,
			absorbed,
			memory_limit: DEFAULT_JOB_MEMORY,
		})
	}

	pub fn model(&self) -> &Model {
		&self.model
	}

	/// Caps the bytes a run's live tensors may take; a run that would go over fails with
	/// [`ExecError::OverMemory`] (see [`DEFAULT_JOB_MEMORY`]).
	pub fn with_memory_limit(mut self, bytes: usize) -> Self {
		self.set_memory_limit(bytes);
		self
	}

	fn set_memory_limit(&mut self, bytes: usize) {
		self.memory_limit = bytes;
		for op in &mut self.ops {
			op.limit_memory(bytes);
		}
	}

	/// The nodes run inside the node before them, by op: Relu after Conv or Gemm, MaxPool
	/// after Conv.
	pub fn fused(&self) -> Vec<&str> {
		self.model
			.nodes
			.iter()
			.zip(&self.absorbed)
			.filter(|(_, &a)| a)
			.map(|(n, _)| n.op.as_str())
			.collect()
	}

	/// Runs the model on tensors given in the order of the model's inputs.
	pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, ExecError> {
		self.run_timed(inputs, None)
	}

	/// [`Executor::run`], and the wall time of each node that ran, by its operator (with its
	/// fused epilogue's, as `Conv+Relu`), in run order. On a GPU backend a node's time is
	/// the time to queue its kernels, not to run them.
	pub fn run_profiled(&self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, NodeTimes), ExecError> {
		let mut times = Vec::new();
		let out = self.run_timed(inputs, Some(&mut times))?;
		let named = times
			.into_iter()
			.map(|(i, t): (usize, std::time::Duration)| {
				let step = &self.steps[i];
				let mut op = self.model.nodes[step.node].op.clone();
				for &j in &step.epilogue {
					op = format!("{op}+{}", self.model.nodes[j].op);
				}
				(op, t)
			})
			.collect();
		Ok((out, named))
	}

	fn run_timed(
		&self,
		inputs: &[Tensor],
		times: Option<&mut Vec<(usize, std::time::Duration)>>,
	) -> Result<Vec<Tensor>, ExecError> {
		if inputs.len() != self.model.inputs.len() {
			return Err(ExecError::Input(format!(
				"{} tensors given, the model takes {}",
				inputs.len(),
				self.model.inputs.len()
			)));
		}
		let mut env: Vec<Option<Value<B>>> = Vec::new();
		env.resize_with(self.names.len(), || None);
		for ((spec, t), &slot) in self.model.inputs.iter().zip(inputs).zip(&self.inputs) {
			if t.elem != spec.elem {
				return Err(ExecError::Input(format!(
					"`{}` must be {:?}, got {:?}",
					spec.name, spec.elem, t.elem
				)));
			}
			if !t.is_consistent() {
				return Err(ExecError::Input(format!(
					"`{}`: data length does not match its shape",
					spec.name
				)));
			}
			if let Some(dims) = &spec.shape {
				let fits = dims.len() == t.shape.len() &&
					dims.iter().zip(&t.shape).all(|(d, &s)| match d {
						crate::onnx::Dim::Fixed(n) => *n == s as u64,
						crate::onnx::Dim::Any => true,
					});
				if !fits {
					return Err(ExecError::Input(format!(
						"`{}` has shape {:?}, the model declares {:?}",
						spec.name, t.shape, dims
					)));
				}
			}
			env[slot] = Some(to_value::<B>(t, &self.device)?);
		}

		// Backend kernels assert on shapes; anything that slipped past the checks in `ops`
		// must fail this job, not the worker.
		let run = std::panic::AssertUnwindSafe(|| self.run_nodes(env, times));
		let env = std::panic::catch_unwind(run).map_err(|p| {
			let msg = p
				.downcast_ref::<String>()
				.cloned()
				.or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
				.unwrap_or_else(|| "panic".into());
			ExecError::Backend(msg)
		})??;

		let mut outputs = Vec::with_capacity(self.model.outputs.len());
		for (spec, &slot) in self.model.outputs.iter().zip(&self.outputs) {
			let value = env[slot]
				.as_ref()
				.or(self.constants[slot].as_ref())
				.ok_or_else(|| ExecError::Undefined(spec.name.clone()))?
				.clone();
			// float16 is held as f32 (see `half_values`).
			let held = if spec.elem == ElemType::F16 { ElemType::F32 } else { spec.elem };
			if value.elem() != held {
				return Err(ExecError::Backend(format!(
					"output `{}` came out as {:?}, the model declares {:?}",
					spec.name,
					value.elem(),
					spec.elem
				)));
			}
			outputs.push(match value {
				Value::Float(t) => {
					let shape: Vec<u32> = t.shape().iter().map(|&d| d as u32).collect();
					let data = read::<B>(t)?;
					let (elem, data) = if spec.elem == ElemType::F16 {
						let v = data
							.convert::<f32>()
							.into_vec::<f32>()
							.map_err(|e| ExecError::Backend(format!("{e:?}")))?;
						let bits = v.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes());
						(ElemType::F16, bits.collect())
					} else if spec.elem == ElemType::F64 {
						let v = data
							.convert::<f64>()
							.into_vec::<f64>()
							.map_err(|e| ExecError::Backend(format!("{e:?}")))?;
						(ElemType::F64, v.iter().flat_map(|v| v.to_le_bytes()).collect())
					} else {
						let v = data
							.convert::<f32>()
							.into_vec::<f32>()
							.map_err(|e| ExecError::Backend(format!("{e:?}")))?;
						(ElemType::F32, v.iter().flat_map(|v| v.to_le_bytes()).collect())
					};
					Tensor { elem, shape, data }
				},
				Value::Host(h) => tensor_from_host(&h),
			});
		}
		Ok(outputs)
	}

	/// Runs a subgraph (an If branch) on the values of its inputs, in order; their types are
	/// what the graph around it made, not checked against declarations.
	pub(crate) fn run_values(&self, values: Vec<Value<B>>) -> Result<Vec<Value<B>>, ExecError> {
		let mut env: Vec<Option<Value<B>>> = Vec::new();
		env.resize_with(self.names.len(), || None);
		for (value, &slot) in values.into_iter().zip(&self.inputs) {
			env[slot] = Some(value);
		}
		let env = self.run_nodes(env, None)?;
		self.model
			.outputs
			.iter()
			.zip(&self.outputs)
			.map(|(spec, &slot)| {
				env[slot]
					.clone()
					.or_else(|| self.constants[slot].clone())
					.ok_or_else(|| ExecError::Undefined(spec.name.clone()))
			})
			.collect()
	}

	fn run_nodes(
		&self,
		mut env: Vec<Option<Value<B>>>,
		mut times: Option<&mut Vec<(usize, std::time::Duration)>>,
	) -> Result<Vec<Option<Value<B>>>, ExecError> {
		// Bytes of the run's live values: a copy counts as much as its original (an upper
		// bound where the backend shares buffers). A value taken by its last reader counts
		// until that node's outputs replace it.
		let mut live: usize = env.iter().flatten().map(Value::bytes).sum();
		for (index, step) in self.steps.iter().enumerate() {
			let started = times.is_some().then(std::time::Instant::now);
			let mut taken = 0usize;
			let inputs = step
				.inputs
				.iter()
				.map(|input| {
					let Some((slot, take)) = *input else { return Ok(None) };
					let value = if take {
						let v = env[slot].take();
						taken += v.as_ref().map_or(0, Value::bytes);
						v
					} else {
						env[slot].clone()
					};
					value
						.map(Cow::Owned)
						.or_else(|| self.constants[slot].as_ref().map(Cow::Borrowed))
						.map(Some)
						.ok_or_else(|| ExecError::Undefined(self.names[slot].clone()))
				})
				.collect::<Result<Vec<_>, _>>()?;
			let node = &self.model.nodes[step.node];
			let cx = Cx { node, device: &self.device };
			if step.uniform_floats {
				let mut floats = inputs.iter().flatten().filter_map(|v| match &**v {
					Value::Float(t) => Some(t.dtype()),
					Value::Host(_) => None,
				});
				if let Some(first) = floats.next() {
					if let Some(other) = floats.find(|d| *d != first) {
						return cx.invalid(format!(
							"float inputs of different types ({first:?} and {other:?})"
						));
					}
				}
			}
			let op = &self.ops[step.node];
			let outputs = if step.epilogue.is_empty() {
				op.run(&cx, Args(inputs))?
			} else {
				let fused: Vec<Fused> = step
					.epilogue
					.iter()
					.map(|&j| Fused {
						node: &self.model.nodes[j],
						op: self.ops[j].as_epilogue().expect("fused for being an epilogue"),
					})
					.collect();
				let (mut out, applied) = op.run_fused(&cx, Args(inputs), &fused)?;
				// What the kernel did not apply runs as its own nodes.
				for &j in &step.epilogue[applied..] {
					let cx = Cx { node: &self.model.nodes[j], device: &self.device };
					out = self.ops[j].run(&cx, Args::owned(out.into_iter().map(Some).collect()))?;
				}
				out
			};
			let outputs = if step.round.contains(&true) {
				round_outputs(outputs, |i| step.round.get(i) == Some(&true), &self.device)?
			} else {
				outputs
			};
			if let (Some(times), Some(started)) = (times.as_deref_mut(), started) {
				times.push((index, started.elapsed()));
			}
			live = live.saturating_sub(taken);
			for (slot, value) in step.outputs.iter().zip(outputs) {
				if let Some(slot) = slot {
					live = live.saturating_add(value.bytes());
					if let Some(old) = env[*slot].replace(value) {
						live = live.saturating_sub(old.bytes());
					}
				}
			}
			if live > self.memory_limit {
				return Err(ExecError::OverMemory {
					node: node.name.clone(),
					bytes: live,
					limit: self.memory_limit,
				});
			}
			for &slot in &step.frees {
				if let Some(old) = env[slot].take() {
					live = live.saturating_sub(old.bytes());
				}
			}
		}
		Ok(env)
	}
}

fn to_value<B: Backend>(t: &Tensor, device: &B::Device) -> Result<Value<B>, ExecError> {
	Ok(match t.elem {
		ElemType::F64 => {
			let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
			Value::Float(B::float_from_data(
				TensorData::from_bytes_vec(t.data.clone(), Shape::from(shape), DType::F64),
				device,
			))
		},
		ElemType::F32 => {
			let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
			let data = t
				.data
				.chunks_exact(4)
				.map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
				.collect();
			Value::Float(float_from_vec::<B>(data, &shape, device))
		},
		// float16 is held as the f32 of the same value (see `half`).
		ElemType::F16 => {
			let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
			let data = t
				.data
				.chunks_exact(2)
				.map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
				.collect();
			Value::Float(float_from_vec::<B>(data, &shape, device))
		},
		_ => Value::Host(host_from_tensor(t)),
	})
}

/// float16 values. A float16 tensor is held as f32 values that float16 represents, and every
/// node whose output the model types float16 has that output rounded to float16 (to nearest,
/// ties to even) after it runs: the node computes in f32 and rounds once, as onnxruntime's
/// CPU kernels do for float16 graphs (it casts around the nodes it has no float16 kernel for).
mod half_values {
	use crate::onnx::{Attribute, Node};
	use opg_primitives::ElemType;
	use std::collections::HashSet;

	/// The values of `nodes` (given which values around them are float16) that the model
	/// types float16: inputs of a node's type constraint share its float type, Cast and
	/// CastLike say theirs, constants carry theirs, an If's outputs are its branches'.
	pub(crate) fn infer(nodes: &[Node], half: &mut HashSet<String>) {
		for node in nodes {
			let attr_tensor_half = |key: &str| matches!(node.attributes.get(key), Some(Attribute::Tensor(t)) if t.elem == ElemType::F16);
			let outputs: Vec<bool> = match node.op.as_str() {
				"Cast" => vec![matches!(node.attributes.get("to"), Some(Attribute::Int(10)))],
				"CastLike" => vec![node.inputs.get(1).is_some_and(|n| half.contains(n))],
				"Constant" => vec![attr_tensor_half("value")],
				"ConstantOfShape" => vec![attr_tensor_half("value")],
				"If" => match node.attributes.get("then_branch") {
					Some(Attribute::Graph(g)) => {
						let mut inner = half.clone();
						inner.extend(
							g.initializers
								.iter()
								.filter(|(_, t)| t.elem == ElemType::F16)
								.map(|(n, _)| n.clone()),
						);
						infer(&g.nodes, &mut inner);
						g.outputs.iter().map(|o| inner.contains(o)).collect()
					},
					_ => vec![],
				},
				_ => vec![node.inputs.iter().any(|n| half.contains(n)); node.outputs.len()],
			};
			for (name, h) in node.outputs.iter().zip(outputs) {
				if h && !name.is_empty() {
					half.insert(name.clone());
				} else {
					half.remove(name);
				}
			}
		}
	}
}

/// Rounds a float tensor's values to float16 (see [`half_values`]).
fn round_to_half<B: Backend>(
	t: FloatTensor<B>,
	device: &B::Device,
) -> Result<FloatTensor<B>, ExecError> {
	let shape = t.shape().to_vec();
	let mut v = float_to_vec::<B>(t)?;
	v.iter_mut().for_each(|x| *x = half::f16::from_f32(*x).to_f32());
	Ok(float_from_vec::<B>(v, &shape, device))
}

/// [`round_to_half`] of the float outputs `round` marks.
fn round_outputs<B: Backend>(
	outputs: Vec<Value<B>>,
	round: impl Fn(usize) -> bool,
	device: &B::Device,
) -> Result<Vec<Value<B>>, ExecError> {
	outputs
		.into_iter()
		.enumerate()
		.map(|(i, v)| match v {
			Value::Float(t) if round(i) && t.dtype() == DType::F32 =>
				Ok(Value::Float(round_to_half::<B>(t, device)?)),
			v => Ok(v),
		})
		.collect()
}
