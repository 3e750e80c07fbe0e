//! ONNX operators on burn primitives, one registration per operator, grouped by family.
//!
//! Each family's `register` names its operators once, each with a [`Parser`] that reads and
//! checks the node's attributes at load and returns a typed [`Op`]. The executor resolves
//! every node through the [`Registry`] when the model is loaded, so a run matches no names and
//! reads no attributes. Each op follows the ONNX operator specification for the model's opset
//! (attributes that moved to inputs are read from where that opset keeps them). Shapes are
//! checked before a backend kernel sees them.
//!
//! A refusal at load (an operator or attribute value the executor cannot run faithfully) is
//! [`ExecError::UnsupportedOp`] or [`ExecError::Unsupported`]; anything that depends on the
//! input shapes is checked when the op runs, as [`ExecError::Invalid`].

mod attention;
mod binary;
mod cast;
mod control;
mod conv;
mod elementwise;
mod index;
mod linalg;
mod norm;
mod pool;
mod quant;
mod reduce;
mod resize;
mod shape;

use super::{float_from_vec, float_to_vec, host::Host, ExecError, Value};
use crate::onnx::{Attribute, Node};
use burn::tensor::{
	backend::Backend, get_device_settings, ops::FloatTensor, DType, FloatDType, Scalar, Shape,
	Slice, TensorMetadata,
};
pub(crate) use control::{bind_outer_values, load_if};
use opg_primitives::ElemType;
use std::{borrow::Cow, collections::HashMap};

type F<B> = FloatTensor<B>;
type R<T> = Result<T, ExecError>;

// ---------------------------------------------------------------------------------------
// Typed ops and their registry.

/// An operator with its attributes read and checked at load.
pub(crate) trait Op<B: Backend>: Send + Sync {
	/// Runs the op on its inputs (`None` for an omitted optional input).
	fn run(&self, cx: &Cx<B>, inputs: Args<B>) -> R<Vec<Value<B>>>;

	/// Whether the op takes no inputs and is evaluated once, at load, like an initializer.
	fn is_constant(&self) -> bool {
		false
	}

	/// At load, given the inputs that are constants (`None` for the others): an op that has
	/// done its work on them once (weights converted, packed), or `None` to keep this one.
	/// It must compute the same bits as this op.
	fn specialize(&self, _cx: &Cx<B>, _constants: &[Option<&Value<B>>]) -> Option<Box<dyn Op<B>>> {
		None
	}

	/// What the op does when the op before it runs it on its output, if a kernel can.
	fn as_epilogue(&self) -> Option<Epilogue<'_>> {
		None
	}

	/// Whether the op's kernels can run `chain`, in order, on their output.
	fn fuses(&self, _chain: &[Epilogue<'_>]) -> bool {
		false
	}

	/// Runs the op, then the first ops of `epilogue` that its kernel applies (see
	/// `fuse_epilogues`); returns the outputs and how many of them it applied. The executor
	/// runs the rest as their own nodes, so the result is the same either way.
	fn run_fused(
		&self,
		cx: &Cx<B>,
		inputs: Args<B>,
		_epilogue: &[Fused<'_>],
	) -> R<(Vec<Value<B>>, usize)> {
		Ok((self.run(cx, inputs)?, 0))
	}

	/// Caps the live bytes of the graphs the op runs itself (If's branches).
	fn limit_memory(&mut self, _bytes: usize) {}
}

/// An op that the op before it can run on its output, inside its kernel.
#[derive(Clone, Copy)]
pub(crate) enum Epilogue<'a> {
	Relu,
	MaxPool(&'a pool::Pool),
}

/// A node fused into the one before it, as that node's kernel sees it.
#[derive(Clone, Copy)]
pub(crate) struct Fused<'a> {
	/// The fused node, named in its errors.
	pub node: &'a Node,
	pub op: Epilogue<'a>,
}

