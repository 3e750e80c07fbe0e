//! ONNX operators on burn primitives. Each op follows the ONNX operator specification for
//! the model's opset (attributes that moved to inputs are read from where that opset keeps
//! them). Shapes are checked before a backend kernel sees them.

use super::{
	bool_from_host, cpu, float_from_vec, float_to_vec,
	host::{self, Host},
	int_from_host, Cx, ExecError, Value,
};
use crate::onnx::{Attribute, Node};
use burn::tensor::{
	backend::Backend,
	get_device_settings,
	ops::{ConvOptions, ConvTransposeOptions, FloatTensor},
	DType, FloatDType, Scalar, Shape, Slice, TensorMetadata,
};
use opg_primitives::ElemType;

type F<B> = FloatTensor<B>;
type R<T> = Result<T, ExecError>;

// ---------------------------------------------------------------------------------------
// Load-time checks: attributes whose values the executor does not implement.

pub(crate) fn check(node: &Node, opset: i64) -> R<()> {
	let unsupported = |what: String| {
		Err(ExecError::Unsupported { node: node.name.clone(), op: node.op.clone(), what })
	};
	let extra_outputs = |keep: usize| node.outputs.iter().skip(keep).any(|o| !o.is_empty());
	let s = |name: &str| match node.attributes.get(name) {
		Some(Attribute::String(s)) => Some(String::from_utf8_lossy(s).into_owned()),
		_ => None,
	};
	let i = |name: &str| match node.attributes.get(name) {
		Some(Attribute::Int(v)) => Some(*v),
		_ => None,
	};
	match node.op.as_str() {
		"MaxPool" if extra_outputs(1) => return unsupported("the Indices output".into()),
		"MaxPool" if i("storage_order").unwrap_or(0) != 0 =>
			return unsupported("storage_order=1".into()),
		"AveragePool"
			if ints_attr(node, "dilations").is_some_and(|d| d.iter().any(|&d| d != 1)) =>
			return unsupported("dilated average pooling".into()),
		"BatchNormalization" if extra_outputs(1) || i("training_mode").unwrap_or(0) != 0 =>
			return unsupported("training mode".into()),
		"BatchNormalization" if opset < 7 && i("is_test").unwrap_or(0) == 0 && extra_outputs(1) =>
			return unsupported("training mode".into()),
		"LayerNormalization" if extra_outputs(1) =>
			return unsupported("the Mean/InvStdDev outputs".into()),
		"Gelu" => match s("approximate").as_deref() {
			None | Some("none") | Some("tanh") => {},
			Some(other) => return unsupported(format!("approximate=\"{other}\"")),
		},
		"Pad" => match s("mode").as_deref() {
			None | Some("constant") | Some("reflect") | Some("edge") => {},
			Some(other) => return unsupported(format!("mode=\"{other}\"")),
		},
		"Conv" | "ConvTranspose" | "MaxPool" | "AveragePool" => match s("auto_pad").as_deref() {
			None | Some("NOTSET") | Some("VALID") | Some("SAME_UPPER") | Some("SAME_LOWER") => {},
			Some(other) => return unsupported(format!("auto_pad=\"{other}\"")),
		},
		"Cast" => match i("to") {
			Some(t) if crate::onnx::elem_type(t as i32).is_none() =>
				return unsupported(format!("casting to ONNX type {t}")),
			Some(_) => {},
			None => return unsupported("Cast without `to`".into()),
		},
		"Constant" if node.attributes.contains_key("sparse_value") =>
			return unsupported("sparse constants".into()),
		_ => {},
	}
	Ok(())
}

fn ints_attr(node: &Node, name: &str) -> Option<Vec<i64>> {
	match node.attributes.get(name) {
		Some(Attribute::Ints(v)) => Some(v.clone()),
		_ => None,
	}
}

// ---------------------------------------------------------------------------------------
// Helpers.

