//! The ONNX-23 transformer operators: Attention (multi-head and grouped-query, with a KV
//! cache, masks, causal masking and softcap) and RotaryEmbedding.
//!
//! Attention follows the operator's specification (and onnxruntime): Q K^T times the scale
//! (1/sqrt(head size) by default), softcap, then the attention bias (the mask, where a
//! boolean mask's false is -inf and a mask shorter than the keys is padded with -inf, and the
//! causal mask, aligned to the end of the past keys), softmax, times V. A query row that no
//! key may attend gives zeros. The bias is built on the host: it is as large as one head's
//! scores at most.

use super::{boxed, broadcast_to, reshape, shape, slice_axis, Args, Attrs, Cx, Op, Registry, F, R};
use crate::exec::{bool_from_host, float_from_vec, float_to_vec, host::Host, int_from_host, Value};
use burn::tensor::{backend::Backend, DType, FloatDType, Scalar, Shape, TensorMetadata};
use opg_primitives::ElemType;

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	r.add("Attention", |node, _| {
		let a = Attrs(node);
		let softcap = a.float("softcap", 0.0);
		let mode = a.int("qk_matmul_output_mode", 0);
		let qk_output = node.outputs.get(3).is_some_and(|o| !o.is_empty());
		// Mode 0 is the scores before softcap and mask, 3 the probabilities; where softcap
		// comes in modes 1 and 2 the specification's versions disagree.
		if qk_output && !(mode == 3 || (mode == 0 && softcap <= 0.0)) {
			return a.unsupported(format!("qk_matmul_output_mode {mode} with softcap {softcap}"));
		}
		if node.inputs.get(6).is_some_and(|n| !n.is_empty()) {
			return a.unsupported("nonpad_kv_seqlen");
		}
		for side in ["left_window_size", "right_window_size"] {
			if a.int(side, -1) != -1 {
				return a.unsupported(format!("a sliding window ({side})"));
			}
		}
		let heads = |name: &str| match a.int_opt(name) {
			Some(h) if h < 1 => a.unsupported(format!("{name} = {h}")),
			h => Ok(h.map(|h| h as usize)),
		};
		boxed(Attention {
			causal: a.int("is_causal", 0) != 0,
			q_heads: heads("q_num_heads")?,
			kv_heads: heads("kv_num_heads")?,
			scale: a.has("scale").then(|| a.float("scale", 0.0)),
			softcap,
			qk_output: qk_output.then_some(mode),
		})
	});
	r.add("RotaryEmbedding", |node, _| {
		let a = Attrs(node);
		let dim = a.int("rotary_embedding_dim", 0);
		let heads = a.int("num_heads", 0);
		if dim < 0 || dim % 2 != 0 || heads < 0 {
			return a.unsupported(format!("rotary_embedding_dim {dim}, num_heads {heads}"));
		}
		boxed(Rotary {
			interleaved: a.int("interleaved", 0) != 0,
			dim: dim as usize,
			heads: heads as usize,
		})
	});
}

/// `[batch, seq, heads * size]` as `[batch, heads, seq, size]`.
fn split_heads<B: Backend>(cx: &Cx<B>, t: F<B>, heads: Option<usize>, what: &str) -> R<F<B>> {
	let s = shape::<B>(&t);
	let Some(h) = heads else {
		return cx.invalid(format!("3-D {what} needs the q_num_heads and kv_num_heads attributes"));
	};
	if !s[2].is_multiple_of(h) {
		return cx.invalid(format!("{what} of width {} is not {h} heads", s[2]));
	}
	let t = reshape::<B>(t, &[s[0], s[1], h, s[2] / h]);
	Ok(B::float_permute(t, &[0, 2, 1, 3]))
}

/// A float tensor made on the host, in the type of `like`.
fn host_float<B: Backend>(cx: &Cx<B>, like: &F<B>, data: Vec<f32>, s: &[usize]) -> F<B> {
	let t = float_from_vec::<B>(data, s, cx.device);
	if like.dtype() == DType::F64 {
		B::float_cast(t, FloatDType::F64)
	} else {
		t
	}
}

struct Attention {
	causal: bool,
	q_heads: Option<usize>,
	kv_heads: Option<usize>,
	scale: Option<f32>,
	softcap: f32,
	/// `qk_matmul_output_mode`, when that output is used.
	qk_output: Option<i64>,
}

