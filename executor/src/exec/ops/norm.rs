//! Normalisations: BatchNormalization (inference), InstanceNormalization,
//! LayerNormalization, RMSNormalization, Softmax and LogSoftmax.

use super::{
	boxed, broadcast_to, one, over_dims, reshape, shape, Args, Attrs, Cx, Op, Registry, F, R,
};
use crate::exec::{host, Value};
use burn::tensor::backend::Backend;

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	r.add("BatchNormalization", |node, _| {
		// Before opset 7 `is_test=0` also means training, but only with the statistics outputs,
		// which are refused here on their own.
		let a = Attrs(node);
		if a.extra_outputs(1) || a.int("training_mode", 0) != 0 {
			return a.unsupported("training mode");
		}
		boxed(BatchNorm { epsilon: a.float("epsilon", 1e-5) })
	});
	r.add("InstanceNormalization", |node, _| {
		boxed(InstanceNorm { epsilon: Attrs(node).float("epsilon", 1e-5) })
	});
	r.add("LayerNormalization", |node, _| {
		let a = Attrs(node);
		if a.extra_outputs(1) {
			return a.unsupported("the Mean/InvStdDev outputs");
		}
		boxed(LayerNorm { axis: a.int("axis", -1), epsilon: a.float("epsilon", 1e-5) })
	});
	r.add("RMSNormalization", |node, _| {
		let a = Attrs(node);
		if a.int("stash_type", 1) != 1 {
			return a.unsupported("a stash_type other than float32");
		}
		boxed(RmsNorm { axis: a.int("axis", -1), epsilon: a.float("epsilon", 1e-5) })
	});
	r.add("Softmax", |node, opset| Softmax::parse(node, opset, false));
	r.add("LogSoftmax", |node, opset| Softmax::parse(node, opset, true));
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

struct BatchNorm {
	epsilon: f32,
}

impl<B: Backend> Op<B> for BatchNorm {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let xs = shape::<B>(&x);
		let p = |i| -> R<F<B>> { channel_param(cx, a.float(cx, i)?, &xs) };
		let (scale, bias, mean, var) = (p(1)?, p(2)?, p(3)?, p(4)?);
		// y = (x - mean) * scale / sqrt(var + eps) + bias
		let factor =
			B::float_div(scale, B::float_sqrt(B::float_add_scalar(var, self.epsilon.into())));
		let centred = B::float_sub(x, broadcast_to::<B>(mean, &xs));
		let y = B::float_add(
			B::float_mul(centred, broadcast_to::<B>(factor, &xs)),
			broadcast_to::<B>(bias, &xs),
		);
		one(y)
	}
}

struct InstanceNorm {
	epsilon: f32,
}

impl<B: Backend> Op<B> for InstanceNorm {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let xs = shape::<B>(&x);
		if xs.len() < 3 {
			return cx.invalid(format!("input {xs:?} has no spatial axes"));
		}
		let (scale, bias) =
			(channel_param(cx, a.float(cx, 1)?, &xs)?, channel_param(cx, a.float(cx, 2)?, &xs)?);
		let dims: Vec<usize> = (2..xs.len()).collect();
		let y = normalise::<B>(x, &dims, self.epsilon);
		one(B::float_add(
			B::float_mul(y, broadcast_to::<B>(scale, &xs)),
			broadcast_to::<B>(bias, &xs),
		))
	}
}

struct LayerNorm {
	axis: i64,
	epsilon: f32,
}

impl<B: Backend> Op<B> for LayerNorm {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let xs = shape::<B>(&x);
		let axis = cx.axis(self.axis, xs.len())?;
		let dims: Vec<usize> = (axis..xs.len()).collect();
		let mut y = normalise::<B>(x, &dims, self.epsilon);
		for (i, add) in [(1, false), (2, true)] {
			let Some(p) = a.opt_float(cx, i)? else {
				continue;
			};
			if host::broadcast(&xs, &shape::<B>(&p)).as_deref() != Some(&xs[..]) {
				return cx.invalid(format!(
					"parameter {:?} does not broadcast to {xs:?}",
					shape::<B>(&p)
				));
			}
			let p = broadcast_to::<B>(p, &xs);
			y = if add { B::float_add(y, p) } else { B::float_mul(y, p) };
		}
		one(y)
	}
}

/// RMSNormalization (opset 23): x / sqrt(mean(x², axes from `axis` on) + epsilon) · scale.
struct RmsNorm {
	axis: i64,
	epsilon: f32,
}

impl<B: Backend> Op<B> for RmsNorm {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let scale = a.float(cx, 1)?;
		let xs = shape::<B>(&x);
		let axis = cx.axis(self.axis, xs.len())?;
		let dims: Vec<usize> = (axis..xs.len()).collect();
		if host::broadcast(&xs, &shape::<B>(&scale)).as_deref() != Some(&xs[..]) {
			return cx
				.invalid(format!("scale {:?} does not broadcast to {xs:?}", shape::<B>(&scale)));
		}
		let mean = over_dims::<B>(B::float_mul(x.clone(), x.clone()), &dims, B::float_mean_dim);
		let inv = B::float_recip(B::float_sqrt(B::float_add_scalar(mean, self.epsilon.into())));
		let y = B::float_mul(x, broadcast_to::<B>(inv, &xs));
		one(B::float_mul(y, broadcast_to::<B>(scale, &xs)))
	}
}

/// Softmax, or LogSoftmax with `log`.
struct Softmax {
	log: bool,
	axis: i64,
	/// Opsets 1–12: flatten to 2-D at `axis` and normalise each row.
	flatten: bool,
}

impl Softmax {
	fn parse<B: Backend>(node: &crate::onnx::Node, opset: i64, log: bool) -> R<Box<dyn Op<B>>> {
		let flatten = opset < 13;
		let axis = Attrs(node).int("axis", if flatten { 1 } else { -1 });
		boxed(Softmax { log, axis, flatten })
	}
}

impl<B: Backend> Op<B> for Softmax {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let s = shape::<B>(&x);
		let rank = s.len();
		let log = self.log;
		let stable = |t: F<B>, dim: usize| {
			let shifted = B::float_sub(t.clone(), B::float_max_dim(t, dim));
			let sum = B::float_sum_dim(B::float_exp(shifted.clone()), dim);
			if log {
				B::float_sub(shifted, B::float_log(sum))
			} else {
				B::float_div(B::float_exp(shifted), sum)
			}
		};
		// Over the last axis (or rows, flattened), the CPU kernel does it in one pass per row.
		let fast = |t: F<B>, last: bool| {
			match (log, last) {
				(false, true) => crate::exec::cpu::softmax_last::<B>(&t),
				_ => None,
			}
			.unwrap_or_else(|| {
				let dim = shape::<B>(&t).len() - 1;
				stable(t, dim)
			})
		};
		if self.flatten {
			let axis = cx.axis(self.axis, rank.max(1))?;
			let rows = s[..axis].iter().product();
			let cols = s[axis..].iter().product();
			let y = fast(reshape::<B>(x, &[rows, cols]), true);
			return one(reshape::<B>(y, &s));
		}
		let axis = cx.axis(self.axis, rank)?;
		if axis + 1 == rank {
			return one(fast(x, true));
		}
		one(stable(x, axis))
	}
}
