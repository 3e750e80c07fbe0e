//! AVX2 twins of the block dot products in [`crate::quant`]: the integer sums are exact
//! either way, and the float arithmetic after them is the same operations in the same order
//! (for the 32-element types: eight lanes, see [`crate::quant::Lanes`]), so both paths give
//! the same bits (checked by the tests below on every block type).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use crate::quant::Q8Block;

/// Whether this CPU can take the AVX2 path (AVX2, FMA and F16C; checked once).
pub fn avx2() -> bool {
	#[cfg(target_arch = "x86_64")]
	{
		static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
		*HAS.get_or_init(|| {
			is_x86_feature_detected!("avx2") &&
				is_x86_feature_detected!("fma") &&
				is_x86_feature_detected!("f16c")
		})
	}
	#[cfg(not(target_arch = "x86_64"))]
	{
		false
	}
}

/// An f16 scale as f32 by one F16C instruction (exact, as every conversion of f16 to f32).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_at(b: &[u8], i: usize) -> f32 {
	let bits = u16::from_le_bytes([b[i], b[i + 1]]);
	_mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn hsum_i32(v: __m256i) -> i32 {
	let lo = _mm256_castsi256_si128(v);
	let hi = _mm256_extracti128_si256::<1>(v);
	let s = _mm_add_epi32(lo, hi);
	let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
	let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
	_mm_cvtsi128_si32(s)
}

/// [`crate::quant::Lanes::sum`]: lane j + lane j + 4, then (0 + 2) + (1 + 3).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn hsum_lanes(v: __m256) -> f32 {
	let r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
	let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
	_mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))
}

/// Per i32 lane j: Σ x·y over bytes 4j..4j + 4 of 32 unsigned × signed bytes (x ≤ 31 or
/// |x|·|y| ≤ 128·127: no i16 saturation).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn lanes_u8_i8(x: __m256i, y: __m256i) -> __m256i {
	_mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1))
}

/// Σ x·y over 32 unsigned × signed bytes (as [`lanes_u8_i8`]).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn dot_u8_i8(x: __m256i, y: __m256i) -> i32 {
	hsum_i32(lanes_u8_i8(x, y))
}

/// Per i32 lane j: Σ x·y over bytes 4j..4j + 4 of 32 signed bytes, x ≥ −128 and y > −128
/// (|x|·(y·sign x) = x·y; our activations are never −128, so the sign flip cannot overflow).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn lanes_i8_i8(x: __m256i, y: __m256i) -> __m256i {
	lanes_u8_i8(_mm256_abs_epi8(x), _mm256_sign_epi8(y, x))
}

/// acc + d · lanes, one fused multiply-add per lane ([`crate::quant::Lanes::add_block`]).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
fn fma_lanes(acc: __m256, d: f32, lanes: __m256i) -> __m256 {
	_mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), acc)
}

/// The 32 nibbles of a Q4 block as bytes: low nibbles (elements 0..16), then high (16..32).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn nibbles(qs: &[u8]) -> __m256i {
	assert!(qs.len() >= 16);
	// SAFETY: 16 readable bytes (asserted), unaligned load.
	let b = unsafe { _mm_loadu_si128(qs.as_ptr().cast()) };
	let m = _mm_set1_epi8(0x0F);
	let lo = _mm_and_si128(b, m);
	let hi = _mm_and_si128(_mm_srli_epi16::<4>(b), m);
	_mm256_set_m128i(hi, lo)
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn load32(q: &[i8; 32]) -> __m256i {
	// SAFETY: 32 readable bytes, unaligned load.
	unsafe { _mm256_loadu_si256(q.as_ptr().cast()) }
}

/// How far ahead of the block being read the kernels ask for weights: a page, so the next
/// page's translation and lines are in flight before they are needed. A matmul streams its
/// weights from a memory-mapped file in 4 KiB pages; without this the kernels stall on
/// each line (decode ran at 0.55× of its speed with it, on the 2-core development VM).
const PREFETCH: usize = 4096;

