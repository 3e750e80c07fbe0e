//! CPU kernels for the ops that dominate CNNs and MLPs, used when the backend is burn-flex and
//! the tensors are f32. A profile of LeNet on burn-flex put 42% of the time in its strided
//! im2col copy and 17% in its generic pooling loop, against 12% in GEMM; these kernels copy
//! whole rows, pool with a direct window loop, and fold biases and transposes into one GEMM
//! call. Other backends (CUDA) and dtypes keep burn's kernels: each function returns `None`.

use burn::tensor::{backend::Backend, ops::FloatTensor, Shape, TensorData};
use burn_flex::FlexTensor;
use rayon::prelude::*;
use std::any::Any;

type F<B> = FloatTensor<B>;

/// Below this many multiply-adds a GEMM runs on one thread (burn-flex's threshold).
const PARALLEL_MACS: usize = 192 * 192 * 192;

/// The contiguous f32 storage of a burn-flex tensor (copied once if it is a strided view).
fn f32_data<B: Backend>(t: &F<B>) -> Option<FlexData> {
	let flex = (t as &dyn Any).downcast_ref::<FlexTensor>()?;
	if flex.dtype() != burn::tensor::DType::F32 {
		return None;
	}
	Some(if flex.as_slice::<f32>().is_some() { FlexData(flex.clone()) } else { FlexData(flex.to_contiguous()) })
}

/// [`f32_data`] of an optional tensor: `None` if it is there but not f32 on burn-flex.
fn optional_f32_data<B: Backend>(t: Option<&F<B>>) -> Option<Option<FlexData>> {
	match t {
		Some(t) => f32_data::<B>(t).map(Some),
		None => Some(None),
	}
}

struct FlexData(FlexTensor);

impl FlexData {
	fn slice(&self) -> &[f32] {
		self.0.as_slice::<f32>().expect("contiguous f32 by construction")
	}
}

fn to_backend<B: Backend>(data: Vec<f32>, shape: Vec<usize>) -> F<B> {
	let flex = FlexTensor::from_data(TensorData::new(data, Shape::from(shape)));
	*(Box::new(flex) as Box<dyn Any>).downcast::<F<B>>().expect("only called when B is burn-flex")
}

/// The outputs `o < count` whose tap `o · stride + offset - pad` lies inside `0..len`, as a
/// range (empty if none): what im2col copies and pooling reads, with no bounds test per tap.
fn inside(offset: usize, pad: usize, stride: usize, len: usize, count: usize) -> std::ops::Range<usize> {
	let first = pad.saturating_sub(offset).div_ceil(stride).min(count);
	let last = (len + pad).saturating_sub(offset).div_ceil(stride).min(count);
	first..last.max(first)
}

fn parallelism(macs: usize) -> gemm::Parallelism {
	if macs >= PARALLEL_MACS {
		gemm::Parallelism::Rayon(0)
	} else {
		gemm::Parallelism::None
	}
}

/// A matrix view: element (i, j) at `ptr + i * rs + j * cs`.
#[derive(Clone, Copy)]
struct Mat {
	ptr: *const f32,
	rs: isize,
	cs: isize,
}

impl Mat {
	/// A contiguous row-major `rows × cols` matrix, or its transpose when `transposed`.
	fn of(data: &[f32], cols: usize, transposed: bool) -> Mat {
		let (rs, cs) = if transposed { (1, cols as isize) } else { (cols as isize, 1) };
		Mat { ptr: data.as_ptr(), rs, cs }
	}
}

/// `dst[m × n] = (dst if accumulate, else 0) + scale · lhs[m × k] · rhs[k × n]`, `dst`
/// row-major and contiguous.
///
/// # Safety
/// `dst` holds `m * n` values and the views address only memory they own, for the given shapes.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_into(
	[m, n, k]: [usize; 3],
	dst: &mut [f32],
	accumulate: bool,
	lhs: Mat,
	rhs: Mat,
	scale: f32,
	par: gemm::Parallelism,
) {
	debug_assert_eq!(dst.len(), m * n);
	gemm::gemm(
		m,
		n,
		k,
		dst.as_mut_ptr(),
		1,
		n as isize,
		accumulate,
		lhs.ptr,
		lhs.cs,
		lhs.rs,
		rhs.ptr,
		rhs.cs,
		rhs.rs,
		1.0,
		scale,
		false,
		false,
		false,
		par,
	)
}

