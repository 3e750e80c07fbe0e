//! Exact products of 8-bit integer operands by a constant matrix on CPUs with AVX-512 VNNI:
//! MatMulInteger's and QLinearMatMul's `Σ (a − za)(b − zb)`. `vpdpbusd` multiplies unsigned
//! by signed bytes and adds each four products to a 32-bit lane without saturating, so the
//! sums are exact, the same integers every other path computes, 64 products per instruction
//! (the f32 path does 8, and reads each weight as 4 bytes, not 1).
//!
//! The operands are shifted into the instruction's types: A' = a (uint8) or a + 128 (int8),
//! B' = b (int8) or b − 128 (uint8). With cb = b − zb − B' per column and za' = za + (A' − a):
//! `Σ (a − za)(b − zb) = Σ A'B' + cb·ΣA' − za'·ΣB' − k·za'·cb`, every term an exact integer.

use super::{spin, Shared};

/// Columns per panel: one 512-bit vector of 32-bit sums.
const NR: usize = 16;
/// Rows per register tile (a vector of sums each, one of B, a broadcast of A).
const MR: usize = 8;
/// Depths per run of 32-bit sums: 4 products of at most 255 · 128 per instruction, 8,192
/// instructions stay below 2^31. Longer depths add runs as 64-bit integers.
const RUN: usize = 4 * 8192;
/// From this many products the panels are split over the threads.
const SPLIT_MACS: usize = 1 << 20;

/// Whether this CPU has the instructions (AVX-512 F and BW, VNNI; checked once).
pub(crate) fn available() -> bool {
	#[cfg(target_arch = "x86_64")]
	{
		static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
		*HAS.get_or_init(|| {
			std::arch::is_x86_feature_detected!("avx512f") &&
				std::arch::is_x86_feature_detected!("avx512bw") &&
				std::arch::is_x86_feature_detected!("avx512vnni")
		})
	}
	#[cfg(not(target_arch = "x86_64"))]
	{
		false
	}
}

/// A constant `[k, n]` 8-bit matrix B, shifted to signed bytes and packed in panels of
/// [`NR`] columns: for each four depths, the panel's columns' four bytes in a row.
pub(crate) struct PackedI8 {
	k: usize,
	n: usize,
	/// `k` rounded up to a multiple of 4 (the padding is 0).
	kp: usize,
	panels: Vec<i8>,
	/// Σ over the depth of each column's B'.
	col_sums: Vec<i64>,
	/// Each column's cb: its centred value less its B'.
	col_offset: Vec<i64>,
}

impl PackedI8 {
	/// Packs B (`b`: row-major `[k, n]` 8-bit values, int8 when `signed`, else uint8) with
	/// column `c`'s zero point `zero(c)`. `None` where the CPU lacks the instructions.
	pub(crate) fn pack(
		b: &[i64],
		k: usize,
		n: usize,
		signed: bool,
		zero: impl Fn(usize) -> i64,
	) -> Option<PackedI8> {
		if !available() || super::portable_only() || b.len() != k * n || k == 0 || n == 0 {
			return None;
		}
		let shift = if signed { 0 } else { 128 };
		let kp = k.div_ceil(4) * 4;
		let panels_n = n.div_ceil(NR);
		let mut panels = vec![0i8; panels_n * kp * NR];
		let mut col_sums = vec![0i64; n];
		for (kk, row) in b.chunks_exact(n).enumerate() {
			for (c, &v) in row.iter().enumerate() {
				let s = v - shift;
				if !(-128..=127).contains(&s) {
					return None;
				}
				col_sums[c] += s;
				let (p, j) = (c / NR, c % NR);
				panels[p * kp * NR + (kk / 4) * 4 * NR + j * 4 + kk % 4] = s as i8;
			}
		}
		let col_offset = (0..n).map(|c| shift - zero(c)).collect();
		Some(PackedI8 { k, n, kp, panels, col_sums, col_offset })
	}

