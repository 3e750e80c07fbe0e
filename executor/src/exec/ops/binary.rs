//! Broadcasting operators of two or more tensors: arithmetic, Mod and BitShift, the variadic
//! Max, Min, Sum and Mean, comparisons, the logical And, Or and Xor, and Where. Integer tensors
//! are computed on the host.

use super::{
	boxed, broadcast_to, reshape, shape, to_float, Args, Attrs, Cx, Elems, Op, Registry, F, R,
};
use crate::exec::{
	bool_from_host, cpu, float_to_vec,
	host::{self, Host},
	Value,
};
use burn::tensor::backend::Backend;
use opg_primitives::ElemType;

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	r.add("Add", |node, opset| Arith::parse(node, opset, Kind::Add));
	r.add("Sub", |node, opset| Arith::parse(node, opset, Kind::Sub));
	r.add("Mul", |node, opset| Arith::parse(node, opset, Kind::Mul));
	r.add("Div", |node, opset| Arith::parse(node, opset, Kind::Div));
	r.add("Pow", |node, opset| Arith::parse(node, opset, Kind::Pow));
	r.add("Max", |_, _| boxed(Variadic::Max));
	r.add("Min", |_, _| boxed(Variadic::Min));
	r.add("Sum", |_, _| boxed(Variadic::Sum));
	r.add("Mean", |_, _| boxed(Variadic::Mean));
	r.add("Equal", |_, _| boxed(Compare::Equal));
	r.add("Greater", |_, _| boxed(Compare::Greater));
	r.add("Less", |_, _| boxed(Compare::Less));
	r.add("GreaterOrEqual", |_, _| boxed(Compare::GreaterOrEqual));
	r.add("LessOrEqual", |_, _| boxed(Compare::LessOrEqual));
	r.add("Where", |_, _| boxed(Where));
	r.add("And", |_, _| boxed(Logic::And));
	r.add("Or", |_, _| boxed(Logic::Or));
	r.add("Xor", |_, _| boxed(Logic::Xor));
	r.add("Mod", |node, _| boxed(Mod { fmod: Attrs(node).int("fmod", 0) != 0 }));
	r.add("BitShift", |node, _| {
		let a = Attrs(node);
		let left = match a.string("direction").as_deref() {
			Some("LEFT") => true,
			Some("RIGHT") => false,
			_ => return a.unsupported("a direction other than LEFT or RIGHT"),
		};
		boxed(BitShift { left })
	});
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
	Add,
	Sub,
	Mul,
	Div,
	Pow,
}

/// Add, Sub, Mul, Div and Pow.
struct Arith {
	kind: Kind,
	/// Before opset 7, the `broadcast` and `axis` attributes.
	legacy: Option<Legacy>,
}

/// Before opset 7, binary ops broadcast only with `broadcast=1`, aligning B at `axis`.
struct Legacy {
	broadcast: bool,
	axis: Option<i64>,
}

impl Arith {
	fn parse<B: Backend>(node: &crate::onnx::Node, opset: i64, kind: Kind) -> R<Box<dyn Op<B>>> {
		let a = Attrs(node);
		let legacy = (opset < 7).then(|| Legacy {
			broadcast: a.int("broadcast", 0) != 0,
			axis: a.has("axis").then(|| a.int("axis", 0)),
		});
		boxed(Arith { kind, legacy })
	}

