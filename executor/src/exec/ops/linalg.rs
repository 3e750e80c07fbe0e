//! Matrix products: MatMul, and Gemm with its CPU kernel (which applies a Relu after it).

use super::{
	boxed, broadcast_to, one, reshape, shape, Args, Attrs, Cx, Epilogue, Fused, Op, Registry, F, R,
};
use crate::exec::{cpu, host, Value};
use burn::tensor::backend::Backend;

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	r.add("MatMul", |_, _| boxed(MatMul));
	r.add("Gemm", |node, _| {
		let a = Attrs(node);
		boxed(Gemm {
			trans_a: a.int("transA", 0) != 0,
			trans_b: a.int("transB", 0) != 0,
			alpha: a.float("alpha", 1.0),
			beta: a.float("beta", 1.0),
		})
	});
}

struct MatMul;

impl<B: Backend> Op<B> for MatMul {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		one(matmul(cx, a.float(cx, 0)?, a.float(cx, 1)?)?)
	}
}

/// ONNX MatMul: numpy semantics, including 1-D operands and broadcast batch dimensions.
pub(super) fn matmul<B: Backend>(cx: &Cx<B>, x: F<B>, y: F<B>) -> R<F<B>> {
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
	// Activations times a weight matrix ([…, m, k] · [k, n], as every linear layer of a
	// transformer): one GEMM of all the rows, by the CPU kernel where it applies.
	if ys.len() == 2 && !y1 {
		let rows = xs[..xs.len() - 1].iter().product::<usize>();
		let flat = reshape::<B>(x.clone(), &[rows, k]);
		if let Some(out) = cpu::gemm::<B>(&flat, &y, None, false, false, 1.0, 0.0, false) {
			if !x1 {
				batch.push(m);
			}
			batch.push(n);
			return Ok(reshape::<B>(out, &batch));
		}
	}
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

struct Gemm {
	trans_a: bool,
	trans_b: bool,
	alpha: f32,
	beta: f32,
}

impl<B: Backend> Op<B> for Gemm {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		Ok(self.gemm(cx, &a, false)?.0)
	}

	fn fuses(&self, chain: &[Epilogue<'_>]) -> bool {
		matches!(chain, [Epilogue::Relu])
	}

	fn run_fused(
		&self,
		cx: &Cx<B>,
		a: Args<B>,
		epilogue: &[Fused<'_>],
	) -> R<(Vec<Value<B>>, usize)> {
		let relu = matches!(epilogue.first(), Some(Fused { op: Epilogue::Relu, .. }));
		self.gemm(cx, &a, relu)
	}
}

impl Gemm {
	/// Gemm, and the number of epilogue nodes (a Relu, if `relu`) its CPU kernel applied.
	fn gemm<B: Backend>(&self, cx: &Cx<B>, a: &Args<B>, relu: bool) -> R<(Vec<Value<B>>, usize)> {
		let (mut x, mut y) = (a.float(cx, 0)?, a.float(cx, 1)?);
		let (xs, ys) = (shape::<B>(&x), shape::<B>(&y));
		if xs.len() != 2 || ys.len() != 2 {
			return cx.invalid("A and B must be matrices");
		}
		let Gemm { trans_a: ta, trans_b: tb, alpha, beta } = *self;
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
}
