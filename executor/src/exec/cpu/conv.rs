//! 2-D convolution: the direct kernels where the CPU has AVX-512 or AVX2 ([`super::direct`]),
//! otherwise im2col and a GEMM per image and group, or for a shallow convolution sums straight
//! from the input rows; the bias, a Relu and a max pooling are applied in the same pass.

#[cfg(target_arch = "x86_64")]
use super::{avx2_fma, portable_only};
use super::{
	build_chunks, direct, f32_data, gemm_strided, init_rows, inside, optional_f32_data,
	parallelism,
	pool::{pool_plane, Pool, Window},
	relu_in_place, spin, to_backend, with_col, FlexData, Mat, Shared, F, PARALLEL_MACS, SPLIT_MACS,
};
use burn::tensor::backend::Backend;
use std::{mem::MaybeUninit, ops::Range};

/// 2-D convolution of NCHW `x` by `w` [M, C/groups, kh, kw] with symmetric `pads` (the
/// asymmetric part is applied before), followed by Relu when `relu` and by max pooling when
/// `pool`, each image pooled while it is in cache.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d<B: Backend>(
	x: &F<B>,
	w: &F<B>,
	bias: Option<&F<B>>,
	stride: [usize; 2],
	pads: [usize; 2],
	dilation: [usize; 2],
	groups: usize,
	relu: bool,
	pool: Option<Window>,
) -> Option<F<B>> {
	let (xd, wd) = (f32_data::<B>(x)?, f32_data::<B>(w)?);
	let bd = optional_f32_data::<B>(bias)?;
	let xs = xd.0.layout().shape().to_vec();
	let ws = wd.0.layout().shape().to_vec();
	let (n, c, h, wi) = (xs[0], xs[1], xs[2], xs[3]);
	let (m, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
	let window = Window { kernel: [kh, kw], stride, pads, dilation };
	let (oh, ow) = (window.out_len(0, h), window.out_len(1, wi));
	let (mg, k, p) = (m / groups, cg * kh * kw, oh * ow);
	let pointwise = kh == 1 && kw == 1 && stride == [1, 1] && pads == [0, 0];
	let geometry = Im2col { chw: [cg, h, wi], window, out: [oh, ow] };

	let (x, w, b) = (xd.slice(), wd.slice(), bd.as_ref().map(FlexData::slice));
	let macs = mg * p * k * groups;
	// Images in parallel, each GEMM on one thread.
	let per_image = n > 1 && macs * n >= PARALLEL_MACS / 8;
	// Whether a single image of at least `macs_from` multiply-adds splits its output rows
	// over the threads.
	let threads = spin::threads();
	let splits = |macs_from: usize| n == 1 && macs >= macs_from && oh >= 2 * threads && threads > 1;
	let pool_window = pool;
	let pool = pool_window.map(|window| Pool::new(window, [oh, ow]));
	let [poh, pow] = pool.as_ref().map_or([oh, ow], |pool| pool.out);
	// A pooling by non-overlapping windows is done by the split's tasks too, each on the
	// windows of its rows (whole windows: the rows per task are a multiple of their height).
	let tiled = pool_window.filter(Window::tiles);
	let per = oh.div_ceil(threads).next_multiple_of(tiled.map_or(1, |w| w.kernel[0]));

	if direct::available() && direct::suits(mg, pointwise) && n * c * oh * ow > 0 {
		// Padding becomes part of a copy of the input: every tap then reads the image.
		let padded;
		let (x, geometry) = if pads == [0, 0] {
			(x, geometry)
		} else {
			padded = pad_planes(x, [h, wi], pads);
			let chw = [cg, h + 2 * pads[0], wi + 2 * pads[1]];
			(&padded[..], Im2col { chw, window: Window { pads: [0, 0], ..window }, out: [oh, ow] })
		};
		let packed = direct::Packed::new(&wd.0, w, b, groups, &geometry);
		let epilogue = direct::Epilogue { relu, pool: pool.as_ref() };
		// Its tiles and pooling split well from 128K multiply-adds (LeNet's first layer).
		let out = direct::conv(
			x,
			n,
			&geometry,
			&packed,
			&epilogue,
			per_image,
			splits(SPLIT_MACS / 32),
			per,
		);
		return Some(to_backend::<B>(out, vec![n, m, poh, pow]));
	}

	let par = if per_image { gemm::Parallelism::None } else { parallelism(macs) };
	// A single image of 256K+ multiply-adds splits its output rows, each thread unfolding its
	// own rows: one im2col written by one core and read by another cost more in moving cache
	// lines than the split saved.
	let split = splits(SPLIT_MACS / 16);
	// A shallow reduction over unpadded rows is summed straight from the input.
	let small = !pointwise && k <= SMALL_DEPTH && stride[1] == 1 && pads == [0, 0] && ow >= 8;
	let band = |t: usize| t * per..((t + 1) * per).min(oh);

	// Rows `rows` of image `img`'s output (m × p at `conv`, which may be uninitialised) for
	// every group, then their Relu. Each call starts its own rows from the bias, so that no
	// thread writes rows another computes (which moved them between cores).
	let rows_of = |img: usize, rows: Range<usize>, conv: Shared<f32>, par: gemm::Parallelism| {
		let cols = rows.len() * ow;
		for ch in 0..m {
			// SAFETY: these rows of channel ch are this call's alone.
			let band = unsafe {
				std::slice::from_raw_parts_mut(conv.at(ch * p + rows.start * ow).cast(), cols)
			};
			init_rows(band, cols, b.map(|b| &b[ch..=ch]));
		}
		for g in 0..groups {
			let src = &x[(img * c + g * cg) * h * wi..][..cg * h * wi];
			let weights = &w[g * mg * k..][..mg * k];
			let lhs = Mat::of(weights, k, false);
			let dst = conv.at(g * mg * p + rows.start * ow);
			if small {
				let bias = b.map(|b| &b[g * mg..][..mg]);
				small_conv(
					src,
					&geometry,
					weights,
					bias,
					rows.clone(),
					Shared(conv.at(g * mg * p)),
					p,
				);
			} else if pointwise {
				let rhs = Mat::of(src, p, false).columns_from(rows.start * ow);
				// SAFETY: dst addresses mg rows of these cols, p apart, inside this group's
				// output and written by this call alone; rhs is the same columns of the
				// image (k × p), lhs mg × k.
				unsafe { gemm_strided([mg, cols, k], dst, p, true, lhs, rhs, 1.0, par) }
			} else {
				with_col(k * cols, |col| {
					im2col(src, &geometry, rows.clone(), col);
					// SAFETY: as above, with rhs the k × cols unfolded rows.
					unsafe {
						gemm_strided(
							[mg, cols, k],
							dst,
							p,
							true,
							lhs,
							Mat::of(col, cols, false),
							1.0,
							par,
						)
					}
				});
			}
		}
		if relu {
			for ch in 0..m {
				// SAFETY: these rows of channel ch are this call's alone.
				relu_in_place(unsafe {
					std::slice::from_raw_parts_mut(conv.at(ch * p + rows.start * ow), cols)
				});
			}
		}
	};
	// The whole image, its rows split over the threads when `split`.
	let all_rows = |img: usize, conv: Shared<f32>| {
		if split {
			spin::for_each(oh.div_ceil(per), |t| {
				rows_of(img, band(t), conv, gemm::Parallelism::None)
			});
		} else {
			rows_of(img, 0..oh, conv, par);
		}
	};
	let image = |img: usize, out: &mut [MaybeUninit<f32>]| {
		let Some(pool) = &pool else {
			return all_rows(img, Shared(out.as_mut_ptr().cast()));
		};
		let mut unpooled = Vec::<f32>::with_capacity(m * p);
		let base = Shared(unpooled.as_mut_ptr());
		match tiled {
			Some(window) if split => {
				let pooled = Shared(out.as_mut_ptr());
				let kh = window.kernel[0];
				spin::for_each(oh.div_ceil(per), |t| {
					let rows = band(t);
					rows_of(img, rows.clone(), base, gemm::Parallelism::None);
					let (q0, q1) = (rows.start / kh, (rows.end / kh).min(poh));
					if q0 < q1 {
						let band_pool = Pool::new(window, [(q1 - q0) * kh, ow]);
						for ch in 0..m {
							// SAFETY: conv rows q0·kh..q1·kh of channel ch lie in `rows`, written
							// just above by this task, and pooled rows q0..q1 are its alone.
							let (src, dst) = unsafe {
								(
									std::slice::from_raw_parts(
										base.at(ch * p + q0 * kh * ow),
										(q1 - q0) * kh * ow,
									),
									std::slice::from_raw_parts_mut(
										pooled.at(ch * poh * pow + q0 * pow),
										(q1 - q0) * pow,
									),
								)
							};
							pool_plane(src, dst, &band_pool);
						}
					}
				});
			},
			_ => {
				all_rows(img, base);
				// SAFETY: `all_rows` wrote every row of every channel.
				pool.planes(unsafe { std::slice::from_raw_parts(base.0, m * p) }, out);
			},
		}
	};
	let out = build_chunks(n * m * poh * pow, m * poh * pow, per_image, image);
	Some(to_backend::<B>(out, vec![n, m, poh, pow]))
}

/// `planes` of [h, w] with `pads` zeros added on each side.
fn pad_planes(planes: &[f32], [h, w]: [usize; 2], [ph, pw]: [usize; 2]) -> Vec<f32> {
	let (hp, wp) = (h + 2 * ph, w + 2 * pw);
	let mut out = vec![0.0; planes.len() / (h * w).max(1) * hp * wp];
	for (src, dst) in planes.chunks_exact(h * w).zip(out.chunks_exact_mut(hp * wp)) {
		for (y, row) in src.chunks_exact(w).enumerate() {
			dst[(y + ph) * wp + pw..][..w].copy_from_slice(row);
		}
	}
	out
}

/// Convolutions with at most this many multiply-adds per output (C·kh·kw) skip im2col.
const SMALL_DEPTH: usize = 32;

/// Rows `rows` of output channels `0..w.len() / k` of a convolution with a small depth `k`
/// (unit stride along the width, no padding), written at `out` (channel planes `p` apart),
/// each value `bias + Σ w · x` summed straight from the input rows. For LeNet's first layer
/// (one channel, 3×3) a GEMM of depth 9 spent more on loading and storing its tile than on
/// multiplying, and im2col cost as much again.
fn small_conv(
	src: &[f32],
	geometry: &Im2col,
	w: &[f32],
	bias: Option<&[f32]>,
	rows: Range<usize>,
	out: Shared<f32>,
	p: usize,
) {
	let [kh, kw] = geometry.window.kernel;
	let k = geometry.chw[0] * kh * kw;
	let ow = geometry.out[1];
	let channels = w.len() / k;
	// SAFETY: channel m's rows `rows` at `out` are this call's alone (the caller's split).
	let dst = |m: usize| unsafe {
		std::slice::from_raw_parts_mut(out.at(m * p + rows.start * ow), rows.len() * ow)
	};
	let bias = |m: usize| bias.map_or(0.0, |b| b[m]);
	#[cfg(target_arch = "x86_64")]
	if !portable_only() && avx2_fma() {
		let mut m = 0;
		while m + 4 <= channels {
			// SAFETY: the CPU has AVX2 and FMA.
			unsafe {
				small_conv_avx2::<4>(
					src,
					geometry,
					&w[m * k..][..4 * k],
					std::array::from_fn(|i| bias(m + i)),
					rows.clone(),
					std::array::from_fn(|i| dst(m + i)),
				)
			};
			m += 4;
		}
		for m in m..channels {
			// SAFETY: as above.
			unsafe {
				small_conv_avx2::<1>(
					src,
					geometry,
					&w[m * k..][..k],
					[bias(m)],
					rows.clone(),
					[dst(m)],
				)
			};
		}
		return;
	}
	for m in 0..channels {
		small_conv_portable(src, geometry, &w[m * k..][..k], bias(m), rows.clone(), dst(m));
	}
}

/// [`small_conv`] for one channel, in the order the AVX2 version sums: the same bits.
fn small_conv_portable(
	src: &[f32],
	geometry: &Im2col,
	w: &[f32],
	bias: f32,
	rows: Range<usize>,
	out: &mut [f32],
) {
	let Im2col {
		chw: [c, h, wi],
		window: Window { kernel: [kh, kw], stride: [sh, _], dilation: [dh, dw], .. },
		out: [_, ow],
	} = *geometry;
	for (oy, out) in rows.zip(out.chunks_exact_mut(ow)) {
		for (ox, o) in out.iter_mut().enumerate() {
			let mut acc = bias;
			let mut taps = w.iter();
			for ch in 0..c {
				for i in 0..kh {
					let line = &src[ch * h * wi + (oy * sh + i * dh) * wi..][..wi];
					for j in 0..kw {
						acc = line[ox + j * dw].mul_add(*taps.next().expect("k taps"), acc);
					}
				}
			}
			*o = acc;
		}
	}
}

/// [`small_conv`] for `M` channels at once in AVX2: two runs of 8 output columns of a row are
/// summed in 2·M registers, each input vector loaded once for the M channels. A row's last 8
/// columns overlap the 8 before when the width is not a multiple of 8 (they are recomputed
/// the same).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn small_conv_avx2<const M: usize>(
	src: &[f32],
	geometry: &Im2col,
	w: &[f32],
	bias: [f32; M],
	rows: Range<usize>,
	mut out: [&mut [f32]; M],
) {
	use std::arch::x86_64::*;
	let Im2col {
		chw: [c, h, wi],
		window: Window { kernel: [kh, kw], stride: [sh, _], dilation: [dh, dw], .. },
		out: [_, ow],
	} = *geometry;
	let k = c * kh * kw;
	// Where each tap reads, from the window's corner; the weights by tap, then channel.
	let taps: Vec<usize> = (0..c)
		.flat_map(|ch| {
			(0..kh).flat_map(move |i| (0..kw).map(move |j| ch * h * wi + i * dh * wi + j * dw))
		})
		.collect();
	let weights: Vec<[f32; M]> = (0..k).map(|t| std::array::from_fn(|m| w[m * k + t])).collect();
	let starts: Vec<usize> =
		(0..ow / 8).map(|q| q * 8).chain((ow % 8 != 0).then_some(ow - 8)).collect();
	let reach = taps.last().copied().unwrap_or(0) + ow;
	for (r, oy) in rows.enumerate() {
		let corner = oy * sh * wi;
		// Every load below is of 8 floats at corner + tap + s, s + 8 ≤ ow.
		assert!(corner + reach <= src.len(), "window rows inside the image");
		let x = src[corner..].as_ptr();
		let block = |ss: &[usize]| -> [[__m256; M]; 2] {
			let mut acc = [bias.map(|b| _mm256_set1_ps(b)); 2];
			for (&tap, wt) in taps.iter().zip(&weights) {
				// SAFETY: tap + s + 8 ≤ reach, checked above.
				let xv: [__m256; 2] = std::array::from_fn(|q| unsafe {
					_mm256_loadu_ps(x.add(tap + ss[q.min(ss.len() - 1)]))
				});
				for m in 0..M {
					let wv = _mm256_set1_ps(wt[m]);
					acc[0][m] = _mm256_fmadd_ps(xv[0], wv, acc[0][m]);
					acc[1][m] = _mm256_fmadd_ps(xv[1], wv, acc[1][m]);
				}
			}
			acc
		};
		for ss in starts.chunks(2) {
			let acc = block(ss);
			for (q, &s) in ss.iter().enumerate() {
				for (out, acc) in out.iter_mut().zip(acc[q]) {
					let dst: &mut [f32; 8] =
						(&mut out[r * ow + s..][..8]).try_into().expect("8 columns");
					// SAFETY: 8 floats of this channel's row.
					unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), acc) };
				}
			}
		}
	}
}

