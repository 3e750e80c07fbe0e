//! Operators that move or copy elements without computing on them: Identity, Dropout,
//! Shape, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand, Tile, Concat, Split and
//! Pad; ConstantOfShape, which fills a shape, and Range. Float tensors stay on the device and
//! integer ones on the host.

use super::{
	boxed, broadcast_to, one, pad_constant, shape, slice_axis, Args, Attrs, Cx, Elems, Listed, Op,
	Registry, F, R,
};
use crate::exec::{
	host::{self, Host},
	to_value, Value,
};
use burn::tensor::backend::Backend;
use opg_primitives::{ElemType, Tensor};

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	// Inference: Dropout drops nothing.
	r.add("Identity", |node, _| boxed(Identity { mask: node.outputs.len() > 1 }));
	r.add("Dropout", |node, _| boxed(Identity { mask: node.outputs.len() > 1 }));
	r.add("Shape", |node, _| {
		let a = Attrs(node);
		boxed(ShapeOf { start: a.int("start", 0), end: a.int_opt("end") })
	});
	r.add("Reshape", |node, opset| {
		let a = Attrs(node);
		// Before opset 5 the target shape is an attribute, then input 1.
		let target = (opset < 5).then(|| a.ints("shape").unwrap_or_default());
		boxed(Reshape { target, allow_zero: a.int("allowzero", 0) != 0 })
	});
	r.add("Flatten", |node, _| boxed(Flatten { axis: Attrs(node).int("axis", 1) }));
	r.add("Squeeze", |node, opset| {
		boxed(Squeeze { axes: Listed::parse(Attrs(node), opset, 13, "axes", 1) })
	});
	r.add("Unsqueeze", |node, opset| {
		boxed(Unsqueeze { axes: Listed::parse(Attrs(node), opset, 13, "axes", 1) })
	});
	r.add("Transpose", |node, _| boxed(Transpose { perm: Attrs(node).ints("perm") }));
	r.add("Expand", |_, _| boxed(Expand));
	r.add("Range", |_, _| boxed(Range));
	r.add("ConstantOfShape", |node, _| {
		let a = Attrs(node);
		// A one-element tensor of any type; float32 zero when absent.
		let value = match node.attributes.get("value") {
			None =>
				Tensor { elem: ElemType::F32, shape: vec![1], data: 0f32.to_le_bytes().to_vec() },
			Some(crate::onnx::Attribute::Tensor(t))
				if t.shape.iter().map(|&d| d as u64).product::<u64>() == 1 =>
				t.clone(),
			Some(_) => return a.unsupported("a `value` that is not a one-element tensor"),
		};
		boxed(ConstantOfShape { value })
	});
	r.add("Tile", |_, _| boxed(Tile));
	r.add("Concat", |node, opset| {
		// No default axis from opset 4: an absent one is out of range when run.
		let axis = Attrs(node).int("axis", if opset < 4 { 1 } else { i64::MIN });
		boxed(Concat { axis })
	});
	r.add("Split", |node, opset| {
		let a = Attrs(node);
		let outputs = node.outputs.len();
		boxed(Split {
			axis: a.int("axis", 0),
			sizes: Listed::parse(a, opset, 13, "split", 1),
			parts: a.int("num_outputs", outputs as i64).max(1) as usize,
			outputs,
		})
	});
	r.add("Pad", |node, opset| {
		let a = Attrs(node);
		let mode = match a.string("mode").as_deref() {
			None | Some("constant") => PadMode::Constant,
			Some("reflect") => PadMode::Reflect,
			Some("edge") => PadMode::Edge,
			Some(other) => return a.unsupported(format!("mode=\"{other}\"")),
		};
		// Before opset 11 the pads and value are attributes, then inputs 1 and 2.
		let legacy = (opset < 11).then(|| {
			(
				a.ints("pads").or_else(|| a.ints("paddings")).unwrap_or_default(),
				a.float("value", 0.0),
			)
		});
		boxed(Pad { mode, legacy, axes_input: opset >= 18 })
	});
}

fn relayout<B: Backend>(v: &Value<B>, to: Vec<usize>) -> Value<B> {
	match v {
		Value::Float(t) => Value::Float(super::reshape::<B>(t.clone(), &to)),
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

/// Identity, and Dropout: with a second output, the mask (all true).
struct Identity {
	mask: bool,
}

impl<B: Backend> Op<B> for Identity {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.get(cx, 0)?.clone();
		let mut out = vec![x.clone()];
		if self.mask {
			// Inference: nothing is dropped, the mask is all true.
			let s = x.shape();
			let n = s.iter().product();
			out.push(Value::Host(Host::new(ElemType::Bool, s, vec![1; n])));
		}
		Ok(out)
	}
}

struct ShapeOf {
	start: i64,
	/// The rank when absent.
	end: Option<i64>,
}

impl<B: Backend> Op<B> for ShapeOf {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let s = a.get(cx, 0)?.shape();
		let r = s.len() as i64;
		let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
		let (start, end) = (clampi(self.start), clampi(self.end.unwrap_or(r)));
		let dims = s[start..end.max(start)].iter().map(|&d| d as i64).collect();
		Ok(vec![Value::Host(Host::vector_i64(dims))])
	}
}