	pub(crate) fn depth(&self) -> usize {
		self.k
	}

	/// `Σ_k (a[i, k] − za(i))(b[k, j] − zb(j))` for the row-major `[m, k]` 8-bit `a` (int8
	/// when `signed`, else uint8), row `i`'s zero point `za(i)`: the `[m, n]` sums.
	pub(crate) fn times(
		&self,
		a: &[i64],
		m: usize,
		signed: bool,
		za: impl Fn(usize) -> i64 + Sync,
	) -> Vec<i64> {
		let (k, kp, n) = (self.k, self.kp, self.n);
		assert_eq!(a.len(), m * k, "an [m, k] operand");
		let shift = if signed { 128 } else { 0 };
		// A' row by row, each padded to `kp` with zeros, and each row's Σ A'.
		let mut ap = vec![0u8; m * kp];
		let mut row_sums = vec![0i64; m];
		for ((dst, src), sum) in ap.chunks_exact_mut(kp).zip(a.chunks_exact(k)).zip(&mut row_sums) {
			for (d, &v) in dst.iter_mut().zip(src) {
				let u = v + shift;
				*d = u as u8;
				*sum += u;
			}
		}
		let mut out = vec![0i64; m * n];
		let dst = Shared(out.as_mut_ptr());
		let panels = n.div_ceil(NR);
		let run = |p: usize| {
			let mut tile = vec![0i64; m * NR];
			let panel = &self.panels[p * kp * NR..][..kp * NR];
			// SAFETY: `available()` was true when this matrix was packed.
			unsafe { panel_product(&ap, kp, m, panel, &mut tile) };
			let (j0, w) = (p * NR, NR.min(n - p * NR));
			let (cb, cs) = (&self.col_offset[j0..j0 + w], &self.col_sums[j0..j0 + w]);
			for (i, row) in tile.chunks_exact(NR).enumerate() {
				// Σ A'B' + cb·(ΣA' − k·za') − za'·ΣB'.
				let za = za(i) + shift;
				let row_term = row_sums[i] - k as i64 * za;
				for (j, ((&s, &cb), &cs)) in row.iter().zip(cb).zip(cs).enumerate() {
					// SAFETY: columns j0..j0 + w of every row belong to panel p's task alone.
					unsafe { *dst.at(i * n + j0 + j) = s + cb * row_term - za * cs };
				}
			}
		};
		let threads = spin::threads();
		if m * n * k >= SPLIT_MACS && threads > 1 && panels >= 2 {
			let per = panels.div_ceil(threads);
			spin::for_each(panels.div_ceil(per), |t| {
				(t * per..((t + 1) * per).min(panels)).for_each(run);
			});
		} else {
			(0..panels).for_each(run);
		}
		out
	}
}

/// `tile[i · NR + c] = Σ_kk ap[i · kp + kk] · panel(kk, c)` for every row `i < m`.
///
/// # Safety
/// The CPU has AVX-512 F, BW and VNNI ([`available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn panel_product(ap: &[u8], kp: usize, m: usize, panel: &[i8], tile: &mut [i64]) {
	let mut i0 = 0;
	while i0 < m {
		let rows = (m - i0).min(MR);
		let (a, t) = (&ap[i0 * kp..], &mut tile[i0 * NR..]);
		match rows {
			8 => tile_rows::<8>(a, kp, panel, t),
			7 => tile_rows::<7>(a, kp, panel, t),
			6 => tile_rows::<6>(a, kp, panel, t),
			5 => tile_rows::<5>(a, kp, panel, t),
			4 => tile_rows::<4>(a, kp, panel, t),
			3 => tile_rows::<3>(a, kp, panel, t),
			2 => tile_rows::<2>(a, kp, panel, t),
			_ => tile_rows::<1>(a, kp, panel, t),
		}
		i0 += rows;
	}
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn panel_product(_: &[u8], _: usize, _: usize, _: &[i8], _: &mut [i64]) {
	unreachable!("packed only where `available()`")
}