/// The shape of one group's convolution: input [C, H, W], window and output [oh, ow].
pub(super) struct Im2col {
	pub chw: [usize; 3],
	pub window: Window,
	pub out: [usize; 2],
}

simd_kernel! {
	/// Unfolds output rows `out_rows` of one image [C, H, W] into `col` [C·kh·kw,
	/// out_rows·ow], writing every element once:
	/// zeros where the window is in the padding, runs of the input rows elsewhere.
	fn im2col(src: &[f32], geometry: &Im2col, out_rows: Range<usize>, col: &mut [f32]) {
		let Im2col {
			chw: [c, h, w],
			window: Window { kernel: [kh, kw], stride: [sh, sw], pads: [ph, pw], dilation: [dh, dw] },
			out: [oh, ow],
		} =
			*geometry;
		let r0 = out_rows.start;
		let mut rows = col.chunks_exact_mut(out_rows.len() * ow);
		for ch in 0..c {
			let plane = &src[ch * h * w..][..h * w];
			for i in 0..kh {
				// The output rows whose tap is inside the image, among those asked for.
				let ys = inside(i * dh, ph, sh, h, oh);
				let start = ys.start.clamp(r0, out_rows.end);
				let ys = start..ys.end.clamp(start, out_rows.end);
				for j in 0..kw {
					let row = rows.next().expect("c·kh·kw rows");
					let xs = inside(j * dw, pw, sw, w, ow);
					if xs.is_empty() {
						row.fill(0.0);
						continue;
					}
					// Rows and columns in the padding (none without padding: no call to memset).
					if ys.start > r0 {
						row[..(ys.start - r0) * ow].fill(0.0);
					}
					if ys.end < out_rows.end {
						row[(ys.end - r0) * ow..].fill(0.0);
					}
					let x0 = xs.start * sw + j * dw - pw;
					for oy in ys.clone() {
						let line = &plane[(oy * sh + i * dh - ph) * w..][..w];
						let dst = &mut row[(oy - r0) * ow..][..ow];
						if xs.start > 0 {
							dst[..xs.start].fill(0.0);
						}
						if xs.end < ow {
							dst[xs.end..].fill(0.0);
						}
						let dst = &mut dst[xs.clone()];
						if sw == 1 {
							copy_run(dst, &line[x0..x0 + dst.len()]);
						} else {
							for (k, d) in dst.iter_mut().enumerate() {
								*d = line[x0 + k * sw];
							}
						}
					}
				}
			}
		}
	}
}