/// The attention bias `[mb, mh, q, kv]` (mb, mh 1 or the batch and head counts) from the mask
/// (right-aligned, padded with -inf past its last key) and the causal mask, and whether every
/// key of some query row is masked.
struct Bias {
	data: Vec<f32>,
	shape: [usize; 4],
	masked_rows: Option<Vec<i64>>,
}

impl Attention {
	fn bias<B: Backend>(
		&self,
		cx: &Cx<B>,
		mask: Option<&Value<B>>,
		[b, h, q, kv]: [usize; 4],
		past: usize,
	) -> R<Option<Bias>> {
		let (values, ms): (Vec<f32>, Vec<usize>) = match mask {
			None if !self.causal => return Ok(None),
			None => (vec![0.0], vec![1, 1]),
			Some(Value::Host(m)) if m.elem == ElemType::Bool => (
				m.data.iter().map(|&v| if v != 0 { 0.0 } else { f32::NEG_INFINITY }).collect(),
				m.shape.clone(),
			),
			Some(Value::Host(m)) => return cx.invalid(format!("a {:?} mask", m.elem)),
			Some(Value::Float(t)) => (float_to_vec::<B>(t.clone())?, shape::<B>(t)),
		};
		let r = ms.len();
		if !(2..=4).contains(&r) {
			return cx.invalid(format!("a mask of shape {ms:?}"));
		}
		// Right-aligned to [b, h, q, kv]; its last axis may be shorter than kv.
		let mut dims = [1usize; 4];
		dims[4 - r..].copy_from_slice(&ms);
		let full = [b, h, q, kv];
		for i in 0..3 {
			if dims[i] != 1 && dims[i] != full[i] {
				return cx.invalid(format!("a mask of shape {ms:?} for scores {full:?}"));
			}
		}
		let mask_kv = dims[3];
		if mask_kv > kv {
			return cx.invalid(format!("a mask of shape {ms:?} for {kv} keys"));
		}
		let (mb, mh) = (dims[0], dims[1]);
		let mut data = vec![0f32; mb * mh * q * kv];
		let mut masked = Vec::with_capacity(mb * mh * q);
		for bi in 0..mb {
			for hi in 0..mh {
				for qi in 0..q {
					let row = ((bi * mh + hi) * q + qi) * kv;
					let src = ((bi * dims[1] + hi) * dims[2] + qi % dims[2]) * mask_kv;
					for j in 0..kv {
						let mut v = match mask {
							None => 0.0,
							Some(_) if j < mask_kv => values[src + j],
							Some(_) => f32::NEG_INFINITY,
						};
						if self.causal && j > qi + past {
							v = f32::NEG_INFINITY;
						}
						data[row + j] = v;
					}
					let row = &data[row..row + kv];
					masked.push(row.iter().all(|&v| v == f32::NEG_INFINITY) as i64);
				}
			}
		}
		let masked_rows = masked.contains(&1).then_some(masked);
		Ok(Some(Bias { data, shape: [mb, mh, q, kv], masked_rows }))
	}
}

