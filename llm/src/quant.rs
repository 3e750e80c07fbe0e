//! GGML tensor types: their block layouts, dequantization, and the dot products of a weight
//! row with activations quantized the way llama.cpp quantizes them for that weight type
//! (Q8_0 for Q4_0 and Q8_0, Q8_1 for Q4_1, Q8_K for the K-quants; F32 for float weights).
//!
//! Determinism: each dot product sums the integer products of a block exactly, then
//! accumulates in a fixed order, so every thread count and CPU gives the same bits. The
//! 32-element types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) keep eight f32 lanes as llama.cpp's AVX2
//! code does ([`Lanes`]); the K-quants and float types add each block's (element's) scaled
//! sum into one f32 in order. Any faster twin must do the same operations in the same order.

use half::{bf16, f16};

/// Elements per K-quant super-block.
pub const QK_K: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
	F32,
	F16,
	BF16,
	Q4_0,
	Q4_1,
	Q5_0,
	Q5_1,
	Q8_0,
	Q4_K,
	Q5_K,
	Q6_K,
}

/// GGML's names for the type ids, so a refusal names what the file holds.
fn ggml_name(id: u32) -> &'static str {
	match id {
		0 => "F32",
		1 => "F16",
		2 => "Q4_0",
		3 => "Q4_1",
		6 => "Q5_0",
		7 => "Q5_1",
		8 => "Q8_0",
		9 => "Q8_1",
		10 => "Q2_K",
		11 => "Q3_K",
		12 => "Q4_K",
		13 => "Q5_K",
		14 => "Q6_K",
		15 => "Q8_K",
		16 => "IQ2_XXS",
		17 => "IQ2_XS",
		18 => "IQ3_XXS",
		19 => "IQ1_S",
		20 => "IQ4_NL",
		21 => "IQ3_S",
		22 => "IQ2_S",
		23 => "IQ4_XS",
		24 => "I8",
		25 => "I16",
		26 => "I32",
		27 => "I64",
		28 => "F64",
		29 => "IQ1_M",
		30 => "BF16",
		34 => "TQ1_0",
		35 => "TQ2_0",
		39 => "MXFP4",
		_ => "an unknown type",
	}
}

impl GgmlType {
	/// The type for a GGML type id, or the GGML name of one this engine does not run.
	pub fn from_id(id: u32) -> Result<Self, String> {
		Ok(match id {
			0 => Self::F32,
			1 => Self::F16,
			30 => Self::BF16,
			2 => Self::Q4_0,
			3 => Self::Q4_1,
			6 => Self::Q5_0,
			7 => Self::Q5_1,
			8 => Self::Q8_0,
			12 => Self::Q4_K,
			13 => Self::Q5_K,
			14 => Self::Q6_K,
			other => return Err(format!("{} (id {other})", ggml_name(other))),
		})
	}

	/// GGML's id of the type.
	pub fn id(self) -> u32 {
		match self {
			Self::F32 => 0,
			Self::F16 => 1,
			Self::BF16 => 30,
			Self::Q4_0 => 2,
			Self::Q4_1 => 3,
			Self::Q5_0 => 6,
			Self::Q5_1 => 7,
			Self::Q8_0 => 8,
			Self::Q4_K => 12,
			Self::Q5_K => 13,
			Self::Q6_K => 14,
		}
	}

