//! 2-D max pooling by a direct window loop, and the window geometry convolutions share.

use super::{build_chunks, f32_data, init_rows, inside, spin, to_backend, F};
use burn::tensor::backend::Backend;
use std::{mem::MaybeUninit, ops::Range};

/// A 2-D window, of a convolution or a pooling: kernel, stride, symmetric pads and dilation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Window {
	pub kernel: [usize; 2],
	pub stride: [usize; 2],
	pub pads: [usize; 2],
	pub dilation: [usize; 2],
}

impl Window {
	/// Whether the windows tile the input: side by side, no padding, no dilation.
	pub(super) fn tiles(&self) -> bool {
		self.pads == [0, 0] && self.dilation == [1, 1] && self.stride == self.kernel
	}

	/// The output size along axis `a` of an input of `len` (padding included in the window).
	pub(super) fn out_len(&self, a: usize, len: usize) -> usize {
		out_len(len, self.pads[a], self.kernel[a], self.stride[a], self.dilation[a])
	}
}

/// Outputs of a window of `kernel` taps `dilation` apart, moved by `stride` over `len` values
/// padded by `pad` on each side (floor rounding; the caller checked the window fits).
pub(crate) fn out_len(
	len: usize,
	pad: usize,
	kernel: usize,
	stride: usize,
	dilation: usize,
) -> usize {
	(len + 2 * pad - ((kernel - 1) * dilation + 1)) / stride + 1
}

/// A max pooling [`Window`] (pads never selected) over an [h, w] plane, giving [oh, ow] with
/// floor rounding.
pub(super) struct Pool {
	pub window: Window,
	pub input: [usize; 2],
	pub out: [usize; 2],
	/// Per output row, the kernel rows inside the image.
	pub rows: Vec<Range<usize>>,
	/// Per kernel column, its offset and the output columns whose tap is inside.
	pub cols: Vec<(usize, Range<usize>)>,
}

impl Pool {
	/// The window over an [h, w] plane, which the caller checked it fits (padding included).
	pub(super) fn new(window: Window, [h, w]: [usize; 2]) -> Pool {
		let Window { kernel: [kh, kw], stride: [sh, sw], pads: [ph, pw], dilation: [dh, dw] } =
			window;
		let (oh, ow) = (window.out_len(0, h), window.out_len(1, w));
		Pool {
			window,
			input: [h, w],
			out: [oh, ow],
			rows: (0..oh).map(|oy| inside(oy * sh, ph, dh, h, kh)).collect(),
			cols: (0..kw).map(|j| (j * dw, inside(j * dw, pw, sw, w, ow))).collect(),
		}
	}

	/// Pools `planes` (whole [h, w] planes) into `out`, whose planes are [oh, ow], writing all
	/// of it.
	pub(super) fn planes(&self, planes: &[f32], out: &mut [MaybeUninit<f32>]) {
		let [h, w] = self.input;
		let out_plane = self.out[0] * self.out[1];
		for (src, dst) in planes.chunks_exact(h * w).zip(out.chunks_exact_mut(out_plane)) {
			pool_plane(src, dst, self);
		}
	}
}

/// 2-D max pooling of NCHW `x`. NaN propagates, like burn's kernel and onnxruntime.
pub(crate) fn max_pool2d<B: Backend>(x: &F<B>, window: Window) -> Option<F<B>> {
	let xd = f32_data::<B>(x)?;
	let xs = xd.0.layout().shape().to_vec();
	let (n, c, h, w) = (xs[0], xs[1], xs[2], xs[3]);
	let pool = Pool::new(window, [h, w]);
	let [oh, ow] = pool.out;
	let x = xd.slice();
	let (plane, out_plane) = (h * w, oh * ow);
	let taps = n * c * oh * ow * window.kernel[0] * window.kernel[1];
	// Handing small work to the thread pool costs more than it saves; about four tasks per
	// thread otherwise, as one plane per task costs more in scheduling than pooling.
	let parallel = taps >= 1 << 18;
	let per_task = if parallel { (n * c).div_ceil(4 * spin::threads()) } else { n * c };
	let out = build_chunks(n * c * out_plane, per_task * out_plane, parallel, |t, dst| {
		pool.planes(&x[t * per_task * plane..][..dst.len() / out_plane * plane], dst);
	});
	Some(to_backend::<B>(out, vec![n, c, oh, ow]))
}

