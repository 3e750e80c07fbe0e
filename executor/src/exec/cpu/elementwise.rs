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

/// Elements per block of the element-wise functions below: each step of their polynomials
/// runs on four independent vectors, so that the chain of fused multiply-adds (latency 4–5
/// cycles each) does not leave the FMA units idle. A tail shorter than a block runs through
/// the same code with blocks of one, so every element gets the same operations and bits.
const BLOCK: usize = 32;

/// e^x for f32, accurate to about 2 ulp: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor
/// polynomial to degree 7 (Horner, fused), times 2^n built in the exponent bits in two factors
/// (so that subnormal results round once). Below -110 the result is 0 (e^-inf must be 0 for
/// masks), above the f32 range +inf; NaN stays NaN. Written without branches, to vectorize.
#[inline(always)]
fn exp_block<const N: usize>(x: [f32; N]) -> [f32; N] {
	const LOG2E: f32 = std::f32::consts::LOG2_E;
	const LN2_HI: f32 = 0.693_145_75;
	const LN2_LO: f32 = 1.428_606_8e-6;
	// Plain loops, not `array::map`: a closure the compiler does not inline would be compiled
	// without the caller's vector features (and `mul_add` would become a library call).
	let (mut n, mut r) = ([0f32; N], [0f32; N]);
	for i in 0..N {
		// Compare-and-select clamps (the vector max/min instructions' own semantics): NaN
		// becomes -110, so n is always in range; NaN is restored at the end.
		let c = if x[i] > -110.0 { x[i] } else { -110.0 };
		let c = if c < 88.722_83 { c } else { 88.722_83 };
		n[i] = (c * LOG2E).round_ties_even();
		r[i] = (-n[i]).mul_add(LN2_LO, (-n[i]).mul_add(LN2_HI, c));
	}
	let mut p = [1.0 / 5040.0f32; N];
	for k in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
		for i in 0..N {
			p[i] = p[i].mul_add(r[i], k);
		}
	}
	let mut y = [0f32; N];
	for i in 0..N {
		// SAFETY: n is an integer in [-159, 128], so the conversion is exact.
		let n = unsafe { n[i].to_int_unchecked::<i32>() };
		let half = n / 2;
		let scale = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
		let v = p[i] * scale(half) * scale(n - half);
		// NaN in, NaN out, by bit masks: a select here is compiled to a branch per element.
		let bits = x[i].to_bits();
		let nan = (((bits & 0x7fff_ffff) > 0x7f80_0000) as u32).wrapping_neg();
		y[i] = f32::from_bits((v.to_bits() & !nan) | (bits & nan));
	}
	y
}

/// erf: the Chebyshev fit of erfc of Numerical Recipes (fractional error below 1.2e-7),
/// erf = 1 - erfc, odd.
#[inline(always)]
fn erf_block<const N: usize>(x: [f32; N]) -> [f32; N] {
	const C: [f32; 10] = [
		-1.265_512_2,
		1.000_023_7,
		0.374_091_96,
		0.096_784_18,
		-0.186_288_06,
		0.278_868_07,
		-1.135_204,
		1.488_515_9,
		-0.822_152_23,
		0.170_872_77,
	];
	let (mut z, mut t) = ([0f32; N], [0f32; N]);
	for i in 0..N {
		z[i] = x[i].abs();
		t[i] = 1.0 / 0.5f32.mul_add(z[i], 1.0);
	}
	let mut p = [C[9]; N];
	for &c in C[..9].iter().rev() {
		for i in 0..N {
			p[i] = p[i].mul_add(t[i], c);
		}
	}
	let mut arg = [0f32; N];
	for i in 0..N {
		arg[i] = (-z[i]).mul_add(z[i], p[i]);
	}
	let e = exp_block(arg);
	// Odd; a NaN input is NaN all the way through.
	let mut y = [0f32; N];
	for i in 0..N {
		y[i] = (1.0 - t[i] * e[i]).copysign(x[i]);
	}
	y
}