	pub fn name(self) -> &'static str {
		match self {
			Self::F32 => "F32",
			Self::F16 => "F16",
			Self::BF16 => "BF16",
			Self::Q4_0 => "Q4_0",
			Self::Q4_1 => "Q4_1",
			Self::Q5_0 => "Q5_0",
			Self::Q5_1 => "Q5_1",
			Self::Q8_0 => "Q8_0",
			Self::Q4_K => "Q4_K",
			Self::Q5_K => "Q5_K",
			Self::Q6_K => "Q6_K",
		}
	}

	/// Elements per block.
	pub fn block_len(self) -> usize {
		match self {
			Self::F32 | Self::F16 | Self::BF16 => 1,
			Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
			Self::Q4_K | Self::Q5_K | Self::Q6_K => QK_K,
		}
	}

	/// Bytes per block.
	pub fn block_bytes(self) -> usize {
		match self {
			Self::F32 => 4,
			Self::F16 | Self::BF16 => 2,
			Self::Q4_0 => 2 + 16,
			Self::Q4_1 => 2 + 2 + 16,
			Self::Q5_0 => 2 + 4 + 16,
			Self::Q5_1 => 2 + 2 + 4 + 16,
			Self::Q8_0 => 2 + 32,
			Self::Q4_K => 2 + 2 + 12 + QK_K / 2,
			Self::Q5_K => 2 + 2 + 12 + QK_K / 8 + QK_K / 2,
			Self::Q6_K => QK_K / 2 + QK_K / 4 + QK_K / 16 + 2,
		}
	}

	/// Bytes of a row of `n` elements (`n` a multiple of the block length).
	pub fn row_bytes(self, n: usize) -> usize {
		n / self.block_len() * self.block_bytes()
	}

	/// The activation format the dot product with this weight type takes.
	pub fn act_kind(self) -> ActKind {
		match self {
			Self::F32 | Self::F16 | Self::BF16 => ActKind::F32,
			Self::Q4_0 | Self::Q5_0 | Self::Q8_0 => ActKind::Q8_0,
			Self::Q4_1 | Self::Q5_1 => ActKind::Q8_1,
			Self::Q4_K | Self::Q5_K | Self::Q6_K => ActKind::Q8K,
		}
	}
}

/// Every f16's f32 value (256 KiB), for F16 weights: exact, and faster than converting each.
fn f16_table() -> &'static [f32] {
	static LUT: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
	LUT.get_or_init(|| (0..=u16::MAX).map(|b| f16::from_bits(b).to_f32()).collect())
}