/// Prefetches the lines of the weights [`PREFETCH`] bytes after `b` (a hint: past the end of
/// the mapping it does nothing, and the address is never dereferenced).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn ahead(b: &[u8]) {
	let mut off = 0;
	while off < b.len() {
		_mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(PREFETCH + off).cast());
		off += 64;
	}
}

/// The 32 bits of a Q5 block's `qh` as bytes: byte j is 0xFF where bit j is set, else 0.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn high_bits(qh: &[u8]) -> __m256i {
	let bits = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
	// Byte j gets byte j / 8 of the word, then every bit but j % 8 is set: all ones iff
	// bit j % 8 of that byte (bit j of the word) is.
	let spread = _mm256_shuffle_epi8(
		_mm256_set1_epi32(bits as i32),
		_mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202, 0x0101_0101_0101_0101, 0),
	);
	let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe_u64 as i64);
	_mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi8(-1))
}

/// A Q5_0 block's quants as signed bytes (−16..=15): the nibble where the high bit is set,
/// else the nibble − 16 (its byte with the top four bits set).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn q5_0_quants(b: &[u8]) -> __m256i {
	let low = nibbles(&b[6..22]);
	_mm256_or_si256(low, _mm256_andnot_si256(high_bits(&b[2..6]), _mm256_set1_epi8(0xF0u8 as i8)))
}

/// A Q5_1 block's quants as unsigned bytes (0..=31).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn q5_1_quants(b: &[u8]) -> __m256i {
	let low = nibbles(&b[8..24]);
	_mm256_or_si256(low, _mm256_and_si256(high_bits(&b[4..8]), _mm256_set1_epi8(0x10)))
}

/// A Q4_0 block's quants as signed bytes (−8..=7).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn q4_0_quants(b: &[u8]) -> __m256i {
	_mm256_sub_epi8(nibbles(&b[2..18]), _mm256_set1_epi8(8))
}

/// A Q8_0 block's quants.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn q8_0_quants(b: &[u8]) -> __m256i {
	assert!(b.len() >= 34);
	// SAFETY: 32 readable bytes after the scale (asserted), unaligned load.
	unsafe { _mm256_loadu_si256(b[2..34].as_ptr().cast()) }
}

/// Q4_0 row · Q8_0 activations.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_0(row: &[u8], y: &[Q8Block]) -> f32 {
	dot_signed::<18>(row, y, |b| q4_0_quants(b))
}

/// A row of `BYTES`-byte blocks (an f16 scale, then quants that `quants` reads as 32 signed
/// bytes) · Q8_0 activations.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_signed<const BYTES: usize>(
	row: &[u8],
	y: &[Q8Block],
	quants: impl Fn(&[u8]) -> __m256i,
) -> f32 {
	let mut acc = _mm256_setzero_ps();
	for (b, y) in row.chunks_exact(BYTES).zip(y) {
		ahead(b);
		acc = fma_lanes(acc, f16_at(b, 0) * y.d, lanes_i8_i8(quants(b), load32(&y.qs)));
	}
	hsum_lanes(acc)
}

/// Q5_0 row · Q8_0 activations.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q5_0(row: &[u8], y: &[Q8Block]) -> f32 {
	dot_signed::<22>(row, y, |b| q5_0_quants(b))
}

/// A row of `BYTES`-byte blocks (scale d and minimum m as f16, then quants that `quants`
/// reads as 32 unsigned bytes) · Q8_1 activations: Σ d·d_y·(q·y) in lanes plus Σ m·s_y.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_offset<const BYTES: usize>(
	row: &[u8],
	y: &[Q8Block],
	quants: impl Fn(&[u8]) -> __m256i,
) -> f32 {
	let mut acc = _mm256_setzero_ps();
	let mut offset = 0f32;
	for (b, y) in row.chunks_exact(BYTES).zip(y) {
		ahead(b);
		let p = lanes_u8_i8(quants(b), load32(&y.qs));
		acc = fma_lanes(acc, f16_at(b, 0) * y.d, p);
		offset = f16_at(b, 2).mul_add(y.s, offset);
	}
	hsum_lanes(acc) + offset
}

