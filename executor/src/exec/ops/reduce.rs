//! Reductions over axes: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
//! ReduceL2, ReduceSumSquare and ReduceLogSum; ArgMax and ArgMin; CumSum.
//!
//! Float sums run on the device. Products, integer reductions, the arg reductions and CumSum
//! run on the host, in index order, so their bits are the same on every backend (burn's
//! default product is exp(sum(log)), which is wrong for negative values).

use super::{boxed, over_dims, reshape, shape, Args, Attrs, Cx, Elems, Listed, Op, Registry, F, R};
use crate::exec::{
	host::{self, strides, Host},
	Value,
};
use burn::tensor::backend::Backend;
use opg_primitives::ElemType;
use std::borrow::Cow;

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	use Fold::*;
	// Axes moved from attribute to input in opset 13 (ReduceSum) and 18 (the others).
	r.add("ReduceMean", |node, opset| Reduce::parse(node, opset, 18, Mean, None, None));
	r.add("ReduceSum", |node, opset| Reduce::parse(node, opset, 13, Sum, None, None));
	r.add("ReduceMax", |node, opset| Reduce::parse(node, opset, 18, Max, None, None));
	r.add("ReduceMin", |node, opset| Reduce::parse(node, opset, 18, Min, None, None));
	r.add("ReduceProd", |node, opset| Reduce::parse(node, opset, 18, Prod, None, None));
	r.add("ReduceL1", |node, opset| Reduce::parse(node, opset, 18, Sum, Some(B::float_abs), None));
	r.add("ReduceL2", |node, opset| {
		Reduce::parse(node, opset, 18, Sum, Some(square::<B>), Some(B::float_sqrt))
	});
	r.add("ReduceSumSquare", |node, opset| {
		Reduce::parse(node, opset, 18, Sum, Some(square::<B>), None)
	});
	r.add("ReduceLogSum", |node, opset| {
		Reduce::parse(node, opset, 18, Sum, None, Some(B::float_log))
	});
	r.add("ArgMax", |node, _| ArgExtreme::parse(node, true));
	r.add("ArgMin", |node, _| ArgExtreme::parse(node, false));
	r.add("CumSum", |node, _| {
		let a = Attrs(node);
		boxed(CumSum { exclusive: a.int("exclusive", 0) != 0, reverse: a.int("reverse", 0) != 0 })
	});
}

fn square<B: Backend>(t: F<B>) -> F<B> {
	B::float_mul(t.clone(), t)
}

#[derive(Clone, Copy, PartialEq)]
enum Fold {
	Mean,
	Sum,
	Max,
	Min,
	Prod,
}

struct Reduce<B: Backend> {
	fold: Fold,
	/// Applied to each element first (|x|, x²) and to the result last (√, log).
	pre: Option<fn(F<B>) -> F<B>>,
	post: Option<fn(F<B>) -> F<B>>,
	axes: Listed,
	noop_with_empty_axes: bool,
	keepdims: bool,
}

impl<B: Backend> Reduce<B> {
	fn parse(
		node: &crate::onnx::Node,
		opset: i64,
		axes_input_since: i64,
		fold: Fold,
		pre: Option<fn(F<B>) -> F<B>>,
		post: Option<fn(F<B>) -> F<B>>,
	) -> R<Box<dyn Op<B>>> {
		let a = Attrs(node);
		boxed(Reduce {
			fold,
			pre,
			post,
			axes: Listed::parse(a, opset, axes_input_since, "axes", 1),
			noop_with_empty_axes: a.int("noop_with_empty_axes", 0) != 0,
			keepdims: a.int("keepdims", 1) != 0,
		})
	}
}