/// Reads a node's attributes for the model's opset, refuses what the executor cannot run
/// (an [`ExecError::Unsupported`] naming it) and returns the typed op.
pub(crate) type Parser<B> = fn(&Node, i64) -> R<Box<dyn Op<B>>>;

/// Every operator the executor implements, by ONNX name.
pub(crate) struct Registry<B: Backend> {
	parsers: HashMap<&'static str, Parser<B>>,
}

impl<B: Backend> Registry<B> {
	pub(crate) fn new() -> Self {
		let mut registry = Registry { parsers: HashMap::new() };
		attention::register(&mut registry);
		binary::register(&mut registry);
		cast::register(&mut registry);
		conv::register(&mut registry);
		elementwise::register(&mut registry);
		index::register(&mut registry);
		linalg::register(&mut registry);
		norm::register(&mut registry);
		pool::register(&mut registry);
		quant::register(&mut registry);
		reduce::register(&mut registry);
		resize::register(&mut registry);
		shape::register(&mut registry);
		registry
	}

	fn add(&mut self, op: &'static str, parse: Parser<B>) {
		let before = self.parsers.insert(op, parse);
		assert!(before.is_none(), "operator `{op}` is registered twice");
	}

	/// The node's typed op; an operator that is not registered is refused by name.
	pub(crate) fn parse(&self, node: &Node, opset: i64) -> R<Box<dyn Op<B>>> {
		match self.parsers.get(node.op.as_str()) {
			Some(parse) => parse(node, opset),
			None => Err(ExecError::UnsupportedOp { node: node.name.clone(), op: node.op.clone() }),
		}
	}

	/// The registered operators, in alphabetical order.
	pub(crate) fn names(&self) -> Vec<&'static str> {
		let mut names: Vec<&'static str> = self.parsers.keys().copied().collect();
		names.sort_by_key(|name| name.to_ascii_lowercase());
		names
	}
}

/// A parser's result: `op`, boxed.
fn boxed<B: Backend>(op: impl Op<B> + 'static) -> R<Box<dyn Op<B>>> {
	Ok(Box::new(op))
}

/// A node's attributes, read by the parsers. An attribute of another type than the one read
/// counts as absent.
#[derive(Clone, Copy)]
struct Attrs<'a>(&'a Node);

impl Attrs<'_> {
	fn has(&self, name: &str) -> bool {
		self.0.attributes.contains_key(name)
	}
	fn int_opt(&self, name: &str) -> Option<i64> {
		match self.0.attributes.get(name) {
			Some(Attribute::Int(v)) => Some(*v),
			_ => None,
		}
	}
	fn int(&self, name: &str, default: i64) -> i64 {
		self.int_opt(name).unwrap_or(default)
	}
	fn float(&self, name: &str, default: f32) -> f32 {
		match self.0.attributes.get(name) {
			Some(Attribute::Float(v)) => *v,
			_ => default,
		}
	}
	fn ints(&self, name: &str) -> Option<Vec<i64>> {
		match self.0.attributes.get(name) {
			Some(Attribute::Ints(v)) => Some(v.clone()),
			_ => None,
		}
	}
	fn string(&self, name: &str) -> Option<String> {
		match self.0.attributes.get(name) {
			Some(Attribute::String(s)) => Some(String::from_utf8_lossy(s).into_owned()),
			_ => None,
		}
	}
	/// Whether any output past the first `keep` is used.
	fn extra_outputs(&self, keep: usize) -> bool {
		self.0.outputs.iter().skip(keep).any(|o| !o.is_empty())
	}
	/// Refuses the node at load: `what` is not supported.
	fn unsupported<T>(&self, what: impl Into<String>) -> R<T> {
		Err(ExecError::Unsupported {
			node: self.0.name.clone(),
			op: self.0.op.clone(),
			what: what.into(),
		})
	}
}

/// A list that moved from an attribute to an optional integer input at some opset (the
/// `axes` of Squeeze, Unsqueeze and the reductions, Split's `split`).
enum Listed {
	Attribute(Option<Vec<i64>>),
	Input(usize),
}