/// Q4_1 row · Q8_1 activations.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_1(row: &[u8], y: &[Q8Block]) -> f32 {
	dot_offset::<20>(row, y, |b| nibbles(&b[4..20]))
}

/// Q5_1 row · Q8_1 activations.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q5_1(row: &[u8], y: &[Q8Block]) -> f32 {
	dot_offset::<24>(row, y, |b| q5_1_quants(b))
}

/// Q8_0 row · Q8_0 activations.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q8_0(row: &[u8], y: &[Q8Block]) -> f32 {
	dot_signed::<34>(row, y, |b| q8_0_quants(b))
}

/// Most activation vectors one call of the `_multi` kernels takes.
pub const MULTI: usize = 8;

/// [`dot_signed`] of one row with each of up to [`MULTI`] activation vectors at once: a
/// block's quants and scale are read once for all of them (the prompt's prefill), and each
/// result is computed by the same operations in the same order as one at a time, so the
/// same bits.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn multi_signed<const BYTES: usize>(
	row: &[u8],
	ys: &[&[Q8Block]],
	out: &mut [f32],
	quants: impl Fn(&[u8]) -> __m256i,
) {
	assert!(ys.len() <= MULTI && out.len() == ys.len());
	let mut acc = [_mm256_setzero_ps(); MULTI];
	for (i, b) in row.chunks_exact(BYTES).enumerate() {
		ahead(b);
		let (x, d) = (quants(b), f16_at(b, 0));
		let ax = _mm256_abs_epi8(x);
		for (acc, y) in acc.iter_mut().zip(ys) {
			let y = &y[i];
			let p = lanes_u8_i8(ax, _mm256_sign_epi8(load32(&y.qs), x));
			*acc = fma_lanes(*acc, d * y.d, p);
		}
	}
	for (o, acc) in out.iter_mut().zip(acc) {
		*o = hsum_lanes(acc);
	}
}

/// [`dot_offset`] of one row with each of up to [`MULTI`] activation vectors (as
/// [`multi_signed`]: the same bits as one at a time).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn multi_offset<const BYTES: usize>(
	row: &[u8],
	ys: &[&[Q8Block]],
	out: &mut [f32],
	quants: impl Fn(&[u8]) -> __m256i,
) {
	assert!(ys.len() <= MULTI && out.len() == ys.len());
	let mut acc = [_mm256_setzero_ps(); MULTI];
	let mut offset = [0f32; MULTI];
	for (i, b) in row.chunks_exact(BYTES).enumerate() {
		ahead(b);
		let (x, d, m) = (quants(b), f16_at(b, 0), f16_at(b, 2));
		for ((acc, offset), y) in acc.iter_mut().zip(offset.iter_mut()).zip(ys) {
			let y = &y[i];
			*acc = fma_lanes(*acc, d * y.d, lanes_u8_i8(x, load32(&y.qs)));
			*offset = m.mul_add(y.s, *offset);
		}
	}
	for ((o, acc), offset) in out.iter_mut().zip(acc).zip(offset) {
		*o = hsum_lanes(acc) + offset;
	}
}

/// [`dot_q4_0`] of one row with each of up to [`MULTI`] activation vectors ([`multi_signed`]).
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_0_multi(row: &[u8], ys: &[&[Q8Block]], out: &mut [f32]) {
	multi_signed::<18>(row, ys, out, |b| q4_0_quants(b))
}