/// `R` rows × [`NR`] columns: a 32-bit sum per output in a register over runs of [`RUN`]
/// depths, each run added to the 64-bit totals.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn tile_rows<const R: usize>(a: &[u8], kp: usize, panel: &[i8], tile: &mut [i64]) {
	use std::arch::x86_64::*;
	assert!(a.len() >= (R - 1) * kp + kp && panel.len() >= kp * NR && tile.len() >= R * NR);
	let mut total = [[0i64; NR]; R];
	for k0 in (0..kp).step_by(RUN) {
		let end = (k0 + RUN).min(kp);
		let mut acc = [_mm512_setzero_si512(); R];
		for q in (k0..end).step_by(4) {
			// SAFETY: 64 readable bytes of the panel at depth q (asserted: q + 4 ≤ kp).
			let b = unsafe { _mm512_loadu_si512(panel.as_ptr().add(q * NR).cast()) };
			for (r, acc) in acc.iter_mut().enumerate() {
				let x = &a[r * kp + q..r * kp + q + 4];
				let x = i32::from_le_bytes([x[0], x[1], x[2], x[3]]);
				*acc = _mm512_dpbusd_epi32(*acc, _mm512_set1_epi32(x), b);
			}
		}
		for (total, acc) in total.iter_mut().zip(acc) {
			let mut lanes = [0i32; NR];
			// SAFETY: 16 writable i32.
			unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), acc) };
			for (t, l) in total.iter_mut().zip(lanes) {
				*t += l as i64;
			}
		}
	}
	for (r, total) in total.iter().enumerate() {
		tile[r * NR..][..NR].copy_from_slice(total);
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn exact(
		a: &[i64],
		b: &[i64],
		(m, k, n): (usize, usize, usize),
		za: impl Fn(usize) -> i64,
		zb: impl Fn(usize) -> i64,
	) -> Vec<i64> {
		(0..m * n)
			.map(|o| {
				let (i, j) = (o / n, o % n);
				(0..k).map(|t| (a[i * k + t] - za(i)) * (b[t * n + j] - zb(j))).sum()
			})
			.collect()
	}

	#[test]
	fn vnni_products_are_the_exact_integers() {
		if !available() {
			eprintln!("no AVX-512 VNNI on this CPU: nothing to check");
			return;
		}
		let mut seed = 11u64;
		let mut next = |lo: i64, hi: i64| {
			seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
			lo + ((seed >> 33) as i64).rem_euclid(hi - lo + 1)
		};
		// Every type pairing, zero points at the extremes and per row / column, depths not a
		// multiple of 4, widths not a multiple of 16, rows past a tile, and a depth of two runs.
		for (m, k, n) in [(1, 1, 1), (3, 5, 17), (11, 384, 40), (9, 33, 16), (20, 70_000, 3)] {
			for (a_signed, b_signed) in [(false, true), (false, false), (true, true), (true, false)]
			{
				let range = |s: bool| if s { (-128, 127) } else { (0, 255) };
				let (alo, ahi) = range(a_signed);
				let (blo, bhi) = range(b_signed);
				let a: Vec<i64> = (0..m * k).map(|_| next(alo, ahi)).collect();
				let b: Vec<i64> = (0..k * n).map(|_| next(blo, bhi)).collect();
				let za: Vec<i64> =
					(0..m).map(|i| if i == 0 { alo } else { next(alo, ahi) }).collect();
				let zb: Vec<i64> =
					(0..n).map(|j| if j == 0 { bhi } else { next(blo, bhi) }).collect();
				let packed = PackedI8::pack(&b, k, n, b_signed, |j| zb[j]).expect("VNNI");
				let got = packed.times(&a, m, a_signed, |i| za[i]);
				let want = exact(&a, &b, (m, k, n), |i| za[i], |j| zb[j]);
				assert_eq!(got, want, "{m}x{k}x{n}, signed A {a_signed}, signed B {b_signed}");
			}
		}
	}
}
