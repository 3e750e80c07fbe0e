//! Element-wise kernels that burn-flex runs slowly on transformer shapes: broadcasting
//! arithmetic whose broadcast operand is not one shared row (the attention mask
//! `[b, 1, 1, t]` against scores `[b, h, t, t]`), Erf (a scalar call per element) and Softmax
//! over the last axis (several passes). Each works row by row over the last axis with loops the
//! compiler vectorizes, both builds of [`simd_kernel!`] using the same fused multiply-adds, so
//! the bits do not depend on the CPU.

use super::{build_chunks, f32_data, to_backend, F};
use burn::tensor::backend::Backend;

/// The arithmetic of [`binary`].
#[derive(Clone, Copy)]
pub(crate) enum Arith {
	Add,
	Sub,
	Mul,
	Div,
}

/// Below this many elements a kernel runs on one thread.
const PARALLEL_ELEMENTS: usize = 1 << 16;

/// Row-major strides of `shape` aligned to `out`'s rank, 0 on broadcast axes.
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
	let offset = out.len() - shape.len();
	let mut strides = vec![0; out.len()];
	let mut step = 1;
	for d in (0..shape.len()).rev() {
		if shape[d] != 1 {
			strides[d + offset] = step;
		}
		step *= shape[d];
	}
	strides
}

/// `x op y` broadcast to `out` (a numpy broadcast of both shapes, checked by the caller);
/// `None` unless both are f32 burn-flex tensors.
pub(crate) fn binary<B: Backend>(op: Arith, x: &F<B>, y: &F<B>, out: &[usize]) -> Option<F<B>> {
	let (xd, yd) = (f32_data::<B>(x)?, f32_data::<B>(y)?);
	let (xs, ys) = (
		broadcast_strides(xd.0.layout().shape(), out),
		broadcast_strides(yd.0.layout().shape(), out),
	);
	let (xv, yv) = (xd.slice(), yd.slice());
	let rank = out.len();
	let row = out.last().copied().unwrap_or(1).max(1);
	let len: usize = out.iter().product();
	let (xr, yr) = (xs.last().copied().unwrap_or(0), ys.last().copied().unwrap_or(0));
	// Rows per task: whole rows, about PARALLEL_ELEMENTS / 4 elements each.
	let rows_per = (PARALLEL_ELEMENTS / 4 / row).max(1);
	let data = build_chunks(len, rows_per * row, len >= PARALLEL_ELEMENTS, |chunk, dst| {
		let first = chunk * rows_per;
		for (r, dst) in dst.chunks_mut(row).enumerate() {
			// The offsets of this row's first element in x and y.
			let (mut xo, mut yo, mut rest) = (0, 0, first + r);
			for d in (0..rank.saturating_sub(1)).rev() {
				let i = rest % out[d];
				rest /= out[d];
				xo += i * xs[d];
				yo += i * ys[d];
			}
			// SAFETY of the views: the caller checked the shapes broadcast to `out`.
			let xrow = &xv[xo..][..if xr == 0 { 1 } else { row }];
			let yrow = &yv[yo..][..if yr == 0 { 1 } else { row }];
			row_kernel(op, xrow, yrow, dst);
		}
	});
	Some(to_backend::<B>(data, out.to_vec()))
}

simd_kernel! {
	/// One output row: each side either a full row or one value repeated.
	fn row_kernel(op: Arith, x: &[f32], y: &[f32], dst: &mut [std::mem::MaybeUninit<f32>]) {
		let f = |a: f32, b: f32| match op {
			Arith::Add => a + b,
			Arith::Sub => a - b,
			Arith::Mul => a * b,
			Arith::Div => a / b,
		};
		match (x.len() == dst.len(), y.len() == dst.len()) {
			(true, true) => dst.iter_mut().zip(x.iter().zip(y)).for_each(|(d, (&a, &b))| {
				d.write(f(a, b));
			}),
			(true, false) => {
				let b = y[0];
				dst.iter_mut().zip(x).for_each(|(d, &a)| {
					d.write(f(a, b));
				})
			},
			(false, true) => {
				let a = x[0];
				dst.iter_mut().zip(y).for_each(|(d, &b)| {
					d.write(f(a, b));
				})
			},
			(false, false) => {
				let v = f(x[0], y[0]);
				dst.iter_mut().for_each(|d| {
					d.write(v);
				})
			},
		}
	}
}