/// 2-D convolution of NCHW `x` by `w` [M, C/groups, kh, kw] with symmetric `pads`
/// (the asymmetric part is applied before).
pub(crate) fn conv2d<B: Backend>(
	x: &F<B>,
	w: &F<B>,
	bias: Option<&F<B>>,
	stride: [usize; 2],
	pads: [usize; 2],
	dilation: [usize; 2],
	groups: usize,
) -> Option<F<B>> {
	let (xd, wd) = (f32_data::<B>(x)?, f32_data::<B>(w)?);
	let bd = optional_f32_data::<B>(bias)?;
	let xs = xd.0.layout().shape().to_vec();
	let ws = wd.0.layout().shape().to_vec();
	let (n, c, h, wi) = (xs[0], xs[1], xs[2], xs[3]);
	let (m, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
	let span = |k: usize, d: usize| (k - 1) * d + 1;
	let oh = (h + 2 * pads[0] - span(kh, dilation[0])) / stride[0] + 1;
	let ow = (wi + 2 * pads[1] - span(kw, dilation[1])) / stride[1] + 1;
	let (mg, k, p) = (m / groups, cg * kh * kw, oh * ow);
	let direct = kh == 1 && kw == 1 && stride == [1, 1] && pads == [0, 0];

	let (x, w) = (xd.slice(), wd.slice());
	let mut out = vec![0f32; n * m * p];
	// The bias starts each output row, and the GEMM accumulates onto it.
	if let Some(b) = &bd {
		for (row, &v) in out.chunks_exact_mut(p).zip(b.slice().iter().cycle()) {
			row.fill(v);
		}
	}
	let image = |(img, out): (usize, &mut [f32]), col: &mut Vec<f32>, par: gemm::Parallelism| {
		for g in 0..groups {
			let src = &x[(img * c + g * cg) * h * wi..][..cg * h * wi];
			let rhs = if direct {
				src
			} else {
				im2col(src, [cg, h, wi], [kh, kw], stride, pads, dilation, [oh, ow], col);
				&col[..]
			};
			let lhs = &w[g * mg * k..][..mg * k];
			let dst = &mut out[g * mg * p..][..mg * p];
			// SAFETY: dst is mg × p, lhs mg × k and rhs k × p, all row-major and in bounds.
			unsafe { gemm_into([mg, p, k], dst, true, Mat::of(lhs, k, false), Mat::of(rhs, p, false), 1.0, par) }
		}
	};
	let macs = mg * p * k * groups;
	if n > 1 && macs * n >= PARALLEL_MACS / 8 {
		// Images in parallel, each GEMM on one thread.
		out.par_chunks_mut(m * p)
			.enumerate()
			.for_each_init(Vec::new, |col, job| image(job, col, gemm::Parallelism::None));
	} else {
		let mut col = Vec::new();
		for job in out.chunks_mut(m * p).enumerate() {
			image(job, &mut col, parallelism(macs));
		}
	}
	Some(to_backend::<B>(out, vec![n, m, oh, ow]))
}

/// Unfolds one image [C, H, W] into `col` [C·kh·kw, oh·ow], zeros where the window is in the
/// padding. Rows are copied as runs when the stride along the width is 1.
#[allow(clippy::too_many_arguments)]
fn im2col(
	src: &[f32],
	[c, h, w]: [usize; 3],
	[kh, kw]: [usize; 2],
	[sh, sw]: [usize; 2],
	[ph, pw]: [usize; 2],
	[dh, dw]: [usize; 2],
	[oh, ow]: [usize; 2],
	col: &mut Vec<f32>,
) {
	col.clear();
	col.resize(c * kh * kw * oh * ow, 0.0);
	let mut rows = col.chunks_exact_mut(oh * ow);
	for ch in 0..c {
		let plane = &src[ch * h * w..][..h * w];
		for i in 0..kh {
			for j in 0..kw {
				let row = rows.next().expect("c·kh·kw rows");
				let xs = inside(j * dw, pw, sw, w, ow);
				if xs.is_empty() {
					continue;
				}
				for oy in inside(i * dh, ph, sh, h, oh) {
					let line = &plane[(oy * sh + i * dh - ph) * w..][..w];
					let dst = &mut row[oy * ow..][..ow];
					let x0 = xs.start * sw + j * dw - pw;
					if sw == 1 {
						dst[xs.clone()].copy_from_slice(&line[x0..x0 + xs.len()]);
					} else {
						for (k, d) in dst[xs.clone()].iter_mut().enumerate() {
							*d = line[x0 + k * sw];
						}
					}
				}
			}
		}
	}
}

/// 2-D max pooling of NCHW `x` with symmetric `pads` (never selected) and floor rounding.
/// NaN propagates, like burn's kernel and onnxruntime.
pub(crate) fn max_pool2d<B: Backend>(
	x: &F<B>,
	[kh, kw]: [usize; 2],
	[sh, sw]: [usize; 2],
	[ph, pw]: [usize; 2],
	[dh, dw]: [usize; 2],
) -> Option<F<B>> {
	let xd = f32_data::<B>(x)?;
	let xs = xd.0.layout().shape().to_vec();
	let (n, c, h, w) = (xs[0], xs[1], xs[2], xs[3]);
	let oh = (h + 2 * ph - ((kh - 1) * dh + 1)) / sh + 1;
	let ow = (w + 2 * pw - ((kw - 1) * dw + 1)) / sw + 1;
	// Kernel rows inside the image per output row, and per kernel column the output columns
	// whose tap is inside: no bounds test per tap.
	let rows: Vec<(usize, usize)> = (0..oh)
		.map(|oy| {
			let first = ph.saturating_sub(oy * sh).div_ceil(dh).min(kh);
			let last = (h + ph).saturating_sub(oy * sh).div_ceil(dh).min(kh);
			(first, last.max(first))
		})
		.collect();
	let cols: Vec<(usize, std::ops::Range<usize>)> = (0..kw).map(|j| (j * dw, inside(j * dw, pw, sw, w, ow))).collect();
	let x = xd.slice();
	let mut out = vec![f32::NEG_INFINITY; n * c * oh * ow];
	// Taps are applied to a whole output row at a time, so consecutive outputs do not wait on
	// each other, with a branch-free max unless the plane holds a NaN (which must propagate).
	// Non-overlapping windows inside the image (2×2 stride 2 and the like): contiguous runs.
	let tiled = [ph, pw] == [0, 0] && [dh, dw] == [1, 1] && [sh, sw] == [kh, kw];
	let plane = |src: &[f32], dst: &mut [f32]| {
		// A full fold, not `any`: it vectorizes.
		let nan = src.iter().fold(false, |acc, v| acc | v.is_nan());
		if tiled && !nan {
			for (oy, out) in dst.chunks_exact_mut(ow).enumerate() {
				for i in 0..kh {
					let line = &src[(oy * sh + i) * w..][..ow * kw];
					match kw {
						2 => max_runs::<2>(out, line),
						3 => max_runs::<3>(out, line),
						_ => out.iter_mut().zip(line.chunks_exact(kw)).for_each(|(d, run)| {
							*d = run.iter().fold(*d, |a, &b| a.max(b));
						}),
					}
				}
			}
			return;
		}
		for (oy, &(i0, i1)) in rows.iter().enumerate() {
			let out = &mut dst[oy * ow..][..ow];
			for i in i0..i1 {
				let line = &src[(oy * sh + i * dh - ph) * w..][..w];
				for (offset, xs) in cols.iter().filter(|c| !c.1.is_empty()) {
					let taps = line[xs.start * sw + offset - pw..].iter().step_by(sw);
					if nan {
						for (d, &v) in out[xs.clone()].iter_mut().zip(taps) {
							if v > *d || v.is_nan() {
								*d = v;
							}
						}
					} else {
						for (d, &v) in out[xs.clone()].iter_mut().zip(taps) {
							*d = d.max(v);
						}
					}
				}
			}
		}
	};
	let taps = n * c * oh * ow * kh * kw;
	if taps < 1 << 18 {
		// Handing small work to the thread pool costs more than it saves.
		x.chunks(h * w).zip(out.chunks_mut(oh * ow)).for_each(|(src, dst)| plane(src, dst));
	} else {
		// About four tasks per thread: one plane per task costs more in scheduling than pooling.
		let per_task = (n * c / (4 * rayon::current_num_threads())).max(1);
		x.par_chunks(h * w)
			.zip(out.par_chunks_mut(oh * ow))
			.with_min_len(per_task)
			.for_each(|(src, dst)| plane(src, dst));
	}
	Some(to_backend::<B>(out, vec![n, c, oh, ow]))
}

/// `out[k] = max(out[k], line[N·k .. N·k + N])`, with N known to the compiler so the runs
/// vectorize.
fn max_runs<const N: usize>(out: &mut [f32], line: &[f32]) {
	for (d, run) in out.iter_mut().zip(line.chunks_exact(N)) {
		let run: &[f32; N] = run.try_into().expect("chunks of N");
		*d = run.iter().fold(*d, |a, &b| a.max(b));
	}
}

/// `alpha · op(a) · op(b) + beta · c` for matrices, the transposes read through strides; `c`
/// broadcasts to the result (checked by the caller).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<B: Backend>(
	a: &F<B>,
	b: &F<B>,
	c: Option<&F<B>>,
	trans_a: bool,
	trans_b: bool,
	alpha: f32,
	beta: f32,
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
	let (lhs, rhs) = (Mat::of(ad.slice(), as_[1], trans_a), Mat::of(bd.slice(), bs[1], trans_b));
	// SAFETY: out is m × n row-major; the views cover exactly their tensors' storage.
	unsafe { gemm_into([m, n, k], &mut out, cd.is_some(), lhs, rhs, alpha, parallelism(m * n * k)) }
	Some(to_backend::<B>(out, vec![m, n]))
}