#[inline]
fn f16_at(b: &[u8], i: usize) -> f32 {
	f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K/Q5_K block (llama.cpp's packing).
#[inline]
pub(crate) fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
	if j < 4 {
		(s[j] & 63, s[j + 4] & 63)
	} else {
		((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
	}
}

/// Dequantizes `out.len()` elements from `bytes` (whole blocks of `ty`).
pub fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut [f32]) {
	let bl = ty.block_len();
	let bb = ty.block_bytes();
	debug_assert_eq!(bytes.len(), out.len() / bl * bb);
	for (b, o) in bytes.chunks_exact(bb).zip(out.chunks_exact_mut(bl)) {
		match ty {
			GgmlType::F32 => o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
			GgmlType::F16 => o[0] = f16_at(b, 0),
			GgmlType::BF16 => o[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32(),
			GgmlType::Q4_0 => {
				let d = f16_at(b, 0);
				for j in 0..16 {
					o[j] = d * ((b[2 + j] & 0xF) as i32 - 8) as f32;
					o[j + 16] = d * ((b[2 + j] >> 4) as i32 - 8) as f32;
				}
			},
			GgmlType::Q4_1 => {
				let (d, m) = (f16_at(b, 0), f16_at(b, 2));
				for j in 0..16 {
					o[j] = d * (b[4 + j] & 0xF) as f32 + m;
					o[j + 16] = d * (b[4 + j] >> 4) as f32 + m;
				}
			},
			GgmlType::Q5_0 => {
				let d = f16_at(b, 0);
				let q = q5(&b[2..22]);
				for j in 0..32 {
					o[j] = d * (q[j] as i32 - 16) as f32;
				}
			},
			GgmlType::Q5_1 => {
				let (d, m) = (f16_at(b, 0), f16_at(b, 2));
				let q = q5(&b[4..24]);
				for j in 0..32 {
					o[j] = d * q[j] as f32 + m;
				}
			},
			GgmlType::Q8_0 => {
				let d = f16_at(b, 0);
				for j in 0..32 {
					o[j] = d * (b[2 + j] as i8) as f32;
				}
			},
			GgmlType::Q4_K | GgmlType::Q5_K => {
				let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
				let scales = &b[4..16];
				let (qh, qs) = if ty == GgmlType::Q5_K {
					(&b[16..48], &b[48..])
				} else {
					(&b[0..0], &b[16..])
				};
				for (e, v) in o.iter_mut().enumerate() {
					let (q, sb) = k_quant(ty, qh, qs, e);
					let (sc, m) = scale_min_k4(sb, scales);
					*v = d * sc as f32 * q as f32 - dmin * m as f32;
				}
			},
			GgmlType::Q6_K => {
				let d = f16_at(b, 208);
				for e in 0..QK_K {
					o[e] = d * (b[192 + e / 16] as i8) as f32 * q6_k(b, e) as f32;
				}
			},
		}
	}
}

/// The 32 unsigned 5-bit quants of a Q5_0/Q5_1 block from its 4 high-bit bytes and 16 nibble
/// bytes: element j < 16 is the low nibble of byte j, element j + 16 its high nibble; bit j of
/// the little-endian u32 is element j's fifth bit.
#[inline]
fn q5(b: &[u8]) -> [u8; 32] {
	let qh = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
	let mut q = [0u8; 32];
	for j in 0..16 {
		q[j] = (b[4 + j] & 0xF) | (((qh >> j) & 1) as u8) << 4;
		q[j + 16] = (b[4 + j] >> 4) | (((qh >> (j + 16)) & 1) as u8) << 4;
	}
	q
}

/// Element `e` of a Q4_K/Q5_K block's quants (0..=31) and its sub-block (0..8).
#[inline]
fn k_quant(ty: GgmlType, qh: &[u8], qs: &[u8], e: usize) -> (u8, usize) {
	let sb = e / 32; // sub-block: pairs share a byte, low nibble first
	let l = e % 32;
	let byte = qs[(sb / 2) * 32 + l];
	let mut q = if sb.is_multiple_of(2) { byte & 0xF } else { byte >> 4 };
	if ty == GgmlType::Q5_K {
		q |= ((qh[l] >> sb) & 1) << 4;
	}
	(q, sb)
}

/// Element `e` of a Q6_K block, signed (−32..=31).
#[inline]
fn q6_k(b: &[u8], e: usize) -> i32 {
	let (ql, qh) = (&b[..128], &b[128..192]);
	let h = e / 128;
	let r = e % 128;
	let lo = (ql[h * 64 + r % 64] >> (4 * (r / 64))) & 0xF;
	let hi = (qh[h * 32 + r % 32] >> (2 * (r / 32))) & 3;
	(lo | (hi << 4)) as i32 - 32
}

// ---- activations -------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActKind {
	F32,
	Q8_0,
	Q8_1,
	Q8K,
}

/// 32 activations as int8 with one scale (`d`, rounded through f16 as llama.cpp stores it) and,
/// for Q8_1, `s` = d × Σq (also through f16), which folds Q4_1's offset into one product.
#[derive(Clone, Copy, Debug)]
pub struct Q8Block {
	pub d: f32,
	pub s: f32,
	pub qs: [i8; 32],
}

/// 256 activations as int8 with an f32 scale and the sums of each 16.
#[derive(Clone, Copy, Debug)]
pub struct Q8KBlock {
	pub d: f32,
	pub qs: [i8; QK_K],
	pub bsums: [i16; 16],
}

/// One activation vector in the form a weight type's dot product takes.
#[derive(Clone, Debug)]
pub enum Acts {
	F32(Vec<f32>),
	Q8(Vec<Q8Block>),
	Q8K(Vec<Q8KBlock>),
}

fn round_f16(x: f32) -> f32 {
	f16::from_f32(x).to_f32()
}

/// Quantizes `x` (a multiple of the kind's block length) for dot products with weights of
/// that kind: llama.cpp's reference quantizers, bit for bit.
pub fn quantize_acts(kind: ActKind, x: &[f32]) -> Acts {
	match kind {
		ActKind::F32 => Acts::F32(x.to_vec()),
		ActKind::Q8_0 | ActKind::Q8_1 => Acts::Q8(
			x.chunks_exact(32)
				.map(|c| {
					let amax = c.iter().fold(0f32, |m, v| m.max(v.abs()));
					let d = amax / 127.0;
					let id = if d != 0.0 { 1.0 / d } else { 0.0 };
					let mut qs = [0i8; 32];
					let mut sum = 0i32;
					for (q, v) in qs.iter_mut().zip(c) {
						// roundf: halves away from zero, as ggml's reference does.
						*q = (v * id).round() as i8;
						sum += *q as i32;
					}
					let s = if kind == ActKind::Q8_1 { round_f16(sum as f32 * d) } else { 0.0 };
					Q8Block { d: round_f16(d), s, qs }
				})
				.collect(),
		),
		ActKind::Q8K => Acts::Q8K(
			x.chunks_exact(QK_K)
				.map(|c| {
					let (mut amax, mut max) = (0f32, 0f32);
					for &v in c {
						if v.abs() > amax {
							amax = v.abs();
							max = v;
						}
					}
					let mut blk = Q8KBlock { d: 0.0, qs: [0; QK_K], bsums: [0; 16] };
					if amax == 0.0 {
						return blk;
					}
					let iscale = -127.0 / max;
					for (q, &v) in blk.qs.iter_mut().zip(c) {
						// ggml's nearest_int rounds halves to even.
						*q = ((iscale * v).round_ties_even() as i32).min(127) as i8;
					}
					for (s, g) in blk.bsums.iter_mut().zip(blk.qs.chunks_exact(16)) {
						*s = g.iter().map(|&q| q as i16).sum();
					}
					blk.d = 1.0 / iscale;
					blk
				})
				.collect(),
		),
	}
}

#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
	a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

/// The accumulator of the 32-element block types: lane `j` takes each block's exact integer
/// sum over elements `4j..4j + 4`, times the block's scale, by a fused multiply-add in block
/// order; [`Lanes::sum`] then adds lane `j` to lane `j + 4`, those four pairwise (0 + 2,
/// 1 + 3) and the two. These are the operations of one AVX2 register (`fmadd`, then
/// llama.cpp's `hsum_float_8`), which is what lets the vector path skip a horizontal sum per
/// block and still give the portable code's bits.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lanes(pub(crate) [f32; 8]);

impl Lanes {
	#[inline]
	pub(crate) fn add_block(&mut self, d: f32, q: &[i8], y: &[i8]) {
		for (j, acc) in self.0.iter_mut().enumerate() {
			let s = dot_i8(&q[4 * j..4 * j + 4], &y[4 * j..4 * j + 4]);
			*acc = d.mul_add(s as f32, *acc);
		}
	}

	#[inline]
	pub(crate) fn sum(&self) -> f32 {
		let l = &self.0;
		let r = [l[0] + l[4], l[1] + l[5], l[2] + l[6], l[3] + l[7]];
		(r[0] + r[2]) + (r[1] + r[3])
	}
}

/// q · k of one attention head against one cached key (f16): the products summed in eight
/// lanes (element i into lane i mod 8, fused multiply-adds in order), then [`Lanes::sum`];
/// the AVX2 twin where the CPU has it and the length is a multiple of 8, the same bits
/// either way.
#[inline]
pub fn dot_f16(q: &[f32], k: &[f16]) -> f32 {
	assert_eq!(q.len(), k.len());
	#[cfg(target_arch = "x86_64")]
	if crate::simd::avx2() && q.len().is_multiple_of(8) {
		// SAFETY: AVX2, FMA and F16C are present (checked just above).
		return unsafe { crate::simd::dot_f16(q, k) };
	}
	dot_f16_portable(q, k)
}

/// The portable [`dot_f16`].
pub fn dot_f16_portable(q: &[f32], k: &[f16]) -> f32 {
	let mut lanes = Lanes::default();
	for (i, (a, b)) in q.iter().zip(k).enumerate() {
		lanes.0[i % 8] = a.mul_add(b.to_f32(), lanes.0[i % 8]);
	}
	lanes.sum()
}

/// out += w · v for one cached value row (f16), each element by a product then a sum (not
/// fused); the AVX2 twin gives the same bits.
#[inline]
pub fn add_scaled_f16(out: &mut [f32], w: f32, v: &[f16]) {
	assert_eq!(out.len(), v.len());
	#[cfg(target_arch = "x86_64")]
	if crate::simd::avx2() && out.len().is_multiple_of(8) {
		// SAFETY: AVX2, FMA and F16C are present (checked just above).
		return unsafe { crate::simd::add_scaled_f16(out, w, v) };
	}
	add_scaled_f16_portable(out, w, v)
}

/// The portable [`add_scaled_f16`].
pub fn add_scaled_f16_portable(out: &mut [f32], w: f32, v: &[f16]) {
	for (o, v) in out.iter_mut().zip(v) {
		*o += w * v.to_f32();
	}
}

/// The dot product of one weight row (`row`: whole blocks of `ty`) with activations `acts`
/// quantized for `ty` (see [`GgmlType::act_kind`]): the AVX2 twin where the CPU has it, the
/// same bits either way.
#[inline]
pub fn dot_row(ty: GgmlType, row: &[u8], acts: &Acts) -> f32 {
	#[cfg(target_arch = "x86_64")]
	if crate::simd::avx2() {
		// SAFETY: AVX2 is present (checked just above).
		unsafe {
			match (ty, acts) {
				(GgmlType::Q4_0, Acts::Q8(y)) => return crate::simd::dot_q4_0(row, y),
				(GgmlType::Q4_1, Acts::Q8(y)) => return crate::simd::dot_q4_1(row, y),
				(GgmlType::Q5_0, Acts::Q8(y)) => return crate::simd::dot_q5_0(row, y),
				(GgmlType::Q5_1, Acts::Q8(y)) => return crate::simd::dot_q5_1(row, y),
				(GgmlType::Q8_0, Acts::Q8(y)) => return crate::simd::dot_q8_0(row, y),
				(GgmlType::Q4_K, Acts::Q8K(y)) => return crate::simd::dot_q45_k(row, y, false),
				(GgmlType::Q5_K, Acts::Q8K(y)) => return crate::simd::dot_q45_k(row, y, true),
				(GgmlType::Q6_K, Acts::Q8K(y)) => return crate::simd::dot_q6_k(row, y),
				_ => {},
			}
		}
	}
	dot_row_portable(ty, row, acts)
}

/// `out[k] = dot_row(ty, row, &acts[k])` for every `k`, with the same bits: the AVX2 kernels of
/// the 32-element types read each weight block once for up to [`crate::simd::MULTI`] vectors.
pub fn dot_row_multi(ty: GgmlType, row: &[u8], acts: &[Acts], out: &mut [f32]) {
	assert_eq!(acts.len(), out.len());
	#[cfg(target_arch = "x86_64")]
	if crate::simd::avx2() &&
		matches!(
			ty,
			GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0
		) {
		let kernel: unsafe fn(&[u8], &[&[Q8Block]], &mut [f32]) = match ty {
			GgmlType::Q4_0 => crate::simd::dot_q4_0_multi,
			GgmlType::Q4_1 => crate::simd::dot_q4_1_multi,
			GgmlType::Q5_0 => crate::simd::dot_q5_0_multi,
			GgmlType::Q5_1 => crate::simd::dot_q5_1_multi,
			_ => crate::simd::dot_q8_0_multi,
		};
		for (acts, out) in acts.chunks(crate::simd::MULTI).zip(out.chunks_mut(crate::simd::MULTI)) {
			let mut ys: [&[Q8Block]; crate::simd::MULTI] = [&[]; crate::simd::MULTI];
			let mut all_q8 = true;
			for (y, a) in ys.iter_mut().zip(acts) {
				match a {
					Acts::Q8(v) => *y = v,
					_ => all_q8 = false,
				}
			}
			if !all_q8 {
				for (o, a) in out.iter_mut().zip(acts) {
					*o = dot_row(ty, row, a);
				}
				continue;
			}
			// SAFETY: AVX2 is present (checked above); at most MULTI vectors, as many outputs.
			unsafe { kernel(row, &ys[..acts.len()], out) };
		}
		return;
	}
	for (o, a) in out.iter_mut().zip(acts) {
		*o = dot_row(ty, row, a);
	}
}

/// The portable dot product, the reference for every faster twin.
pub fn dot_row_portable(ty: GgmlType, row: &[u8], acts: &Acts) -> f32 {
	let mut sum = 0f32;
	let mut lanes = Lanes::default();
	match (ty, acts) {
		(GgmlType::F32, Acts::F32(x)) =>
			for (b, &v) in row.chunks_exact(4).zip(x) {
				sum += f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * v;
			},
		(GgmlType::F16, Acts::F32(x)) => {
			let lut = f16_table();
			for (b, &v) in row.chunks_exact(2).zip(x) {
				sum += lut[u16::from_le_bytes([b[0], b[1]]) as usize] * v;
			}
		},
		(GgmlType::BF16, Acts::F32(x)) =>
			for (b, &v) in row.chunks_exact(2).zip(x) {
				sum += bf16::from_le_bytes([b[0], b[1]]).to_f32() * v;
			},
		(GgmlType::Q4_0, Acts::Q8(y)) => {
			for (b, y) in row.chunks_exact(18).zip(y) {
				let mut q = [0i8; 32];
				for j in 0..16 {
					q[j] = (b[2 + j] & 0xF) as i8 - 8;
					q[j + 16] = (b[2 + j] >> 4) as i8 - 8;
				}
				lanes.add_block(f16_at(b, 0) * y.d, &q, &y.qs);
			}
			sum = lanes.sum();
		},
		(GgmlType::Q4_1, Acts::Q8(y)) => {
			for (b, y) in row.chunks_exact(20).zip(y) {
				let mut q = [0i8; 32];
				for j in 0..16 {
					q[j] = (b[4 + j] & 0xF) as i8;
					q[j + 16] = (b[4 + j] >> 4) as i8;
				}
				lanes.add_block(f16_at(b, 0) * y.d, &q, &y.qs);
				// The offset: min × Σ(d_y·q_y), one fused multiply-add per block.
				sum = f16_at(b, 2).mul_add(y.s, sum);
			}
			sum += lanes.sum();
		},
		(GgmlType::Q5_0, Acts::Q8(y)) => {
			for (b, y) in row.chunks_exact(22).zip(y) {
				let q = q5(&b[2..22]).map(|v| v as i8 - 16);
				lanes.add_block(f16_at(b, 0) * y.d, &q, &y.qs);
			}
			sum = lanes.sum();
		},
		(GgmlType::Q5_1, Acts::Q8(y)) => {
			for (b, y) in row.chunks_exact(24).zip(y) {
				let q = q5(&b[4..24]).map(|v| v as i8);
				lanes.add_block(f16_at(b, 0) * y.d, &q, &y.qs);
				sum = f16_at(b, 2).mul_add(y.s, sum);
			}
			sum += lanes.sum();
		},
		(GgmlType::Q8_0, Acts::Q8(y)) => {
			for (b, y) in row.chunks_exact(34).zip(y) {
				lanes.add_block(f16_at(b, 0) * y.d, bytemuck_i8(&b[2..34]), &y.qs);
			}
			sum = lanes.sum();
		},
		(GgmlType::Q4_K | GgmlType::Q5_K, Acts::Q8K(y)) => {
			let bb = ty.block_bytes();
			for (b, y) in row.chunks_exact(bb).zip(y) {
				let scales = &b[4..16];
				let (qh, qs) = if ty == GgmlType::Q5_K {
					(&b[16..48], &b[48..])
				} else {
					(&b[0..0], &b[16..])
				};
				let (mut sumi, mut summ) = (0i32, 0i32);
				for sb in 0..8 {
					let mut q = [0i8; 32];
					for (l, v) in q.iter_mut().enumerate() {
						*v = k_quant(ty, qh, qs, sb * 32 + l).0 as i8;
					}
					let (sc, m) = scale_min_k4(sb, scales);
					sumi += sc as i32 * dot_i8(&q, &y.qs[sb * 32..sb * 32 + 32]);
					summ += m as i32 * (y.bsums[2 * sb] as i32 + y.bsums[2 * sb + 1] as i32);
				}
				sum += f16_at(b, 0) * y.d * sumi as f32 - f16_at(b, 2) * y.d * summ as f32;
			}
		},
		(GgmlType::Q6_K, Acts::Q8K(y)) =>
			for (b, y) in row.chunks_exact(210).zip(y) {
				let mut sumi = 0i32;
				for g in 0..16 {
					let mut q = [0i8; 16];
					for (l, v) in q.iter_mut().enumerate() {
						*v = q6_k(b, g * 16 + l) as i8;
					}
					sumi += (b[192 + g] as i8) as i32 * dot_i8(&q, &y.qs[g * 16..g * 16 + 16]);
				}
				sum += f16_at(b, 208) * y.d * sumi as f32;
			},
		_ => unreachable!("activations quantized for {:?} used with {:?}", acts_kind(acts), ty),
	}
	sum
}

fn acts_kind(a: &Acts) -> &'static str {
	match a {
		Acts::F32(_) => "F32",
		Acts::Q8(_) => "Q8_0/Q8_1",
		Acts::Q8K(_) => "Q8_K",
	}
}

fn bytemuck_i8(b: &[u8]) -> &[i8] {
	// SAFETY: i8 and u8 have the same size, alignment and validity.
	unsafe { std::slice::from_raw_parts(b.as_ptr().cast::<i8>(), b.len()) }
}

#[cfg(test)]
pub(crate) mod tests {
	use super::*;

	/// A random-looking but fixed byte pattern, with valid f16 scales where blocks keep them.
	pub(crate) fn block_bytes(ty: GgmlType, n_blocks: usize, seed: u32) -> Vec<u8> {
		let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
		let mut b: Vec<u8> = (0..n_blocks * ty.block_bytes())
			.map(|_| {
				x ^= x << 13;
				x ^= x >> 17;
				x ^= x << 5;
				x as u8
			})
			.collect();
		let scale_at: &[usize] = match ty {
			GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
			GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
			GgmlType::Q6_K => &[208],
			_ => &[],
		};
		for blk in b.chunks_exact_mut(ty.block_bytes()) {
			for (k, &at) in scale_at.iter().enumerate() {
				let v = f16::from_f32(0.01 * (1.0 + k as f32 + (blk[at + 1] % 7) as f32));
				blk[at..at + 2].copy_from_slice(&v.to_le_bytes());
			}
		}
		b
	}

	/// Every block-quantized weight type: the ones with quantized dot products.
	pub(crate) const QUANTIZED: [GgmlType; 8] = [
		GgmlType::Q4_0,
		GgmlType::Q4_1,
		GgmlType::Q5_0,
		GgmlType::Q5_1,
		GgmlType::Q8_0,
		GgmlType::Q4_K,
		GgmlType::Q5_K,
		GgmlType::Q6_K,
	];

	/// The quantized dot products agree with dequantize-then-multiply on the quantized
	/// activations (they compute the same sum, in integers where they can).
	#[test]
	fn dot_products_match_dequantized_weights() {
		for ty in QUANTIZED {
			let n = 2 * QK_K;
			let row = block_bytes(ty, n / ty.block_len(), 7);
			let x: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0).collect();
			let acts = quantize_acts(ty.act_kind(), &x);
			let xq: Vec<f32> = match &acts {
				Acts::Q8(b) =>
					b.iter().flat_map(|b| b.qs.iter().map(move |&q| q as f32 * b.d)).collect(),
				Acts::Q8K(b) =>
					b.iter().flat_map(|b| b.qs.iter().map(move |&q| q as f32 * b.d)).collect(),
				Acts::F32(v) => v.clone(),
			};
			let mut w = vec![0f32; n];
			dequantize(ty, &row, &mut w);
			let want: f64 = w.iter().zip(&xq).map(|(a, b)| *a as f64 * *b as f64).sum();
			let got = dot_row_portable(ty, &row, &acts) as f64;
			// Q4_1's offset uses s = f16(d Σq), rounded once more than the direct sum.
			let tol = 1e-3 * w.iter().zip(&xq).map(|(a, b)| (a * b).abs() as f64).sum::<f64>();
			assert!((got - want).abs() <= tol, "{ty:?}: {got} vs {want} (tol {tol})");
		}
	}

	#[test]
	fn q8_k_quantization_keeps_the_largest_magnitude_exact() {
		let x: Vec<f32> = (0..QK_K).map(|i| (i as f32 - 100.0) * 0.5).collect();
		let Acts::Q8K(b) = quantize_acts(ActKind::Q8K, &x) else { unreachable!() };
		// The largest magnitude is x[255] = 77.5, stored as -127 × d with d negative.
		assert_eq!(b[0].qs[255], -127);
		assert!((b[0].qs[255] as f32 * b[0].d - 77.5).abs() < 1e-4);
		let s: i16 = b[0].qs[..16].iter().map(|&q| q as i16).sum();
		assert_eq!(b[0].bsums[0], s);
	}

	#[test]
	fn unsupported_types_are_named() {
		assert_eq!(GgmlType::from_id(10).unwrap_err(), "Q2_K (id 10)");
		for id in 0..64 {
			if let Ok(t) = GgmlType::from_id(id) {
				assert_eq!(t.id(), id);
			}
		}
	}
}
