//! Element-wise operators of one tensor: float math and activations, Neg, Abs and Not on
//! integers too, Clip, and the IsNaN and IsInf masks.

use super::{
	boxed, broadcast_to, one, reshape, shape, Args, Attrs, Cx, Elems, Epilogue, Op, Registry, F, R,
};
use crate::exec::{
	host::{self, broadcast, Host},
	Value,
};
use burn::tensor::{backend::Backend, Scalar};
use opg_primitives::ElemType;

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	r.add("Sqrt", |_, _| unary(B::float_sqrt));
	r.add("Exp", |_, _| unary(B::float_exp));
	r.add("Log", |_, _| unary(B::float_log));
	r.add("Erf", |_, _| boxed(Erf));
	r.add("Floor", |_, _| unary(B::float_floor));
	r.add("Ceil", |_, _| unary(B::float_ceil));
	r.add("Reciprocal", |_, _| unary(B::float_recip));
	r.add("Sign", |_, _| unary(B::float_sign));
	r.add("Tanh", |_, _| unary(B::float_tanh));
	r.add("Sigmoid", |_, _| unary(B::sigmoid));
	r.add("Relu", |_, _| boxed(Relu));
	r.add("Neg", |_, _| boxed(Signed::<B> { host: i64::wrapping_neg, float: B::float_neg }));
	r.add("Abs", |_, _| boxed(Signed::<B> { host: i64::wrapping_abs, float: B::float_abs }));
	r.add("Not", |_, _| boxed(Not));
	r.add("LeakyRelu", |node, _| boxed(LeakyRelu { alpha: Attrs(node).float("alpha", 0.01) }));
	r.add("Elu", |node, _| boxed(Elu { alpha: Attrs(node).float("alpha", 1.0), gamma: 1.0 }));
	r.add("Selu", |node, _| {
		let a = Attrs(node);
		boxed(Elu { alpha: a.float("alpha", 1.673_263_2), gamma: a.float("gamma", 1.050_701) })
	});
	r.add("Softplus", |_, _| boxed(Softplus));
	r.add("Mish", |_, _| boxed(Mish));
	r.add("HardSigmoid", |node, _| {
		let a = Attrs(node);
		boxed(HardSigmoid {
			alpha: a.float("alpha", 0.2),
			beta: a.float("beta", 0.5),
			swish: false,
		})
	});
	// HardSwish is x · HardSigmoid(x) with alpha 1/6 and beta 1/2.
	r.add("HardSwish", |_, _| boxed(HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5, swish: true }));
	r.add("IsNaN", |_, _| boxed(IsClass::Nan));
	r.add("IsInf", |node, _| {
		let a = Attrs(node);
		let (pos, neg) = (a.int("detect_positive", 1) != 0, a.int("detect_negative", 1) != 0);
		boxed(IsClass::Inf { pos, neg })
	});
	r.add("Softsign", |_, _| boxed(Softsign));
	r.add("PRelu", |_, opset| boxed(PRelu { legacy: opset < 7 }));
	r.add("Gelu", |node, _| {
		let a = Attrs(node);
		let tanh = match a.string("approximate").as_deref() {
			None | Some("none") => false,
			Some("tanh") => true,
			Some(other) => return a.unsupported(format!("approximate=\"{other}\"")),
		};
		boxed(Gelu { tanh })
	});
	r.add("Clip", |node, opset| {
		// Before opset 11 the bounds are attributes, then optional inputs.
		let a = Attrs(node);
		let bounds = (opset < 11)
			.then(|| (a.float("min", f32::NEG_INFINITY), a.float("max", f32::INFINITY)));
		boxed(Clip { bounds })
	});
}

/// A float op of one tensor.
struct Unary<B: Backend>(fn(F<B>) -> F<B>);

fn unary<B: Backend>(f: fn(F<B>) -> F<B>) -> R<Box<dyn Op<B>>> {
	boxed(Unary(f))
}

impl<B: Backend> Op<B> for Unary<B> {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		one((self.0)(a.float(cx, 0)?))
	}
}

/// erf, by the CPU kernel where it applies (burn-flex calls a scalar erf per element).
struct Erf;

impl<B: Backend> Op<B> for Erf {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		one(crate::exec::cpu::erf::<B>(&x).unwrap_or_else(|| B::float_erf(x)))
	}
}

/// Relu, which Conv and Gemm kernels can apply to their output.
struct Relu;

impl<B: Backend> Op<B> for Relu {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		one(B::relu(a.float(cx, 0)?))
	}

	fn as_epilogue(&self) -> Option<Epilogue<'_>> {
		Some(Epilogue::Relu)
	}
}

/// Neg and Abs: on integers (wrapped to their type) and floats.
struct Signed<B: Backend> {
	host: fn(i64) -> i64,
	float: fn(F<B>) -> F<B>,
}

impl<B: Backend> Op<B> for Signed<B> {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		match a.get(cx, 0)? {
			Value::Host(h) => Ok(vec![Value::Host(Host::new(
				h.elem,
				h.shape.clone(),
				h.data.iter().map(|&v| host::wrap(h.elem, (self.host)(v))).collect(),
			))]),
			Value::Float(t) => one((self.float)(t.clone())),
		}
	}
}

struct Not;

impl<B: Backend> Op<B> for Not {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let h = a.host(cx, 0)?;
		Ok(vec![Value::Host(Host::new(
			ElemType::Bool,
			h.shape.clone(),
			h.data.iter().map(|&v| (v == 0) as i64).collect(),
		))])
	}
}

struct LeakyRelu {
	alpha: f32,
}

impl<B: Backend> Op<B> for LeakyRelu {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		one(B::leaky_relu(a.float(cx, 0)?, Scalar::from(self.alpha)))
	}
}

