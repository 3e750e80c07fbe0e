//! Products by a constant weight matrix packed once at load. For the few-row activations of
//! a batch-1 transformer (a linear layer of 11 tokens is an 11 × 384 by 384 × 384 product),
//! the GEMM library's own packing of B on every call cost as much memory traffic as the
//! product. Here B is stored in panels of [`NR`] columns, each one contiguous run down the
//! depth, and a register tile of up to [`MR`] rows × [`NR`] columns sums the depth without
//! touching memory but for the panel and the rows of A; many rows are taken in blocks that
//! stay in cache.
//!
//! Every output is one fused multiply-add chain down the depth, in order, on every path: a
//! row's result does not depend on how many rows come with it (batch-invariant), which the
//! re-execution of sampled jobs relies on.

use super::{f32_data, spin, to_backend, Shared, F};
use burn::tensor::{backend::Backend, TensorMetadata};

/// Columns per panel: two 8-lane vectors.
const NR: usize = 16;
/// Rows per tile: 6 × 2 accumulators, 2 vectors of B and a broadcast fit 16 registers.
const MR: usize = 6;
/// From this many multiply-adds the panels are split over the threads.
const SPLIT_MACS: usize = 1 << 20;
/// From this many rows A is taken in blocks of [`MC`] rows and [`KC`] depths, so that a
/// block of A stays in L2 and a panel's slice of B in L1 while the tiles sweep them.
const BLOCKED_ROWS: usize = 64;
const MC: usize = 120;
const KC: usize = 256;

/// A `[k, n]` f32 matrix as panels of [`NR`] columns, each `k` rows of [`NR`] contiguous
/// values (the last panel zero-padded).
pub(crate) struct PackedB {
	k: usize,
	n: usize,
	panels: Vec<f32>,
}

impl PackedB {
	/// Packs `b`, a 2-D f32 tensor on burn-flex (`None` otherwise).
	pub(crate) fn pack<B: Backend>(b: &F<B>) -> Option<PackedB> {
		let shape = b.shape().to_vec();
		let [k, n] = shape[..] else { return None };
		let data = f32_data::<B>(b)?;
		let src = data.slice();
		let mut panels = vec![0f32; n.div_ceil(NR) * k * NR];
		for (p, panel) in panels.chunks_exact_mut(k * NR).enumerate() {
			let (j0, w) = (p * NR, NR.min(n - p * NR));
			for (kk, row) in panel.chunks_exact_mut(NR).enumerate() {
				row[..w].copy_from_slice(&src[kk * n + j0..][..w]);
			}
		}
		Some(PackedB { k, n, panels })
	}

	pub(crate) fn depth(&self) -> usize {
		self.k
	}

	/// `a · B` for a `[m, k]` f32 tensor on burn-flex (`None` otherwise).
	pub(crate) fn times<B: Backend>(&self, a: &F<B>) -> Option<F<B>> {
		let shape = a.shape().to_vec();
		let [m, k] = shape[..] else { return None };
		if k != self.k {
			return None;
		}
		let data = f32_data::<B>(a)?;
		let a = data.slice();
		if m > BLOCKED_ROWS {
			return Some(to_backend::<B>(self.times_blocked(a, m), vec![m, self.n]));
		}
		let out = self.by_panels(m, |panel, tile| panel_product(a, k, panel, tile));
		Some(to_backend::<B>(out, vec![m, self.n]))
	}

	/// The `[m, n]` product whose `m` × [`NR`] tile for each panel `product(panel, tile)`
	/// writes, the panels split over the threads when the product is large.
	fn by_panels<T: Copy + Default + Send>(
		&self,
		m: usize,
		product: impl Fn(&[f32], &mut [T]) + Sync,
	) -> Vec<T> {
		let (k, n, panels) = (self.k, self.n, n_panels(self.n));
		let mut out = vec![T::default(); m * n];
		let dst = Shared(out.as_mut_ptr());
		let run = |p: usize, tile: &mut Vec<T>| {
			tile.resize(m * NR, T::default());
			product(&self.panels[p * k * NR..][..k * NR], tile);
			let (j0, w) = (p * NR, NR.min(n - p * NR));
			for (i, row) in tile.chunks_exact(NR).enumerate() {
				// SAFETY: columns j0..j0 + w of row i belong to panel p's task alone.
				unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), dst.at(i * n + j0), w) };
			}
		};
		let threads = spin::threads();
		if m * n * k >= SPLIT_MACS && threads > 1 && panels >= 2 {
			let per = panels.div_ceil(threads);
			spin::for_each(panels.div_ceil(per), |t| {
				let mut tile = Vec::new();
				for p in t * per..((t + 1) * per).min(panels) {
					run(p, &mut tile);
				}
			});
		} else {
			let mut tile = Vec::new();
			for p in 0..panels {
				run(p, &mut tile);
			}
		}
		out
	}
}