impl Listed {
	/// The list where `opset` keeps it: input `input` from `since`, attribute `name` before.
	fn parse(a: Attrs, opset: i64, since: i64, name: &str, input: usize) -> Listed {
		if opset >= since {
			Listed::Input(input)
		} else {
			Listed::Attribute(a.ints(name))
		}
	}

	fn get<'a, B: Backend>(&'a self, cx: &Cx<B>, a: &'a Args<B>) -> R<Option<Cow<'a, [i64]>>> {
		match self {
			Listed::Attribute(v) => Ok(v.as_deref().map(Cow::Borrowed)),
			Listed::Input(i) => a
				.opt(*i)
				.map(|_| a.host(cx, *i).map(|h| Cow::Borrowed(&h.data[..])))
				.transpose(),
		}
	}
}

// ---------------------------------------------------------------------------------------
// What an op runs with.

/// Most elements one tensor an operator makes may have (1 GiB of f32): model geometry and
/// input shapes are untrusted, and some operators multiply them.
pub const MAX_ELEMENTS: usize = 1 << 28;

/// The node an op runs for (named in its errors) and the device its tensors live on.
pub(crate) struct Cx<'a, B: Backend> {
	pub node: &'a Node,
	pub device: &'a B::Device,
}

// By hand: a derive would ask for `B: Copy`, and only references are copied.
impl<B: Backend> Clone for Cx<'_, B> {
	fn clone(&self) -> Self {
		*self
	}
}

impl<B: Backend> Copy for Cx<'_, B> {}

impl<B: Backend> Cx<'_, B> {
	/// Refuses an output of `shape` with more than [`MAX_ELEMENTS`] elements (or a count
	/// that overflows): what operators that multiply sizes (Expand, Tile) check first.
	fn check_elements(&self, shape: &[usize]) -> R<()> {
		match shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
			Some(n) if n <= MAX_ELEMENTS => Ok(()),
			_ => self.invalid(format!(
				"an output of shape {shape:?} is over the limit of {MAX_ELEMENTS} elements"
			)),
		}
	}

	pub(crate) fn invalid<T>(&self, reason: impl Into<String>) -> R<T> {
		Err(ExecError::Invalid {
			node: self.node.name.clone(),
			op: self.node.op.clone(),
			reason: reason.into(),
		})
	}
	fn unsupported<T>(&self, what: impl Into<String>) -> R<T> {
		Err(ExecError::Unsupported {
			node: self.node.name.clone(),
			op: self.node.op.clone(),
			what: what.into(),
		})
	}
	/// Normalises a possibly negative axis against `rank`.
	fn axis(&self, axis: i64, rank: usize) -> R<usize> {
		let a = if axis < 0 { axis + rank as i64 } else { axis };
		if a < 0 || a >= rank as i64 {
			return self.invalid(format!("axis {axis} out of range for rank {rank}"));
		}
		Ok(a as usize)
	}
	fn bool_dtype(&self) -> burn::tensor::BoolDType {
		get_device_settings::<B>(self.device).bool_dtype
	}
	/// A tensor of `v` with the float type of `like`.
	fn full(&self, like: &F<B>, shape: &[usize], v: f32) -> F<B> {
		let dtype = if like.dtype() == DType::F64 { FloatDType::F64 } else { FloatDType::F32 };
		B::float_full(Shape::from(shape.to_vec()), Scalar::from(v), self.device, dtype)
	}
}

/// An op's inputs, `None` where an optional one is omitted. Constants (weights) are lent,
/// not copied: an integer weight lives on the host, where a copy is a copy of every element.
pub(crate) struct Args<'a, B: Backend>(pub Vec<Option<Cow<'a, Value<B>>>>);