#[cfg(test)]
mod tests {
	//! Each fast path against burn-flex's own kernel on seeded random data, across strides,
	//! paddings, dilations, groups, batches and transposes.
	use super::*;
	use burn::tensor::ops::{ConvOptions, FloatTensorOps, ModuleOps};
	use burn_flex::Flex;

	fn random(shape: &[usize], seed: u64) -> F<Flex> {
		let n = shape.iter().product();
		let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
		let data: Vec<f32> = (0..n)
			.map(|_| {
				s ^= s << 13;
				s ^= s >> 7;
				s ^= s << 17;
				(s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
			})
			.collect();
		FlexTensor::from_data(TensorData::new(data, Shape::from(shape.to_vec())))
	}

	fn values(t: F<Flex>) -> (Vec<usize>, Vec<f32>) {
		let shape = t.layout().shape().to_vec();
		(shape, t.into_data().into_vec::<f32>().unwrap())
	}

	fn assert_close(got: F<Flex>, want: F<Flex>, what: &str) {
		let ((gs, g), (ws, w)) = (values(got), values(want));
		assert_eq!(gs, ws, "{what}: shape");
		for (i, (a, b)) in g.iter().zip(&w).enumerate() {
			assert!((a - b).abs() <= 1e-5 + 1e-4 * b.abs(), "{what}: element {i}: {a} vs {b}");
		}
	}

	#[test]
	fn conv2d_matches_burn() {
		// (batch, channels, h, w, out channels, kernel, stride, pad, dilation, groups, bias)
		let cases = [
			(1, 1, 28, 28, 32, [3, 3], [1, 1], [0, 0], [1, 1], 1, true),
			(2, 32, 13, 13, 64, [3, 3], [1, 1], [0, 0], [1, 1], 1, true),
			(3, 4, 9, 11, 6, [3, 2], [2, 3], [1, 1], [1, 1], 1, false),
			(2, 6, 10, 10, 4, [3, 3], [1, 2], [2, 1], [2, 2], 2, true),
			(1, 8, 7, 7, 8, [3, 3], [1, 1], [1, 1], [1, 1], 8, true),
			(4, 16, 5, 6, 8, [1, 1], [1, 1], [0, 0], [1, 1], 1, true),
			(1, 3, 6, 6, 2, [1, 1], [2, 2], [1, 0], [1, 1], 1, false),
			(2, 2, 4, 4, 3, [4, 4], [1, 1], [0, 0], [1, 1], 1, true),
		];
		for (i, &(n, c, h, w, m, k, s, p, d, g, bias)) in cases.iter().enumerate() {
			let x = random(&[n, c, h, w], i as u64);
			let wt = random(&[m, c / g, k[0], k[1]], 100 + i as u64);
			let b = bias.then(|| random(&[m], 200 + i as u64));
			let got = conv2d::<Flex>(&x, &wt, b.as_ref(), s, p, d, g).expect("f32 on burn-flex");
			let want = Flex::conv2d(x, wt, b, ConvOptions::new(s, p, d, g));
			assert_close(got, want, &format!("conv case {i}"));
		}
	}

	#[test]
	fn max_pool2d_matches_burn_and_propagates_nan() {
		let cases = [
			([2, 3, 26, 26], [2, 2], [2, 2], [0, 0], [1, 1]),
			([1, 2, 7, 9], [3, 3], [2, 1], [1, 1], [1, 1]),
			([1, 1, 10, 10], [3, 2], [1, 3], [0, 1], [2, 2]),
			([40, 8, 5, 5], [5, 5], [1, 1], [2, 2], [1, 1]),
			([2, 3, 9, 10], [3, 3], [3, 3], [0, 0], [1, 1]),
			([1, 2, 8, 9], [4, 4], [4, 4], [0, 0], [1, 1]),
		];
		for (i, (shape, k, s, p, d)) in cases.into_iter().enumerate() {
			let x = random(&shape, 300 + i as u64);
			let got = max_pool2d::<Flex>(&x, k, s, p, d).expect("f32 on burn-flex");
			let want = Flex::max_pool2d(x, k, s, p, d, false);
			assert_close(got, want, &format!("pool case {i}"));
		}
		let mut data = vec![1.0f32; 16];
		data[5] = f32::NAN;
		let x = FlexTensor::from_data(TensorData::new(data, Shape::from(vec![1, 1, 4, 4])));
		let (_, out) = values(max_pool2d::<Flex>(&x, [2, 2], [2, 2], [0, 0], [1, 1]).unwrap());
		assert!(out[0].is_nan() && out[1..].iter().all(|&v| v == 1.0), "{out:?}");
	}

	#[test]
	fn gemm_matches_matmul_with_transposes_and_broadcast_c() {
		for (i, (m, k, n)) in [(1, 784, 512), (32, 256, 10), (5, 3, 7), (64, 64, 64)].into_iter().enumerate() {
			for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
				for c_shape in [vec![], vec![n], vec![1, n], vec![m, 1], vec![m, n]] {
					let seed = (i * 100) as u64;
					let a = random(&if ta { [k, m] } else { [m, k] }, seed);
					let b = random(&if tb { [n, k] } else { [k, n] }, seed + 1);
					let c = random(&c_shape, seed + 2);
					let (alpha, beta) = (0.5, 2.0);
					let got = gemm::<Flex>(&a, &b, Some(&c), ta, tb, alpha, beta).expect("f32 on burn-flex");
					let a = if ta { Flex::float_permute(a, &[1, 0]) } else { a };
					let b = if tb { Flex::float_permute(b, &[1, 0]) } else { b };
					let ab = Flex::float_mul_scalar(Flex::float_matmul(a, b), alpha.into());
					let c = Flex::float_mul_scalar(c, beta.into());
					let c = Flex::float_expand(c, Shape::from(vec![m, n]));
					let want = Flex::float_add(ab, c);
					assert_close(got, want, &format!("gemm {m}x{k}x{n} ta={ta} tb={tb} c={c_shape:?}"));
				}
			}
		}
	}

	#[test]
	fn other_dtypes_are_left_to_burn() {
		let x = FlexTensor::from_data(TensorData::new(vec![1.0f64; 16], Shape::from(vec![1, 1, 4, 4])));
		assert!(max_pool2d::<Flex>(&x, [2, 2], [2, 2], [0, 0], [1, 1]).is_none());
	}
}