/// [`dot_q5_0`] of one row with each of up to [`MULTI`] activation vectors ([`multi_signed`]).
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q5_0_multi(row: &[u8], ys: &[&[Q8Block]], out: &mut [f32]) {
	multi_signed::<22>(row, ys, out, |b| q5_0_quants(b))
}

/// [`dot_q8_0`] of one row with each of up to [`MULTI`] activation vectors ([`multi_signed`]).
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q8_0_multi(row: &[u8], ys: &[&[Q8Block]], out: &mut [f32]) {
	multi_signed::<34>(row, ys, out, |b| q8_0_quants(b))
}

/// [`dot_q4_1`] of one row with each of up to [`MULTI`] activation vectors ([`multi_offset`]).
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_1_multi(row: &[u8], ys: &[&[Q8Block]], out: &mut [f32]) {
	multi_offset::<20>(row, ys, out, |b| nibbles(&b[4..20]))
}

/// [`dot_q5_1`] of one row with each of up to [`MULTI`] activation vectors ([`multi_offset`]).
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q5_1_multi(row: &[u8], ys: &[&[Q8Block]], out: &mut [f32]) {
	multi_offset::<24>(row, ys, out, |b| q5_1_quants(b))
}

/// [`crate::quant::dot_f16`]: eight lanes of fused multiply-adds, then the lanes' tree.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_f16(q: &[f32], k: &[half::f16]) -> f32 {
	assert!(q.len() == k.len() && q.len().is_multiple_of(8));
	let mut acc = _mm256_setzero_ps();
	for (q, k) in q.chunks_exact(8).zip(k.chunks_exact(8)) {
		// SAFETY: 8 readable f32 and 8 readable f16 (16 bytes), unaligned loads.
		let (qv, kv) = unsafe {
			(_mm256_loadu_ps(q.as_ptr()), _mm256_cvtph_ps(_mm_loadu_si128(k.as_ptr().cast())))
		};
		acc = _mm256_fmadd_ps(qv, kv, acc);
	}
	hsum_lanes(acc)
}

/// [`crate::quant::add_scaled_f16`]: out += w · v, a product then a sum per element.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn add_scaled_f16(out: &mut [f32], w: f32, v: &[half::f16]) {
	assert!(out.len() == v.len() && out.len().is_multiple_of(8));
	let wv = _mm256_set1_ps(w);
	for (o, v) in out.chunks_exact_mut(8).zip(v.chunks_exact(8)) {
		// SAFETY: 8 f32 to read and write, 8 readable f16 (16 bytes), unaligned.
		unsafe {
			let vv = _mm256_cvtph_ps(_mm_loadu_si128(v.as_ptr().cast()));
			let sum = _mm256_add_ps(_mm256_loadu_ps(o.as_ptr()), _mm256_mul_ps(wv, vv));
			_mm256_storeu_ps(o.as_mut_ptr(), sum);
		}
	}
}