	/// The shape B takes before broadcasting, if the legacy attributes align it.
	fn legacy_align<B: Backend>(
		&self,
		cx: &Cx<B>,
		a: &[usize],
		b: &[usize],
	) -> R<Option<Vec<usize>>> {
		let Some(legacy) = &self.legacy else { return Ok(None) };
		if a == b {
			return Ok(None);
		}
		if !legacy.broadcast {
			return cx.invalid(format!("shapes {a:?} and {b:?} differ and broadcast is off"));
		}
		let Some(axis) = legacy.axis else {
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
}

impl<B: Backend> Op<B> for Arith {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (x, y) = (a.get(cx, 0)?, a.get(cx, 1)?);
		if let (Value::Host(x), Value::Host(y)) = (x, y) {
			let elem = x.elem;
			let mut y = y.clone();
			if let Some(s) = self.legacy_align(cx, &x.shape, &y.shape)? {
				y.shape = s;
			}
			if self.kind == Kind::Div && y.data.contains(&0) {
				return cx.invalid("integer division by zero");
			}
			let f: fn(i64, i64) -> i64 = match self.kind {
				Kind::Add => i64::wrapping_add,
				Kind::Sub => i64::wrapping_sub,
				Kind::Mul => i64::wrapping_mul,
				Kind::Div => i64::wrapping_div,
				Kind::Pow => |b, e| {
					if e < 0 {
						0
					} else {
						b.wrapping_pow(e.min(u32::MAX as i64) as u32)
					}
				},
			};
			return match x.zip(&y, elem, |p, q| host::wrap(elem, f(p, q))) {
				Some(h) => Ok(vec![Value::Host(h)]),
				None =>
					cx.invalid(format!("shapes {:?} and {:?} do not broadcast", x.shape, y.shape)),
			};
		}
		// Mixed: an integer exponent (Pow) or integer constant meets a float tensor.
		let lift = |v: &Value<B>| match v {
			Value::Float(t) => t.clone(),
			Value::Host(h) => to_float::<B>(h, cx.device),
		};
		if matches!(x, Value::Host(_)) && self.kind != Kind::Pow {
			return cx.invalid("an integer tensor cannot be combined with a float tensor");
		}
		let (x, mut y) = (lift(x), lift(y));
		let (xs, ys) = (shape::<B>(&x), shape::<B>(&y));
		if let Some(s) = self.legacy_align(cx, &xs, &ys)? {
			y = reshape::<B>(y, &s);
		}
		let Some(out) = host::broadcast(&xs, &shape::<B>(&y)) else {
			return cx.invalid(format!("shapes {xs:?} and {ys:?} do not broadcast"));
		};
		// Add and Mul commute exactly; with the broadcast operand on the right (`bias + x` as
		// torch exports it), burn-flex takes its vector path instead of a strided loop.
		let (x, y) = if matches!(self.kind, Kind::Add | Kind::Mul) &&
			shape::<B>(&x) != out &&
			shape::<B>(&y) == out
		{
			(y, x)
		} else {
			(x, y)
		};
		// A broadcast burn-flex has no vector path for (an attention mask [b,1,1,t] against
		// [b,h,t,t], a broadcast left operand) has a CPU kernel.
		if !flex_vectorizes(&shape::<B>(&x), &shape::<B>(&y), &out) {
			let op = match self.kind {
				Kind::Add => Some(cpu::Arith::Add),
				Kind::Sub => Some(cpu::Arith::Sub),
				Kind::Mul => Some(cpu::Arith::Mul),
				Kind::Div => Some(cpu::Arith::Div),
				Kind::Pow => None,
			};
			if let Some(t) = op.and_then(|op| cpu::binary::<B>(op, &x, &y, &out)) {
				return Ok(vec![Value::Float(t)]);
			}
		}
		let (x, y) = (broadcast_to::<B>(x, &out), broadcast_to::<B>(y, &out));
		Ok(vec![Value::Float(match self.kind {
			Kind::Add => B::float_add(x, y),
			Kind::Sub => B::float_sub(x, y),
			Kind::Mul => B::float_mul(x, y),
			Kind::Div => B::float_div(x, y),
			Kind::Pow => B::float_powf(x, y),
		})])
	}
}

#[derive(Clone, Copy, PartialEq)]
enum Variadic {
	Max,
	Min,
	Sum,
	Mean,
}

impl<B: Backend> Op<B> for Variadic {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let n = a.given().count();
		if n == 0 {
			return cx.invalid("no inputs");
		}
		if a.given().all(|v| matches!(v, Value::Host(_))) {
			let mut acc = a.host(cx, 0)?.clone();
			for v in a.given().skip(1) {
				let Value::Host(h) = v else { unreachable!() };
				let elem = acc.elem;
				let f = |p: i64, q: i64| match self {
					Variadic::Max => p.max(q),
					Variadic::Min => p.min(q),
					Variadic::Sum | Variadic::Mean => host::wrap(elem, p.wrapping_add(q)),
				};
				acc = match acc.zip(h, elem, f) {
					Some(h) => h,
					None => return cx.invalid("input shapes do not broadcast"),
				};
			}
			if *self == Variadic::Mean {
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
			acc = match self {
				Variadic::Max => {
					let m = B::float_lower(p.clone(), q.clone(), cx.bool_dtype());
					B::float_mask_where(p, m, q)
				},
				Variadic::Min => {
					let m = B::float_greater(p.clone(), q.clone(), cx.bool_dtype());
					B::float_mask_where(p, m, q)
				},
				Variadic::Sum | Variadic::Mean => B::float_add(p, q),
			};
		}
		if *self == Variadic::Mean {
			acc = B::float_div_scalar(acc, (n as f32).into());
		}
		Ok(vec![Value::Float(acc)])
	}
}

#[derive(Clone, Copy)]
enum Compare {
	Equal,
	Greater,
	Less,
	GreaterOrEqual,
	LessOrEqual,
}

impl<B: Backend> Op<B> for Compare {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
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
				// Compare through an order-preserving map of f32 onto i64 (NaN compares false
				// below).
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
			(match self {
				Compare::Equal => p == q,
				Compare::Greater => p > q,
				Compare::Less => p < q,
				Compare::GreaterOrEqual => p >= q,
				Compare::LessOrEqual => p <= q,
			}) as i64
		};
		match x.zip(&y, ElemType::Bool, f) {
			Some(h) => Ok(vec![Value::Host(h)]),
			None => cx.invalid("input shapes do not broadcast"),
		}
	}
}

