//! Direct convolution for CPUs with AVX-512 or AVX2: no im2col and no GEMM packing of the
//! input.
//!
//! A tile of up to 64 output channels × 6 to 8 output pixels (AVX2: 16 channels × 6 pixels)
//! is summed in vector registers: per tap, the tile's weights are a few vector loads and each
//! pixel's input value one broadcast, wherever in the image the pixel lies (each pixel has its
//! own address, so tiles run on across output rows and nothing is computed twice). The tile is
//! stored pixel-major, channels contiguous, and the Relu and max pooling run on that layout before
//! the (pooled, so smaller) result is written as NCHW. On LeNet's 32→64 layer, im2col and the
//! GEMM's packing had cost a quarter of the convolution's time.
//!
//! Every value is `bias + Σ w · x` over the taps in weight order, one fused multiply-add per
//! tap, in the AVX-512 and AVX2 kernels and their portable twin alike: the same bits on
//! either kind of CPU.

use super::{
	build_chunks,
	conv::Im2col,
	pool::{Pool, Window},
	spin, with_col, Shared,
};
use burn::tensor::Bytes;
use burn_flex::FlexTensor;
use std::{
	mem::MaybeUninit,
	ops::Range,
	sync::{Arc, Mutex, PoisonError, Weak},
};

/// Output channels per block: one AVX-512 vector, two AVX2 ones.
const LANES: usize = 16;
/// Channel vectors in the widest tile (64 channels).
const MAX_BLOCKS: usize = 4;
/// The input a band of output rows reads, at most, when channel blocks pass over it in turn.
const BAND_BYTES: usize = 128 << 10;

#[cfg(test)]
thread_local! {
	/// Set by a test for the convolutions its thread starts: take the im2col path.
	pub(super) static OFF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
	/// Set by a test for the convolutions its thread starts: take these kernels instead of
	/// the CPU's best.
	pub(super) static FORCE: std::cell::Cell<Option<Isa>> = const { std::cell::Cell::new(None) };
}

/// The kernels a direct convolution runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Isa {
	Avx512,
	Avx2,
	/// The portable twin of both, for tests: a CPU with neither takes the im2col path.
	Portable,
}

/// The best kernels this CPU has, if any.
fn best_isa() -> Option<Isa> {
	if has_avx512f() {
		Some(Isa::Avx512)
	} else if has_avx2_fma() {
		Some(Isa::Avx2)
	} else {
		None
	}
}

fn has_avx2_fma() -> bool {
	#[cfg(target_arch = "x86_64")]
	return std::arch::is_x86_feature_detected!("avx2") &&
		std::arch::is_x86_feature_detected!("fma");
	#[cfg(not(target_arch = "x86_64"))]
	false
}

/// Whether this CPU has `isa`.
fn has(isa: Isa) -> bool {
	match isa {
		Isa::Avx512 => has_avx512f(),
		Isa::Avx2 => has_avx2_fma(),
		Isa::Portable => true,
	}
}

/// Whether this CPU runs the direct convolution (tests can turn it off on their thread).
pub(super) fn available() -> bool {
	#[cfg(test)]
	if OFF.get() {
		return false;
	}
	best_isa().is_some()
}

fn has_avx512f() -> bool {
	#[cfg(target_arch = "x86_64")]
	return std::arch::is_x86_feature_detected!("avx512f");
	#[cfg(not(target_arch = "x86_64"))]
	false
}

/// Whether the direct convolution is worth taking for a group of `mg` output channels: with
/// fewer than a vector's worth, most lanes would be padding; and a `pointwise` convolution
/// (1×1, unit stride, no padding) is a GEMM on the input as it is, without im2col.
pub(super) fn suits(mg: usize, pointwise: bool) -> bool {
	mg >= LANES && !pointwise
}

/// The weights of every group as [tap][ldo] (taps in weight order, channels padded with zeros
/// to a multiple of [`LANES`]), the biases as [ldo] per group, and each tap's offset in the
/// input (relative to the window's corner).
pub(super) struct Packed {
	mg: usize,
	ldo: usize,
	w: Arc<Vec<f32>>,
	bias: Vec<f32>,
	taps: Vec<usize>,
}