impl<B: Backend> Cx<'_, B> {
	fn invalid<T>(&self, reason: impl Into<String>) -> R<T> {
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
	fn int(&self, name: &str, default: i64) -> i64 {
		match self.node.attributes.get(name) {
			Some(Attribute::Int(v)) => *v,
			_ => default,
		}
	}
	fn float(&self, name: &str, default: f32) -> f32 {
		match self.node.attributes.get(name) {
			Some(Attribute::Float(v)) => *v,
			_ => default,
		}
	}
	fn ints(&self, name: &str) -> Option<Vec<i64>> {
		ints_attr(self.node, name)
	}
	fn string(&self, name: &str) -> Option<String> {
		match self.node.attributes.get(name) {
			Some(Attribute::String(s)) => Some(String::from_utf8_lossy(s).into_owned()),
			_ => None,
		}
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

struct Args<B: Backend>(Vec<Option<Value<B>>>);

impl<B: Backend> Args<B> {
	fn opt(&self, i: usize) -> Option<&Value<B>> {
		self.0.get(i).and_then(|v| v.as_ref())
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

// ---------------------------------------------------------------------------------------
// Dispatch.

/// Runs `node`, then the `epilogue` nodes that read only its output, in order (see
/// `fuse_epilogues`). Conv and Gemm apply a Relu, and Conv a MaxPool, inside their CPU kernels
/// where they can; whatever they did not apply runs here as its own node, so the result is
/// the same either way.
pub(crate) fn run<B: Backend>(
	node: &Node,
	opset: i64,
	inputs: Vec<Option<Value<B>>>,
	device: &B::Device,
	epilogue: &[&Node],
) -> R<Vec<Value<B>>> {
	let cx = Cx::<B> { node, opset, device, epilogue };
	let a = Args(inputs);
	let (mut out, applied) = match node.op.as_str() {
		"Conv" => conv(&cx, &a)?,
		"Gemm" => gemm(&cx, &a)?,
		_ => (op(&cx, a)?, 0),
	};
	for next in &epilogue[applied..] {
		out = run::<B>(next, opset, out.into_iter().map(Some).collect(), device, &[])?;
	}
	Ok(out)
}

/// Every op but Conv and Gemm.
fn op<B: Backend>(cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
	let (cx, node) = (*cx, cx.node);
	let one = |t: F<B>| Ok(vec![Value::Float(t)]);
	let unary = |f: fn(F<B>) -> F<B>| -> R<Vec<Value<B>>> { one(f(a.float(&cx, 0)?)) };
	match node.op.as_str() {
		"Identity" | "Dropout" => {
			let x = a.get(&cx, 0)?.clone();
			let mut out = vec![x.clone()];
			if node.outputs.len() > 1 {
				// Inference: nothing is dropped, the mask is all true.
				let s = x.shape();
				let n = s.iter().product();
				out.push(Value::Host(Host::new(ElemType::Bool, s, vec![1; n])));
			}
			Ok(out)
		},
		"Constant" => constant(&cx),
		"Add" | "Sub" | "Mul" | "Div" | "Pow" => binary(&cx, &a),
		"Max" | "Min" | "Sum" | "Mean" => variadic(&cx, &a),
		"Equal" | "Greater" | "Less" => compare(&cx, &a),
		"Not" => {
			let h = a.host(&cx, 0)?;
			Ok(vec![Value::Host(Host::new(
				ElemType::Bool,
				h.shape.clone(),
				h.data.iter().map(|&v| (v == 0) as i64).collect(),
			))])
		},
		"Neg" => match a.get(&cx, 0)? {
			Value::Host(h) => Ok(vec![Value::Host(Host::new(
				h.elem,
				h.shape.clone(),
				h.data.iter().map(|&v| host::wrap(h.elem, v.wrapping_neg())).collect(),
			))]),
			Value::Float(t) => one(B::float_neg(t.clone())),
		},
		"Abs" => match a.get(&cx, 0)? {
			Value::Host(h) => Ok(vec![Value::Host(Host::new(
				h.elem,
				h.shape.clone(),
				h.data.iter().map(|&v| host::wrap(h.elem, v.wrapping_abs())).collect(),
			))]),
			Value::Float(t) => one(B::float_abs(t.clone())),
		},
		"Sqrt" => unary(B::float_sqrt),
		"Exp" => unary(B::float_exp),
		"Log" => unary(B::float_log),
		"Erf" => unary(B::float_erf),
		"Floor" => unary(B::float_floor),
		"Ceil" => unary(B::float_ceil),
		"Reciprocal" => unary(B::float_recip),
		"Sign" => unary(B::float_sign),
		"Tanh" => unary(B::float_tanh),
		"Relu" => unary(B::relu),
		"Sigmoid" => unary(B::sigmoid),
		"LeakyRelu" => one(B::leaky_relu(a.float(&cx, 0)?, Scalar::from(cx.float("alpha", 0.01)))),
		"Elu" | "Selu" => {
			let x = a.float(&cx, 0)?;
			let (alpha, gamma) = if node.op == "Elu" {
				(cx.float("alpha", 1.0), 1.0)
			} else {
				(cx.float("alpha", 1.673_263_2), cx.float("gamma", 1.050_701))
			};
			// x > 0 ? x : alpha * (exp(x) - 1), then scaled by gamma.
			let neg = B::float_mul_scalar(
				B::float_sub_scalar(B::float_exp(x.clone()), 1f32.into()),
				alpha.into(),
			);
			let mask = B::float_lower_equal_elem(x.clone(), 0f32.into(), cx.bool_dtype());
			one(B::float_mul_scalar(B::float_mask_where(x, mask, neg), gamma.into()))
		},
		"Softplus" => {
			// log(1 + exp(x)), stably: max(x, 0) + log1p(exp(-|x|)).
			let x = a.float(&cx, 0)?;
			let tail = B::float_log1p(B::float_exp(B::float_neg(B::float_abs(x.clone()))));
			one(B::float_add(B::relu(x), tail))
		},
		"Softsign" => {
			let x = a.float(&cx, 0)?;
			one(B::float_div(x.clone(), B::float_add_scalar(B::float_abs(x), 1f32.into())))
		},
		"PRelu" => {
			let x = a.float(&cx, 0)?;
			let slope = a.float(&cx, 1)?;
			let xs = shape::<B>(&x);
			let slope = legacy_channel_param::<B>(&cx, slope, &xs)?;
			let mask = B::float_lower_elem(x.clone(), 0f32.into(), cx.bool_dtype());
			let scaled = B::float_mul(x.clone(), broadcast_to::<B>(slope, &xs));
			one(B::float_mask_where(x, mask, scaled))
		},
		"Gelu" => {
			let x = a.float(&cx, 0)?;
			let inner = if cx.string("approximate").as_deref() == Some("tanh") {
				// 1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))
				let cube = B::float_mul(B::float_mul(x.clone(), x.clone()), x.clone());
				let arg = B::float_add(x.clone(), B::float_mul_scalar(cube, 0.044715f32.into()));
				B::float_tanh(B::float_mul_scalar(
					arg,
					(2.0f32 / std::f32::consts::PI).sqrt().into(),
				))
			} else {
				B::float_erf(B::float_mul_scalar(x.clone(), std::f32::consts::FRAC_1_SQRT_2.into()))
			};
			one(B::float_mul(
				B::float_mul_scalar(x, 0.5f32.into()),
				B::float_add_scalar(inner, 1f32.into()),
			))
		},
		"Softmax" | "LogSoftmax" => softmax(&cx, a.float(&cx, 0)?),
		"Clip" => clip(&cx, &a),
		"MatMul" => one(matmul(&cx, a.float(&cx, 0)?, a.float(&cx, 1)?)?),
		"Conv" | "Gemm" => unreachable!("dispatched by `run`"),
		"ConvTranspose" => conv_transpose(&cx, &a),
		"MaxPool" | "AveragePool" => pool(&cx, a.float(&cx, 0)?),
		"GlobalAveragePool" | "GlobalMaxPool" => {
			let x = a.float(&cx, 0)?;
			let dims: Vec<usize> = (2..shape::<B>(&x).len()).collect();
			let reduce =
				if node.op == "GlobalAveragePool" { B::float_mean_dim } else { B::float_max_dim };
			one(over_dims::<B>(x, &dims, reduce))
		},
		"BatchNormalization" => batch_norm(&cx, &a),
		"InstanceNormalization" => instance_norm(&cx, &a),
		"LayerNormalization" => layer_norm(&cx, &a),
		"ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => reduce(&cx, &a),
		"Flatten" => {
			let v = a.get(&cx, 0)?;
			let s = v.shape();
			let axis = if s.is_empty() { 0 } else { cx.axis(cx.int("axis", 1), s.len() + 1)? };
			let to = vec![s[..axis].iter().product(), s[axis..].iter().product()];
			Ok(vec![relayout(v, to)])
		},
		"Reshape" => reshape_op(&cx, &a),
		"Squeeze" | "Unsqueeze" => squeeze(&cx, &a),
		"Transpose" => {
			let v = a.get(&cx, 0)?;
			let rank = v.shape().len();
			let perm: Vec<usize> = match cx.ints("perm") {
				Some(p) => p.iter().map(|&x| cx.axis(x, rank)).collect::<R<_>>()?,
				None => (0..rank).rev().collect(),
			};
			let mut seen = perm.clone();
			seen.sort_unstable();
			if seen != (0..rank).collect::<Vec<_>>() {
				return cx.invalid(format!("perm {perm:?} is not a permutation of 0..{rank}"));
			}
			Ok(vec![match v {
				Value::Float(t) => Value::Float(B::float_permute(t.clone(), &perm)),
				Value::Host(h) => Value::Host(h.permute(&perm)),
			}])
		},
		"Concat" => concat(&cx, &a),
		"Split" => split(&cx, &a),
		"Gather" => gather(&cx, &a),
		"Slice" => slice(&cx, &a),
		"Shape" => {
			let s = a.get(&cx, 0)?.shape();
			let r = s.len() as i64;
			let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
			let (start, end) = (clampi(cx.int("start", 0)), clampi(cx.int("end", r)));
			let dims = s[start..end.max(start)].iter().map(|&d| d as i64).collect();
			Ok(vec![Value::Host(Host::vector_i64(dims))])
		},
		"Cast" => cast(&cx, &a),
		"Where" => where_op(&cx, &a),
		"Expand" => {
			let v = a.get(&cx, 0)?;
			let target: Vec<usize> = dims_of(&cx, a.host(&cx, 1)?)?;
			let Some(out) = host::broadcast(&v.shape(), &target) else {
				return cx.invalid(format!("cannot expand {:?} to {target:?}", v.shape()));
			};
			Ok(vec![match v {
				Value::Float(t) => Value::Float(broadcast_to::<B>(t.clone(), &out)),
				Value::Host(h) => Value::Host(h.broadcast_to(&out)),
			}])
		},
		"Tile" => {
			let reps = a.host(&cx, 1)?.data.clone();
			let v = a.get(&cx, 0)?;
			if reps.len() != v.shape().len() || reps.iter().any(|&r| r < 1) {
				return cx.invalid(format!("repeats {reps:?} for rank {}", v.shape().len()));
			}
			match v {
				Value::Float(t) => {
					let mut t = t.clone();
					for (d, &r) in reps.iter().enumerate() {
						if r > 1 {
							t = B::float_repeat_dim(t, d, r as usize);
						}
					}
					one(t)
				},
				Value::Host(h) => Ok(vec![Value::Host(h.tile(&reps))]),
			}
		},
		"Pad" => pad(&cx, &a),
		other => Err(ExecError::UnsupportedOp { node: node.name.clone(), op: other.to_string() }),
	}
}

fn relayout<B: Backend>(v: &Value<B>, to: Vec<usize>) -> Value<B> {
	match v {
		Value::Float(t) => Value::Float(reshape::<B>(t.clone(), &to)),
		Value::Host(h) => Value::Host(Host::new(h.elem, to, h.data.clone())),
	}
}

fn dims_of<B: Backend>(cx: &Cx<B>, h: &Host) -> R<Vec<usize>> {
	h.data
		.iter()
		.map(
			|&d| {
				if d >= 0 {
					Ok(d as usize)
				} else {
					cx.invalid(format!("negative dimension {d}"))
				}
			},
		)
		.collect()
}

fn constant<B: Backend>(cx: &Cx<B>) -> R<Vec<Value<B>>> {
	let attrs = &cx.node.attributes;
	let v = if let Some(Attribute::Tensor(t)) = attrs.get("value") {
		super::to_value::<B>(t, cx.device)?
	} else if let Some(Attribute::Float(f)) = attrs.get("value_float") {
		Value::Float(float_from_vec::<B>(vec![*f], &[], cx.device))
	} else if let Some(Attribute::Floats(f)) = attrs.get("value_floats") {
		Value::Float(float_from_vec::<B>(f.clone(), &[f.len()], cx.device))
	} else if let Some(Attribute::Int(i)) = attrs.get("value_int") {
		Value::Host(Host::scalar_i64(*i))
	} else if let Some(Attribute::Ints(i)) = attrs.get("value_ints") {
		Value::Host(Host::vector_i64(i.clone()))
	} else {
		return cx.unsupported("a Constant without a tensor, float or int value");
	};
	Ok(vec![v])
}

/// Before opset 7, binary ops broadcast only with `broadcast=1`, aligning B at `axis`.
fn legacy_align<B: Backend>(cx: &Cx<B>, a: &[usize], b: &[usize]) -> R<Option<Vec<usize>>> {
	if cx.opset >= 7 || a == b {
		return Ok(None);
	}
	if cx.int("broadcast", 0) == 0 {
		return cx.invalid(format!("shapes {a:?} and {b:?} differ and broadcast is off"));
	}
	let Some(axis) = cx.node.attributes.get("axis").map(|_| cx.int("axis", 0)) else {
		return Ok(None);
	};
	let axis = if axis < 0 { axis + a.len() as i64 } else { axis } as usize;
	if axis + b.len() > a.len() {
		return cx.invalid(format!("cannot align {b:?} at axis {axis} of {a:?}"));
	}
	let mut s = vec![1; axis];
	s.extend(b);
	s.resize(a.len(), 1);
	Ok(Some(s))
}

fn binary<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let op = cx.node.op.as_str();
	let (x, y) = (a.get(cx, 0)?, a.get(cx, 1)?);
	if let (Value::Host(x), Value::Host(y)) = (x, y) {
		let elem = x.elem;
		let mut y = y.clone();
		if let Some(s) = legacy_align(cx, &x.shape, &y.shape)? {
			y.shape = s;
		}
		if op == "Div" && y.data.contains(&0) {
			return cx.invalid("integer division by zero");
		}
		let f: fn(i64, i64) -> i64 = match op {
			"Add" => i64::wrapping_add,
			"Sub" => i64::wrapping_sub,
			"Mul" => i64::wrapping_mul,
			"Div" => i64::wrapping_div,
			_ => |b, e| {
				if e < 0 {
					0
				} else {
					b.wrapping_pow(e.min(u32::MAX as i64) as u32)
				}
			},
		};
		return match x.zip(&y, elem, |p, q| host::wrap(elem, f(p, q))) {
			Some(h) => Ok(vec![Value::Host(h)]),
			None => cx.invalid(format!("shapes {:?} and {:?} do not broadcast", x.shape, y.shape)),
		};
	}
	// Mixed: an integer exponent (Pow) or integer constant meets a float tensor.
	let lift = |v: &Value<B>| match v {
		Value::Float(t) => t.clone(),
		Value::Host(h) => to_float::<B>(h, cx.device),
	};
	if matches!(x, Value::Host(_)) && op != "Pow" {
		return cx.invalid("an integer tensor cannot be combined with a float tensor");
	}
	let (x, mut y) = (lift(x), lift(y));
	let (xs, ys) = (shape::<B>(&x), shape::<B>(&y));
	if let Some(s) = legacy_align(cx, &xs, &ys)? {
		y = reshape::<B>(y, &s);
	}
	let Some(out) = host::broadcast(&xs, &shape::<B>(&y)) else {
		return cx.invalid(format!("shapes {xs:?} and {ys:?} do not broadcast"));
	};
	let (x, y) = (broadcast_to::<B>(x, &out), broadcast_to::<B>(y, &out));
	Ok(vec![Value::Float(match op {
		"Add" => B::float_add(x, y),
		"Sub" => B::float_sub(x, y),
		"Mul" => B::float_mul(x, y),
		"Div" => B::float_div(x, y),
		_ => B::float_powf(x, y),
	})])
}

fn variadic<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let op = cx.node.op.as_str();
	let n = a.0.iter().flatten().count();
	if n == 0 {
		return cx.invalid("no inputs");
	}
	if a.0.iter().flatten().all(|v| matches!(v, Value::Host(_))) {
		let mut acc = a.host(cx, 0)?.clone();
		for v in a.0.iter().flatten().skip(1) {
			let Value::Host(h) = v else { unreachable!() };
			let elem = acc.elem;
			let f = |p: i64, q: i64| match op {
				"Max" => p.max(q),
				"Min" => p.min(q),
				_ => host::wrap(elem, p.wrapping_add(q)),
			};
			acc = match acc.zip(h, elem, f) {
				Some(h) => h,
				None => return cx.invalid("input shapes do not broadcast"),
			};
		}
		if op == "Mean" {
			acc.data.iter_mut().for_each(|v| *v /= n as i64);
		}
		return Ok(vec![Value::Host(acc)]);
	}
	let mut acc = a.float(cx, 0)?;
	for i in 1..a.0.len() {
		let Some(_) = a.opt(i) else { continue };
		let y = a.float(cx, i)?;
		let Some(out) = host::broadcast(&shape::<B>(&acc), &shape::<B>(&y)) else {
			return cx.invalid("input shapes do not broadcast");
		};
		let (p, q) = (broadcast_to::<B>(acc, &out), broadcast_to::<B>(y, &out));
		acc = match op {
			"Max" => {
				let m = B::float_lower(p.clone(), q.clone(), cx.bool_dtype());
				B::float_mask_where(p, m, q)
			},
			"Min" => {
				let m = B::float_greater(p.clone(), q.clone(), cx.bool_dtype());
				B::float_mask_where(p, m, q)
			},
			_ => B::float_add(p, q),
		};
	}
	if op == "Mean" {
		acc = B::float_div_scalar(acc, (n as f32).into());
	}
	Ok(vec![Value::Float(acc)])
}

fn compare<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let op = cx.node.op.as_str();
	let (x, y) = (a.get(cx, 0)?, a.get(cx, 1)?);
	let (x, y) = match (x, y) {
		(Value::Host(x), Value::Host(y)) => (x.clone(), y.clone()),
		// Float comparisons come back to the host: their results are masks.
		(Value::Float(p), Value::Float(q)) => {
			let to_host = |t: &F<B>| -> R<(Vec<usize>, Vec<f32>)> {
				Ok((shape::<B>(t), float_to_vec::<B>(t.clone())?))
			};
			let ((ps, pv), (qs, qv)) = (to_host(p)?, to_host(q)?);
			if host::broadcast(&ps, &qs).is_none() {
				return cx.invalid("input shapes do not broadcast");
			}
			// Compare through an order-preserving map of f32 onto i64 (NaN compares false below).
			let (pn, qn) = (pv.iter().any(|v| v.is_nan()), qv.iter().any(|v| v.is_nan()));
			if pn || qn {
				return cx.unsupported("comparing NaN values");
			}
			let key = |v: f32| {
				let b = v.to_bits() as i32;
				(if b < 0 { i32::MIN - b } else { b }) as i64
			};
			let ph = Host::new(ElemType::I64, ps, pv.into_iter().map(key).collect());
			let qh = Host::new(ElemType::I64, qs, qv.into_iter().map(key).collect());
			(ph, qh)
		},
		_ => return cx.invalid("cannot compare an integer tensor with a float tensor"),
	};
	let f = |p: i64, q: i64| {
		(match op {
			"Equal" => p == q,
			"Greater" => p > q,
			_ => p < q,
		}) as i64
	};
	match x.zip(&y, ElemType::Bool, f) {
		Some(h) => Ok(vec![Value::Host(h)]),
		None => cx.invalid("input shapes do not broadcast"),
	}
}

fn softmax<B: Backend>(cx: &Cx<B>, x: F<B>) -> R<Vec<Value<B>>> {
	let s = shape::<B>(&x);
	let rank = s.len();
	let log = cx.node.op == "LogSoftmax";
	let stable = |t: F<B>, dim: usize| {
		let shifted = B::float_sub(t.clone(), B::float_max_dim(t, dim));
		let sum = B::float_sum_dim(B::float_exp(shifted.clone()), dim);
		if log {
			B::float_sub(shifted, B::float_log(sum))
		} else {
			B::float_div(B::float_exp(shifted), sum)
		}
	};
	if cx.opset < 13 {
		// Opsets 1–12 flatten to 2-D at `axis` (default 1) and normalise each row.
		let axis = cx.axis(cx.int("axis", 1), rank.max(1))?;
		let rows = s[..axis].iter().product();
		let cols = s[axis..].iter().product();
		let y = stable(reshape::<B>(x, &[rows, cols]), 1);
		return Ok(vec![Value::Float(reshape::<B>(y, &s))]);
	}
	let axis = cx.axis(cx.int("axis", -1), rank)?;
	Ok(vec![Value::Float(stable(x, axis))])
}

fn clip<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let (lo, hi) = if cx.opset < 11 {
		(cx.float("min", f32::NEG_INFINITY), cx.float("max", f32::INFINITY))
	} else {
		(a.scalar(cx, 1)?.unwrap_or(f32::NEG_INFINITY), a.scalar(cx, 2)?.unwrap_or(f32::INFINITY))
	};
	match a.get(cx, 0)? {
		Value::Float(t) => Ok(vec![Value::Float(B::float_clamp(t.clone(), lo.into(), hi.into()))]),
		Value::Host(h) => {
			let (lo, hi) = (lo.max(i64::MIN as f32) as i64, hi.min(i64::MAX as f32) as i64);
			Ok(vec![Value::Host(Host::new(
				h.elem,
				h.shape.clone(),
				h.data.iter().map(|&v| v.max(lo).min(hi)).collect(),
			))])
		},
	}
}

