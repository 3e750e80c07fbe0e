//! Products by a constant weight matrix packed once at load, for the few-row activations of
//! a batch-1 transformer (a linear layer of 11 tokens is an 11 × 384 by 384 × 384 product).
//! There the GEMM library's own packing of B on every call costs as much memory traffic as
//! the product: here B is stored in panels of [`NR`] columns, each one contiguous run down the
//! depth, and a register tile of up to [`MR`] rows × [`NR`] columns sums the whole depth
//! without touching memory but for the panel and the rows of A.
//!
//! Every output is one fused multiply-add chain down the depth, in order, on every path.

use super::{f32_data, spin, to_backend, Shared, F};
use burn::tensor::{backend::Backend, TensorMetadata};

/// Columns per panel: two 8-lane vectors.
const NR: usize = 16;
/// Rows per tile: 6 × 2 accumulators, 2 vectors of B and a broadcast fit 16 registers.
const MR: usize = 6;
/// From this many multiply-adds the panels are split over the threads.
const SPLIT_MACS: usize = 1 << 20;

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
		let (n, panels) = (self.n, n_panels(self.n));
		let mut out = vec![0f32; m * n];
		let dst = Shared(out.as_mut_ptr());
		let run = |p: usize, tile: &mut Vec<f32>| {
			tile.resize(m * NR, 0.0);
			panel_product(a, k, &self.panels[p * k * NR..][..k * NR], tile);
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
		Some(to_backend::<B>(out, vec![m, n]))
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
				6 => tile::<6>(a, k, panel, dst),
				5 => tile::<5>(a, k, panel, dst),
				4 => tile::<4>(a, k, panel, dst),
				3 => tile::<3>(a, k, panel, dst),
				2 => tile::<2>(a, k, panel, dst),
				_ => tile::<1>(a, k, panel, dst),
			}
			i0 += rows;
		}
	}
}

/// One `R` × [`NR`] tile of the product, its sums in registers down the whole depth.
#[inline(always)]
fn tile<const R: usize>(a: &[f32], k: usize, panel: &[f32], dst: &mut [f32]) {
	let rows: [&[f32]; R] = std::array::from_fn(|r| &a[r * k..][..k]);
	let panel = &panel[..k * NR];
	let mut acc = [[0f32; NR]; R];
	for kk in 0..k {
		let b: &[f32; NR] = panel[kk * NR..][..NR].try_into().expect("NR values");
		for r in 0..R {
			let x = rows[r][kk];
			for c in 0..NR {
				acc[r][c] = b[c].mul_add(x, acc[r][c]);
			}
		}
	}
	for (r, acc) in acc.iter().enumerate() {
		dst[r * NR..][..NR].copy_from_slice(acc);
	}
}

#[cfg(test)]
mod tests {
	use super::{super::testing::*, *};
	use burn::tensor::ops::FloatTensorOps;
	use burn_flex::Flex;

	#[test]
	fn packed_products_match_matmul_on_every_path() {
		for (m, k, n) in [(1, 5, 3), (11, 384, 384), (7, 33, 50), (13, 64, 17), (64, 128, 96)] {
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
}