impl Packed {
	/// `w` is the storage of `weights` [groups·mg, C/groups, kh, kw], over the input
	/// [C/groups, h, w] of `geometry` (unpadded: padding is applied to a copy of the input).
	pub(super) fn new(
		weights: &FlexTensor,
		w: &[f32],
		bias: Option<&[f32]>,
		groups: usize,
		geometry: &Im2col,
	) -> Packed {
		let Im2col {
			chw: [cg, h, wi],
			window: Window { kernel: [kh, kw], dilation: [dh, dw], .. },
			..
		} = *geometry;
		let k = cg * kh * kw;
		let mg = w.len() / (groups * k);
		let ldo = mg.next_multiple_of(LANES);
		let packed = kept(weights, groups, || {
			let mut packed = vec![0.0; groups * k * ldo];
			for (dst, src) in packed.chunks_exact_mut(k * ldo).zip(w.chunks_exact(mg * k)) {
				// Row by row of the result, reading each weight row's cache line 16 times in a row.
				for (t, dst) in dst.chunks_exact_mut(ldo).enumerate() {
					for (d, row) in dst.iter_mut().zip(src.chunks_exact(k)) {
						*d = row[t];
					}
				}
			}
			packed
		});
		let mut biases = vec![0.0; groups * ldo];
		if let Some(b) = bias {
			for (dst, src) in biases.chunks_exact_mut(ldo).zip(b.chunks_exact(mg)) {
				dst[..mg].copy_from_slice(src);
			}
		}
		let taps = (0..cg)
			.flat_map(|ch| {
				(0..kh).flat_map(move |i| (0..kw).map(move |j| ch * h * wi + i * dh * wi + j * dw))
			})
			.collect();
		Packed { mg, ldo, w: packed, bias: biases, taps }
	}
}

/// Weights packed by earlier calls, by weight tensor (storage, offset, shape) and groups: a
/// model's layers are packed once, not per inference (at batch 1, packing cost an eighth of
/// the run). An entry's `Weak` tells when its tensor's storage is gone, and keeps the address
/// from being reused meanwhile; storage a `Weak` points to is never written in place
/// (burn-flex writes through `Arc::get_mut` / `make_mut`, which move or copy it then).
static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

/// At most this many packed values are kept (64 MiB); the oldest entries go first.
const KEPT_VALUES: usize = 16 << 20;

struct Kept {
	storage: Weak<Bytes>,
	offset: usize,
	shape: Vec<usize>,
	groups: usize,
	packed: Arc<Vec<f32>>,
}

/// The packed form of `weights`, kept or made by `pack`.
fn kept(weights: &FlexTensor, groups: usize, pack: impl FnOnce() -> Vec<f32>) -> Arc<Vec<f32>> {
	let storage = weights.data_arc();
	let (offset, shape) = (weights.layout().start_offset(), weights.layout().shape().to_vec());
	let same = |k: &Kept| {
		std::ptr::eq(k.storage.as_ptr(), Arc::as_ptr(&storage)) &&
			k.offset == offset &&
			k.shape == shape &&
			k.groups == groups
	};
	{
		let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
		kept.retain(|k| k.storage.strong_count() > 0);
		if let Some(k) = kept.iter().find(|k| same(k)) {
			return k.packed.clone();
		}
	}
	// Packed without the lock, so that other inferences' convolutions do not wait on it.
	let packed = Arc::new(pack());
	let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
	if packed.len() <= KEPT_VALUES && !kept.iter().any(same) {
		let mut total: usize = kept.iter().map(|k| k.packed.len()).sum::<usize>() + packed.len();
		while total > KEPT_VALUES {
			total -= kept.remove(0).packed.len();
		}
		kept.push(Kept {
			storage: Arc::downgrade(&storage),
			offset,
			shape,
			groups,
			packed: packed.clone(),
		});
	}
	packed
}

/// What follows the convolution inside the same pass.
pub(super) struct Epilogue<'a> {
	pub relu: bool,
	pub pool: Option<&'a Pool>,
}