impl PackedB {
	/// `a · B` for many rows: blocks of [`MC`] rows over the threads, each swept [`KC`] depths
	/// at a time (the tiles' sums kept in the output between depth blocks, so every output is
	/// still one fused multiply-add chain in order, the same bits as in one pass).
	fn times_blocked(&self, a: &[f32], m: usize) -> Vec<f32> {
		let (k, n) = (self.k, self.n);
		let width = n_panels(n) * NR;
		let mut out = vec![0f32; m * width];
		let dst = Shared(out.as_mut_ptr());
		let blocks = m.div_ceil(MC);
		let block = |b: usize| {
			let rows = MC.min(m - b * MC);
			// SAFETY: rows b·MC.. of the output are this block's alone.
			let c = unsafe { std::slice::from_raw_parts_mut(dst.at(b * MC * width), rows * width) };
			block_product(&a[b * MC * k..][..rows * k], k, &self.panels, width, c);
		};
		if spin::threads() > 1 && blocks > 1 {
			spin::for_each(blocks, block);
		} else {
			(0..blocks).for_each(block);
		}
		if width != n {
			out = out.chunks_exact(width).flat_map(|row| &row[..n]).copied().collect();
		}
		out
	}

	/// `a · B` (`a` row-major `[m, k]`) for integer-valued `a` and `B` whose products, summed
	/// over any `step` consecutive depths, stay below 2^24 in magnitude: each such run is
	/// summed exactly in f32, the runs are added as integers. Returns the `[m, n]` sums.
	pub(crate) fn times_exact(&self, a: &[f32], m: usize, step: usize) -> Vec<i64> {
		let k = self.k;
		assert!(a.len() == m * k && step >= 1, "an [m, k] operand and a positive step");
		self.by_panels(m, |panel, tile| panel_product_exact(a, k, panel, step, tile))
	}
}

fn n_panels(n: usize) -> usize {
	n.div_ceil(NR)
}

simd_kernel! {
	/// `dst[i · NR + c] = Σ_kk a[i · k + kk] · panel[kk · NR + c]` for every row `i` of `a`.
	fn panel_product(a: &[f32], k: usize, panel: &[f32], dst: &mut [f32]) {
		let m = dst.len() / NR;
		let mut i0 = 0;
		while i0 < m {
			let rows = (m - i0).min(MR);
			let (a, dst) = (&a[i0 * k..], &mut dst[i0 * NR..]);
			match rows {
				6 => tile::<6>(&row_slices(a, k), k, panel, dst),
				5 => tile::<5>(&row_slices(a, k), k, panel, dst),
				4 => tile::<4>(&row_slices(a, k), k, panel, dst),
				3 => tile::<3>(&row_slices(a, k), k, panel, dst),
				2 => tile::<2>(&row_slices(a, k), k, panel, dst),
				_ => tile::<1>(&row_slices(a, k), k, panel, dst),
			}
			i0 += rows;
		}
	}
}

simd_kernel! {
	/// `c = a · B` for a block of rows (`c` row-major with `width`, the panels' columns), in
	/// depth blocks of [`KC`], each panel's slice swept by every tile of rows.
	fn block_product(a: &[f32], k: usize, panels: &[f32], width: usize, c: &mut [f32]) {
		let m = c.len() / width;
		let tiles = m.div_ceil(MR);
		// The block's rows packed per tile of MR rows, depth by depth (MR values each, the
		// last tile's missing rows 0): the tile reads A as one sequential stream.
		let mut packed = vec![0f32; tiles * MR * KC];
		for k0 in (0..k).step_by(KC) {
			let depth = KC.min(k - k0);
			for (t, tile) in packed.chunks_exact_mut(MR * KC).enumerate() {
				for r in 0..MR.min(m - t * MR) {
					let row = &a[(t * MR + r) * k + k0..][..depth];
					for (kk, &v) in row.iter().enumerate() {
						tile[kk * MR + r] = v;
					}
				}
			}
			for p in 0..width / NR {
				let panel = &panels[(p * k + k0) * NR..][..depth * NR];
				for (t, ap) in packed.chunks_exact(MR * KC).enumerate() {
					let c = &mut c[t * MR * width + p * NR..];
					let rows = MR.min(m - t * MR);
					tile_packed(ap, depth, panel, c, width, rows, k0 > 0);
				}
			}
		}
	}
}