/// e^x for f32, accurate to about 2 ulp: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor
/// polynomial to degree 7 (Horner, fused), times 2^n built in the exponent bits. Saturates
/// to 0 and +inf outside the f32 range; NaN stays NaN.
#[inline(always)]
fn exp(x: f32) -> f32 {
	const LOG2E: f32 = std::f32::consts::LOG2_E;
	const LN2_HI: f32 = 0.693_145_75;
	const LN2_LO: f32 = 1.428_606_8e-6;
	let (x, raw) = (x.clamp(-87.336_54, 88.722_83), x);
	let n = (x * LOG2E).round_ties_even();
	let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
	let mut p = 1.0 / 5040.0f32;
	for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
		p = p.mul_add(r, c);
	}
	// n is in [-126, 128]: 2^n as a normal float, in two factors so n = 128 cannot overflow
	// the exponent field.
	let half = (n as i32) / 2;
	let scale = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
	let y = p * scale(half) * scale(n as i32 - half);
	// Below the clamp the true value is subnormal or 0: 0 (e^-inf must be 0 for masks).
	if raw.is_nan() {
		raw
	} else if raw <= -87.336_54 {
		0.0
	} else {
		y
	}
}

simd_kernel! {
	/// erf for each element: the Chebyshev fit of erfc of Numerical Recipes (fractional error
	/// below 1.2e-7), erf = 1 - erfc, odd.
	fn erf_kernel(src: &[f32], dst: &mut [std::mem::MaybeUninit<f32>]) {
		const C: [f32; 10] = [
			-1.265_512_2, 1.000_023_7, 0.374_091_96, 0.096_784_18, -0.186_288_06,
			0.278_868_07, -1.135_204, 1.488_515_9, -0.822_152_23, 0.170_872_77,
		];
		for (d, &x) in dst.iter_mut().zip(src) {
			let z = x.abs();
			let t = 1.0 / 0.5f32.mul_add(z, 1.0);
			let mut p = C[9];
			for &c in C[..9].iter().rev() {
				p = p.mul_add(t, c);
			}
			let erfc = t * exp((-z).mul_add(z, p));
			let e = 1.0 - erfc;
			d.write(if x < 0.0 { -e } else if x.is_nan() { x } else { e });
		}
	}
}

/// erf of an f32 burn-flex tensor; `None` for other tensors.
pub(crate) fn erf<B: Backend>(x: &F<B>) -> Option<F<B>> {
	let xd = f32_data::<B>(x)?;
	let shape = xd.0.layout().shape().to_vec();
	let v = xd.slice();
	let chunk = PARALLEL_ELEMENTS / 4;
	let data = build_chunks(v.len(), chunk, v.len() >= PARALLEL_ELEMENTS, |i, dst| {
		erf_kernel(&v[i * chunk..][..dst.len()], dst)
	});
	Some(to_backend::<B>(data, shape))
}

simd_kernel! {
	/// Softmax of each `row`-element row: e^(x - max) over its sum.
	fn softmax_rows(src: &[f32], row: usize, dst: &mut [std::mem::MaybeUninit<f32>]) {
		for (s, d) in src.chunks_exact(row).zip(dst.chunks_exact_mut(row)) {
			let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
			let mut sum = 0.0f32;
			for (d, &x) in d.iter_mut().zip(s) {
				let e = exp(x - max);
				sum += e;
				d.write(e);
			}
			// SAFETY: every element of the row was written just above.
			let d = unsafe { &mut *(d as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) };
			d.iter_mut().for_each(|v| *v /= sum);
		}
	}
}

/// Softmax over the last axis of an f32 burn-flex tensor; `None` for other tensors.
pub(crate) fn softmax_last<B: Backend>(x: &F<B>) -> Option<F<B>> {
	let xd = f32_data::<B>(x)?;
	let shape = xd.0.layout().shape().to_vec();
	let row = shape.last().copied()?.max(1);
	let v = xd.slice();
	let rows_per = (PARALLEL_ELEMENTS / 4 / row).max(1);
	let data = build_chunks(v.len(), rows_per * row, v.len() >= PARALLEL_ELEMENTS, |i, dst| {
		softmax_rows(&v[i * rows_per * row..][..dst.len()], row, dst)
	});
	Some(to_backend::<B>(data, shape))
}

simd_kernel! {
	/// DynamicQuantizeLinear's uint8 values: x / scale clamped to [-zero, 255 - zero], rounded
	/// half to even, plus zero (the operator's `quantize` element by element, vectorized).
	fn quantize_u8_kernel(src: &[f32], scale: f32, zero: f32, dst: &mut [i64]) {
		for (d, &x) in dst.iter_mut().zip(src) {
			let v = (x / scale).max(-zero).min(255.0 - zero);
			*d = (v.round_ties_even() + zero) as i64;
		}
	}
}

/// [`quantize_u8_kernel`] over a whole tensor's values (finite, checked by the caller).
pub(crate) fn quantize_u8(src: &[f32], scale: f32, zero: i64) -> Vec<i64> {
	let mut out = vec![0i64; src.len()];
	quantize_u8_kernel(src, scale, zero as f32, &mut out);
	out
}