/// The convolution of `n` images [C, H, W] at `x` (`geometry` per group, unpadded), its
/// result NCHW, pooled if asked. `per_image` runs the images in parallel; `split` splits each
/// image's output rows over the threads in bands of `per` rows (a multiple of the pooling
/// window's height when the windows tile the output, which the bands then pool themselves).
#[allow(clippy::too_many_arguments)]
pub(super) fn conv(
	x: &[f32],
	n: usize,
	geometry: &Im2col,
	packed: &Packed,
	epilogue: &Epilogue,
	per_image: bool,
	split: bool,
	per: usize,
) -> Vec<f32> {
	let Im2col { chw: [cg, h, wi], out: [oh, ow], .. } = *geometry;
	let (mg, ldo) = (packed.mg, packed.ldo);
	let groups = packed.w.len() / (packed.taps.len() * ldo);
	let [poh, pow] = epilogue.pool.map_or([oh, ow], |pool| pool.out);
	let out_plane = poh * pow;
	let image_len = groups * cg * h * wi;
	// Tiling windows are pooled by each band's task; others once all rows are in.
	let pooled_in_bands = epilogue.pool.is_none_or(|pool| pool.window.tiles());
	// The CPU's best kernels, unless a test asks for others.
	#[cfg(test)]
	let isa = FORCE.get().filter(|&isa| has(isa)).or_else(best_isa);
	#[cfg(not(test))]
	let isa = best_isa();
	let isa = isa.unwrap_or(Isa::Portable);
	let image = |img: usize, out: &mut [MaybeUninit<f32>]| {
		let src = &x[img * image_len..][..image_len];
		let out = Shared(out.as_mut_ptr());
		// One group at a time in the pixel-major tile, [oh·ow][ldo].
		with_col(oh * ow * ldo, |tile| {
			let tile = Shared(tile.as_mut_ptr());
			for g in 0..groups {
				let group = Group {
					src: &src[g * cg * h * wi..][..cg * h * wi],
					geometry,
					packed,
					g,
					tile,
					isa,
				};
				let finish = |rows: Range<usize>| {
					// SAFETY: the rows written by this call's `compute` (or all of them).
					unsafe { group.epilogue(epilogue, rows, out, g * mg * out_plane) }
				};
				if split {
					spin::for_each(oh.div_ceil(per), |t| {
						let rows = t * per..((t + 1) * per).min(oh);
						group.compute(rows.clone());
						if pooled_in_bands {
							finish(rows);
						}
					});
					if !pooled_in_bands {
						finish(0..oh);
					}
				} else {
					group.compute(0..oh);
					finish(0..oh);
				}
			}
		})
	};
	let chunk = groups * mg * out_plane;
	build_chunks(n * chunk, chunk, per_image, image)
}

/// One group of one image: its input planes, and the tile its output goes through.
struct Group<'a> {
	src: &'a [f32],
	geometry: &'a Im2col,
	packed: &'a Packed,
	g: usize,
	tile: Shared<f32>,
	/// The kernels to take (only ever ones the CPU has).
	isa: Isa,
}

