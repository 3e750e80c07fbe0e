//! Reductions over axes: ReduceMean, ReduceSum, ReduceMax and ReduceMin.

use super::{boxed, over_dims, reshape, shape, Args, Attrs, Cx, Listed, Op, Registry, F, R};
use crate::exec::Value;
use burn::tensor::backend::Backend;
use std::borrow::Cow;

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	// Axes moved from attribute to input in opset 13 (ReduceSum) and 18 (the others).
	r.add("ReduceMean", |node, opset| Reduce::parse(node, opset, 18, B::float_mean_dim));
	r.add("ReduceSum", |node, opset| Reduce::parse(node, opset, 13, B::float_sum_dim));
	r.add("ReduceMax", |node, opset| Reduce::parse(node, opset, 18, B::float_max_dim));
	r.add("ReduceMin", |node, opset| Reduce::parse(node, opset, 18, B::float_min_dim));
}

struct Reduce<B: Backend> {
	/// The dimension-keeping reduction (`B::float_sum_dim` …).
	reduce: fn(F<B>, usize) -> F<B>,
	axes: Listed,
	noop_with_empty_axes: bool,
	keepdims: bool,
}

impl<B: Backend> Reduce<B> {
	fn parse(
		node: &crate::onnx::Node,
		opset: i64,
		axes_input_since: i64,
		reduce: fn(F<B>, usize) -> F<B>,
	) -> R<Box<dyn Op<B>>> {
		let a = Attrs(node);
		boxed(Reduce {
			reduce,
			axes: Listed::parse(a, opset, axes_input_since, "axes", 1),
			noop_with_empty_axes: a.int("noop_with_empty_axes", 0) != 0,
			keepdims: a.int("keepdims", 1) != 0,
		})
	}
}

impl<B: Backend> Op<B> for Reduce<B> {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let xs = shape::<B>(&x);
		let axes = match self.axes.get(cx, &a)? {
			Some(v) if !v.is_empty() => v,
			_ if self.noop_with_empty_axes => return Ok(vec![Value::Float(x)]),
			_ => Cow::Owned((0..xs.len() as i64).collect()),
		};
		let mut dims = axes.iter().map(|&v| cx.axis(v, xs.len())).collect::<R<Vec<_>>>()?;
		dims.sort_unstable();
		dims.dedup();
		let y = over_dims::<B>(x, &dims, self.reduce);
		if self.keepdims {
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
}