/// ONNX MatMul: numpy semantics, including 1-D operands and broadcast batch dimensions.
fn matmul<B: Backend>(cx: &Cx<B>, x: F<B>, y: F<B>) -> R<F<B>> {
	let (mut xs, mut ys) = (shape::<B>(&x), shape::<B>(&y));
	if xs.is_empty() || ys.is_empty() {
		return cx.invalid("MatMul of a scalar");
	}
	let (x1, y1) = (xs.len() == 1, ys.len() == 1);
	if x1 {
		xs.insert(0, 1);
	}
	if y1 {
		ys.push(1);
	}
	let (m, k) = (xs[xs.len() - 2], xs[xs.len() - 1]);
	let (k2, n) = (ys[ys.len() - 2], ys[ys.len() - 1]);
	if k != k2 {
		return cx.invalid(format!("inner dimensions differ: {xs:?} x {ys:?}"));
	}
	let Some(mut batch) = host::broadcast(&xs[..xs.len() - 2], &ys[..ys.len() - 2]) else {
		return cx.invalid(format!("batch dimensions do not broadcast: {xs:?} x {ys:?}"));
	};
	let x = reshape::<B>(x, &xs);
	let y = reshape::<B>(y, &ys);
	let with = |b: &[usize], p: usize, q: usize| {
		let mut s = b.to_vec();
		s.extend([p, q]);
		s
	};
	let x = broadcast_to::<B>(x, &with(&batch, m, k));
	let y = broadcast_to::<B>(y, &with(&batch, k, n));
	let out = B::float_matmul(x, y);
	if !x1 {
		batch.push(m);
	}
	if !y1 {
		batch.push(n);
	}
	Ok(reshape::<B>(out, &batch))
}