impl Group<'_> {
	/// Output rows `rows` of every channel into the tile (each call's rows its own).
	fn compute(&self, rows: Range<usize>) {
		let Im2col {
			chw: [cg, _, wi],
			window: Window { kernel: [kh, _], stride: [sh, sw], dilation: [dh, _], .. },
			out: [_, ow],
		} = *self.geometry;
		let Packed { mg, ldo, ref w, ref bias, ref taps } = *self.packed;
		let (q0, q1) = (rows.start * ow, rows.end * ow);
		// Every read is at a pixel's corner plus a tap: the last pixel's is the furthest.
		let last = q1.saturating_sub(1);
		let reach = (last / ow) * sh * wi + (last % ow) * sw + taps.last().copied().unwrap_or(0);
		assert!(q0 == q1 || reach < self.src.len(), "windows inside the image");
		let w = &w[self.g * taps.len() * ldo..][..taps.len() * ldo];
		let bias = &bias[self.g * ldo..][..ldo];
		let pixels = Pixels { ow, row: sh * wi, sw };
		let isa = if has(self.isa) { self.isa } else { Isa::Portable };
		// AVX2 has 16 registers: a tile of one 16-channel block (two vectors) × 6 pixels.
		let most = if isa == Isa::Avx2 { 1 } else { MAX_BLOCKS };
		// With more than one pass of channel blocks, rows go in bands whose input (about
		// 128 KiB) stays in cache for every pass: a 64-channel 56×56 layer streamed its
		// whole input from memory once per block.
		let band = if mg.div_ceil(LANES * most) <= 1 {
			rows.len()
		} else {
			let input_rows = (BAND_BYTES / (4 * cg * wi).max(1)).saturating_sub((kh - 1) * dh);
			(input_rows.saturating_sub(1) / sh + 1).max(1)
		};
		for r0 in rows.clone().step_by(band.max(1)) {
			let q = r0 * ow..(r0 + band).min(rows.end) * ow;
			let mut c0 = 0;
			while c0 < mg {
				let blocks = (mg - c0).div_ceil(LANES).min(most);
				let run = Run {
					x: self.src,
					taps,
					w: &w[c0..],
					ldo,
					bias: &bias[c0..],
					out: self.tile.at(c0),
					isa,
				};
				match (isa, blocks) {
					(Isa::Avx2, _) => run.pixels::<1, 6>(q.clone(), pixels),
					(_, 4) => run.pixels::<4, 6>(q.clone(), pixels),
					(_, 3) => run.pixels::<3, 8>(q.clone(), pixels),
					(_, 2) => run.pixels::<2, 8>(q.clone(), pixels),
					(_, _) => run.pixels::<1, 8>(q.clone(), pixels),
				}
				c0 += blocks * LANES;
			}
		}
	}

	/// Relu and pooling of tile rows `rows` (conv rows), written to channel planes at `out`
	/// from plane `first`: when pooling, the pooled rows whose windows lie in `rows`.
	///
	/// # Safety
	/// `rows` of the tile were computed, and the output values written here are this call's.
	unsafe fn epilogue(
		&self,
		epilogue: &Epilogue,
		rows: Range<usize>,
		out: Shared<MaybeUninit<f32>>,
		first: usize,
	) {
		let Im2col { out: [oh, ow], .. } = *self.geometry;
		let (mg, ldo) = (self.packed.mg, self.packed.ldo);
		let tile = |q0: usize, q1: usize| {
			// SAFETY: computed rows, as the caller promises.
			unsafe { std::slice::from_raw_parts(self.tile.at(q0 * ldo), (q1 - q0) * ldo) }
		};
		// Values `at..at + len` of each of this group's channel planes of `plane` values.
		let planes = |plane: usize, at: usize, len: usize| -> Vec<&mut [MaybeUninit<f32>]> {
			// SAFETY: the caller's values, this call's alone, as it promises.
			(0..mg)
				.map(|m| unsafe {
					std::slice::from_raw_parts_mut(out.at(first + m * plane + at), len)
				})
				.collect()
		};
		let Some(pool) = epilogue.pool else {
			let (q0, q1) = (rows.start * ow, rows.end * ow);
			return unpack(self.isa, tile(q0, q1), ldo, epilogue.relu, planes(oh * ow, q0, q1 - q0));
		};
		let [poh, pow] = pool.out;
		let kh = pool.window.kernel[0];
		let pooled =
			if rows == (0..oh) { 0..poh } else { rows.start / kh..(rows.end / kh).min(poh) };
		if pooled.is_empty() {
			return;
		}
		let planes = planes(poh * pow, pooled.start * pow, pooled.len() * pow);
		// Only this call's rows: other tasks may be writing theirs.
		pool_tile(
			self.isa,
			tile(rows.start * ow, rows.end * ow),
			rows.start,
			ldo,
			epilogue.relu,
			pool,
			pooled,
			planes,
		)
	}
}

/// A run of tiles over consecutive pixels, for output channels from `c0` (already applied to
/// `w`, `bias` and `out`).
struct Run<'a> {
	x: &'a [f32],
	taps: &'a [usize],
	w: &'a [f32],
	ldo: usize,
	bias: &'a [f32],
	out: *mut f32,
	/// One the CPU has.
	isa: Isa,
}