/// Elu, and Selu with its `gamma`.
struct Elu {
	alpha: f32,
	gamma: f32,
}

impl<B: Backend> Op<B> for Elu {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		// x > 0 ? x : alpha * (exp(x) - 1), then scaled by gamma.
		let neg = B::float_mul_scalar(
			B::float_sub_scalar(B::float_exp(x.clone()), 1f32.into()),
			self.alpha.into(),
		);
		let mask = B::float_lower_equal_elem(x.clone(), 0f32.into(), cx.bool_dtype());
		one(B::float_mul_scalar(B::float_mask_where(x, mask, neg), self.gamma.into()))
	}
}

struct Softplus;

impl<B: Backend> Op<B> for Softplus {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		// log(1 + exp(x)), stably: max(x, 0) + log1p(exp(-|x|)).
		let x = a.float(cx, 0)?;
		let tail = B::float_log1p(B::float_exp(B::float_neg(B::float_abs(x.clone()))));
		one(B::float_add(B::relu(x), tail))
	}
}

/// x · tanh(softplus(x)), with the stable softplus.
struct Mish;

impl<B: Backend> Op<B> for Mish {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let tail = B::float_log1p(B::float_exp(B::float_neg(B::float_abs(x.clone()))));
		let softplus = B::float_add(B::relu(x.clone()), tail);
		one(B::float_mul(x, B::float_tanh(softplus)))
	}
}

/// max(0, min(1, alpha·x + beta)), times x for HardSwish.
struct HardSigmoid {
	alpha: f32,
	beta: f32,
	swish: bool,
}

impl<B: Backend> Op<B> for HardSigmoid {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let y = B::float_add_scalar(
			B::float_mul_scalar(x.clone(), self.alpha.into()),
			self.beta.into(),
		);
		let y = B::float_clamp(y, 0f32.into(), 1f32.into());
		one(if self.swish { B::float_mul(x, y) } else { y })
	}
}

/// IsNaN and IsInf: a boolean mask of a float tensor's special values, read on the host.
enum IsClass {
	Nan,
	Inf { pos: bool, neg: bool },
}

impl<B: Backend> Op<B> for IsClass {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (s, v) = Elems::of(a.get(cx, 0)?)?;
		if let Elems::Int(..) = v {
			return cx.invalid("the input must be a float tensor");
		}
		let data = (0..v.len())
			.map(|i| {
				let x = v.get_f64(i);
				(match self {
					IsClass::Nan => x.is_nan(),
					IsClass::Inf { pos, neg } =>
						x.is_infinite() && if x > 0.0 { *pos } else { *neg },
				}) as i64
			})
			.collect();
		Ok(vec![Value::Host(Host::new(ElemType::Bool, s, data))])
	}
}

struct Softsign;

impl<B: Backend> Op<B> for Softsign {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		one(B::float_div(x.clone(), B::float_add_scalar(B::float_abs(x), 1f32.into())))
	}
}

struct PRelu {
	/// Opset 6 and before: a 1-D slope applies per channel.
	legacy: bool,
}

impl<B: Backend> Op<B> for PRelu {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let slope = a.float(cx, 1)?;
		let xs = shape::<B>(&x);
		let slope = self.slope(cx, slope, &xs)?;
		let mask = B::float_lower_elem(x.clone(), 0f32.into(), cx.bool_dtype());
		let scaled = B::float_mul(x.clone(), broadcast_to::<B>(slope, &xs));
		one(B::float_mask_where(x, mask, scaled))
	}
}

impl PRelu {
	/// The slope as a tensor broadcastable against NC… input `xs`.
	fn slope<B: Backend>(&self, cx: &Cx<B>, p: F<B>, xs: &[usize]) -> R<F<B>> {
		let ps = shape::<B>(&p);
		if broadcast(xs, &ps).as_deref() == Some(xs) &&
			(!self.legacy || ps.len() != 1 || xs.len() < 2)
		{
			return Ok(p);
		}
		if ps.len() == 1 && xs.len() >= 2 && (ps[0] == xs[1] || ps[0] == 1) {
			let mut s = vec![1; xs.len()];
			s[1] = ps[0];
			return Ok(reshape::<B>(p, &s));
		}
		cx.invalid(format!("parameter {ps:?} does not broadcast to {xs:?}"))
	}
}

struct Gelu {
	/// `approximate="tanh"`; otherwise the exact form with erf.
	tanh: bool,
}

impl<B: Backend> Op<B> for Gelu {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let inner = if self.tanh {
			// 1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))
			let cube = B::float_mul(B::float_mul(x.clone(), x.clone()), x.clone());
			let arg = B::float_add(x.clone(), B::float_mul_scalar(cube, 0.044715f32.into()));
			B::float_tanh(B::float_mul_scalar(arg, (2.0f32 / std::f32::consts::PI).sqrt().into()))
		} else {
			B::float_erf(B::float_mul_scalar(x.clone(), std::f32::consts::FRAC_1_SQRT_2.into()))
		};
		one(B::float_mul(
			B::float_mul_scalar(x, 0.5f32.into()),
			B::float_add_scalar(inner, 1f32.into()),
		))
	}
}

struct Clip {
	/// The bounds from the attributes (opsets before 11); otherwise inputs 1 and 2.
	bounds: Option<(f32, f32)>,
}

impl<B: Backend> Op<B> for Clip {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (lo, hi) = match self.bounds {
			Some(bounds) => bounds,
			None => (
				a.scalar(cx, 1)?.unwrap_or(f32::NEG_INFINITY),
				a.scalar(cx, 2)?.unwrap_or(f32::INFINITY),
			),
		};
		match a.get(cx, 0)? {
			Value::Float(t) =>
				Ok(vec![Value::Float(B::float_clamp(t.clone(), lo.into(), hi.into()))]),
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
}
