//! CPU kernels for the ops that dominate CNNs and MLPs, used when the backend is burn-flex and
//! the tensors are f32. A profile of LeNet on burn-flex put 42% of the time in its strided
//! im2col copy and 17% in its generic pooling loop, against 12% in GEMM. These kernels:
//! - on CPUs with AVX-512 or AVX2, convolve directly from the input ([`direct`]); elsewhere unfold
//!   whole rows for the GEMM, and sum shallow convolutions (depth ≤ 32) straight from the input;
//! - fold the bias, and a following Relu and max pooling, into one pass per image;
//! - pool with a direct window loop;
//! - give single-row products their own vector kernel.
//!
//! Work is split over the threads of [`super::spin`]. Other backends (CUDA) and dtypes keep
//! burn's kernels: each function returns `None`.
//!
//! The loops are written for the compiler to vectorize. [`simd_kernel!`] compiles each one
//! twice, for the baseline target and for AVX2 with FMA, and picks one per call: the release
//! binary stays portable and still uses the vector units it finds. Products use fused
//! multiply-adds in both versions, so a machine without FMA computes the same bits, slowly.

mod direct;

use super::spin;
use burn::tensor::{backend::Backend, ops::FloatTensor, Shape, TensorData};
use burn_flex::FlexTensor;
use std::{any::Any, cell::RefCell, mem::MaybeUninit, ops::Range};

type F<B> = FloatTensor<B>;

/// Below this many multiply-adds a GEMM runs on one thread (burn-flex's threshold), and a
/// batch of convolutions below an eighth of it.
const PARALLEL_MACS: usize = 192 * 192 * 192;

/// From this many multiply-adds a Gemm splits its columns over the executor's threads (a
/// single image's convolution from a sixteenth, a single row from a sixty-fourth: they are
/// memory-bound or small enough that a second core halves them).
const SPLIT_MACS: usize = 1 << 22;

/// Defines `fn $name` from a body compiled twice: as is, and with AVX2 and FMA enabled, the
/// second chosen at run time when the CPU has both. Arguments are plain identifiers.
macro_rules! simd_kernel {
	($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
		$(#[$attr])*
		#[allow(clippy::too_many_arguments)]
		fn $name($($arg: $ty),*) $(-> $ret)? {
			#[inline(always)]
			#[allow(clippy::too_many_arguments)]
			fn body($($arg: $ty),*) $(-> $ret)? $body
			#[cfg(target_arch = "x86_64")]
			{
				#[target_feature(enable = "avx2,fma")]
				#[allow(clippy::too_many_arguments)]
				unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
					body($($arg),*)
				}
				if !portable_only() && avx2_fma() {
					// SAFETY: the CPU has both features, checked just above.
					return unsafe { avx2($($arg),*) };
				}
			}
			body($($arg),*)
		}
	};
}

/// Tests can make every kernel take its portable version, to compare the two.
#[cfg(test)]
static PORTABLE_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[inline(always)]
fn portable_only() -> bool {
	#[cfg(test)]
	return PORTABLE_ONLY.load(std::sync::atomic::Ordering::Relaxed);
	#[cfg(not(test))]
	false
}

/// The contiguous f32 storage of a burn-flex tensor (copied once if it is a strided view).
fn f32_data<B: Backend>(t: &F<B>) -> Option<FlexData> {
	let flex = (t as &dyn Any).downcast_ref::<FlexTensor>()?;
	if flex.dtype() != burn::tensor::DType::F32 {
		return None;
	}
	Some(if flex.as_slice::<f32>().is_some() {
		FlexData(flex.clone())
	} else {
		FlexData(flex.to_contiguous())
	})
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
	*(Box::new(flex) as Box<dyn Any>)
		.downcast::<F<B>>()
		.expect("only called when B is burn-flex")
}