impl Run<'_> {
	/// Pixels `q` in tiles of `P`, `MB` channel vectors each. A last, partial tile repeats its
	/// last pixel and stores only the real ones.
	#[inline(always)]
	fn pixels<const MB: usize, const P: usize>(&self, q: Range<usize>, pixels: Pixels) {
		let Pixels { ow, row, sw } = pixels;
		// The next pixel's output row and column, counted on (a division per pixel cost as
		// much as a shallow tile's multiply-adds).
		let (mut oy, mut ox) = (q.start / ow.max(1), q.start % ow.max(1));
		let mut start = q.start;
		while start < q.end {
			let valid = P.min(q.end - start);
			let mut corners = [0; P];
			for (p, corner) in corners.iter_mut().enumerate() {
				if p < valid {
					*corner = oy * row + ox * sw;
					ox += 1;
					if ox == ow {
						(oy, ox) = (oy + 1, 0);
					}
				}
			}
			for p in valid..P {
				corners[p] = corners[valid - 1];
			}
			// SAFETY: `out` has rows start..start + valid of ldo values, of which MB·16 from
			// c0 (ldo is a multiple of 16 ≥ c0 + MB·16), this run's alone; `w` has
			// taps.len() rows of ldo and `bias` ldo values from c0; every read of x is inside
			// (the caller checked the furthest).
			let out = self.out.wrapping_add(start * self.ldo);
			start += valid;
			let (x, taps, w, ldo, bias) = (self.x, self.taps, self.w, self.ldo, self.bias);
			match self.isa {
				#[cfg(target_arch = "x86_64")]
				Isa::Avx512 => unsafe { tile_avx512::<MB, P>(x, corners, taps, w, ldo, bias, out, valid) },
				#[cfg(target_arch = "x86_64")]
				Isa::Avx2 => {
					debug_assert_eq!(MB, 1, "one 16-channel block per AVX2 tile");
					unsafe { tile_avx2::<2, P>(x, corners, taps, w, ldo, bias, out, valid) }
				},
				_ => unsafe { tile_portable::<MB, P>(x, corners, taps, w, ldo, bias, out, valid) },
			}
		}
	}
}

/// Where output pixels read: `ow` per row, rows `row` input values apart, columns `sw`.
#[derive(Clone, Copy)]
struct Pixels {
	ow: usize,
	row: usize,
	sw: usize,
}

/// Defines `unsafe fn $name::<NV, P>`, one tile: `out[p][c] = bias[c] + Σ_t w[t][c] ·
/// x[corners[p] + taps[t]]` for channels `c < NV·lanes` and pixels `p < valid`, summed in
/// NV·P vector registers of `$lanes` values.
macro_rules! tile_kernel {
	($name:ident, $feature:literal, $lanes:literal, $vec:ident, $load:ident, $splat:ident, $fma:ident, $store:ident) => {
		/// A tile of NV vectors of channels × P pixels.
		///
		/// # Safety
		/// The CPU has the kernel's features; the reads and writes are inside the slices and
		/// the `valid` rows of NV·lanes values at `out`, `ldo` apart.
		#[cfg(target_arch = "x86_64")]
		#[target_feature(enable = $feature)]
		#[allow(clippy::too_many_arguments)]
		unsafe fn $name<const NV: usize, const P: usize>(
			x: &[f32],
			corners: [usize; P],
			taps: &[usize],
			w: &[f32],
			ldo: usize,
			bias: &[f32],
			out: *mut f32,
			valid: usize,
		) {
			use std::arch::x86_64::*;
			// SAFETY (all blocks below): in bounds, as the caller promises.
			let xs: [*const f32; P] =
				std::array::from_fn(|p| unsafe { x.as_ptr().add(corners[p]) });
			let b: [$vec; NV] =
				std::array::from_fn(|v| unsafe { $load(bias.as_ptr().add(v * $lanes)) });
			let mut acc = [b; P];
			let mut wp = w.as_ptr();
			for &t in taps {
				let wv: [$vec; NV] = std::array::from_fn(|v| unsafe { $load(wp.add(v * $lanes)) });
				wp = wp.wrapping_add(ldo);
				for p in 0..P {
					let xv = $splat(unsafe { *xs[p].add(t) });
					for v in 0..NV {
						acc[p][v] = $fma(wv[v], xv, acc[p][v]);
					}
				}
			}
			for (p, acc) in acc.iter().enumerate().take(valid) {
				for (v, &a) in acc.iter().enumerate() {
					unsafe { $store(out.add(p * ldo + v * $lanes), a) };
				}
			}
		}
	};
}

tile_kernel!(
	tile_avx512,
	"avx512f",
	16,
	__m512,
	_mm512_loadu_ps,
	_mm512_set1_ps,
	_mm512_fmadd_ps,
	_mm512_storeu_ps
);
// 16 registers: one 16-channel block (two vectors) × 6 pixels.
tile_kernel!(
	tile_avx2,
	"avx2,fma",
	8,
	__m256,
	_mm256_loadu_ps,
	_mm256_set1_ps,
	_mm256_fmadd_ps,
	_mm256_storeu_ps
);