impl<B: Backend> Args<'_, B> {
	/// Inputs the op owns.
	pub(crate) fn owned(values: Vec<Option<Value<B>>>) -> Self {
		Args(values.into_iter().map(|v| v.map(Cow::Owned)).collect())
	}
	fn opt(&self, i: usize) -> Option<&Value<B>> {
		self.0.get(i).and_then(|v| v.as_deref())
	}
	/// The inputs given, in order.
	fn given(&self) -> impl Iterator<Item = &Value<B>> {
		self.0.iter().flatten().map(|v| &**v)
	}
	fn get(&self, cx: &Cx<B>, i: usize) -> R<&Value<B>> {
		match self.opt(i) {
			Some(v) => Ok(v),
			None => cx.invalid(format!("input {i} is missing")),
		}
	}
	fn float(&self, cx: &Cx<B>, i: usize) -> R<F<B>> {
		match self.get(cx, i)? {
			Value::Float(t) => Ok(t.clone()),
			Value::Host(h) =>
				cx.invalid(format!("input {i} must be a float tensor, got {:?}", h.elem)),
		}
	}
	fn opt_float(&self, cx: &Cx<B>, i: usize) -> R<Option<F<B>>> {
		self.opt(i).map(|_| self.float(cx, i)).transpose()
	}
	fn host(&self, cx: &Cx<B>, i: usize) -> R<&Host> {
		match self.get(cx, i)? {
			Value::Host(h) => Ok(h),
			Value::Float(_) => cx.invalid(format!("input {i} must be an integer tensor")),
		}
	}
	/// A float or integer scalar input, read on the host.
	fn scalar(&self, cx: &Cx<B>, i: usize) -> R<Option<f32>> {
		Ok(match self.opt(i) {
			None => None,
			Some(Value::Host(h)) if h.data.len() == 1 => Some(h.data[0] as f32),
			Some(Value::Float(t)) if t.shape().num_elements() == 1 =>
				Some(float_to_vec::<B>(t.clone())?[0]),
			Some(_) => return cx.invalid(format!("input {i} must be a scalar")),
		})
	}
}

// ---------------------------------------------------------------------------------------
// Helpers shared by the families.

fn one<B: Backend>(t: F<B>) -> R<Vec<Value<B>>> {
	Ok(vec![Value::Float(t)])
}

fn shape<B: Backend>(t: &F<B>) -> Vec<usize> {
	t.shape().to_vec()
}

fn reshape<B: Backend>(t: F<B>, s: &[usize]) -> F<B> {
	if shape::<B>(&t) == s {
		return t;
	}
	B::float_reshape(t, Shape::from(s.to_vec()))
}

/// Prepends size-1 dimensions up to `rank`, then broadcasts to `target`.
fn broadcast_to<B: Backend>(t: F<B>, target: &[usize]) -> F<B> {
	let s = shape::<B>(&t);
	if s == target {
		return t;
	}
	let mut aligned = vec![1; target.len() - s.len()];
	aligned.extend(&s);
	B::float_expand(reshape::<B>(t, &aligned), Shape::from(target.to_vec()))
}

fn to_float<B: Backend>(h: &Host, device: &B::Device) -> F<B> {
	float_from_vec::<B>(h.data.iter().map(|&v| v as f32).collect(), &h.shape, device)
}

/// Reduces over each of `dims` in turn with a dimension-keeping reduction (`B::float_sum_dim` …).
fn over_dims<B: Backend>(mut t: F<B>, dims: &[usize], reduce: fn(F<B>, usize) -> F<B>) -> F<B> {
	for &d in dims {
		t = reduce(t, d);
	}
	t
}

/// Pads `axis` with `before`/`after` elements of `value`.
fn pad_constant<B: Backend>(
	cx: &Cx<B>,
	t: F<B>,
	axis: usize,
	before: usize,
	after: usize,
	value: f32,
) -> F<B> {
	if before == 0 && after == 0 {
		return t;
	}
	let s = shape::<B>(&t);
	let like = t.clone();
	let mut parts = Vec::new();
	let side = |n: usize| {
		let mut sh = s.clone();
		sh[axis] = n;
		cx.full(&like, &sh, value)
	};
	if before > 0 {
		parts.push(side(before));
	}
	parts.push(t);
	if after > 0 {
		parts.push(side(after));
	}
	B::float_cat(parts, axis)
}