struct Where;

impl<B: Backend> Op<B> for Where {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let cond = a.host(cx, 0)?;
		let (x, y) = (a.get(cx, 1)?, a.get(cx, 2)?);
		let Some(out) =
			host::broadcast(&cond.shape, &x.shape()).and_then(|s| host::broadcast(&s, &y.shape()))
		else {
			return cx.invalid("condition, X and Y do not broadcast");
		};
		match (x, y) {
			(Value::Host(x), Value::Host(y)) => {
				let (c, x, y) =
					(cond.broadcast_to(&out), x.broadcast_to(&out), y.broadcast_to(&out));
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
				let (x, y) =
					(broadcast_to::<B>(x.clone(), &out), broadcast_to::<B>(y.clone(), &out));
				Ok(vec![Value::Float(B::float_mask_where(y, mask, x))])
			},
			_ => cx.invalid("X and Y must have the same element type"),
		}
	}
}

/// And, Or and Xor of two boolean tensors.
#[derive(Clone, Copy)]
enum Logic {
	And,
	Or,
	Xor,
}

impl<B: Backend> Op<B> for Logic {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (x, y) = (a.host(cx, 0)?, a.host(cx, 1)?);
		if x.elem != ElemType::Bool || y.elem != ElemType::Bool {
			return cx.invalid("the inputs must be boolean tensors");
		}
		let f = |p: i64, q: i64| {
			let (p, q) = (p != 0, q != 0);
			(match self {
				Logic::And => p && q,
				Logic::Or => p || q,
				Logic::Xor => p != q,
			}) as i64
		};
		match x.zip(y, ElemType::Bool, f) {
			Some(h) => Ok(vec![Value::Host(h)]),
			None => cx.invalid("input shapes do not broadcast"),
		}
	}
}

