//! Matrix products: MatMul, Gemm with its CPU kernel (which applies a Relu after it), and
//! Einsum of one or two operands as permutations, sums and one batched MatMul.

use super::{
	boxed, broadcast_to, one, reshape, shape, Args, Attrs, Cx, Epilogue, Fused, Op, Registry, F, R,
};
use crate::exec::{cpu, host, Value};
use burn::tensor::backend::Backend;

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	r.add("MatMul", |_, _| boxed(MatMul));
	r.add("Einsum", |node, _| {
		let a = Attrs(node);
		let Some(eq) = a.string("equation") else {
			return a.unsupported("Einsum without an equation")
		};
		match Equation::parse(&eq) {
			Ok(eq) => boxed(Einsum { eq }),
			Err(why) => a.unsupported(format!("equation \"{eq}\": {why}")),
		}
	});
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

	/// A constant 2-D weight is packed once for the CPU kernel (see `cpu::PackedB`): every
	/// row's output is then the same bits whatever the batch it comes in.
	fn specialize(&self, _cx: &Cx<B>, known: &[Option<&Value<B>>]) -> Option<Box<dyn Op<B>>> {
		let Some(Some(Value::Float(w))) = known.get(1) else { return None };
		let packed = cpu::PackedB::pack::<B>(w)?;
		Some(Box::new(PackedMatMul { packed }))
	}
}

/// MatMul by a constant `[k, n]` weight packed at load.
struct PackedMatMul {
	packed: cpu::PackedB,
}

impl<B: Backend> Op<B> for PackedMatMul {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (x, w) = (a.float(cx, 0)?, a.float(cx, 1)?);
		let xs = shape::<B>(&x);
		let k = self.packed.depth();
		let rows = xs.iter().product::<usize>() / k.max(1);
		if xs.len() >= 2 && xs[xs.len() - 1] == k {
			if let Some(out) = self.packed.times::<B>(&reshape::<B>(x.clone(), &[rows, k])) {
				let mut s = xs[..xs.len() - 1].to_vec();
				s.push(shape::<B>(&w)[1]);
				return one(reshape::<B>(out, &s));
			}
		}
		one(matmul(cx, x, w)?)
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

/// An Einsum equation: each operand's subscripts and the output's, with `...` kept as `None`
/// until the ranks are known.
#[derive(Clone)]
struct Equation {
	inputs: Vec<Vec<Option<char>>>,
	output: Option<Vec<Option<char>>>,
}

impl Equation {
	fn parse(eq: &str) -> Result<Equation, String> {
		let eq: String = eq.chars().filter(|c| !c.is_whitespace()).collect();
		let (lhs, rhs) = match eq.split_once("->") {
			Some((l, r)) => (l, Some(r)),
			None => (&eq[..], None),
		};
		let terms = |t: &str| -> Result<Vec<Option<char>>, String> {
			let mut out = Vec::new();
			let mut rest = t;
			while !rest.is_empty() {
				if let Some(r) = rest.strip_prefix("...") {
					if out.contains(&None) {
						return Err("two ellipses in one term".into());
					}
					out.push(None);
					rest = r;
				} else {
					let c = rest.chars().next().unwrap_or('?');
					if !c.is_ascii_alphabetic() {
						return Err(format!("subscript `{c}`"));
					}
					out.push(Some(c));
					rest = &rest[1..];
				}
			}
			Ok(out)
		};
		let inputs = lhs.split(',').map(terms).collect::<Result<Vec<_>, _>>()?;
		if inputs.is_empty() || inputs.len() > 2 {
			return Err("only one or two operands are supported".into());
		}
		for t in &inputs {
			let letters: Vec<_> = t.iter().flatten().collect();
			if (1..letters.len()).any(|i| letters[..i].contains(&letters[i])) {
				return Err("a subscript repeated within an operand (a diagonal)".into());
			}
		}
		Ok(Equation { inputs, output: rhs.map(terms).transpose()? })
	}