fn slice_axis<B: Backend>(t: F<B>, axis: usize, start: usize, end: usize) -> F<B> {
	let rank = shape::<B>(&t).len();
	let mut slices = vec![Slice::full(); rank];
	slices[axis] = Slice::new(start as isize, Some(end as isize), 1);
	B::float_slice(t, &slices)
}

/// A tensor's elements on the host in their own type, for the ops that index, scan or
/// compare elements one by one (GatherND, CumSum, ArgMax, IsNaN …): integers widened to
/// `i64`, floats as stored. Copying through it changes no bits.
enum Elems {
	Int(ElemType, Vec<i64>),
	F32(Vec<f32>),
	F64(Vec<f64>),
}

impl Elems {
	fn read<B: Backend>(t: F<B>) -> R<Elems> {
		let data = super::read::<B>(t)?;
		let backend = |e| ExecError::Backend(format!("{e:?}"));
		Ok(match data.dtype {
			DType::F64 => Elems::F64(data.into_vec::<f64>().map_err(backend)?),
			DType::F32 => Elems::F32(data.into_vec::<f32>().map_err(backend)?),
			_ => Elems::F32(data.convert::<f32>().into_vec::<f32>().map_err(backend)?),
		})
	}

	/// The elements of `v` and its shape.
	fn of<B: Backend>(v: &Value<B>) -> R<(Vec<usize>, Elems)> {
		Ok(match v {
			Value::Float(t) => (shape::<B>(t), Elems::read::<B>(t.clone())?),
			Value::Host(h) => (h.shape.clone(), Elems::Int(h.elem, h.data.clone())),
		})
	}

	fn len(&self) -> usize {
		match self {
			Elems::Int(_, v) => v.len(),
			Elems::F32(v) => v.len(),
			Elems::F64(v) => v.len(),
		}
	}

	/// The elements at `index`, in that order.
	fn pick(&self, index: impl Iterator<Item = usize>) -> Elems {
		match self {
			Elems::Int(e, v) => Elems::Int(*e, index.map(|i| v[i]).collect()),
			Elems::F32(v) => Elems::F32(index.map(|i| v[i]).collect()),
			Elems::F64(v) => Elems::F64(index.map(|i| v[i]).collect()),
		}
	}

	/// Element `i` as an f64 (exact for every type the executor has but i64 beyond 2^53),
	/// for comparisons.
	fn get_f64(&self, i: usize) -> f64 {
		match self {
			Elems::Int(_, v) => v[i] as f64,
			Elems::F32(v) => v[i] as f64,
			Elems::F64(v) => v[i],
		}
	}

	/// Back to a value of `shape`: floats to the device, integers to the host.
	fn into_value<B: Backend>(self, shape: &[usize], device: &B::Device) -> Value<B> {
		match self {
			Elems::Int(e, v) => Value::Host(Host::new(e, shape.to_vec(), v)),
			Elems::F32(v) => Value::Float(float_from_vec::<B>(v, shape, device)),
			Elems::F64(v) => Value::Float(B::float_from_data(
				burn::tensor::TensorData::new(v, Shape::from(shape.to_vec())),
				device,
			)),
		}
	}
}

fn arr<const N: usize>(v: &[usize]) -> [usize; N] {
	std::array::from_fn(|i| v[i])
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn every_operator_is_registered_once() {
		// `add` panics on a second registration of a name.
		let names = Registry::<crate::exec::CpuBackend>::new().names();
		assert_eq!(names.len(), 113);
		for op in ["Abs", "Attention", "Conv", "Gemm", "MaxPool", "QLinearConv", "Relu", "Where"] {
			assert!(names.contains(&op), "{op}");
		}
		// If is loaded by the executor itself, and listed with the rest.
		assert!(crate::exec::supported_ops().contains(&"If"));
	}
}