simd_kernel! {
	/// erf of each element, in blocks of [`BLOCK`].
	fn erf_kernel(src: &[f32], dst: &mut [std::mem::MaybeUninit<f32>]) {
		let (blocks, tail) = src.as_chunks::<BLOCK>();
		let (out, out_tail) = dst.as_chunks_mut::<BLOCK>();
		for (x, d) in blocks.iter().zip(out) {
			for (d, y) in d.iter_mut().zip(erf_block(*x)) {
				d.write(y);
			}
		}
		for (&x, d) in tail.iter().zip(out_tail) {
			d.write(erf_block([x])[0]);
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
	/// Softmax of each `row`-element row: e^(x - max) over its sum. The maximum is kept in 8
	/// lanes and the sum in [`BLOCK`] lanes (added up in a fixed order), so both vectorize.
	fn softmax_rows(src: &[f32], row: usize, dst: &mut [std::mem::MaybeUninit<f32>]) {
		for (s, d) in src.chunks_exact(row).zip(dst.chunks_exact_mut(row)) {
			// Compare-and-select: a NaN is passed over here and makes the row NaN below.
			let mut lanes = [f32::NEG_INFINITY; 8];
			let (eights, rest) = s.as_chunks::<8>();
			for c in eights {
				for l in 0..8 {
					lanes[l] = if c[l] > lanes[l] { c[l] } else { lanes[l] };
				}
			}
			let max = lanes.iter().chain(rest).fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
			let mut acc = [0f32; BLOCK];
			let (blocks, tail) = s.as_chunks::<BLOCK>();
			let (out, out_tail) = d.as_chunks_mut::<BLOCK>();
			for (b, o) in blocks.iter().zip(out) {
				let mut x = [0f32; BLOCK];
				for i in 0..BLOCK {
					x[i] = b[i] - max;
				}
				let e = exp_block(x);
				for i in 0..BLOCK {
					acc[i] += e[i];
					o[i].write(e[i]);
				}
			}
			let mut sum = 0.0f32;
			for (&x, o) in tail.iter().zip(out_tail) {
				let e = exp_block([x - max])[0];
				sum += e;
				o.write(e);
			}
			let mut width = BLOCK;
			while width > 1 {
				width /= 2;
				for i in 0..width {
					acc[i] += acc[i + width];
				}
			}
			let sum = acc[0] + sum;
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

/// Lanes of [`min_max_kernel`]: independent minimums and maximums a vector unit keeps.
const RANGE_LANES: usize = 16;

simd_kernel! {
	/// Per lane: the least and greatest of the values (and 0), and Σ x·0, which is NaN
	/// exactly when a value is not finite.
	fn min_max_kernel(v: &[f32], lo: &mut [f32; RANGE_LANES], hi: &mut [f32; RANGE_LANES], nan: &mut [f32; RANGE_LANES]) {
		let (chunks, rest) = v.as_chunks::<RANGE_LANES>();
		for c in chunks {
			for j in 0..RANGE_LANES {
				let x = c[j];
				lo[j] = if x < lo[j] { x } else { lo[j] };
				hi[j] = if x > hi[j] { x } else { hi[j] };
				nan[j] += x * 0.0;
			}
		}
		for (j, &x) in rest.iter().enumerate() {
			lo[j] = if x < lo[j] { x } else { lo[j] };
			hi[j] = if x > hi[j] { x } else { hi[j] };
			nan[j] += x * 0.0;
		}
	}
}

/// DynamicQuantizeLinear's range: the least and greatest of `v` and 0, in one vectorized
/// pass; `None` if a value is not finite.
pub(crate) fn min_max_finite(v: &[f32]) -> Option<(f32, f32)> {
	let (mut lo, mut hi, mut nan) = ([0f32; RANGE_LANES], [0f32; RANGE_LANES], [0f32; RANGE_LANES]);
	min_max_kernel(v, &mut lo, &mut hi, &mut nan);
	if nan.iter().any(|x| x.is_nan()) {
		return None;
	}
	let lo = lo.iter().copied().fold(0f32, |a, b| if b < a { b } else { a });
	let hi = hi.iter().copied().fold(0f32, |a, b| if b > a { b } else { a });
	Some((lo, hi))
}

/// [`quantize_u8_kernel`] over a whole tensor's values (finite, checked by the caller).
pub(crate) fn quantize_u8(src: &[f32], scale: f32, zero: i64) -> Vec<i64> {
	let mut out = vec![0i64; src.len()];
	quantize_u8_kernel(src, scale, zero as f32, &mut out);
	out
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn min_max_finite_is_the_folds_of_the_operator() {
		for n in [0usize, 1, 15, 16, 17, 100, 1000] {
			let v: Vec<f32> = (0..n)
				.map(|i| {
					((i * 7919 % 1013) as f32 - 500.0) / 37.0 * if i % 5 == 0 { -1.0 } else { 1.0 }
				})
				.collect();
			let (lo, hi) = min_max_finite(&v).expect("finite");
			assert_eq!(lo, v.iter().copied().fold(0f32, f32::min), "{n} values");
			assert_eq!(hi, v.iter().copied().fold(0f32, f32::max), "{n} values");
			// One value that is not finite, in a full chunk or in the tail, is found.
			for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
				for at in [0, n / 2, n.saturating_sub(1)] {
					if at < n {
						let mut w = v.clone();
						w[at] = bad;
						assert_eq!(min_max_finite(&w), None, "{bad} at {at} of {n}");
					}
				}
			}
		}
		assert_eq!(min_max_finite(&[3.0, 5.0]), Some((0.0, 5.0)));
		assert_eq!(min_max_finite(&[-3.0, -5.0]), Some((-5.0, 0.0)));
	}
}