/// Σ over each 128-bit half: (elements 0..16, elements 16..32) of a 32-byte product.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn dot_halves(x: __m256i, y: __m256i) -> (i32, i32) {
	let p = _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
	let h = |v: __m128i| {
		let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b01_00_11_10>(v));
		_mm_cvtsi128_si32(_mm_add_epi32(v, _mm_shuffle_epi32::<0b10_11_00_01>(v)))
	};
	(h(_mm256_castsi256_si128(p)), h(_mm256_extracti128_si256::<1>(p)))
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn load_bytes(b: &[u8]) -> __m256i {
	assert!(b.len() >= 32);
	// SAFETY: 32 readable bytes (asserted), unaligned load.
	unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn load_i8(b: &[i8]) -> __m256i {
	assert!(b.len() >= 32);
	// SAFETY: 32 readable bytes (asserted), unaligned load.
	unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

/// Q4_K (`with_high`: Q5_K) row · Q8_K activations.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q45_k(row: &[u8], y: &[crate::quant::Q8KBlock], with_high: bool) -> f32 {
	let bb = if with_high { 176 } else { 144 };
	let m4 = _mm256_set1_epi8(0x0F);
	let one = _mm256_set1_epi8(1);
	let mut sum = 0f32;
	for (b, y) in row.chunks_exact(bb).zip(y) {
		ahead(b);
		let scales = &b[4..16];
		let (qh, qs) = if with_high { (&b[16..48], &b[48..]) } else { (&b[0..0], &b[16..]) };
		let hv = if with_high { load_bytes(qh) } else { _mm256_setzero_si256() };
		let (mut sumi, mut summ) = (0i32, 0i32);
		for k in 0..4 {
			let q = load_bytes(&qs[32 * k..]);
			let mut lo = _mm256_and_si256(q, m4);
			let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
			if with_high {
				let bit = |sb: i32| {
					let v = _mm256_srl_epi16(hv, _mm_cvtsi32_si128(sb));
					_mm256_slli_epi16::<4>(_mm256_and_si256(v, one))
				};
				lo = _mm256_or_si256(lo, bit(2 * k as i32));
				hi = _mm256_or_si256(hi, bit(2 * k as i32 + 1));
			}
			for (sb, v) in [(2 * k, lo), (2 * k + 1, hi)] {
				let (sc, m) = crate::quant::scale_min_k4(sb, scales);
				sumi += sc as i32 * dot_u8_i8(v, load_i8(&y.qs[32 * sb..]));
				summ += m as i32 * (y.bsums[2 * sb] as i32 + y.bsums[2 * sb + 1] as i32);
			}
		}
		sum += f16_at(b, 0) * y.d * sumi as f32 - f16_at(b, 2) * y.d * summ as f32;
	}
	sum
}

/// Q6_K row · Q8_K activations.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C ([`avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q6_k(row: &[u8], y: &[crate::quant::Q8KBlock]) -> f32 {
	let m4 = _mm256_set1_epi8(0x0F);
	let m2 = _mm256_set1_epi8(0x03);
	let mut sum = 0f32;
	for (b, y) in row.chunks_exact(210).zip(y) {
		ahead(b);
		let mut sumi = 0i32;
		for h in 0..2 {
			let ql0 = load_bytes(&b[64 * h..]);
			let ql1 = load_bytes(&b[64 * h + 32..]);
			let qh = load_bytes(&b[128 + 32 * h..]);
			let high = |shift: i32| {
				let v = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(shift)), m2);
				_mm256_slli_epi16::<4>(v)
			};
			// Unsigned 0..63 here; Σ(q − 32)·y = Σq·y − 32·Σy, with Σy per 16 from bsums.
			let parts = [
				_mm256_or_si256(_mm256_and_si256(ql0, m4), high(0)),
				_mm256_or_si256(_mm256_and_si256(ql1, m4), high(2)),
				_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4), high(4)),
				_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4), high(6)),
			];
			for (j, q) in parts.into_iter().enumerate() {
				let e = 128 * h + 32 * j;
				let (a, c) = dot_halves(q, load_i8(&y.qs[e..]));
				let g = e / 16;
				sumi += (b[192 + g] as i8) as i32 * (a - 32 * y.bsums[g] as i32);
				sumi += (b[193 + g] as i8) as i32 * (c - 32 * y.bsums[g + 1] as i32);
			}
		}
		sum += f16_at(b, 208) * y.d * sumi as f32;
	}
	sum
}

#[cfg(test)]
mod tests {
	use crate::quant::{self, Acts, GgmlType};