struct Reshape {
	/// The `shape` attribute (opsets before 5); otherwise input 1.
	target: Option<Vec<i64>>,
	allow_zero: bool,
}

impl<B: Backend> Op<B> for Reshape {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let v = a.get(cx, 0)?;
		let s = v.shape();
		let target: &[i64] = match &self.target {
			Some(t) => t,
			None => &a.host(cx, 1)?.data,
		};
		let mut out = Vec::with_capacity(target.len());
		let mut infer = None;
		for (i, &d) in target.iter().enumerate() {
			out.push(match d {
				0 if !self.allow_zero => match s.get(i) {
					Some(&d) => d,
					None =>
						return cx.invalid(format!(
							"0 at position {i} copies a dimension the input lacks"
						)),
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
}

struct Flatten {
	axis: i64,
}

impl<B: Backend> Op<B> for Flatten {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let v = a.get(cx, 0)?;
		let s = v.shape();
		let axis = if s.is_empty() { 0 } else { cx.axis(self.axis, s.len() + 1)? };
		let to = vec![s[..axis].iter().product(), s[axis..].iter().product()];
		Ok(vec![relayout(v, to)])
	}
}

struct Squeeze {
	axes: Listed,
}

impl<B: Backend> Op<B> for Squeeze {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let v = a.get(cx, 0)?;
		let s = v.shape();
		let axes = match self.axes.get(cx, &a)? {
			Some(ax) => ax.iter().map(|&x| cx.axis(x, s.len())).collect::<R<Vec<_>>>()?,
			None => (0..s.len()).filter(|&i| s[i] == 1).collect(),
		};
		if let Some(&bad) = axes.iter().find(|&&i| s[i] != 1) {
			return cx.invalid(format!("axis {bad} has size {}, not 1", s[bad]));
		}
		let out = s
			.iter()
			.enumerate()
			.filter(|(i, _)| !axes.contains(i))
			.map(|(_, &d)| d)
			.collect();
		Ok(vec![relayout(v, out)])
	}
}

struct Unsqueeze {
	axes: Listed,
}

impl<B: Backend> Op<B> for Unsqueeze {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let v = a.get(cx, 0)?;
		let s = v.shape();
		let Some(axes) = self.axes.get(cx, &a)? else {
			return cx.invalid("axes are required");
		};
		let rank = s.len() + axes.len();
		let mut axes = axes.iter().map(|&x| cx.axis(x, rank)).collect::<R<Vec<_>>>()?;
		axes.sort_unstable();
		if axes.windows(2).any(|w| w[0] == w[1]) {
			return cx.invalid("repeated axis");
		}
		let mut rest = s.iter();
		let out = (0..rank)
			.map(|i| if axes.contains(&i) { 1 } else { *rest.next().expect("counted") })
			.collect();
		Ok(vec![relayout(v, out)])
	}
}

struct Transpose {
	/// Reversed axes when absent.
	perm: Option<Vec<i64>>,
}

impl<B: Backend> Op<B> for Transpose {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let v = a.get(cx, 0)?;
		let rank = v.shape().len();
		let perm: Vec<usize> = match &self.perm {
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
	}
}

struct Expand;

impl<B: Backend> Op<B> for Expand {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let v = a.get(cx, 0)?;
		let target: Vec<usize> = dims_of(cx, a.host(cx, 1)?)?;
		let Some(out) = host::broadcast(&v.shape(), &target) else {
			return cx.invalid(format!("cannot expand {:?} to {target:?}", v.shape()));
		};
		cx.check_elements(&out)?;
		Ok(vec![match v {
			Value::Float(t) => Value::Float(broadcast_to::<B>(t.clone(), &out)),
			Value::Host(h) => Value::Host(h.broadcast_to(&out)),
		}])
	}
}

/// A tensor of the input shape filled with the one element of `value`, in `value`'s type.
struct ConstantOfShape {
	value: Tensor,
}

impl<B: Backend> Op<B> for ConstantOfShape {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let dims = dims_of(cx, a.host(cx, 0)?)?;
		cx.check_elements(&dims)?;
		let n: usize = dims.iter().product();
		let v = &self.value;
		let width = v.data.len();
		let data = v.data.iter().copied().cycle().take(n * width).collect();
		let shape = dims.iter().map(|&d| d as u32).collect();
		to_value::<B>(&Tensor { elem: v.elem, shape, data }, cx.device).map(|v| vec![v])
	}
}

/// `start, start + delta, …` below `limit` (above it for a negative delta), in the inputs'
/// type. Float values are accumulated as onnxruntime does (each the previous plus delta).
struct Range;