/// `dst.copy_from_slice(src)` for the short runs of im2col, inline: a call to memmove per run
/// cost as much as the copying. Runs of up to 16 are two fixed-size copies that may overlap
/// (a loop would be turned back into a memmove call).
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
	#[inline(always)]
	fn fixed<const N: usize>(dst: &mut [f32], src: &[f32], at: usize) {
		let d: &mut [f32; N] = (&mut dst[at..at + N]).try_into().expect("N elements");
		*d = src[at..at + N].try_into().expect("N elements");
	}
	let n = dst.len();
	assert_eq!(n, src.len());
	match n {
		0..4 => dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s),
		4..8 => {
			fixed::<4>(dst, src, 0);
			fixed::<4>(dst, src, n - 4);
		},
		8..=16 => {
			fixed::<8>(dst, src, 0);
			fixed::<8>(dst, src, n - 8);
		},
		_ => dst.copy_from_slice(src),
	}
}

#[cfg(test)]
mod tests {
	//! Against burn-flex's own kernel on seeded random data, across strides, paddings,
	//! dilations, groups and batches, and the direct kernels against im2col.
	use super::{
		super::{max_pool2d, testing::*},
		*,
	};
	use burn::tensor::{
		ops::{ActivationOps, ConvOptions, ModuleOps},
		Shape, TensorData,
	};
	use burn_flex::{Flex, FlexTensor};