/// `tile_avx512` and `tile_avx2` one value at a time, in the same order: the same bits.
///
/// # Safety
/// As for them, without the CPU features.
#[allow(clippy::too_many_arguments)]
unsafe fn tile_portable<const MB: usize, const P: usize>(
	x: &[f32],
	corners: [usize; P],
	taps: &[usize],
	w: &[f32],
	ldo: usize,
	bias: &[f32],
	out: *mut f32,
	valid: usize,
) {
	for (p, &corner) in corners.iter().enumerate().take(valid) {
		for c in 0..MB * LANES {
			let mut acc = bias[c];
			for (t, &tap) in taps.iter().enumerate() {
				acc = w[t * ldo + c].mul_add(x[corner + tap], acc);
			}
			// SAFETY: row p, channel c < MB·16, as the caller promises.
			unsafe { *out.add(p * ldo + c) = acc };
		}
	}
}

/// Defines `fn $name(isa, …)` from a body compiled as is, with AVX-512F and with AVX2+FMA,
/// taking the version for `isa` when the CPU has it (the body sees which as `isa`).
macro_rules! isa_kernel {
	($(#[$attr:meta])* fn $name:ident($isa:ident: Isa, $($arg:ident: $ty:ty),* $(,)?) $body:block) => {
		$(#[$attr])*
		#[allow(clippy::too_many_arguments)]
		fn $name($isa: Isa, $($arg: $ty),*) {
			#[inline(always)]
			#[allow(clippy::too_many_arguments)]
			fn body($isa: Isa, $($arg: $ty),*) $body
			#[cfg(target_arch = "x86_64")]
			{
				#[target_feature(enable = "avx512f")]
				#[allow(clippy::too_many_arguments)]
				unsafe fn avx512($($arg: $ty),*) {
					body(Isa::Avx512, $($arg),*)
				}
				#[target_feature(enable = "avx2,fma")]
				#[allow(clippy::too_many_arguments)]
				unsafe fn avx2($($arg: $ty),*) {
					body(Isa::Avx2, $($arg),*)
				}
				match $isa {
					// SAFETY: the CPU has AVX-512F.
					Isa::Avx512 if has_avx512f() => return unsafe { avx512($($arg),*) },
					// SAFETY: the CPU has AVX2 and FMA.
					Isa::Avx2 if has_avx2_fma() => return unsafe { avx2($($arg),*) },
					_ => {},
				}
			}
			body(Isa::Portable, $($arg),*)
		}
	};
}

isa_kernel! {
	/// Tile rows (pixels, channels `ldo` apart) into channel `planes`, with Relu (burn's
	/// `max(x, 0)`) when `relu`.
	fn unpack(isa: Isa, tile: &[f32], ldo: usize, relu: bool, planes: Vec<&mut [MaybeUninit<f32>]>) {
		let mut planes = planes;
		let pixels = tile.len() / ldo;
		for (c0, planes) in (0..ldo).step_by(LANES).zip(planes.chunks_mut(LANES)) {
			for p0 in (0..pixels).step_by(LANES) {
				let n = LANES.min(pixels - p0);
				transpose16(isa, &tile[p0 * ldo + c0..], ldo, n, planes, p0, relu);
			}
		}
	}
}

/// Writes pixels `0..n` (n ≤ 16: rows of `src` `stride` apart, 16 channel values each) into
/// `planes` (one per channel, at most 16) from offset `at`, with Relu when `relu`. A value
/// at a time, a pixel-major tile became a sixth of a wide convolution's time.
#[inline(always)]
fn transpose16(
	isa: Isa,
	src: &[f32],
	stride: usize,
	n: usize,
	planes: &mut [&mut [MaybeUninit<f32>]],
	at: usize,
	relu: bool,
) {
	assert!((1..=LANES).contains(&n) && planes.len() <= LANES, "a 16×16 block at most");
	assert!(src.len() >= (n - 1) * stride + LANES, "n rows of 16 values");
	assert!(planes.iter().all(|plane| plane.len() >= at + n), "n values in each plane");
	#[cfg(target_arch = "x86_64")]
	match isa {
		// SAFETY: the CPU has AVX-512F; the bounds were checked just above.
		Isa::Avx512 if has_avx512f() =>
			return unsafe { transpose16_avx512(src.as_ptr(), stride, n, planes, at, relu) },
		// SAFETY: the CPU has AVX2; the bounds were checked just above.
		Isa::Avx2 if has_avx2_fma() =>
			return unsafe { transpose16_avx2(src.as_ptr(), stride, n, planes, at, relu) },
		_ => {},
	}
	_ = isa;
	for (c, plane) in planes.iter_mut().enumerate() {
		for (p, d) in plane[at..at + n].iter_mut().enumerate() {
			let v = src[p * stride + c];
			d.write(if relu { v.max(0.0) } else { v });
		}
	}
}

/// [`transpose16`] in registers: the standard 16×16 transpose (pairs, then 64-bit pairs,
/// then 128-bit lanes twice) and one masked store per channel.
///
/// # Safety
/// The CPU has AVX-512F, and the bounds of [`transpose16`] hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose16_avx512(
	src: *const f32,
	stride: usize,
	n: usize,
	planes: &mut [&mut [MaybeUninit<f32>]],
	at: usize,
	relu: bool,
) {
	use std::arch::x86_64::*;
	let zero = _mm512_setzero_ps();
	// SAFETY: rows p < n hold 16 values, as the caller promises.
	let r: [__m512; LANES] = std::array::from_fn(|p| {
		if p >= n {
			return zero;
		}
		let v = unsafe { _mm512_loadu_ps(src.add(p * stride)) };
		// Relu as burn computes it: NaN becomes 0 (max_ps returns its second operand).
		if relu {
			_mm512_max_ps(v, zero)
		} else {
			v
		}
	});
	// t[2i], t[2i+1]: rows 2i and 2i+1 interleaved by value, low and high halves of each lane.
	let t: [__m512; LANES] = std::array::from_fn(|i| {
		let (a, b) = (r[i & !1], r[i | 1]);
		if i % 2 == 0 {
			_mm512_unpacklo_ps(a, b)
		} else {
			_mm512_unpackhi_ps(a, b)
		}
	});
	// u[4g + j]: in 128-bit lane k, column 4k + j of rows 4g..4g + 4.
	let u: [__m512; LANES] = std::array::from_fn(|i| {
		let (g, j) = (i / 4, i % 4);
		let (a, b) = (_mm512_castps_pd(t[4 * g + j / 2]), _mm512_castps_pd(t[4 * g + 2 + j / 2]));
		_mm512_castpd_ps(if j % 2 == 0 {
			_mm512_unpacklo_pd(a, b)
		} else {
			_mm512_unpackhi_pd(a, b)
		})
	});
	let mask: __mmask16 = if n == LANES { !0 } else { (1 << n) - 1 };
	for j in 0..4 {
		// Rows 0..8 and 8..16 of columns j, 8 + j (even lanes) and 4 + j, 12 + j (odd lanes).
		let v = [
			_mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]),
			_mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]),
		];
		let w = [
			_mm512_shuffle_f32x4::<0xdd>(u[j], u[4 + j]),
			_mm512_shuffle_f32x4::<0xdd>(u[8 + j], u[12 + j]),
		];
		let columns = [
			(j, _mm512_shuffle_f32x4::<0x88>(v[0], v[1])),
			(8 + j, _mm512_shuffle_f32x4::<0xdd>(v[0], v[1])),
			(4 + j, _mm512_shuffle_f32x4::<0x88>(w[0], w[1])),
			(12 + j, _mm512_shuffle_f32x4::<0xdd>(w[0], w[1])),
		];
		for (c, column) in columns {
			if let Some(plane) = planes.get_mut(c) {
				// SAFETY: values at..at + n of this plane, checked by the caller.
				unsafe { _mm512_mask_storeu_ps(plane.as_mut_ptr().add(at).cast(), mask, column) };
			}
		}
	}
}