/// Gemm, and the number of epilogue nodes (a Relu) its CPU kernel applied.
fn gemm<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<(Vec<Value<B>>, usize)> {
	let (mut x, mut y) = (a.float(cx, 0)?, a.float(cx, 1)?);
	let (xs, ys) = (shape::<B>(&x), shape::<B>(&y));
	if xs.len() != 2 || ys.len() != 2 {
		return cx.invalid("A and B must be matrices");
	}
	let (ta, tb) = (cx.int("transA", 0) != 0, cx.int("transB", 0) != 0);
	let (alpha, beta) = (cx.float("alpha", 1.0), cx.float("beta", 1.0));
	let c = a.opt_float(cx, 2)?;
	let (m, k) = if ta { (xs[1], xs[0]) } else { (xs[0], xs[1]) };
	let (k2, n) = if tb { (ys[1], ys[0]) } else { (ys[0], ys[1]) };
	if k != k2 {
		return cx.invalid(format!("A {xs:?} and B {ys:?} do not multiply"));
	}
	if let Some(c) = &c {
		let cs = shape::<B>(c);
		// Broadcasting to [m, n] also bounds C's rank to 2.
		if host::broadcast(&[m, n], &cs).as_deref() != Some(&[m, n][..]) {
			return cx.invalid("C does not broadcast to A·B");
		}
	}
	let relu = cx.relu_next();
	if let Some(out) = cpu::gemm::<B>(&x, &y, c.as_ref(), ta, tb, alpha, beta, relu) {
		return Ok((vec![Value::Float(out)], relu as usize));
	}
	if ta {
		x = B::float_permute(x, &[1, 0]);
	}
	if tb {
		y = B::float_permute(y, &[1, 0]);
	}
	let mut out = matmul(cx, x, y)?;
	if alpha != 1.0 {
		out = B::float_mul_scalar(out, alpha.into());
	}
	if let Some(c) = c {
		let os = shape::<B>(&out);
		let c = if beta != 1.0 { B::float_mul_scalar(c, beta.into()) } else { c };
		out = B::float_add(out, broadcast_to::<B>(c, &os));
	}
	Ok((vec![Value::Float(out)], 0))
}

/// SAME padding: `total` split in halves, the odd element at the end (upper) or start (lower).
fn same_pads(total: usize, upper: bool) -> (usize, usize) {
	let small = total / 2;
	if upper {
		(small, total - small)
	} else {
		(total - small, small)
	}
}

/// Per-axis (begin, end) padding from `pads` or `auto_pad`.
fn spatial_pads<B: Backend>(
	cx: &Cx<B>,
	input: &[usize],
	kernel: &[usize],
	strides: &[usize],
	dilations: &[usize],
) -> R<Vec<(usize, usize)>> {
	let r = input.len();
	match cx.string("auto_pad").as_deref() {
		Some("SAME_UPPER") | Some("SAME_LOWER") => {
			let upper = cx.string("auto_pad").as_deref() == Some("SAME_UPPER");
			Ok((0..r)
				.map(|i| {
					let out = input[i].div_ceil(strides[i]);
					let span = (kernel[i] - 1) * dilations[i] + 1;
					let total = ((out - 1) * strides[i] + span).saturating_sub(input[i]);
					same_pads(total, upper)
				})
				.collect())
		},
		Some("VALID") => Ok(vec![(0, 0); r]),
		_ => {
			let pads = cx.ints("pads").unwrap_or_else(|| vec![0; 2 * r]);
			if pads.len() != 2 * r || pads.iter().any(|&p| p < 0) {
				return cx.invalid(format!("pads {pads:?} for {r} spatial axes"));
			}
			Ok((0..r).map(|i| (pads[i] as usize, pads[i + r] as usize)).collect())
		},
	}
}

fn spatial_attr<B: Backend>(cx: &Cx<B>, name: &str, r: usize, default: usize) -> R<Vec<usize>> {
	match cx.ints(name) {
		None => Ok(vec![default; r]),
		Some(v) if v.len() == r && v.iter().all(|&x| x >= 1) =>
			Ok(v.iter().map(|&x| x as usize).collect()),
		Some(v) => cx.invalid(format!("{name} {v:?} for {r} spatial axes")),
	}
}

/// Applies the asymmetric part of `pads` explicitly, leaving symmetric padding for the kernel.
fn split_pads<B: Backend>(
	cx: &Cx<B>,
	mut x: F<B>,
	pads: &[(usize, usize)],
	value: f32,
) -> (F<B>, Vec<usize>) {
	let mut sym = Vec::with_capacity(pads.len());
	for (i, &(b, e)) in pads.iter().enumerate() {
		let p = b.min(e);
		x = pad_constant(cx, x, 2 + i, b - p, e - p, value);
		sym.push(p);
	}
	(x, sym)
}