impl<B: Backend> Op<B> for Attention {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (q, k, v) = (a.float(cx, 0)?, a.float(cx, 1)?, a.float(cx, 2)?);
		let rank = shape::<B>(&q).len();
		if rank != 3 && rank != 4 || shape::<B>(&k).len() != rank || shape::<B>(&v).len() != rank {
			return cx.invalid("Q, K and V must all be 3-D or all 4-D");
		}
		let (q, k, v) = if rank == 3 {
			(
				split_heads(cx, q, self.q_heads, "Q")?,
				split_heads(cx, k, self.kv_heads, "K")?,
				split_heads(cx, v, self.kv_heads, "V")?,
			)
		} else {
			(q, k, v)
		};
		let (qs, mut ks, mut vs) = (shape::<B>(&q), shape::<B>(&k), shape::<B>(&v));
		let (batch, heads, seq, size) = (qs[0], qs[1], qs[2], qs[3]);
		if ks[0] != batch || vs[0] != batch || ks[1] != vs[1] || ks[3] != size || ks[2] != vs[2] {
			return cx.invalid(format!("Q {qs:?}, K {ks:?} and V {vs:?} do not fit"));
		}
		let kv_heads = ks[1];
		if kv_heads == 0 || heads % kv_heads != 0 {
			return cx.invalid(format!("{heads} query heads over {kv_heads} key/value heads"));
		}
		// The KV cache: the past keys and values come before this step's.
		let (k, v, past) = match (a.opt(4), a.opt(5)) {
			(None, None) => (k, v, 0),
			(Some(_), Some(_)) => {
				let (pk, pv) = (a.float(cx, 4)?, a.float(cx, 5)?);
				let (pks, pvs) = (shape::<B>(&pk), shape::<B>(&pv));
				let fits = |p: &[usize], s: &[usize]| {
					p.len() == 4 && p[0] == s[0] && p[1] == s[1] && p[3] == s[3]
				};
				if !fits(&pks, &ks) || !fits(&pvs, &vs) || pks[2] != pvs[2] {
					return cx.invalid(format!("past keys {pks:?} and values {pvs:?}"));
				}
				ks[2] += pks[2];
				vs[2] += pvs[2];
				(B::float_cat(vec![pk, k], 2), B::float_cat(vec![pv, v], 2), pks[2])
			},
			_ => return cx.invalid("past_key and past_value come together"),
		};
		let total = ks[2];
		let (present_k, present_v) = (k.clone(), v.clone());
		// Grouped-query attention: each key/value head serves `group` query heads in a row.
		let group = heads / kv_heads;
		let repeat = |t: F<B>, s: &[usize]| {
			if group == 1 {
				return t;
			}
			let t = reshape::<B>(t, &[s[0], s[1], 1, s[2], s[3]]);
			let t = B::float_expand(t, Shape::from(vec![s[0], s[1], group, s[2], s[3]]));
			reshape::<B>(t, &[s[0], s[1] * group, s[2], s[3]])
		};
		let (k, v) = (repeat(k, &ks), repeat(v, &vs));
		let scale = self.scale.unwrap_or(1.0 / (size as f32).sqrt());
		let q = B::float_mul_scalar(q, Scalar::from(scale));
		let mut scores = super::linalg::matmul(cx, q, B::float_swap_dims(k, 2, 3))?;
		let raw = (self.qk_output == Some(0)).then(|| scores.clone());
		if self.softcap > 0.0 {
			let c = Scalar::from(self.softcap);
			scores = B::float_mul_scalar(B::float_tanh(B::float_div_scalar(scores, c)), c);
		}
		let full = [batch, heads, seq, total];
		let bias = self.bias(cx, a.opt(3), full, past)?;
		let mut masked = None;
		if let Some(Bias { data, shape: s, masked_rows }) = bias {
			let t = host_float(cx, &scores, data, &s);
			scores = B::float_add(scores, broadcast_to::<B>(t, &full));
			masked = masked_rows.map(|m| (m, s));
		}
		let dim = 3;
		let mut p = crate::exec::cpu::softmax_last::<B>(&scores).unwrap_or_else(|| {
			let shifted = B::float_sub(scores.clone(), B::float_max_dim(scores, dim));
			let e = B::float_exp(shifted);
			B::float_div(e.clone(), B::float_sum_dim(e, dim))
		});
		if let Some((rows, s)) = masked {
			let h = Host::new(ElemType::Bool, vec![s[0], s[1], s[2], 1], rows);
			let m = B::bool_expand(bool_from_host::<B>(&h, cx.device), Shape::from(full.to_vec()));
			p = B::float_mask_fill(p, m, Scalar::from(0.0f32));
		}
		let qk = match self.qk_output {
			Some(0) => raw,
			Some(_) => Some(p.clone()),
			None => None,
		};
		let mut y = super::linalg::matmul(cx, p, v)?;
		if rank == 3 {
			let dv = vs[3];
			y = reshape::<B>(B::float_permute(y, &[0, 2, 1, 3]), &[batch, seq, heads * dv]);
		}
		let mut out = vec![Value::Float(y), Value::Float(present_k), Value::Float(present_v)];
		out.extend(qk.map(Value::Float));
		Ok(out)
	}
}

/// RotaryEmbedding: rotates the first `dim` (all, when 0) features of each head by the angles
/// whose cosines and sines the caches hold, for each token's position.
struct Rotary {
	interleaved: bool,
	dim: usize,
	/// For 3-D input `[batch, seq, heads * size]`.
	heads: usize,
}