/// Mod: the remainder with the divisor's sign (`fmod=0`, integers only) or the dividend's
/// (`fmod=1`, C's fmod; the only mode for floats). Float remainders are exact, so they are
/// computed on the host and are the same bits on every backend.
struct Mod {
	fmod: bool,
}

impl<B: Backend> Op<B> for Mod {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		match (a.get(cx, 0)?, a.get(cx, 1)?) {
			(Value::Host(x), Value::Host(y)) => {
				if y.data.contains(&0) {
					return cx.invalid("integer modulo by zero");
				}
				let elem = x.elem;
				let f = |p: i64, q: i64| {
					let r = p.wrapping_rem(q);
					if !self.fmod && r != 0 && (r < 0) != (q < 0) {
						host::wrap(elem, r + q)
					} else {
						r
					}
				};
				match x.zip(y, elem, f) {
					Some(h) => Ok(vec![Value::Host(h)]),
					None => cx.invalid("input shapes do not broadcast"),
				}
			},
			(Value::Float(p), Value::Float(q)) => {
				if !self.fmod {
					return cx.invalid("Mod of floats needs fmod=1");
				}
				let (ps, qs) = (shape::<B>(p), shape::<B>(q));
				let Some(out) = host::broadcast(&ps, &qs) else {
					return cx.invalid("input shapes do not broadcast");
				};
				let (p, q) =
					(broadcast_to::<B>(p.clone(), &out), broadcast_to::<B>(q.clone(), &out));
				let (p, q) = (Elems::read::<B>(p)?, Elems::read::<B>(q)?);
				let r = match (p, q) {
					(Elems::F32(p), Elems::F32(q)) =>
						Elems::F32(p.iter().zip(&q).map(|(x, y)| x % y).collect()),
					(Elems::F64(p), Elems::F64(q)) =>
						Elems::F64(p.iter().zip(&q).map(|(x, y)| x % y).collect()),
					_ => return cx.invalid("float inputs of different types"),
				};
				Ok(vec![r.into_value::<B>(&out, cx.device)])
			},
			_ => cx.invalid("cannot take an integer modulo a float or the reverse"),
		}
	}
}

/// BitShift of unsigned integers (uint8 here: the executor's one unsigned type).
struct BitShift {
	left: bool,
}

impl<B: Backend> Op<B> for BitShift {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (x, y) = (a.host(cx, 0)?, a.host(cx, 1)?);
		if x.elem != ElemType::U8 || y.elem != ElemType::U8 {
			return cx.unsupported(format!("BitShift of {:?}: the executor has uint8 only", x.elem));
		}
		let left = self.left;
		// Shifting by the type's width or more gives 0, as numpy and onnxruntime do.
		let f = |p: i64, q: i64| match (q >= 8, left) {
			(true, _) => 0,
			(false, true) => (p << q) & 0xff,
			(false, false) => p >> q,
		};
		match x.zip(y, ElemType::U8, f) {
			Some(h) => Ok(vec![Value::Host(h)]),
			None => cx.invalid("input shapes do not broadcast"),
		}
	}
}

/// Whether burn-flex runs `x op y` broadcast to `out` with its vector kernels: same shapes,
/// or `x` already of the output's shape and `y` one value, one row shared by every outer
/// position ([…, 1, 1, n] against […, m, n]) or one value per row ([b, m, 1]).
fn flex_vectorizes(xs: &[usize], ys: &[usize], out: &[usize]) -> bool {
	if xs != out {
		return false;
	}
	if ys == out || ys.iter().product::<usize>() == 1 {
		return true;
	}
	let mut aligned = vec![1; out.len() - ys.len()];
	aligned.extend(ys);
	let split = |k: usize| aligned[..k].iter().all(|&d| d == 1) && aligned[k..] == out[k..];
	let rows = |k: usize| aligned[..k] == out[..k] && aligned[k..].iter().all(|&d| d == 1);
	(0..=out.len()).any(|k| split(k) || rows(k))
}