simd_kernel! {
	/// [`panel_product`] of integer values, exactly: f32 sums over runs of `step` depths,
	/// added as integers.
	fn panel_product_exact(a: &[f32], k: usize, panel: &[f32], step: usize, dst: &mut [i64]) {
		let m = dst.len() / NR;
		let mut i0 = 0;
		while i0 < m {
			let rows = (m - i0).min(MR);
			let (a, dst) = (&a[i0 * k..], &mut dst[i0 * NR..]);
			match rows {
				6 => tile_exact::<6>(a, k, panel, step, dst),
				5 => tile_exact::<5>(a, k, panel, step, dst),
				4 => tile_exact::<4>(a, k, panel, step, dst),
				3 => tile_exact::<3>(a, k, panel, step, dst),
				2 => tile_exact::<2>(a, k, panel, step, dst),
				_ => tile_exact::<1>(a, k, panel, step, dst),
			}
			i0 += rows;
		}
	}
}

/// The first `R` rows of the row-major `a` (row stride `k`), from their start on.
#[inline(always)]
fn row_slices<const R: usize>(a: &[f32], k: usize) -> [&[f32]; R] {
	std::array::from_fn(|r| &a[r * k..])
}

/// [`tile`] over runs of `step` depths, each run's f32 sums added to integer totals.
#[inline(always)]
fn tile_exact<const R: usize>(a: &[f32], k: usize, panel: &[f32], step: usize, dst: &mut [i64]) {
	let mut total = [[0i64; NR]; R];
	let mut run = [[0f32; NR]; R];
	for k0 in (0..k).step_by(step) {
		let len = step.min(k - k0);
		let a: [&[f32]; R] = std::array::from_fn(|r| &a[r * k + k0..][..len]);
		tile::<R>(&a, len, &panel[k0 * NR..], run.as_flattened_mut());
		for (total, run) in total.iter_mut().zip(&run) {
			for (t, &v) in total.iter_mut().zip(run) {
				*t += v as i64;
			}
		}
	}
	for (r, total) in total.iter().enumerate() {
		dst[r * NR..][..NR].copy_from_slice(total);
	}
}

/// One `R` × [`NR`] tile of the product, its sums in registers down the whole depth.
/// `rows` are the tile's rows of A, each at least `k` long.
#[inline(always)]
fn tile<const R: usize>(rows: &[&[f32]; R], k: usize, panel: &[f32], dst: &mut [f32]) {
	tile_acc::<R>(rows, k, panel, dst, NR, false)
}

/// An [`MR`] × [`NR`] tile from A packed as `ap[kk · MR + r]`, into the first `rows` rows of
/// `dst` (`ld` apart), continuing the sums already there when `load`. The same fused
/// multiply-add chain per output as [`tile_acc`].
#[inline(always)]
fn tile_packed(
	ap: &[f32],
	k: usize,
	panel: &[f32],
	dst: &mut [f32],
	ld: usize,
	rows: usize,
	load: bool,
) {
	let (ap, panel) = (&ap[..k * MR], &panel[..k * NR]);
	let mut acc = [[0f32; NR]; MR];
	if load {
		for (r, acc) in acc.iter_mut().enumerate().take(rows) {
			acc.copy_from_slice(&dst[r * ld..][..NR]);
		}
	}
	// Zipped chunks: no bounds test inside the loop.
	for (b, x) in panel.as_chunks::<NR>().0.iter().zip(ap.as_chunks::<MR>().0) {
		for r in 0..MR {
			for c in 0..NR {
				acc[r][c] = b[c].mul_add(x[r], acc[r][c]);
			}
		}
	}
	for (r, acc) in acc.iter().enumerate().take(rows) {
		dst[r * ld..][..NR].copy_from_slice(acc);
	}
}