/// A `len`-element output whose chunks of `chunk` elements are each written in full by `fill`,
/// over the executor's threads when `parallel`, without zeroing the memory first.
fn build_chunks(
	len: usize,
	chunk: usize,
	parallel: bool,
	fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
	let mut out = Vec::with_capacity(len);
	let spare = &mut out.spare_capacity_mut()[..len];
	if parallel {
		let base = Shared(spare.as_mut_ptr());
		spin::for_each(len.div_ceil(chunk), |i| {
			let size = chunk.min(len - i * chunk);
			// SAFETY: chunk i of the spare capacity, which no other task touches.
			let part = unsafe { std::slice::from_raw_parts_mut(base.at(i * chunk), size) };
			fill(i, part)
		});
	} else {
		spare.chunks_mut(chunk).enumerate().for_each(|(i, c)| fill(i, c));
	}
	// SAFETY: `fill` wrote every element of every chunk (each caller's contract).
	unsafe { out.set_len(len) };
	out
}

/// At most this many values stay in a thread's im2col buffer between calls (64 MiB).
const KEPT_COL: usize = 16 << 20;

thread_local! {
	/// This thread's im2col buffer, kept so that it is not allocated and zeroed per image.
	static COL: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Lends `f` an im2col buffer of `len` values, this thread's kept one when free.
fn with_col<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
	COL.with(|kept| match kept.try_borrow_mut() {
		Ok(mut col) if len <= KEPT_COL => {
			if col.len() < len {
				col.resize(len, 0.0);
			}
			f(&mut col[..len])
		},
		_ => f(&mut vec![0.0; len]),
	})
}