simd_kernel! {
	/// Max-pools one plane into `dst`, writing all of it.
	pub(super) fn pool_plane(src: &[f32], dst: &mut [MaybeUninit<f32>], pool: &Pool) {
		let Pool {
			window: Window { kernel: [kh, kw], stride: [sh, sw], pads: [ph, pw], dilation: [dh, _] },
			input: [_, w],
			out: [_, ow],
			..
		} =
			*pool;
		// A full fold, not `any`: it vectorizes. Without NaN, `f32::max` (which drops NaN) is exact.
		let nan = src.iter().fold(false, |acc, v| acc | v.is_nan());
		if pool.window.tiles() && !nan && kh == kw && kh <= 3 {
			// Non-overlapping square windows inside the image (2×2 stride 2 and the like).
			match kh {
				1 => dst.iter_mut().zip(src).for_each(|(d, &v)| _ = d.write(v)),
				2 => square_windows::<2>(src, dst, w, ow),
				_ => square_windows::<3>(src, dst, w, ow),
			}
			return;
		}
		let dst = init_rows(dst, dst.len(), Some(&[f32::NEG_INFINITY]));
		// Taps are applied to a whole output row at a time, so consecutive outputs do not wait
		// on each other.
		for (oy, ks) in pool.rows.iter().enumerate() {
			let out = &mut dst[oy * ow..][..ow];
			for i in ks.clone() {
				let line = &src[(oy * sh + i * dh - ph) * w..][..w];
				for (offset, xs) in pool.cols.iter().filter(|c| !c.1.is_empty()) {
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
	}
}

/// Max pooling by non-overlapping K×K windows of a plane without NaN, each output computed
/// from its K rows at once: with K known, the compiler vectorizes across outputs.
#[inline(always)]
fn square_windows<const K: usize>(src: &[f32], dst: &mut [MaybeUninit<f32>], w: usize, ow: usize) {
	// Only for non-NaN values: a compare and select, one instruction.
	let max = |a: f32, b: f32| if a > b { a } else { b };
	for (oy, out) in dst.chunks_exact_mut(ow).enumerate() {
		let lines: [&[[f32; K]]; K] =
			std::array::from_fn(|i| src[(oy * K + i) * w..][..ow * K].as_chunks::<K>().0);
		for (x, d) in out.iter_mut().enumerate() {
			let mut m = lines[0][x][0];
			for line in &lines {
				for &v in &line[x] {
					m = max(m, v);
				}
			}
			d.write(m);
		}
	}
}

#[cfg(test)]
mod tests {
	use super::{super::testing::*, *};
	use burn::tensor::{ops::ModuleOps, Shape, TensorData};
	use burn_flex::{Flex, FlexTensor};

	#[test]
	fn max_pool2d_matches_burn_and_propagates_nan() {
		let cases = [
			([2, 3, 26, 26], [2, 2], [2, 2], [0, 0], [1, 1]),
			([1, 2, 7, 9], [3, 3], [2, 1], [1, 1], [1, 1]),
			([1, 1, 10, 10], [3, 2], [1, 3], [0, 1], [2, 2]),
			([40, 8, 5, 5], [5, 5], [1, 1], [2, 2], [1, 1]),
			([2, 3, 9, 10], [3, 3], [3, 3], [0, 0], [1, 1]),
			([1, 2, 8, 9], [4, 4], [4, 4], [0, 0], [1, 1]),
			([1, 2, 5, 5], [1, 1], [1, 1], [0, 0], [1, 1]),
		];
		for (i, (shape, k, s, p, d)) in cases.into_iter().enumerate() {
			let x = random(&shape, 300 + i as u64);
			let got = max_pool2d::<Flex>(&x, window(k, s, p, d)).expect("f32 on burn-flex");
			let want = Flex::max_pool2d(x, k, s, p, d, false);
			assert_close(got, want, &format!("pool case {i}"));
		}
		let mut data = vec![1.0f32; 16];
		data[5] = f32::NAN;
		let x = FlexTensor::from_data(TensorData::new(data, Shape::from(vec![1, 1, 4, 4])));
		let (_, out) =
			values(max_pool2d::<Flex>(&x, window([2, 2], [2, 2], [0, 0], [1, 1])).unwrap());
		assert!(out[0].is_nan() && out[1..].iter().all(|&v| v == 1.0), "{out:?}");
	}

	#[test]
	fn other_dtypes_are_left_to_burn() {
		let x =
			FlexTensor::from_data(TensorData::new(vec![1.0f64; 16], Shape::from(vec![1, 1, 4, 4])));
		assert!(max_pool2d::<Flex>(&x, window([2, 2], [2, 2], [0, 0], [1, 1])).is_none());
	}
}