	#[test]
	fn avx2_and_portable_paths_give_the_same_bits() {
		if !super::avx2() {
			eprintln!("no AVX2 on this CPU: nothing to compare");
			return;
		}
		let n = 1024;
		for ty in quant::tests::QUANTIZED {
			for seed in 0..20u32 {
				let row = quant::tests::block_bytes(ty, n / ty.block_len(), seed);
				let v: Vec<f32> = (0..n)
					.map(|i| {
						(((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 100.0 -
							10.0
					})
					.collect();
				let acts = quant::quantize_acts(ty.act_kind(), &v);
				let portable = quant::dot_row_portable(ty, &row, &acts);
				// SAFETY: AVX2 checked above.
				let fast = unsafe {
					match (ty, &acts) {
						(GgmlType::Q4_0, Acts::Q8(y)) => super::dot_q4_0(&row, y),
						(GgmlType::Q4_1, Acts::Q8(y)) => super::dot_q4_1(&row, y),
						(GgmlType::Q5_0, Acts::Q8(y)) => super::dot_q5_0(&row, y),
						(GgmlType::Q5_1, Acts::Q8(y)) => super::dot_q5_1(&row, y),
						(GgmlType::Q8_0, Acts::Q8(y)) => super::dot_q8_0(&row, y),
						(GgmlType::Q4_K, Acts::Q8K(y)) => super::dot_q45_k(&row, y, false),
						(GgmlType::Q5_K, Acts::Q8K(y)) => super::dot_q45_k(&row, y, true),
						(GgmlType::Q6_K, Acts::Q8K(y)) => super::dot_q6_k(&row, y),
						_ => unreachable!(),
					}
				};
				assert_eq!(
					fast.to_bits(),
					portable.to_bits(),
					"{ty:?} seed {seed}: {fast} vs {portable}"
				);
			}
		}
	}

	#[test]
	fn attention_kernels_give_the_portable_bits() {
		if !super::avx2() {
			eprintln!("no AVX2 on this CPU: nothing to compare");
			return;
		}
		for n in [8, 64, 128, 256] {
			for seed in 0..20usize {
				let val = |i: usize, m: usize| {
					((i * 7919 + seed * 104_729 + m) % 4001) as f32 / 400.0 - 5.0
				};
				let q: Vec<f32> = (0..n).map(|i| val(i, 1)).collect();
				let k: Vec<half::f16> = (0..n).map(|i| half::f16::from_f32(val(i, 2))).collect();
				// SAFETY: AVX2 checked above; lengths are multiples of 8.
				let fast = unsafe { super::dot_f16(&q, &k) };
				let portable = quant::dot_f16_portable(&q, &k);
				assert_eq!(fast.to_bits(), portable.to_bits(), "q·k, {n} elements, seed {seed}");

				let w = val(seed, 3) / 7.0;
				let (mut fast, mut portable) = (q.clone(), q.clone());
				// SAFETY: as above.
				unsafe { super::add_scaled_f16(&mut fast, w, &k) };
				quant::add_scaled_f16_portable(&mut portable, w, &k);
				let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
				assert_eq!(bits(&fast), bits(&portable), "out += w·v, {n} elements, seed {seed}");
			}
		}
	}

	#[test]
	fn many_vectors_at_once_give_the_bits_of_one_at_a_time() {
		let n = 1024;
		// The K types without a multi-token kernel go one at a time: trivially the same.
		for ty in quant::tests::QUANTIZED {
			let row = quant::tests::block_bytes(ty, n / ty.block_len(), 3);
			for t in [1, 2, 7, 8, 9, 19] {
				let acts: Vec<Acts> = (0..t)
					.map(|k| {
						let v: Vec<f32> = (0..n)
							.map(|i| ((i * 7919 + k * 104_729) % 2001) as f32 / 100.0 - 10.0)
							.collect();
						quant::quantize_acts(ty.act_kind(), &v)
					})
					.collect();
				let mut many = vec![0f32; t];
				quant::dot_row_multi(ty, &row, &acts, &mut many);
				for (k, a) in acts.iter().enumerate() {
					let one = quant::dot_row(ty, &row, a);
					assert_eq!(many[k].to_bits(), one.to_bits(), "{ty:?}, {t} vectors, #{k}");
				}
			}
		}
	}
}