/// Conv, and the number of epilogue nodes (a Relu, a MaxPool) its CPU kernel applied.
fn conv<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<(Vec<Value<B>>, usize)> {
	let (x, w, bias) = (a.float(cx, 0)?, a.float(cx, 1)?, a.opt_float(cx, 2)?);
	let (xs, ws) = (shape::<B>(&x), shape::<B>(&w));
	let r = xs.len().saturating_sub(2);
	if r == 0 || ws.len() != xs.len() {
		return cx.invalid(format!("input {xs:?} and weight {ws:?} ranks"));
	}
	let group = cx.int("group", 1);
	if group < 1 || xs[1] as i64 != ws[1] as i64 * group || ws[0] as i64 % group != 0 {
		return cx.invalid(format!("channels: input {xs:?}, weight {ws:?}, group {group}"));
	}
	if let Some(k) = cx.ints("kernel_shape") {
		if k.iter().map(|&v| v as usize).ne(ws[2..].iter().copied()) {
			return cx.invalid(format!("kernel_shape {k:?} does not match weight {ws:?}"));
		}
	}
	if let Some(b) = &bias {
		if shape::<B>(b) != [ws[0]] {
			return cx.invalid("bias must have one value per output channel");
		}
	}
	let strides = spatial_attr(cx, "strides", r, 1)?;
	let dilations = spatial_attr(cx, "dilations", r, 1)?;
	let pads = spatial_pads(cx, &xs[2..], &ws[2..], &strides, &dilations)?;
	for i in 0..r {
		if xs[2 + i] + pads[i].0 + pads[i].1 < (ws[2 + i] - 1) * dilations[i] + 1 {
			return cx.invalid("the kernel is larger than the padded input");
		}
	}
	let (x, p) = split_pads(cx, x, &pads, 0.0);
	let g = group as usize;
	let out = match r {
		1 => B::conv1d(x, w, bias, ConvOptions::new([strides[0]], [p[0]], [dilations[0]], g)),
		2 => {
			let relu = cx.relu_next();
			// A MaxPool next is pooled per image, inside the kernel, if it has the form the CPU
			// pooling kernel takes; otherwise it runs as its own node.
			let pool = match cx.epilogue.get(relu as usize).filter(|n| n.op == "MaxPool") {
				Some(node) => {
					let pcx = Cx::<B> { node, opset: cx.opset, device: cx.device, epilogue: &[] };
					let padded = shape::<B>(&x);
					let out: Vec<usize> = (0..2)
						.map(|i| {
							cpu::out_len(padded[2 + i], p[i], ws[2 + i], strides[i], dilations[i])
						})
						.collect();
					let window = pool_window(&pcx, &[xs[0], ws[0], out[0], out[1]])?;
					window.cpu_max_2d()
				},
				None => None,
			};
			let (k, s, d) = (arr(&strides), arr(&p), arr(&dilations));
			match cpu::conv2d::<B>(&x, &w, bias.as_ref(), k, s, d, g, relu, pool) {
				Some(out) =>
					return Ok((vec![Value::Float(out)], relu as usize + pool.is_some() as usize)),
				None => B::conv2d(x, w, bias, ConvOptions::new(k, s, d, g)),
			}
		},
		3 => B::conv3d(x, w, bias, ConvOptions::new(arr(&strides), arr(&p), arr(&dilations), g)),
		_ => return cx.unsupported(format!("{r}-d convolution")),
	};
	Ok((vec![Value::Float(out)], 0))
}

fn arr<const N: usize>(v: &[usize]) -> [usize; N] {
	std::array::from_fn(|i| v[i])
}

fn conv_transpose<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let (x, w, bias) = (a.float(cx, 0)?, a.float(cx, 1)?, a.opt_float(cx, 2)?);
	let (xs, ws) = (shape::<B>(&x), shape::<B>(&w));
	let r = xs.len().saturating_sub(2);
	let g = cx.int("group", 1);
	if r == 0 || ws.len() != xs.len() || g < 1 || ws[0] != xs[1] || xs[1] % g as usize != 0 {
		return cx.invalid(format!("input {xs:?}, weight {ws:?}, group {g}"));
	}
	let g = g as usize;
	let strides = spatial_attr(cx, "strides", r, 1)?;
	let dilations = spatial_attr(cx, "dilations", r, 1)?;
	let out_pad: Vec<usize> = match cx.ints("output_padding") {
		None => vec![0; r],
		Some(v) if v.len() == r && v.iter().all(|&p| p >= 0) =>
			v.iter().map(|&p| p as usize).collect(),
		Some(v) => return cx.invalid(format!("output_padding {v:?}")),
	};
	// Full output size before cropping by the pads.
	let full: Vec<usize> = (0..r)
		.map(|i| strides[i] * (xs[2 + i] - 1) + out_pad[i] + (ws[2 + i] - 1) * dilations[i] + 1)
		.collect();
	let pads: Vec<(usize, usize)> = if let Some(shape) = cx.ints("output_shape") {
		let want: Vec<usize> = shape.iter().rev().take(r).rev().map(|&d| d as usize).collect();
		if want.len() != r || want.iter().zip(&full).any(|(w, f)| w > f) {
			return cx.invalid(format!("output_shape {shape:?}"));
		}
		let upper = cx.string("auto_pad").as_deref() != Some("SAME_LOWER");
		(0..r)
			.map(|i| {
				let total = full[i] - want[i];
				same_pads(total, upper)
			})
			.collect()
	} else {
		match cx.string("auto_pad").as_deref() {
			Some("SAME_UPPER") | Some("SAME_LOWER") => {
				let upper = cx.string("auto_pad").as_deref() == Some("SAME_UPPER");
				(0..r)
					.map(|i| {
						let total = full[i].saturating_sub(xs[2 + i] * strides[i]);
						same_pads(total, upper)
					})
					.collect()
			},
			_ => spatial_pads(cx, &xs[2..], &ws[2..], &strides, &dilations)?,
		}
	};
	if (0..r).any(|i| pads[i].0 + pads[i].1 >= full[i]) {
		return cx.invalid("pads remove the whole output");
	}
	// The kernel takes symmetric padding; the remainder is cropped afterwards.
	let p: Vec<usize> = pads.iter().map(|&(b, e)| b.min(e)).collect();
	let mut out = match r {
		1 => B::conv_transpose1d(
			x,
			w,
			bias,
			ConvTransposeOptions::new([strides[0]], [p[0]], [out_pad[0]], [dilations[0]], g),
		),
		2 => B::conv_transpose2d(
			x,
			w,
			bias,
			ConvTransposeOptions::new(arr(&strides), arr(&p), arr(&out_pad), arr(&dilations), g),
		),
		3 => B::conv_transpose3d(
			x,
			w,
			bias,
			ConvTransposeOptions::new(arr(&strides), arr(&p), arr(&out_pad), arr(&dilations), g),
		),
		_ => return cx.unsupported(format!("{r}-d transposed convolution")),
	};
	for (i, &(b, e)) in pads.iter().enumerate() {
		let len = shape::<B>(&out)[2 + i];
		let (cut_b, cut_e) = (b - p[i], e - p[i]);
		if cut_b + cut_e > 0 {
			out = slice_axis::<B>(out, 2 + i, cut_b, len - cut_e);
		}
	}
	Ok(vec![Value::Float(out)])
}

/// A pooling node's window, checked against its input shape.
struct PoolWindow {
	kernel: Vec<usize>,
	strides: Vec<usize>,
	dilations: Vec<usize>,
	pads: Vec<(usize, usize)>,
	ceil: bool,
	max: bool,
}

impl PoolWindow {
	/// The window as the CPU's 2-D max pooling takes it, if it has that form: kernel, stride,
	/// symmetric pads and dilation.
	fn cpu_max_2d(&self) -> Option<cpu::Window> {
		let symmetric = self.pads.iter().all(|&(b, e)| b == e);
		(self.max && !self.ceil && symmetric && self.kernel.len() == 2).then(|| cpu::Window {
			kernel: arr(&self.kernel),
			stride: arr(&self.strides),
			pads: [self.pads[0].0, self.pads[1].0],
			dilation: arr(&self.dilations),
		})
	}
}

fn pool_window<B: Backend>(cx: &Cx<B>, xs: &[usize]) -> R<PoolWindow> {
	let r = xs.len().saturating_sub(2);
	let Some(kernel) = cx.ints("kernel_shape") else {
		return cx.invalid("kernel_shape is required");
	};
	if r == 0 || kernel.len() != r || kernel.iter().any(|&k| k < 1) {
		return cx.invalid(format!("kernel_shape {kernel:?} for input {xs:?}"));
	}
	let kernel: Vec<usize> = kernel.iter().map(|&k| k as usize).collect();
	let strides = spatial_attr(cx, "strides", r, 1)?;
	let dilations = spatial_attr(cx, "dilations", r, 1)?;
	let pads = spatial_pads(cx, &xs[2..], &kernel, &strides, &dilations)?;
	let ceil = cx.int("ceil_mode", 0) != 0;
	for i in 0..r {
		if pads[i].0.max(pads[i].1) * 2 > (kernel[i] - 1) * dilations[i] + 1 {
			return cx.unsupported("padding wider than half the window");
		}
		if xs[2 + i] + pads[i].0 + pads[i].1 < (kernel[i] - 1) * dilations[i] + 1 {
			return cx.invalid("the window is larger than the padded input");
		}
	}
	Ok(PoolWindow { kernel, strides, dilations, pads, ceil, max: cx.node.op == "MaxPool" })
}