/// [`transpose16`] with AVX2: four 8×8 register transposes (value pairs, then 64-bit pairs,
/// then 128-bit halves) and masked stores.
///
/// # Safety
/// The CPU has AVX2, and the bounds of [`transpose16`] hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transpose16_avx2(
	src: *const f32,
	stride: usize,
	n: usize,
	planes: &mut [&mut [MaybeUninit<f32>]],
	at: usize,
	relu: bool,
) {
	use std::arch::x86_64::*;
	let zero = _mm256_setzero_ps();
	for p0 in (0..n).step_by(8) {
		let rows = (n - p0).min(8);
		let mask = _mm256_cmpgt_epi32(
			_mm256_set1_epi32(rows as i32),
			_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
		);
		for c0 in (0..planes.len()).step_by(8) {
			// SAFETY: rows p0 + p < n hold 16 values from src + (p0 + p)·stride.
			let r: [__m256; 8] = std::array::from_fn(|p| {
				if p >= rows {
					return zero;
				}
				let v = unsafe { _mm256_loadu_ps(src.add((p0 + p) * stride + c0)) };
				if relu {
					_mm256_max_ps(v, zero)
				} else {
					v
				}
			});
			let t: [__m256; 8] = std::array::from_fn(|i| {
				let (a, b) = (r[i & !1], r[i | 1]);
				if i % 2 == 0 {
					_mm256_unpacklo_ps(a, b)
				} else {
					_mm256_unpackhi_ps(a, b)
				}
			});
			// s[4h + j]: in 128-bit half k, column 4k + j of rows 4h..4h + 4.
			let s: [__m256; 8] = std::array::from_fn(|i| {
				let (h, j) = (i / 4, i % 4);
				let (a, b) = (t[4 * h + j / 2], t[4 * h + 2 + j / 2]);
				if j % 2 == 0 {
					_mm256_shuffle_ps::<0x44>(a, b)
				} else {
					_mm256_shuffle_ps::<0xee>(a, b)
				}
			});
			for j in 0..4 {
				let columns = [
					(c0 + j, _mm256_permute2f128_ps::<0x20>(s[j], s[4 + j])),
					(c0 + 4 + j, _mm256_permute2f128_ps::<0x31>(s[j], s[4 + j])),
				];
				for (c, column) in columns {
					if let Some(plane) = planes.get_mut(c) {
						// SAFETY: values at + p0.. at + p0 + rows of this plane, checked by the
						// caller.
						unsafe {
							_mm256_maskstore_ps(
								plane.as_mut_ptr().add(at + p0).cast(),
								mask,
								column,
							)
						};
					}
				}
			}
		}
	}
}