	/// The subscripts with `...` spelled out for operands of `ranks` (fresh upper-case-free
	/// symbols), and the output's (implicit: the subscripts seen once, sorted, after `...`).
	fn expand(&self, ranks: &[usize]) -> Result<(Vec<Vec<char>>, Vec<char>), String> {
		let letters: Vec<char> = self.inputs.iter().flatten().flatten().copied().collect();
		let fresh: Vec<char> = ('\u{100}'..).take(8).collect();
		let mut ell = 0;
		let mut inputs = Vec::new();
		for (t, &rank) in self.inputs.iter().zip(ranks) {
			let named = t.iter().flatten().count();
			let n = if t.contains(&None) {
				rank.checked_sub(named).ok_or("more subscripts than the operand's rank")?
			} else if named == rank {
				0
			} else {
				return Err(format!("{named} subscripts for an operand of rank {rank}"));
			};
			if n > fresh.len() {
				return Err("an ellipsis over more than 8 axes".into());
			}
			ell = ell.max(n);
			inputs.push(
				t.iter()
					.flat_map(|s| match s {
						Some(c) => vec![*c],
						None => fresh[fresh.len() - n..].to_vec(),
					})
					.collect::<Vec<_>>(),
			);
		}
		let output = match &self.output {
			Some(o) => o
				.iter()
				.flat_map(|s| match s {
					Some(c) => vec![*c],
					None => fresh[fresh.len() - ell..].to_vec(),
				})
				.collect(),
			None => {
				let mut once: Vec<char> = letters
					.iter()
					.copied()
					.filter(|c| letters.iter().filter(|d| *d == c).count() == 1)
					.collect();
				once.sort_unstable();
				let mut o = fresh[fresh.len() - ell..].to_vec();
				o.extend(once);
				o
			},
		};
		Ok((inputs, output))
	}
}

struct Einsum {
	eq: Equation,
}

impl<B: Backend> Op<B> for Einsum {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let ops: Vec<F<B>> = (0..self.eq.inputs.len()).map(|i| a.float(cx, i)).collect::<R<_>>()?;
		let ranks: Vec<usize> = ops.iter().map(|t| shape::<B>(t).len()).collect();
		let (subs, out) = match self.eq.expand(&ranks) {
			Ok(x) => x,
			Err(why) => return cx.invalid(why),
		};
		let mut size = std::collections::HashMap::new();
		for (t, s) in ops.iter().zip(&subs) {
			for (&c, &d) in s.iter().zip(&shape::<B>(t)) {
				match size.insert(c, d) {
					Some(e) if e != d =>
						return cx.invalid(format!("subscript sizes {e} and {d} differ")),
					_ => {},
				}
			}
		}
		if out.iter().any(|c| !size.contains_key(c)) ||
			(1..out.len()).any(|i| out[..i].contains(&out[i]))
		{
			return cx.invalid("the output names a subscript no operand has, or one twice");
		}
		// Sums the axes of operand `i` that no other term (operand or output) names.
		let reduce = |t: F<B>, s: &[char], others: &[&[char]]| -> (F<B>, Vec<char>) {
			let (mut t, mut kept) = (t, Vec::new());
			let mut dims = Vec::new();
			for (d, c) in s.iter().enumerate() {
				if others.iter().any(|o| o.contains(c)) {
					kept.push(*c);
				} else {
					dims.push(d);
				}
			}
			for &d in dims.iter().rev() {
				t = B::float_sum_dim(t, d);
			}
			let ks: Vec<usize> = kept.iter().map(|c| size[c]).collect();
			(reshape::<B>(t, &ks), kept)
		};
		// Permutes `t` (subscripts `s`) into `order` (a permutation of `s`).
		let permute = |t: F<B>, s: &[char], order: &[char]| -> F<B> {
			let perm: Vec<usize> =
				order.iter().map(|c| s.iter().position(|d| d == c).unwrap_or(0)).collect();
			if perm.iter().enumerate().all(|(i, &p)| i == p) {
				t
			} else {
				B::float_permute(t, &perm)
			}
		};
		let dims = |cs: &[char]| cs.iter().map(|c| size[c]).product::<usize>();
		if ops.len() == 1 {
			let (t, kept) = reduce(ops[0].clone(), &subs[0], &[&out]);
			return one(permute(t, &kept, &out));
		}
		let (x, xs) = reduce(ops[0].clone(), &subs[0], &[&subs[1], &out]);
		let (y, ys) = reduce(ops[1].clone(), &subs[1], &[&xs, &out]);
		// Batch: in both and the output; contracted: in both, not the output; left / right:
		// in one operand and the output.
		let batch: Vec<char> =
			xs.iter().copied().filter(|c| ys.contains(c) && out.contains(c)).collect();
		let contract: Vec<char> =
			xs.iter().copied().filter(|c| ys.contains(c) && !out.contains(c)).collect();
		let left: Vec<char> = xs.iter().copied().filter(|c| !ys.contains(c)).collect();
		let right: Vec<char> = ys.iter().copied().filter(|c| !xs.contains(c)).collect();
		let order = |parts: &[&[char]]| parts.concat();
		let x = permute(x, &xs, &order(&[&batch, &left, &contract]));
		let y = permute(y, &ys, &order(&[&batch, &contract, &right]));
		let (nb, nl, nc, nr) = (dims(&batch), dims(&left), dims(&contract), dims(&right));
		cx.check_elements(&[nb, nl, nr])?;
		let x = reshape::<B>(x, &[nb, nl, nc]);
		let y = reshape::<B>(y, &[nb, nc, nr]);
		let z = B::float_matmul(x, y);
		let zs = order(&[&batch, &left, &right]);
		let z = reshape::<B>(z, &zs.iter().map(|c| size[c]).collect::<Vec<_>>());
		one(permute(z, &zs, &out))
	}
}