fn pool<B: Backend>(cx: &Cx<B>, x: F<B>) -> R<Vec<Value<B>>> {
	let xs = shape::<B>(&x);
	let PoolWindow { kernel, strides, dilations, pads, ceil, max } = pool_window(cx, &xs)?;
	let include = cx.int("count_include_pad", 0) != 0;
	let asymmetric = pads.iter().any(|&(b, e)| b != e);
	let out = if max {
		let (x, p) = split_pads(cx, x, &pads, f32::NEG_INFINITY);
		pool_nd::<B>(x, true, &kernel, &strides, &p, &dilations, ceil, false)
	} else if asymmetric && !include {
		// Mean over the valid elements: pooled sums of x over pooled counts of a mask,
		// both zero-padded and averaged the same way.
		let ones = cx.full(&x, &xs, 1.0);
		let (xp, p) = split_pads(cx, x, &pads, 0.0);
		let (mp, _) = split_pads(cx, ones, &pads, 0.0);
		let sx = pool_nd::<B>(xp, false, &kernel, &strides, &p, &dilations, ceil, true);
		let sm = pool_nd::<B>(mp, false, &kernel, &strides, &p, &dilations, ceil, true);
		B::float_div(sx, sm)
	} else {
		let (x, p) = split_pads(cx, x, &pads, 0.0);
		pool_nd::<B>(x, false, &kernel, &strides, &p, &dilations, ceil, include)
	};
	Ok(vec![Value::Float(out)])
}

/// Pooling with symmetric padding. 1-D and 2-D use burn's kernels; higher ranks pool one
/// axis at a time, which is exact because a box window is a product of 1-D windows.
#[allow(clippy::too_many_arguments)]
fn pool_nd<B: Backend>(
	x: F<B>,
	max: bool,
	k: &[usize],
	s: &[usize],
	p: &[usize],
	d: &[usize],
	ceil: bool,
	include: bool,
) -> F<B> {
	match k.len() {
		1 if max => B::max_pool1d(x, k[0], s[0], p[0], d[0], ceil),
		1 => B::avg_pool1d(x, k[0], s[0], p[0], include, ceil),
		2 if max && !ceil => match cpu::max_pool2d::<B>(
			&x,
			cpu::Window { kernel: arr(k), stride: arr(s), pads: arr(p), dilation: arr(d) },
		) {
			Some(out) => out,
			None => B::max_pool2d(x, arr(k), arr(s), arr(p), arr(d), ceil),
		},
		2 if max => B::max_pool2d(x, arr(k), arr(s), arr(p), arr(d), ceil),
		2 => B::avg_pool2d(x, arr(k), arr(s), arr(p), include, ceil),
		r => {
			let mut x = x;
			for i in 0..r {
				let axis = 2 + i;
				let xs = shape::<B>(&x);
				let rank = xs.len();
				let mut perm: Vec<usize> = (0..rank).filter(|&a| a != axis).collect();
				perm.push(axis);
				let moved = B::float_permute(x, &perm);
				let rows: usize = xs.iter().product::<usize>() / xs[axis];
				let flat = B::float_reshape(moved, Shape::from(vec![rows, 1, xs[axis]]));
				let pooled = pool_nd::<B>(
					flat,
					max,
					&k[i..=i],
					&s[i..=i],
					&p[i..=i],
					&d[i..=i],
					ceil,
					include,
				);
				let len = shape::<B>(&pooled)[2];
				let mut back: Vec<usize> = perm[..rank - 1].iter().map(|&a| xs[a]).collect();
				back.push(len);
				let unflat = B::float_reshape(pooled, Shape::from(back));
				let mut inverse = vec![0; rank];
				for (pos, &a) in perm.iter().enumerate() {
					inverse[a] = pos;
				}
				x = B::float_permute(unflat, &inverse);
			}
			x
		},
	}
}

/// A per-channel parameter as a tensor broadcastable against NC… input `xs`.
fn legacy_channel_param<B: Backend>(cx: &Cx<B>, p: F<B>, xs: &[usize]) -> R<F<B>> {
	let ps = shape::<B>(&p);
	if host::broadcast(xs, &ps).as_deref() == Some(xs) &&
		(cx.opset >= 7 || ps.len() != 1 || xs.len() < 2)
	{
		return Ok(p);
	}
	// Opset 6 PRelu: a 1-D slope applies per channel.
	if ps.len() == 1 && xs.len() >= 2 && (ps[0] == xs[1] || ps[0] == 1) {
		let mut s = vec![1; xs.len()];
		s[1] = ps[0];
		return Ok(reshape::<B>(p, &s));
	}
	cx.invalid(format!("parameter {ps:?} does not broadcast to {xs:?}"))
}

/// Shapes a per-channel (or per-activation, opset < 9 `spatial=0`) parameter for NC… input.
fn channel_param<B: Backend>(cx: &Cx<B>, p: F<B>, xs: &[usize]) -> R<F<B>> {
	let ps = shape::<B>(&p);
	if xs.len() < 2 ||
		ps.is_empty() ||
		ps[0] != xs[1] ||
		ps.len() > xs.len() - 1 ||
		ps[..] != xs[1..1 + ps.len()]
	{
		return cx.invalid(format!("parameter {ps:?} does not match input {xs:?}"));
	}
	let mut s = vec![1];
	s.extend(&ps);
	s.resize(xs.len(), 1);
	Ok(reshape::<B>(p, &s))
}

fn batch_norm<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let x = a.float(cx, 0)?;
	let xs = shape::<B>(&x);
	let eps = cx.float("epsilon", 1e-5);
	let p = |i| -> R<F<B>> { channel_param(cx, a.float(cx, i)?, &xs) };
	let (scale, bias, mean, var) = (p(1)?, p(2)?, p(3)?, p(4)?);
	// y = (x - mean) * scale / sqrt(var + eps) + bias
	let factor = B::float_div(scale, B::float_sqrt(B::float_add_scalar(var, eps.into())));
	let centred = B::float_sub(x, broadcast_to::<B>(mean, &xs));
	let y = B::float_add(
		B::float_mul(centred, broadcast_to::<B>(factor, &xs)),
		broadcast_to::<B>(bias, &xs),
	);
	Ok(vec![Value::Float(y)])
}

/// Normalises `x` over `dims` (kept as size-1 dimensions).
fn normalise<B: Backend>(x: F<B>, dims: &[usize], eps: f32) -> F<B> {
	let xs = shape::<B>(&x);
	let mean = over_dims::<B>(x.clone(), dims, B::float_mean_dim);
	let centred = B::float_sub(x, broadcast_to::<B>(mean, &xs));
	let var =
		over_dims::<B>(B::float_mul(centred.clone(), centred.clone()), dims, B::float_mean_dim);
	let inv = B::float_recip(B::float_sqrt(B::float_add_scalar(var, eps.into())));
	B::float_mul(centred, broadcast_to::<B>(inv, &xs))
}

fn instance_norm<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let x = a.float(cx, 0)?;
	let xs = shape::<B>(&x);
	if xs.len() < 3 {
		return cx.invalid(format!("input {xs:?} has no spatial axes"));
	}
	let (scale, bias) =
		(channel_param(cx, a.float(cx, 1)?, &xs)?, channel_param(cx, a.float(cx, 2)?, &xs)?);
	let dims: Vec<usize> = (2..xs.len()).collect();
	let y = normalise::<B>(x, &dims, cx.float("epsilon", 1e-5));
	let y =
		B::float_add(B::float_mul(y, broadcast_to::<B>(scale, &xs)), broadcast_to::<B>(bias, &xs));
	Ok(vec![Value::Float(y)])
}

fn layer_norm<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let x = a.float(cx, 0)?;
	let xs = shape::<B>(&x);
	let axis = cx.axis(cx.int("axis", -1), xs.len())?;
	let dims: Vec<usize> = (axis..xs.len()).collect();
	let mut y = normalise::<B>(x, &dims, cx.float("epsilon", 1e-5));
	for (i, add) in [(1, false), (2, true)] {
		let Some(p) = a.opt_float(cx, i)? else {
			continue;
		};
		if host::broadcast(&xs, &shape::<B>(&p)).as_deref() != Some(&xs[..]) {
			return cx
				.invalid(format!("parameter {:?} does not broadcast to {xs:?}", shape::<B>(&p)));
		}
		let p = broadcast_to::<B>(p, &xs);
		y = if add { B::float_add(y, p) } else { B::float_mul(y, p) };
	}
	Ok(vec![Value::Float(y)])
}