/// Folds the elements of `v` (of `shape`) over `dims` in index order, keeping the dimensions.
fn fold_host(v: &Elems, shape: &[usize], dims: &[usize], fold: Fold) -> (Vec<usize>, Elems) {
	let out: Vec<usize> = shape
		.iter()
		.enumerate()
		.map(|(i, &d)| if dims.contains(&i) { 1 } else { d })
		.collect();
	let (ist, ost) = (strides(shape), strides(&out));
	let n: usize = out.iter().product();
	let target = |i: usize| -> usize {
		(0..shape.len())
			.filter(|d| !dims.contains(d))
			.map(|d| (i / ist[d]) % shape[d] * ost[d])
			.sum()
	};
	let count = (v.len() / n.max(1)) as i64;
	macro_rules! fold {
		($vals:expr, $zero:expr, $add:expr, $mul:expr) => {{
			let mut acc = vec![None; n];
			for (i, &x) in $vals.iter().enumerate() {
				let slot = &mut acc[target(i)];
				*slot = Some(match (*slot, fold) {
					(None, _) => x,
					(Some(a), Fold::Sum | Fold::Mean) => $add(a, x),
					(Some(a), Fold::Prod) => $mul(a, x),
					(Some(a), Fold::Max) =>
						if x > a {
							x
						} else {
							a
						},
					(Some(a), Fold::Min) =>
						if x < a {
							x
						} else {
							a
						},
				});
			}
			acc.into_iter().map(|a| a.unwrap_or($zero)).collect::<Vec<_>>()
		}};
	}
	let folded = match v {
		Elems::Int(e, vals) => {
			let e = *e;
			let zero = if fold == Fold::Prod { 1 } else { 0 };
			let add = |p: i64, q: i64| host::wrap(e, p.wrapping_add(q));
			let mul = |p: i64, q: i64| host::wrap(e, p.wrapping_mul(q));
			let mut r = fold!(vals, zero, add, mul);
			if fold == Fold::Mean {
				r.iter_mut().for_each(|x| *x /= count.max(1));
			}
			Elems::Int(e, r)
		},
		Elems::F32(vals) => {
			let zero = if fold == Fold::Prod { 1.0 } else { 0.0 };
			Elems::F32(fold!(vals, zero, |p: f32, q| p + q, |p: f32, q| p * q))
		},
		Elems::F64(vals) => {
			let zero = if fold == Fold::Prod { 1.0 } else { 0.0 };
			Elems::F64(fold!(vals, zero, |p: f64, q| p + q, |p: f64, q| p * q))
		},
	};
	(out, folded)
}

impl<B: Backend> Op<B> for Reduce<B> {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let v = a.get(cx, 0)?;
		let xs = v.shape();
		let axes = match self.axes.get(cx, &a)? {
			Some(v) if !v.is_empty() => v,
			_ if self.noop_with_empty_axes => return Ok(vec![v.clone()]),
			_ => Cow::Owned((0..xs.len() as i64).collect()),
		};
		let mut dims = axes.iter().map(|&v| cx.axis(v, xs.len())).collect::<R<Vec<_>>>()?;
		dims.sort_unstable();
		dims.dedup();
		let out: Vec<usize> = xs
			.iter()
			.enumerate()
			.filter(|(i, _)| !dims.contains(i))
			.map(|(_, &d)| d)
			.collect();
		let keep = |kept: Vec<usize>| if self.keepdims { kept } else { out.clone() };
		let y = match v {
			Value::Host(h) => {
				if self.pre.is_some() || self.post.is_some() {
					return cx.invalid("this reduction takes a float tensor");
				}
				let (kept, r) =
					fold_host(&Elems::Int(h.elem, h.data.clone()), &xs, &dims, self.fold);
				return Ok(vec![r.into_value::<B>(&keep(kept), cx.device)]);
			},
			Value::Float(t) => t.clone(),
		};
		let y = match self.pre {
			Some(pre) => pre(y),
			None => y,
		};
		let y = match self.fold {
			Fold::Mean => over_dims::<B>(y, &dims, B::float_mean_dim),
			Fold::Sum => over_dims::<B>(y, &dims, B::float_sum_dim),
			Fold::Max => over_dims::<B>(y, &dims, B::float_max_dim),
			Fold::Min => over_dims::<B>(y, &dims, B::float_min_dim),
			Fold::Prod => {
				let (kept, r) = fold_host(&Elems::read::<B>(y)?, &xs, &dims, Fold::Prod);
				let Value::Float(t) = r.into_value::<B>(&kept, cx.device) else {
					unreachable!("float elements go to the device")
				};
				t
			},
		};
		let y = match self.post {
			Some(post) => post(y),
			None => y,
		};
		let kept = shape::<B>(&y);
		Ok(vec![Value::Float(reshape::<B>(y, &keep(kept)))])
	}
}