impl<B: Backend> Op<B> for Range {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let mut parts = Vec::new();
		for i in 0..3 {
			let (s, e) = Elems::of(a.get(cx, i)?)?;
			if s.iter().product::<usize>() != 1 {
				return cx.invalid("start, limit and delta must be scalars");
			}
			parts.push(e);
		}
		let (start, limit, delta) = (parts[0].get_f64(0), parts[1].get_f64(0), parts[2].get_f64(0));
		if delta == 0.0 || !(start.is_finite() && limit.is_finite() && delta.is_finite()) {
			return cx.invalid("delta must be non-zero and every bound finite");
		}
		let n = ((limit - start) / delta).ceil().max(0.0);
		if n > super::MAX_ELEMENTS as f64 {
			return cx.invalid(format!("a range of {n} elements is over the limit"));
		}
		let n = n as usize;
		let out = match &parts[0] {
			Elems::Int(e, v) => {
				let (s, d) = (v[0], delta as i64);
				Elems::Int(
					*e,
					(0..n as i64)
						.map(|i| host::wrap(*e, s.wrapping_add(i.wrapping_mul(d))))
						.collect(),
				)
			},
			Elems::F32(v) => {
				let (mut x, d) = (v[0], delta as f32);
				Elems::F32(
					(0..n)
						.map(|_| {
							let y = x;
							x = y + d;
							y
						})
						.collect(),
				)
			},
			Elems::F64(v) => {
				let mut x = v[0];
				Elems::F64(
					(0..n)
						.map(|_| {
							let y = x;
							x = y + delta;
							y
						})
						.collect(),
				)
			},
		};
		if n == 0 && !matches!(out, Elems::Int(..)) {
			return cx.unsupported("an empty float range");
		}
		Ok(vec![out.into_value::<B>(&[n], cx.device)])
	}
}

struct Tile;

impl<B: Backend> Op<B> for Tile {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let reps = a.host(cx, 1)?.data.clone();
		let v = a.get(cx, 0)?;
		if reps.len() != v.shape().len() || reps.iter().any(|&r| r < 1) {
			return cx.invalid(format!("repeats {reps:?} for rank {}", v.shape().len()));
		}
		let out: Option<Vec<usize>> = v
			.shape()
			.iter()
			.zip(&reps)
			.map(|(&d, &r)| usize::try_from(r).ok().and_then(|r| d.checked_mul(r)))
			.collect();
		cx.check_elements(&out.unwrap_or_else(|| vec![usize::MAX]))?;
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
	}
}

struct Concat {
	axis: i64,
}

impl<B: Backend> Op<B> for Concat {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let parts: Vec<&Value<B>> = a.given().collect();
		let Some(&first) = parts.first() else {
			return cx.invalid("no inputs");
		};
		let s0 = first.shape();
		let axis = cx.axis(self.axis, s0.len())?;
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
		one(B::float_cat(floats, axis))
	}
}

struct Split {
	axis: i64,
	sizes: Listed,
	/// Equal parts when no sizes are given: `num_outputs`, or the number of outputs.
	parts: usize,
	outputs: usize,
}

impl<B: Backend> Op<B> for Split {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let v = a.get(cx, 0)?;
		let s = v.shape();
		let axis = cx.axis(self.axis, s.len())?;
		let n = self.outputs;
		let sizes: Vec<usize> = match self.sizes.get(cx, &a)? {
			Some(v) => dims_of(cx, &Host::vector_i64(v.into_owned()))?,
			None => {
				let parts = self.parts;
				let chunk = s[axis].div_ceil(parts);
				(0..parts).map(|i| chunk.min(s[axis].saturating_sub(i * chunk))).collect()
			},
		};
		if sizes.len() != n || sizes.iter().sum::<usize>() != s[axis] {
			return cx.invalid(format!(
				"split {sizes:?} of {} along axis {axis} into {n} outputs",
				s[axis]
			));
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
}

#[derive(Clone, Copy)]
enum PadMode {
	Constant,
	Reflect,
	Edge,
}

struct Pad {
	mode: PadMode,
	/// The `pads` (or `paddings`) and `value` attributes (opsets before 11); otherwise
	/// inputs 1 and 2.
	legacy: Option<(Vec<i64>, f32)>,
	/// From opset 18: input 3 names the padded axes.
	axes_input: bool,
}

impl<B: Backend> Op<B> for Pad {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let xs = shape::<B>(&x);
		let r = xs.len();
		let (pads, value): (&[i64], f32) = match &self.legacy {
			Some((pads, value)) => (pads, *value),
			None => (&a.host(cx, 1)?.data, a.scalar(cx, 2)?.unwrap_or(0.0)),
		};
		let axes: Vec<usize> = match a.opt(3) {
			Some(_) if self.axes_input =>
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
		let mut t = x;
		for (i, &axis) in axes.iter().enumerate() {
			let (b, e) = (pads[i] as usize, pads[i + n] as usize);
			if b == 0 && e == 0 {
				continue;
			}
			let len = xs[axis];
			t = match self.mode {
				PadMode::Constant => pad_constant(cx, t, axis, b, e, value),
				PadMode::Edge => {
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
				PadMode::Reflect => {
					// Mirror without repeating the edge element.
					if b >= len || e >= len {
						return cx.invalid("reflect padding must be smaller than the axis");
					}
					let mut parts = Vec::new();
					if b > 0 {
						parts.push(B::float_flip(
							slice_axis::<B>(t.clone(), axis, 1, b + 1),
							&[axis],
						));
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
		one(t)
	}
}