/// [`tile`] into rows `ld` apart, continuing the sums already there when `load`.
#[inline(always)]
fn tile_acc<const R: usize>(
	rows: &[&[f32]; R],
	k: usize,
	panel: &[f32],
	dst: &mut [f32],
	ld: usize,
	load: bool,
) {
	let rows: [&[f32]; R] = std::array::from_fn(|r| &rows[r][..k]);
	let panel = &panel[..k * NR];
	let mut acc = [[0f32; NR]; R];
	if load {
		for (r, acc) in acc.iter_mut().enumerate() {
			acc.copy_from_slice(&dst[r * ld..][..NR]);
		}
	}
	for (kk, b) in panel.as_chunks::<NR>().0.iter().enumerate() {
		for r in 0..R {
			let x = rows[r][kk];
			for c in 0..NR {
				acc[r][c] = b[c].mul_add(x, acc[r][c]);
			}
		}
	}
	for (r, acc) in acc.iter().enumerate() {
		dst[r * ld..][..NR].copy_from_slice(acc);
	}
}

#[cfg(test)]
mod tests {
	use super::{super::testing::*, *};
	use burn::tensor::ops::FloatTensorOps;
	use burn_flex::Flex;

	#[test]
	fn packed_products_match_matmul_on_every_path() {
		for (m, k, n) in [
			(1, 5, 3),
			(11, 384, 384),
			(7, 33, 50),
			(13, 64, 17),
			(64, 128, 96),
			(130, 300, 50),
			(257, 600, 40),
		] {
			let a = random(&[m, k], 1);
			let b = random(&[k, n], 2);
			let packed = PackedB::pack::<Flex>(&b).expect("f32 on burn-flex");
			let got = packed.times::<Flex>(&a).expect("f32 on burn-flex");
			let want = Flex::float_matmul(a.clone(), b);
			let (fast, portable) = (values(got.clone()), {
				super::super::PORTABLE_ONLY.store(true, std::sync::atomic::Ordering::Relaxed);
				let v = values(packed.times::<Flex>(&a).unwrap());
				super::super::PORTABLE_ONLY.store(false, std::sync::atomic::Ordering::Relaxed);
				v
			});
			assert_eq!(fast, portable, "{m}x{k}x{n}: the portable kernel gives the same bits");
			assert_close(got, want, &format!("packed {m}x{k}x{n}"));
		}
	}

	#[test]
	fn a_row_gives_the_same_bits_alone_and_in_any_batch() {
		let (k, n) = (600, 40);
		let b = PackedB::pack::<Flex>(&random(&[k, n], 3)).unwrap();
		let batch = random(&[130, k], 4);
		let (_, all) = values(b.times::<Flex>(&batch).unwrap());
		let (_, rows) = values(batch);
		for i in [0, 5, 64, 129] {
			let row = super::super::to_backend::<Flex>(rows[i * k..][..k].to_vec(), vec![1, k]);
			let (_, alone) = values(b.times::<Flex>(&row).unwrap());
			assert_eq!(alone, all[i * n..][..n], "row {i}");
		}
	}

	#[test]
	fn exact_integer_products_over_depth_runs() {
		// Centred 8-bit values, as MatMulInteger makes them, 1536 deep: bounded by 1536 x 2^14,
		// past what f32 sums hold exactly, so they are split into runs (of 1023, 7 and 1).
		let (m, k, n) = (11, 1536, 40);
		let mut seed = 7u64;
		let mut next = |range: i64| {
			seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
			((seed >> 33) as i64 % range) as f32
		};
		let a: Vec<f32> = (0..m * k).map(|_| next(256) - 128.0).collect();
		let b: Vec<f32> = (0..k * n).map(|_| next(256) - 128.0).collect();
		let bt = super::super::to_backend::<Flex>(b.clone(), vec![k, n]);
		let packed = PackedB::pack::<Flex>(&bt).unwrap();
		let want: Vec<i64> = (0..m * n)
			.map(|o| (0..k).map(|t| a[o / n * k + t] as i64 * b[t * n + o % n] as i64).sum())
			.collect();
		let step = ((1i64 << 24) - 1) as usize / (128 * 128);
		for step in [step, 7, 1] {
			assert_eq!(packed.times_exact(&a, m, step), want, "runs of {step}");
		}
	}
}