/// ArgMax and ArgMin along one axis: the first (or, with `select_last_index`, the last)
/// index of the extreme value, as int64.
struct ArgExtreme {
	max: bool,
	axis: i64,
	keepdims: bool,
	last: bool,
}

impl ArgExtreme {
	fn parse<B: Backend>(node: &crate::onnx::Node, max: bool) -> R<Box<dyn Op<B>>> {
		let a = Attrs(node);
		boxed(ArgExtreme {
			max,
			axis: a.int("axis", 0),
			keepdims: a.int("keepdims", 1) != 0,
			last: a.int("select_last_index", 0) != 0,
		})
	}
}

impl<B: Backend> Op<B> for ArgExtreme {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (s, v) = Elems::of(a.get(cx, 0)?)?;
		if s.is_empty() {
			return cx.invalid("ArgMax/ArgMin of a scalar");
		}
		let axis = cx.axis(self.axis, s.len())?;
		let (len, inner) = (s[axis], s[axis + 1..].iter().product::<usize>());
		if len == 0 {
			return cx.invalid("an empty axis has no extreme");
		}
		let outer = v.len() / (len * inner);
		let mut data = Vec::with_capacity(outer * inner);
		for o in 0..outer {
			for i in 0..inner {
				let at = |k: usize| v.get_f64((o * len + k) * inner + i);
				let mut best = 0;
				for k in 1..len {
					let (x, b) = (at(k), at(best));
					let better = if self.max { x > b } else { x < b };
					if better || (self.last && x == b) {
						best = k;
					}
				}
				data.push(best as i64);
			}
		}
		let mut out = s.clone();
		if self.keepdims {
			out[axis] = 1;
		} else {
			out.remove(axis);
		}
		Ok(vec![Value::Host(Host::new(ElemType::I64, out, data))])
	}
}

/// CumSum along the axis given as input 1, in index order (or reversed), optionally
/// exclusive (each element is the sum of those before it).
struct CumSum {
	exclusive: bool,
	reverse: bool,
}

impl<B: Backend> Op<B> for CumSum {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (s, v) = Elems::of(a.get(cx, 0)?)?;
		let axis = a.host(cx, 1)?;
		if axis.data.len() != 1 {
			return cx.invalid("the axis must be a scalar");
		}
		let axis = cx.axis(axis.data[0], s.len().max(1))?;
		let (len, inner) =
			if s.is_empty() { (1, 1) } else { (s[axis], s[axis + 1..].iter().product::<usize>()) };
		let outer = v.len() / (len * inner).max(1);
		let order: Vec<usize> =
			if self.reverse { (0..len).rev().collect() } else { (0..len).collect() };
		macro_rules! scan {
			($vals:expr, $zero:expr, $add:expr) => {{
				let mut out = $vals.clone();
				for o in 0..outer {
					for i in 0..inner {
						let mut acc = $zero;
						for &k in &order {
							let at = (o * len + k) * inner + i;
							let x = $vals[at];
							if self.exclusive {
								out[at] = acc;
								acc = $add(acc, x);
							} else {
								acc = $add(acc, x);
								out[at] = acc;
							}
						}
					}
				}
				out
			}};
		}
		let r = match &v {
			Elems::Int(e, vals) => {
				let e = *e;
				Elems::Int(e, scan!(vals, 0i64, |p: i64, q: i64| host::wrap(e, p.wrapping_add(q))))
			},
			Elems::F32(vals) => Elems::F32(scan!(vals, 0f32, |p: f32, q: f32| p + q)),
			Elems::F64(vals) => Elems::F64(scan!(vals, 0f64, |p: f64, q: f64| p + q)),
		};
		Ok(vec![r.into_value::<B>(&s, cx.device)])
	}
}
