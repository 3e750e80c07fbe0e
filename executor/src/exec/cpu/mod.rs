//! CPU kernels for the ops that dominate CNNs and MLPs, used when the backend is burn-flex and
//! the tensors are f32. A profile of LeNet on burn-flex put 42% of the time in its strided
//! im2col copy and 17% in its generic pooling loop, against 12% in GEMM. These kernels:
//! - on CPUs with AVX-512 or AVX2, convolve directly from the input ([`direct`]); elsewhere unfold
//!   whole rows for the GEMM, and sum shallow convolutions (depth ≤ 32) straight from the input
//!   ([`conv`]);
//! - fold the bias, and a following Relu and max pooling, into one pass per image;
//! - pool with a direct window loop ([`pool`]);
//! - give single-row products their own vector kernel ([`linalg`]).
//!
//! Work is split over the threads of [`super::spin`]. Other backends (CUDA) and dtypes keep
//! burn's kernels: each function returns `None`.
//!
//! The loops are written for the compiler to vectorize. [`simd_kernel!`] compiles each one
//! twice, for the baseline target and for AVX2 with FMA, and picks one per call: the release
//! binary stays portable and still uses the vector units it finds. Products use fused
//! multiply-adds in both versions, so a machine without FMA computes the same bits, slowly.

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
	($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
		$(#[$attr])*
		#[allow(clippy::too_many_arguments)]
		$vis fn $name($($arg: $ty),*) $(-> $ret)? {
			#[inline(always)]
			#[allow(clippy::too_many_arguments)]
			fn body($($arg: $ty),*) $(-> $ret)? $body
			#[cfg(target_arch = "x86_64")]
			{
				#[target_feature(enable = "avx512f,fma")]
				#[allow(clippy::too_many_arguments)]
				unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
					body($($arg),*)
				}
				#[target_feature(enable = "avx2,fma")]
				#[allow(clippy::too_many_arguments)]
				unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
					body($($arg),*)
				}
				if !$crate::exec::cpu::portable_only() && $crate::exec::cpu::avx512() {
					// SAFETY: the CPU has the features, checked just above.
					return unsafe { avx512($($arg),*) };
				}
				if !$crate::exec::cpu::portable_only() && $crate::exec::cpu::avx2_fma() {
					// SAFETY: the CPU has both features, checked just above.
					return unsafe { avx2($($arg),*) };
				}
			}
			body($($arg),*)
		}
	};
}

// After the macro, which they use.
mod conv;
mod direct;
mod elementwise;
mod int8;
mod linalg;
mod packed;
mod pool;

pub(crate) use conv::conv2d;
pub(crate) use elementwise::{binary, erf, min_max_finite, quantize_u8, softmax_last, Arith};
pub(crate) use int8::PackedI8;
pub(crate) use linalg::gemm;
pub(crate) use packed::PackedB;
pub(crate) use pool::{max_pool2d, out_len, Window};

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

/// Whether the CPU has AVX-512F (and FMA): the kernels' widest build (checked once).
#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
	static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
	*HAS.get_or_init(|| {
		std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")
	})
}

/// Whether the CPU has AVX2 and FMA, the features every vector kernel here is built for.
#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
	std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
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

/// Seeded random tensors and comparisons for the kernels' tests.
#[cfg(test)]
mod testing {
	use super::{pool::Window, F};
	use burn::tensor::{Shape, TensorData};
	use burn_flex::{Flex, FlexTensor};

	pub(super) fn random(shape: &[usize], seed: u64) -> F<Flex> {
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

	pub(super) fn window(
		kernel: [usize; 2],
		stride: [usize; 2],
		pads: [usize; 2],
		dilation: [usize; 2],
	) -> Window {
		Window { kernel, stride, pads, dilation }
	}

	pub(super) fn values(t: F<Flex>) -> (Vec<usize>, Vec<f32>) {
		let shape = t.layout().shape().to_vec();
		(shape, t.into_data().into_vec::<f32>().unwrap())
	}

	pub(super) fn assert_close(got: F<Flex>, want: F<Flex>, what: &str) {
		let ((gs, g), (ws, w)) = (values(got), values(want));
		assert_eq!(gs, ws, "{what}: shape");
		for (i, (a, b)) in g.iter().zip(&w).enumerate() {
			assert!((a - b).abs() <= 1e-5 + 1e-4 * b.abs(), "{what}: element {i}: {a} vs {b}");
		}
	}
}

#[cfg(test)]
mod tests {
	use super::{conv2d, gemm, max_pool2d, testing::*, PORTABLE_ONLY};
	use burn_flex::Flex;

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
}
