//! Gemm: one GEMM call with the transposes read through strides, and single-row products by
//! their own vector kernels.

use super::{
	f32_data, gemm_into, gemm_strided, optional_f32_data, relu_in_place, spin, to_backend, Mat,
	Shared, F, SPLIT_MACS,
};
use burn::tensor::backend::Backend;

/// `alpha · op(a) · op(b) + beta · c` for matrices, the transposes read through strides, then
/// Relu when `relu`; `c` broadcasts to the result (checked by the caller).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<B: Backend>(
	a: &F<B>,
	b: &F<B>,
	c: Option<&F<B>>,
	trans_a: bool,
	trans_b: bool,
	alpha: f32,
	beta: f32,
	relu: bool,
) -> Option<F<B>> {
	let (ad, bd) = (f32_data::<B>(a)?, f32_data::<B>(b)?);
	let cd = optional_f32_data::<B>(c)?;
	let (as_, bs) = (ad.0.layout().shape().to_vec(), bd.0.layout().shape().to_vec());
	let (m, k) = if trans_a { (as_[1], as_[0]) } else { (as_[0], as_[1]) };
	let n = if trans_b { bs[0] } else { bs[1] };
	let mut out = vec![0f32; m * n];
	if let Some(cd) = &cd {
		// C broadcasts from [], [n], [1, n], [m, 1] or [m, n].
		let cs = cd.0.layout().shape().to_vec();
		let cv = cd.slice();
		let (rows, cols) = match cs.len() {
			0 => (1, 1),
			1 => (1, cs[0]),
			_ => (cs[0], cs[1]),
		};
		for (i, row) in out.chunks_exact_mut(n).enumerate() {
			let src = &cv[(i % rows) * cols..][..cols];
			if cols == n {
				row.iter_mut().zip(src).for_each(|(d, &s)| *d = beta * s);
			} else {
				row.fill(beta * src[0]);
			}
		}
	}
	if m == 1 {
		// A row times a matrix: memory-bound, so columns are split over the threads.
		let (a, b) = (ad.slice(), bd.slice());
		let part = |t: usize, chunk: usize, out: &mut [f32]| {
			if trans_b {
				row_times_rows(a, &b[t * chunk * k..][..out.len() * k], alpha, out);
			} else {
				row_times_matrix(a, b, n, t * chunk, alpha, out);
			}
		};
		let threads = spin::threads();
		if k * n >= SPLIT_MACS / 64 && threads > 1 {
			let chunk = n.div_ceil(threads).next_multiple_of(64);
			let base = Shared(out.as_mut_ptr());
			spin::for_each(n.div_ceil(chunk), |t| {
				let cols = chunk.min(n - t * chunk);
				// SAFETY: columns t·chunk.. of the single output row are this task's alone.
				part(t, chunk, unsafe { std::slice::from_raw_parts_mut(base.at(t * chunk), cols) })
			});
		} else {
			part(0, n, &mut out);
		}
	} else {
		let (lhs, rhs) =
			(Mat::of(ad.slice(), as_[1], trans_a), Mat::of(bd.slice(), bs[1], trans_b));
		let threads = spin::threads();
		if m * n * k >= SPLIT_MACS && threads > 1 && n >= 32 * threads {
			// Column blocks over the threads, one fork for the whole product (gemm's own
			// threading forks once per block of the depth).
			let chunk = n.div_ceil(threads).next_multiple_of(16);
			let dst = Shared(out.as_mut_ptr());
			spin::for_each(n.div_ceil(chunk), |t| {
				let j0 = t * chunk;
				let rhs = rhs.columns_from(j0);
				// SAFETY: each task writes its own columns j0.. of the m × n output; the
				// shifted rhs view covers the same columns of B.
				unsafe {
					let shape = [m, chunk.min(n - j0), k];
					gemm_strided(
						shape,
						dst.at(j0),
						n,
						cd.is_some(),
						lhs,
						rhs,
						alpha,
						gemm::Parallelism::None,
					)
				}
			});
		} else {
			// SAFETY: out is m × n row-major; the views cover exactly their tensors' storage.
			unsafe {
				gemm_into(
					[m, n, k],
					&mut out,
					cd.is_some(),
					lhs,
					rhs,
					alpha,
					gemm::Parallelism::None,
				)
			}
		}
	}
	if relu {
		relu_in_place(&mut out);
	}
	Some(to_backend::<B>(out, vec![m, n]))
}