impl<B: Backend> Op<B> for Rotary {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let (cos, sin) = (a.float(cx, 1)?, a.float(cx, 2)?);
		let xs = shape::<B>(&x);
		// As [batch, heads, seq, size] (4-D) or [batch, seq, heads, size] (3-D).
		let (x, batch, seq) = match xs.len() {
			4 => (x, xs[0], xs[2]),
			3 if self.heads > 0 && xs[2].is_multiple_of(self.heads) =>
				(reshape::<B>(x, &[xs[0], xs[1], self.heads, xs[2] / self.heads]), xs[0], xs[1]),
			3 => return cx.invalid(format!("3-D input of width {} needs num_heads", xs[2])),
			_ => return cx.invalid(format!("input of shape {xs:?}")),
		};
		let s = shape::<B>(&x);
		let size = s[3];
		let rot = if self.dim == 0 { size } else { self.dim };
		if rot > size || rot % 2 != 0 {
			return cx.invalid(format!("rotary_embedding_dim {rot} for heads of {size}"));
		}
		let half = rot / 2;
		// The caches as [batch, seq, half]: indexed by position_ids, or given so.
		let cache = |t: F<B>| -> R<F<B>> {
			let cs = shape::<B>(&t);
			match a.opt(3) {
				Some(_) => {
					let pos = a.host(cx, 3)?;
					if cs.len() != 2 || cs[1] != half || pos.shape != [batch, seq] {
						return cx.invalid(format!(
							"caches {cs:?} and position_ids {:?} for {batch} x {seq} tokens of {half} angles",
							pos.shape
						));
					}
					if pos.data.iter().any(|&p| p < 0 || p as usize >= cs[0]) {
						return cx.invalid(format!("a position outside the {} cached", cs[0]));
					}
					let flat = Host::new(ElemType::I64, vec![batch * seq], pos.data.clone());
					let rows = B::float_select(t, 0, int_from_host::<B>(&flat, cx.device));
					Ok(reshape::<B>(rows, &[batch, seq, half]))
				},
				None if cs == [batch, seq, half] => Ok(t),
				None =>
					cx.invalid(format!("caches {cs:?} for {batch} x {seq} tokens of {half} angles")),
			}
		};
		// Broadcast over the heads.
		let along = |t: F<B>| {
			let t = if xs.len() == 4 {
				reshape::<B>(t, &[batch, 1, seq, half])
			} else {
				reshape::<B>(t, &[batch, seq, 1, half])
			};
			let mut hs = s.clone();
			hs[3] = half;
			broadcast_to::<B>(t, &hs)
		};
		let (cos, sin) = (along(cache(cos)?), along(cache(sin)?));
		let rotated = slice_axis::<B>(x.clone(), 3, 0, rot);
		let (x1, x2) = if self.interleaved {
			let mut pairs = s.clone();
			pairs[3] = half;
			pairs.push(2);
			let r = reshape::<B>(rotated, &pairs);
			(
				reshape::<B>(slice_axis::<B>(r.clone(), 4, 0, 1), &pairs[..4]),
				reshape::<B>(slice_axis::<B>(r, 4, 1, 2), &pairs[..4]),
			)
		} else {
			(slice_axis::<B>(rotated.clone(), 3, 0, half), slice_axis::<B>(rotated, 3, half, rot))
		};
		let real = B::float_sub(
			B::float_mul(cos.clone(), x1.clone()),
			B::float_mul(sin.clone(), x2.clone()),
		);
		let imag = B::float_add(B::float_mul(sin, x1), B::float_mul(cos, x2));
		let mut parts = if self.interleaved {
			let mut pairs = s.clone();
			pairs[3] = half;
			pairs.push(1);
			let joined =
				B::float_cat(vec![reshape::<B>(real, &pairs), reshape::<B>(imag, &pairs)], 4);
			let mut back = s.clone();
			back[3] = rot;
			vec![reshape::<B>(joined, &back)]
		} else {
			vec![real, imag]
		};
		if rot < size {
			parts.push(slice_axis::<B>(x, 3, rot, size));
		}
		let y = B::float_cat(parts, 3);
		Ok(vec![Value::Float(reshape::<B>(y, &xs))])
	}
}