fn reduce<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let x = a.float(cx, 0)?;
	let xs = shape::<B>(&x);
	let op = cx.node.op.as_str();
	// Axes moved from attribute to input in opset 13 (ReduceSum) and 18 (the others).
	let from_input = if op == "ReduceSum" { cx.opset >= 13 } else { cx.opset >= 18 };
	let axes = if from_input {
		a.opt(1).map(|_| a.host(cx, 1).map(|h| h.data.clone())).transpose()?
	} else {
		cx.ints("axes")
	};
	let axes = match axes {
		Some(v) if !v.is_empty() => v,
		_ if cx.int("noop_with_empty_axes", 0) != 0 => return Ok(vec![Value::Float(x)]),
		_ => (0..xs.len() as i64).collect(),
	};
	let mut dims = axes.iter().map(|&v| cx.axis(v, xs.len())).collect::<R<Vec<_>>>()?;
	dims.sort_unstable();
	dims.dedup();
	let y = match op {
		"ReduceMean" => over_dims::<B>(x, &dims, B::float_mean_dim),
		"ReduceSum" => over_dims::<B>(x, &dims, B::float_sum_dim),
		"ReduceMax" => over_dims::<B>(x, &dims, B::float_max_dim),
		_ => over_dims::<B>(x, &dims, B::float_min_dim),
	};
	if cx.int("keepdims", 1) != 0 {
		return Ok(vec![Value::Float(y)]);
	}
	let out: Vec<usize> = xs
		.iter()
		.enumerate()
		.filter(|(i, _)| !dims.contains(i))
		.map(|(_, &d)| d)
		.collect();
	Ok(vec![Value::Float(reshape::<B>(y, &out))])
}

fn reshape_op<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let v = a.get(cx, 0)?;
	let s = v.shape();
	let target = if cx.opset < 5 {
		cx.ints("shape").unwrap_or_default()
	} else {
		a.host(cx, 1)?.data.clone()
	};
	let allow_zero = cx.int("allowzero", 0) != 0;
	let mut out = Vec::with_capacity(target.len());
	let mut infer = None;
	for (i, &d) in target.iter().enumerate() {
		out.push(match d {
			0 if !allow_zero => match s.get(i) {
				Some(&d) => d,
				None =>
					return cx
						.invalid(format!("0 at position {i} copies a dimension the input lacks")),
			},
			-1 if infer.is_none() => {
				infer = Some(i);
				1
			},
			d if d >= 0 => d as usize,
			_ => return cx.invalid(format!("bad target shape {target:?}")),
		});
	}
	let total: usize = s.iter().product();
	let known: usize = out.iter().product();
	if let Some(i) = infer {
		if known == 0 || !total.is_multiple_of(known) {
			return cx.invalid(format!("cannot reshape {s:?} to {target:?}"));
		}
		out[i] = total / known;
	} else if known != total {
		return cx.invalid(format!("cannot reshape {s:?} to {target:?}"));
	}
	Ok(vec![relayout(v, out)])
}

fn squeeze<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let v = a.get(cx, 0)?;
	let s = v.shape();
	let axes = if cx.opset >= 13 {
		a.opt(1).map(|_| a.host(cx, 1).map(|h| h.data.clone())).transpose()?
	} else {
		cx.ints("axes")
	};
	let out = if cx.node.op == "Squeeze" {
		let axes = match axes {
			Some(ax) => ax.iter().map(|&x| cx.axis(x, s.len())).collect::<R<Vec<_>>>()?,
			None => (0..s.len()).filter(|&i| s[i] == 1).collect(),
		};
		if let Some(&bad) = axes.iter().find(|&&i| s[i] != 1) {
			return cx.invalid(format!("axis {bad} has size {}, not 1", s[bad]));
		}
		s.iter()
			.enumerate()
			.filter(|(i, _)| !axes.contains(i))
			.map(|(_, &d)| d)
			.collect()
	} else {
		let Some(axes) = axes else {
			return cx.invalid("axes are required");
		};
		let rank = s.len() + axes.len();
		let mut axes = axes.iter().map(|&x| cx.axis(x, rank)).collect::<R<Vec<_>>>()?;
		axes.sort_unstable();
		if axes.windows(2).any(|w| w[0] == w[1]) {
			return cx.invalid("repeated axis");
		}
		let mut rest = s.iter();
		(0..rank)
			.map(|i| if axes.contains(&i) { 1 } else { *rest.next().expect("counted") })
			.collect()
	};
	Ok(vec![relayout(v, out)])
}

fn concat<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let parts: Vec<&Value<B>> = a.0.iter().flatten().collect();
	let Some(&first) = parts.first() else {
		return cx.invalid("no inputs");
	};
	let s0 = first.shape();
	let axis = cx.axis(cx.int("axis", if cx.opset < 4 { 1 } else { i64::MIN }), s0.len())?;
	for p in &parts {
		let s = p.shape();
		if s.len() != s0.len() || (0..s.len()).any(|i| i != axis && s[i] != s0[i]) {
			return cx.invalid(format!("shapes {s0:?} and {s:?} differ off axis {axis}"));
		}
	}
	// Zero-length parts add nothing (shape arithmetic produces them).
	let parts: Vec<&Value<B>> = parts.into_iter().filter(|p| p.shape()[axis] > 0).collect();
	if parts.iter().all(|p| matches!(p, Value::Host(_))) {
		let hosts: Vec<Host> = parts
			.iter()
			.map(|p| match p {
				Value::Host(h) => h.clone(),
				Value::Float(_) => unreachable!(),
			})
			.collect();
		if hosts.is_empty() {
			let mut s = s0.clone();
			s[axis] = 0;
			return Ok(vec![Value::Host(Host::new(first.elem(), s, vec![]))]);
		}
		return Ok(vec![Value::Host(Host::concat(&hosts, axis))]);
	}
	let floats = parts
		.iter()
		.map(|p| match p {
			Value::Float(t) => Ok(t.clone()),
			Value::Host(_) => cx.invalid("cannot concatenate integer and float tensors"),
		})
		.collect::<R<Vec<_>>>()?;
	Ok(vec![Value::Float(B::float_cat(floats, axis))])
}

fn split<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let v = a.get(cx, 0)?;
	let s = v.shape();
	let axis = cx.axis(cx.int("axis", 0), s.len())?;
	let n = cx.node.outputs.len();
	let sizes: Vec<usize> = match if cx.opset >= 13 {
		a.opt(1).map(|_| a.host(cx, 1).map(|h| h.data.clone())).transpose()?
	} else {
		cx.ints("split")
	} {
		Some(v) => dims_of(cx, &Host::vector_i64(v))?,
		None => {
			let parts = cx.int("num_outputs", n as i64).max(1) as usize;
			let chunk = s[axis].div_ceil(parts);
			(0..parts).map(|i| chunk.min(s[axis].saturating_sub(i * chunk))).collect()
		},
	};
	if sizes.len() != n || sizes.iter().sum::<usize>() != s[axis] {
		return cx
			.invalid(format!("split {sizes:?} of {} along axis {axis} into {n} outputs", s[axis]));
	}
	let mut start = 0;
	let mut out = Vec::with_capacity(n);
	for len in sizes {
		out.push(match v {
			Value::Float(t) if len > 0 =>
				Value::Float(slice_axis::<B>(t.clone(), axis, start, start + len)),
			Value::Float(_) => return cx.unsupported("an empty split"),
			Value::Host(h) => {
				let ranges: Vec<(i64, i64, usize)> = (0..s.len())
					.map(|d| if d == axis { (start as i64, 1, len) } else { (0, 1, s[d]) })
					.collect();
				Value::Host(h.slice(&ranges))
			},
		});
		start += len;
	}
	Ok(out)
}

fn gather<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let v = a.get(cx, 0)?;
	let s = v.shape();
	if s.is_empty() {
		return cx.invalid("Gather from a scalar");
	}
	let axis = cx.axis(cx.int("axis", 0), s.len())?;
	let idx = a.host(cx, 1)?;
	let dim = s[axis] as i64;
	let mut norm = idx.clone();
	for i in norm.data.iter_mut() {
		if *i < -dim || *i >= dim {
			return cx.invalid(format!("index {i} out of range for axis of size {dim}"));
		}
		if *i < 0 {
			*i += dim;
		}
	}
	match v {
		Value::Host(h) => Ok(vec![Value::Host(h.gather(axis, &norm))]),
		Value::Float(t) => {
			if norm.data.is_empty() {
				return cx.unsupported("an empty Gather");
			}
			let flat = Host::vector_i64(norm.data.clone());
			let picked = B::float_select(t.clone(), axis, int_from_host::<B>(&flat, cx.device));
			let mut out = s[..axis].to_vec();
			out.extend(&norm.shape);
			out.extend(&s[axis + 1..]);
			Ok(vec![Value::Float(reshape::<B>(picked, &out))])
		},
	}
}