	#[test]
	fn conv2d_matches_burn() {
		// (batch, channels, h, w, out channels, kernel, stride, pad, dilation, groups, bias)
		let cases = [
			(1, 1, 28, 28, 32, [3, 3], [1, 1], [0, 0], [1, 1], 1, true),
			(1, 32, 13, 13, 64, [3, 3], [1, 1], [0, 0], [1, 1], 1, true),
			(1, 16, 15, 9, 24, [3, 3], [1, 1], [1, 1], [1, 1], 1, false),
			// Depths of at most 32 without padding: summed straight from the input rows.
			(2, 3, 12, 20, 10, [3, 3], [2, 1], [0, 0], [1, 2], 1, true),
			(1, 2, 9, 21, 7, [2, 3], [1, 1], [0, 0], [1, 1], 1, false),
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
			let got = conv2d::<Flex>(&x, &wt, b.as_ref(), s, p, d, g, false, None)
				.expect("f32 on burn-flex");
			let fused = conv2d::<Flex>(&x, &wt, b.as_ref(), s, p, d, g, true, None)
				.expect("f32 on burn-flex");
			// The fused Relu is burn's, bit for bit, and so is the pooling after it.
			let relu = Flex::relu(got.clone());
			assert_eq!(values(fused), values(relu.clone()), "conv case {i} with Relu");
			let [oh, ow] = [2, 3].map(|a| relu.layout().shape()[a]);
			let pool = window([oh.min(2), ow.min(3)], [1, 2], [0, ow.min(3) / 2], [1, 1]);
			let pooled = conv2d::<Flex>(&x, &wt, b.as_ref(), s, p, d, g, true, Some(pool))
				.expect("f32 on burn-flex");
			assert_eq!(
				values(pooled),
				values(max_pool2d::<Flex>(&relu, pool).unwrap()),
				"conv case {i} pooled"
			);
			// Non-overlapping windows, which a split single image pools inside its tasks.
			for k in [[2, 2], [3, 3], [2, 3]].into_iter().filter(|k| k[0] <= oh && k[1] <= ow) {
				let tiled = window(k, k, [0, 0], [1, 1]);
				let pooled =
					conv2d::<Flex>(&x, &wt, b.as_ref(), s, p, d, g, true, Some(tiled)).unwrap();
				let want = values(max_pool2d::<Flex>(&relu, tiled).unwrap());
				assert_eq!(values(pooled), want, "conv case {i} pooled by {k:?}");
			}
			let want = Flex::conv2d(x, wt, b, ConvOptions::new(s, p, d, g));
			assert_close(got, want, &format!("conv case {i}"));
		}
	}