/// Writes each `row`-element row of `chunk` with its value from `values` (cycled), or 0, and
/// returns the now initialised chunk.
fn init_rows<'a>(
	chunk: &'a mut [MaybeUninit<f32>],
	row: usize,
	values: Option<&[f32]>,
) -> &'a mut [f32] {
	match values {
		Some(v) => chunk
			.chunks_mut(row)
			.zip(v.iter().cycle())
			.for_each(|(r, &v)| r.fill(MaybeUninit::new(v))),
		None => chunk.fill(MaybeUninit::new(0.0)),
	}
	// SAFETY: every element was written just above; MaybeUninit<f32> has f32's layout.
	unsafe { &mut *(chunk as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// The outputs `o < count` whose tap `o · stride + offset - pad` lies inside `0..len`, as a
/// range (empty if none): what im2col copies and pooling reads, with no bounds test per tap.
fn inside(offset: usize, pad: usize, stride: usize, len: usize, count: usize) -> Range<usize> {
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

// SAFETY: a view for reading, of memory that outlives the threads reading it.
unsafe impl Send for Mat {}
unsafe impl Sync for Mat {}

impl Mat {
	/// A contiguous row-major `rows × cols` matrix, or its transpose when `transposed`.
	fn of(data: &[f32], cols: usize, transposed: bool) -> Mat {
		let (rs, cs) = if transposed { (1, cols as isize) } else { (cols as isize, 1) };
		Mat { ptr: data.as_ptr(), rs, cs }
	}

	/// The view of columns `j..` (a method, so closures capture the whole `Mat`).
	fn columns_from(self, j: usize) -> Mat {
		Mat { ptr: self.ptr.wrapping_offset(j as isize * self.cs), ..self }
	}
}

/// `dst[m × n] = (dst if accumulate, else 0) + scale · lhs[m × k] · rhs[k × n]`, `dst`
/// row-major and contiguous.
///
/// # Safety
/// `dst` holds `m * n` values and the views address only memory they own, for the given shapes.
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
	// SAFETY: as the caller promises, with dst's rows n apart.
	unsafe { gemm_strided([m, n, k], dst.as_mut_ptr(), n, accumulate, lhs, rhs, scale, par) }
}

/// [`gemm_into`] with `dst`'s rows `dst_rs` apart.
///
/// # Safety
/// `dst` addresses `m` rows of `n` writable values `dst_rs` apart that nothing else accesses
/// meanwhile, and the views address only memory they own, for the given shapes.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_strided(
	[m, n, k]: [usize; 3],
	dst: *mut f32,
	dst_rs: usize,
	accumulate: bool,
	lhs: Mat,
	rhs: Mat,
	scale: f32,
	par: gemm::Parallelism,
) {
	// SAFETY: as the caller promises.
	unsafe {
		gemm::gemm(
			m,
			n,
			k,
			dst,
			1,
			dst_rs as isize,
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
}

/// A pointer handed to the threads that each write their own part of what it points to.
struct Shared<T>(*mut T);
// SAFETY: only used for disjoint writes (and reads of what the same task wrote), joined
// before the memory is read otherwise or freed.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Clone for Shared<T> {
	fn clone(&self) -> Self {
		*self
	}
}

impl<T> Copy for Shared<T> {}

impl<T> Shared<T> {
	/// The pointer `offset` elements on (a method, so closures capture the whole `Shared`).
	fn at(self, offset: usize) -> *mut T {
		self.0.wrapping_add(offset)
	}
}

simd_kernel! {
	/// Relu in place, as burn-flex computes it (`max(x, 0)`), for fusing into the op before.
	fn relu_in_place(x: &mut [f32]) {
		for v in x.iter_mut() {
			*v = v.max(0.0);
		}
	}
}

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

/// Whether the CPU has AVX2 and FMA, the features every vector kernel here is built for.
#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
	std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
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
struct Im2col {
	chw: [usize; 3],
	window: Window,
	out: [usize; 2],
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
	fn tiles(&self) -> bool {
		self.pads == [0, 0] && self.dilation == [1, 1] && self.stride == self.kernel
	}

	/// The output size along axis `a` of an input of `len` (padding included in the window).
	fn out_len(&self, a: usize, len: usize) -> usize {
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
struct Pool {
	window: Window,
	input: [usize; 2],
	out: [usize; 2],
	/// Per output row, the kernel rows inside the image.
	rows: Vec<Range<usize>>,
	/// Per kernel column, its offset and the output columns whose tap is inside.
	cols: Vec<(usize, Range<usize>)>,
}

impl Pool {
	/// The window over an [h, w] plane, which the caller checked it fits (padding included).
	fn new(window: Window, [h, w]: [usize; 2]) -> Pool {
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
	fn planes(&self, planes: &[f32], out: &mut [MaybeUninit<f32>]) {
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
	fn pool_plane(src: &[f32], dst: &mut [MaybeUninit<f32>], pool: &Pool) {
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
	//! Each fast path against burn-flex's own kernel on seeded random data, across strides,
	//! paddings, dilations, groups, batches and transposes.
	use super::*;
	use burn::tensor::ops::{ActivationOps, ConvOptions, FloatTensorOps, ModuleOps};
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

	fn window(
		kernel: [usize; 2],
		stride: [usize; 2],
		pads: [usize; 2],
		dilation: [usize; 2],
	) -> Window {
		Window { kernel, stride, pads, dilation }
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

	#[test]
	fn the_portable_kernels_compute_the_same_bits() {
		let x = random(&[2, 3, 12, 13], 1);
		let w = random(&[5, 3, 3, 3], 2);
		let b = random(&[5], 3);
		let (row, matrix, rows) =
			(random(&[1, 77], 4), random(&[77, 150], 5), random(&[150, 77], 6));
		let run = || {
			let conv = conv2d::<Flex>(
				&x,
				&w,
				Some(&b),
				[1, 2],
				[1, 1],
				[1, 1],
				1,
				true,
				Some(window([2, 2], [2, 2], [0, 0], [1, 1])),
			)
			.unwrap();
			let shallow =
				conv2d::<Flex>(&x, &w, Some(&b), [1, 1], [0, 0], [1, 1], 1, false, None).unwrap();
			let pool = max_pool2d::<Flex>(&x, window([2, 2], [2, 2], [0, 0], [1, 1])).unwrap();
			let kn = gemm::<Flex>(&row, &matrix, None, false, false, 1.5, 0.0, false).unwrap();
			let nk = gemm::<Flex>(&row, &rows, None, false, true, 1.5, 0.0, true).unwrap();
			[conv, shallow, pool, kn, nk].map(values)
		};
		let vector = run();
		PORTABLE_ONLY.store(true, std::sync::atomic::Ordering::Relaxed);
		let portable = run();
		PORTABLE_ONLY.store(false, std::sync::atomic::Ordering::Relaxed);
		assert_eq!(vector, portable);
	}

	#[test]
	fn other_dtypes_are_left_to_burn() {
		let x =
			FlexTensor::from_data(TensorData::new(vec![1.0f64; 16], Shape::from(vec![1, 1, 4, 4])));
		assert!(max_pool2d::<Flex>(&x, window([2, 2], [2, 2], [0, 0], [1, 1])).is_none());
	}
}