fn slice<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let v = a.get(cx, 0)?;
	let s = v.shape();
	let (starts, ends, axes, steps) = if cx.opset < 10 {
		(
			cx.ints("starts").unwrap_or_default(),
			cx.ints("ends").unwrap_or_default(),
			cx.ints("axes"),
			None,
		)
	} else {
		let opt = |i: usize| a.opt(i).map(|_| a.host(cx, i).map(|h| h.data.clone())).transpose();
		(a.host(cx, 1)?.data.clone(), a.host(cx, 2)?.data.clone(), opt(3)?, opt(4)?)
	};
	let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
	let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
	if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
		return cx.invalid("starts, ends, axes and steps differ in length");
	}
	let mut ranges: Vec<(i64, i64, usize)> = s.iter().map(|&d| (0, 1, d)).collect();
	let mut seen = vec![false; s.len()];
	for i in 0..starts.len() {
		let axis = cx.axis(axes[i], s.len())?;
		if std::mem::replace(&mut seen[axis], true) {
			return cx.invalid(format!("axis {axis} sliced twice"));
		}
		let (dim, step) = (s[axis] as i64, steps[i]);
		if step == 0 {
			return cx.invalid("step 0");
		}
		let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
		let (start, count) = if step > 0 {
			let (st, en) = (norm(starts[i]).clamp(0, dim), norm(ends[i]).clamp(0, dim));
			(st, if en > st { (en - st + step - 1) / step } else { 0 })
		} else {
			let (st, en) = (norm(starts[i]).clamp(0, dim - 1), norm(ends[i]).clamp(-1, dim - 1));
			(st, if st > en { (st - en + (-step) - 1) / (-step) } else { 0 })
		};
		ranges[axis] = (start, step, count as usize);
	}
	match v {
		Value::Host(h) => Ok(vec![Value::Host(h.slice(&ranges))]),
		Value::Float(t) => {
			if ranges.iter().any(|r| r.2 == 0) {
				return cx.unsupported("an empty slice of a float tensor");
			}
			let mut flips = Vec::new();
			let slices: Vec<Slice> = ranges
				.iter()
				.enumerate()
				.map(|(d, &(start, step, count))| {
					let last = start + step * (count as i64 - 1);
					if step > 0 {
						Slice::new(start as isize, Some(last as isize + 1), step as isize)
					} else {
						// Take the same elements in ascending order, then reverse the axis.
						flips.push(d);
						Slice::new(last as isize, Some(start as isize + 1), -step as isize)
					}
				})
				.collect();
			let mut t = B::float_slice(t.clone(), &slices);
			if !flips.is_empty() {
				t = B::float_flip(t, &flips);
			}
			Ok(vec![Value::Float(t)])
		},
	}
}

fn cast<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let Some(to) = crate::onnx::elem_type(cx.int("to", 0) as i32) else {
		return cx.unsupported("the target type");
	};
	let v = a.get(cx, 0)?;
	let float = |t: F<B>, elem| {
		let dtype = if elem == ElemType::F64 { FloatDType::F64 } else { FloatDType::F32 };
		Value::Float(if v.elem() == elem { t } else { B::float_cast(t, dtype) })
	};
	Ok(vec![match (v, to) {
		(Value::Float(t), ElemType::F32 | ElemType::F64) => float(t.clone(), to),
		(Value::Host(h), ElemType::F32 | ElemType::F64) => float(to_float::<B>(h, cx.device), to),
		(Value::Host(h), elem) => Value::Host(Host::new(
			elem,
			h.shape.clone(),
			h.data.iter().map(|&x| host::wrap(elem, x)).collect(),
		)),
		(Value::Float(t), elem) => {
			let s = shape::<B>(t);
			let vals = float_to_vec::<B>(t.clone())?;
			if vals.iter().any(|v| !v.is_finite()) && elem != ElemType::Bool {
				return cx.invalid("casting a non-finite float to an integer");
			}
			// Float to integer truncates toward zero, then wraps like the C cast.
			let data = vals
				.iter()
				.map(|&v| {
					if elem == ElemType::Bool {
						(v != 0.0) as i64
					} else {
						host::wrap(elem, v as i64)
					}
				})
				.collect();
			Value::Host(Host::new(elem, s, data))
		},
	}])
}

fn where_op<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let cond = a.host(cx, 0)?;
	let (x, y) = (a.get(cx, 1)?, a.get(cx, 2)?);
	let Some(out) =
		host::broadcast(&cond.shape, &x.shape()).and_then(|s| host::broadcast(&s, &y.shape()))
	else {
		return cx.invalid("condition, X and Y do not broadcast");
	};
	match (x, y) {
		(Value::Host(x), Value::Host(y)) => {
			let (c, x, y) = (cond.broadcast_to(&out), x.broadcast_to(&out), y.broadcast_to(&out));
			let data = c
				.data
				.iter()
				.zip(x.data.iter().zip(&y.data))
				.map(|(&c, (&p, &q))| if c != 0 { p } else { q })
				.collect();
			Ok(vec![Value::Host(Host::new(x.elem, out, data))])
		},
		(Value::Float(x), Value::Float(y)) => {
			let mask = bool_from_host::<B>(&cond.broadcast_to(&out), cx.device);
			let (x, y) = (broadcast_to::<B>(x.clone(), &out), broadcast_to::<B>(y.clone(), &out));
			Ok(vec![Value::Float(B::float_mask_where(y, mask, x))])
		},
		_ => cx.invalid("X and Y must have the same element type"),
	}
}

fn pad<B: Backend>(cx: &Cx<B>, a: &Args<B>) -> R<Vec<Value<B>>> {
	let x = a.float(cx, 0)?;
	let xs = shape::<B>(&x);
	let r = xs.len();
	let (pads, value) = if cx.opset < 11 {
		(
			cx.ints("pads").or_else(|| cx.ints("paddings")).unwrap_or_default(),
			cx.float("value", 0.0),
		)
	} else {
		(a.host(cx, 1)?.data.clone(), a.scalar(cx, 2)?.unwrap_or(0.0))
	};
	let axes: Vec<usize> = match a.opt(3) {
		Some(_) if cx.opset >= 18 =>
			a.host(cx, 3)?.data.iter().map(|&v| cx.axis(v, r)).collect::<R<_>>()?,
		_ => (0..r).collect(),
	};
	let n = axes.len();
	if pads.len() != 2 * n {
		return cx.invalid(format!("pads {pads:?} for {n} axes"));
	}
	if pads.iter().any(|&p| p < 0) {
		return cx.unsupported("negative pads (cropping)");
	}
	let mode = cx.string("mode").unwrap_or_else(|| "constant".into());
	let mut t = x;
	for (i, &axis) in axes.iter().enumerate() {
		let (b, e) = (pads[i] as usize, pads[i + n] as usize);
		if b == 0 && e == 0 {
			continue;
		}
		let len = xs[axis];
		t = match mode.as_str() {
			"constant" => pad_constant(cx, t, axis, b, e, value),
			"edge" => {
				let mut parts = Vec::new();
				let edge = |t: &F<B>, at: usize, n: usize| {
					let one = slice_axis::<B>(t.clone(), axis, at, at + 1);
					let mut s = shape::<B>(&one);
					s[axis] = n;
					broadcast_to::<B>(one, &s)
				};
				if len == 0 {
					return cx.invalid("edge padding of an empty axis");
				}
				if b > 0 {
					parts.push(edge(&t, 0, b));
				}
				parts.push(t.clone());
				if e > 0 {
					parts.push(edge(&t, len - 1, e));
				}
				B::float_cat(parts, axis)
			},
			_ => {
				// reflect: mirror without repeating the edge element.
				if b >= len || e >= len {
					return cx.invalid("reflect padding must be smaller than the axis");
				}
				let mut parts = Vec::new();
				if b > 0 {
					parts.push(B::float_flip(slice_axis::<B>(t.clone(), axis, 1, b + 1), &[axis]));
				}
				parts.push(t.clone());
				if e > 0 {
					parts.push(B::float_flip(
						slice_axis::<B>(t.clone(), axis, len - 1 - e, len - 1),
						&[axis],
					));
				}
				B::float_cat(parts, axis)
			},
		};
	}
	Ok(vec![Value::Float(t)])
}