isa_kernel! {
	/// Max pooling of the pixel-major `tile` (conv rows from `row0`, channels `ldo` apart)
	/// into pooled rows `pooled` of the channel `planes`, whose windows lie in those rows.
	/// After a Relu the maximum starts at 0 and skips NaN (Relu made it 0); otherwise NaN
	/// propagates.
	fn pool_tile(
		isa: Isa,
		tile: &[f32],
		row0: usize,
		ldo: usize,
		relu: bool,
		pool: &Pool,
		pooled: Range<usize>,
		planes: Vec<&mut [MaybeUninit<f32>]>,
	) {
		let Pool { window: Window { stride: [sh, sw], pads: [ph, pw], dilation: [dh, _], .. }, out: [_, pow], .. } =
			*pool;
		let ow = pool.input[1];
		let mut planes = planes;
		let tiles = pool.window.tiles().then_some(pool.window.kernel);
		// One vector of channels at a time: all its pooled values, [pooled pixels][LANES], then
		// transposed into the planes. Read back only after the whole block, long after they
		// were stored (a store-to-load forward right after a vector store stalled).
		let mut block = vec![[0.0f32; LANES]; pooled.len() * pow];
		for (c0, planes) in (0..ldo).step_by(LANES).zip(planes.chunks_mut(LANES)) {
			for (py, slots) in pooled.clone().zip(block.chunks_exact_mut(pow)) {
				for (px, slot) in slots.iter_mut().enumerate() {
					// A local, not the slot: it stays in a register over the window.
					let mut best = [if relu { 0.0 } else { f32::NEG_INFINITY }; LANES];
					let mut take = |pixel: usize| {
						let v: &[f32; LANES] = tile[pixel * ldo + c0..][..LANES].try_into().expect("a vector");
						for (b, &v) in best.iter_mut().zip(v) {
							*b = if v > *b || (!relu && v.is_nan()) { v } else { *b };
						}
					};
					if let Some([kh, kw]) = tiles {
						// Every window inside: no test per tap.
						for i in 0..kh {
							let first = (py * kh + i - row0) * ow + px * kw;
							(first..first + kw).for_each(&mut take);
						}
					} else {
						for i in pool.rows[py].clone() {
							let line = (py * sh + i * dh - ph - row0) * ow;
							for (offset, _) in pool.cols.iter().filter(|(_, xs)| xs.contains(&px)) {
								take(line + px * sw + offset - pw);
							}
						}
					}
					*slot = best;
				}
			}
			let values = block.as_flattened();
			for p0 in (0..block.len()).step_by(LANES) {
				let n = LANES.min(block.len() - p0);
				transpose16(isa, &values[p0 * LANES..], LANES, n, planes, p0, false);
			}
		}
	}
}