simd_kernel! {
	/// `out[j] += alpha · Σ_k a[k] · b[k, j0 + j]`, `b` row-major with `n` columns. Blocks of
	/// 64 columns keep their sums in registers while the rows of `b` stream past.
	fn row_times_matrix(a: &[f32], b: &[f32], n: usize, j0: usize, alpha: f32, out: &mut [f32]) {
		const W: usize = 64;
		for (blk, out) in out.chunks_mut(W).enumerate() {
			let j = j0 + blk * W;
			let mut acc = [0f32; W];
			if out.len() == W {
				for (kk, &x) in a.iter().enumerate() {
					let row: &[f32; W] = b[kk * n + j..][..W].try_into().expect("W columns");
					for (s, &v) in acc.iter_mut().zip(row) {
						*s = v.mul_add(x, *s);
					}
				}
			} else {
				for (kk, &x) in a.iter().enumerate() {
					let row = &b[kk * n + j..][..out.len()];
					for (s, &v) in acc.iter_mut().zip(row) {
						*s = v.mul_add(x, *s);
					}
				}
			}
			for (o, s) in out.iter_mut().zip(acc) {
				*o = s.mul_add(alpha, *o);
			}
		}
	}
}

simd_kernel! {
	/// `out[j] += alpha · a · bt[j]`: dot products of `a` with the rows of `bt`, four rows at
	/// a time so each load of `a` serves four sums, each sum kept in 8 lanes.
	fn row_times_rows(a: &[f32], bt: &[f32], alpha: f32, out: &mut [f32]) {
		let k = a.len();
		let (a8, a_tail) = a.as_chunks::<8>();
		let dot_tail = |row: &[f32]| row[k - a_tail.len()..].iter().zip(a_tail).fold(0.0, |s, (&v, &x)| v.mul_add(x, s));
		let hsum = |l: [f32; 8]| ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
		let mut rows = bt.chunks_exact(k);
		let mut outs = out.chunks_exact_mut(4);
		for out in &mut outs {
			let r: [&[f32]; 4] = std::array::from_fn(|_| rows.next().expect("one row per output"));
			let r8: [&[[f32; 8]]; 4] = r.map(|r| r.as_chunks::<8>().0);
			let mut acc = [[0f32; 8]; 4];
			for (c, x) in a8.iter().enumerate() {
				for (acc, r8) in acc.iter_mut().zip(&r8) {
					for ((s, &v), &x) in acc.iter_mut().zip(&r8[c]).zip(x) {
						*s = v.mul_add(x, *s);
					}
				}
			}
			for ((o, acc), r) in out.iter_mut().zip(acc).zip(r) {
				*o = (hsum(acc) + dot_tail(r)).mul_add(alpha, *o);
			}
		}
		for (o, r) in outs.into_remainder().iter_mut().zip(rows) {
			let mut acc = [0f32; 8];
			for (c, x) in r.as_chunks::<8>().0.iter().zip(a8) {
				for ((s, &v), &x) in acc.iter_mut().zip(c).zip(x) {
					*s = v.mul_add(x, *s);
				}
			}
			*o = (hsum(acc) + dot_tail(r)).mul_add(alpha, *o);
		}
	}
}

#[cfg(test)]
mod tests {
	use super::{super::testing::*, *};
	use burn::tensor::{
		ops::{ActivationOps, FloatTensorOps},
		Shape,
	};
	use burn_flex::Flex;

	#[test]
	fn gemm_matches_matmul_with_transposes_and_broadcast_c() {
		// Single rows (with column blocks and dot products that do not divide evenly, and one
		// split over the threads), small products, and one split by columns.
		let shapes = [
			(1, 784, 512),
			(1, 13, 70),
			(1, 5, 3),
			(1, 2048, 2100),
			(32, 256, 10),
			(5, 3, 7),
			(64, 64, 64),
			(40, 512, 300),
		];
		for (i, (m, k, n)) in shapes.into_iter().enumerate() {
			for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
				for c_shape in [vec![], vec![n], vec![1, n], vec![m, 1], vec![m, n]] {
					let seed = (i * 100) as u64;
					let a = random(&if ta { [k, m] } else { [m, k] }, seed);
					let b = random(&if tb { [n, k] } else { [k, n] }, seed + 1);
					let c = random(&c_shape, seed + 2);
					let (alpha, beta) = (0.5, 2.0);
					let got = gemm::<Flex>(&a, &b, Some(&c), ta, tb, alpha, beta, false)
						.expect("f32 on burn-flex");
					let fused = gemm::<Flex>(&a, &b, Some(&c), ta, tb, alpha, beta, true)
						.expect("f32 on burn-flex");
					assert_eq!(
						values(fused),
						values(Flex::relu(got.clone())),
						"gemm {m}x{k}x{n} with Relu"
					);
					let a = if ta { Flex::float_permute(a, &[1, 0]) } else { a };
					let b = if tb { Flex::float_permute(b, &[1, 0]) } else { b };
					let ab = Flex::float_mul_scalar(Flex::float_matmul(a, b), alpha.into());
					let c = Flex::float_mul_scalar(c, beta.into());
					let c = Flex::float_expand(c, Shape::from(vec![m, n]));
					let want = Flex::float_add(ab, c);
					assert_close(
						got,
						want,
						&format!("gemm {m}x{k}x{n} ta={ta} tb={tb} c={c_shape:?}"),
					);
				}
			}
		}
	}
}