	/// Where the CPU has AVX-512 or AVX2 most convolutions above take the direct path: this
	/// checks it against the im2col path, and its AVX-512, AVX2 and portable kernels against
	/// each other (bit for bit, those this CPU has), over channel counts that fill one to five
	/// 16-channel blocks and more than one tile, with padding, strides, dilation, groups,
	/// batches, split single images, each kind of pooling, and NaN.
	#[test]
	fn direct_convolution_matches_im2col_and_its_portable_twin() {
		if !direct::available() {
			eprintln!("no AVX-512 or AVX2 on this CPU: the direct convolution is not taken here");
			return;
		}
		let forced = |isa: direct::Isa, f: &dyn Fn() -> F<Flex>| {
			direct::FORCE.set(Some(isa));
			let out = f();
			direct::FORCE.set(None);
			out
		};
		let unfolded = |f: &dyn Fn() -> F<Flex>| {
			direct::OFF.set(true);
			let out = f();
			direct::OFF.set(false);
			out
		};
		let bits = |t: F<Flex>| values(t).1.into_iter().map(f32::to_bits).collect::<Vec<_>>();
		// (batch, channels, h, w, out channels, kernel, stride, pad, dilation, groups)
		let cases = [
			(1, 1, 28, 28, 32, [3, 3], [1, 1], [0, 0], [1, 1], 1),
			(3, 32, 13, 13, 64, [3, 3], [1, 1], [0, 0], [1, 1], 1),
			(1, 32, 13, 13, 64, [3, 3], [1, 1], [0, 0], [1, 1], 1),
			(1, 5, 9, 11, 16, [3, 3], [2, 1], [1, 1], [1, 2], 1),
			(3, 8, 10, 10, 48, [2, 3], [1, 1], [1, 0], [1, 1], 1),
			(1, 12, 30, 30, 80, [3, 3], [1, 1], [1, 1], [1, 1], 1),
			(2, 8, 9, 9, 40, [3, 3], [1, 1], [0, 0], [1, 1], 2),
			(2, 16, 7, 8, 16, [1, 1], [2, 2], [0, 1], [1, 1], 1),
			// Wide rows and two passes of channel blocks: bands of 6 rows.
			(1, 64, 20, 60, 80, [3, 3], [1, 1], [1, 1], [1, 1], 1),
		];
		for (i, &(n, c, h, w, m, k, s, p, d, g)) in cases.iter().enumerate() {
			let mut x = random(&[n, c, h, w], 500 + i as u64);
			if i == 2 {
				// One NaN: it spreads to the outputs whose windows read it.
				let mut v = values(x).1;
				v[3 * w + 4] = f32::NAN;
				x = FlexTensor::from_data(TensorData::new(v, Shape::from(vec![n, c, h, w])));
			}
			let wt = random(&[m, c / g, k[0], k[1]], 600 + i as u64);
			let b = random(&[m], 700 + i as u64);
			let conv = |relu: bool, pool: Option<Window>| {
				conv2d::<Flex>(&x, &wt, Some(&b), s, p, d, g, relu, pool).expect("f32 on burn-flex")
			};
			let [oh, ow] = [2, 3].map(|a| conv(false, None).layout().shape()[a]);
			let pools = [
				None,
				Some(window([2, 2], [2, 2], [0, 0], [1, 1])),
				Some(window([3, 3], [2, 2], [1, 1], [1, 1])),
				Some(window([2, 3], [1, 2], [0, 1], [2, 1])),
			];
			let fits = |w: &Window| {
				(0..2).all(|a| [oh, ow][a] + 2 * w.pads[a] > (w.kernel[a] - 1) * w.dilation[a])
			};
			for pool in pools.into_iter().filter(|pool| pool.as_ref().is_none_or(fits)) {
				for relu in [false, true] {
					let what = format!("case {i}, relu {relu}, pool {pool:?}");
					let direct = conv(relu, pool);
					for isa in [direct::Isa::Avx2, direct::Isa::Portable] {
						let other = forced(isa, &|| conv(relu, pool));
						assert_eq!(bits(direct.clone()), bits(other), "{what}: {isa:?} kernels");
					}
					let im2col = unfolded(&|| conv(relu, pool));
					let ((ds, dv), (is, iv)) = (values(direct), values(im2col));
					assert_eq!(ds, is, "{what}: shape");
					for (j, (a, b)) in dv.iter().zip(&iv).enumerate() {
						let close =
							(a - b).abs() <= 1e-5 + 1e-4 * b.abs() || (a.is_nan() && b.is_nan());
						assert!(close, "{what}: element {j}: {a} vs {b}");
					}
					if i == 2 {
						assert_eq!(
							dv.iter().any(|v| v.is_nan()),
							!relu,
							"{what}: NaN kept without Relu"
						);
					}
				}
			}
		}
	}
}
