//! One decoder-only transformer, parameterised by the GGUF metadata: Llama (2, 3.x with its
//! `rope_freqs`, SmolLM, TinyLlama, Mistral), Qwen 2 (QKV biases, NEOX RoPE), Qwen 3
//! (per-head Q/K RMSNorm) and Gemma 3 (scaled embeddings, Q/K norms, norms after attention
//! and FFN, GeGLU, sliding-window layers with their own RoPE base). Weights stay in the
//! file's map; activations are quantized per matmul the way llama.cpp does for the weight's
//! type; the KV cache is f16, preallocated for the session, and appended in place.
//!
//! Every output element is one sequential dot product computed by one thread, and the
//! reductions (norms, softmax) run in a fixed order: the result does not depend on the
//! thread count.

use half::f16;
use rayon::prelude::*;

use crate::{
	gguf::{Gguf, GgufError, TensorInfo},
	quant::{self, ActKind, Acts, GgmlType},
	tokenizer::TokenId,
};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
	#[error(transparent)]
	Gguf(#[from] GgufError),
	#[error("architecture {0:?} is not supported (llama, qwen2, qwen3 and gemma3 are)")]
	Architecture(String),
	#[error("tensor {0:?} is missing")]
	MissingTensor(String),
	#[error("tensor {name:?} has shape {got:?}, expected {want:?}")]
	Shape { name: String, got: Vec<u64>, want: Vec<u64> },
	#[error("{0}")]
	Config(String),
	#[error("the context is full: {needed} positions needed, {cap} available")]
	ContextFull { needed: usize, cap: usize },
	#[error("token id {0} is outside the vocabulary")]
	Token(TokenId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
	Llama,
	Qwen2,
	Qwen3,
	Gemma3,
}

impl Arch {
	pub fn name(self) -> &'static str {
		match self {
			Arch::Llama => "llama",
			Arch::Qwen2 => "qwen2",
			Arch::Qwen3 => "qwen3",
			Arch::Gemma3 => "gemma3",
		}
	}
}

#[derive(Clone, Debug)]
pub struct Config {
	pub arch: Arch,
	pub n_layer: usize,
	pub n_embd: usize,
	pub n_ff: usize,
	pub n_head: usize,
	pub n_head_kv: usize,
	pub head_dim: usize,
	pub n_ctx_train: usize,
	pub vocab: usize,
	pub rope_dims: usize,
	pub rope_base: f32,
	pub rope_freq_scale: f32,
	/// NEOX RoPE rotates (x[i], x[i + d/2]); the original (GGUF llama) rotates (x[2i], x[2i+1]).
	pub rope_neox: bool,
	pub rms_eps: f32,
	/// Multiplies q·k (1/√head_dim, or Gemma 3's query scale).
	pub attn_scale: f32,
	/// Multiplies the token embeddings (Gemma: √n_embd).
	pub embd_scale: Option<f32>,
	/// The FFN's gate activation: SiLU (SwiGLU) or GELU (GeGLU, Gemma).
	pub ffn_gelu: bool,
	/// Sliding-window attention (Gemma 3): which layers attend to the last `window`
	/// positions only, and the RoPE base those layers use.
	pub swa: Option<Swa>,
}

#[derive(Clone, Debug)]
pub struct Swa {
	pub window: usize,
	/// `sliding[l]`: layer `l` is a sliding-window layer.
	pub sliding: Vec<bool>,
	pub rope_base: f32,
}

fn cfg_err(s: impl Into<String>) -> ModelError {
	ModelError::Config(s.into())
}

impl Config {
	pub fn from_gguf(g: &Gguf) -> Result<Self, ModelError> {
		let arch_name = g.str("general.architecture")?;
		let arch = match arch_name {
			"llama" => Arch::Llama,
			"qwen2" => Arch::Qwen2,
			"qwen3" => Arch::Qwen3,
			"gemma3" => Arch::Gemma3,
			other => return Err(ModelError::Architecture(other.into())),
		};
		let k = |s: &str| format!("{arch_name}.{s}");
		let usize_of = |key: &str| -> Result<usize, ModelError> {
			let v = g.u64(&k(key))?;
			usize::try_from(v)
				.ok()
				.filter(|&v| v > 0 && v <= 1 << 24)
				.ok_or_else(|| cfg_err(format!("{} = {v} is out of range", k(key))))
		};
		let n_embd = usize_of("embedding_length")?;
		let n_head = usize_of("attention.head_count")?;
		let n_head_kv = if g.get(&k("attention.head_count_kv")).is_some() {
			usize_of("attention.head_count_kv")?
		} else {
			n_head
		};
		let head_dim = if g.get(&k("attention.key_length")).is_some() {
			usize_of("attention.key_length")?
		} else {
			if n_embd % n_head != 0 {
				return Err(cfg_err(format!(
					"embedding length {n_embd} is not a multiple of {n_head} heads"
				)));
			}
			n_embd / n_head
		};
		if g.get(&k("attention.value_length")).is_some() &&
			usize_of("attention.value_length")? != head_dim
		{
			return Err(cfg_err("key and value head sizes differ"));
		}
		if n_head % n_head_kv != 0 {
			return Err(cfg_err(format!("{n_head} heads do not share {n_head_kv} KV heads evenly")));
		}
		let rope_dims = if g.get(&k("rope.dimension_count")).is_some() {
			usize_of("rope.dimension_count")?
		} else {
			head_dim
		};
		if rope_dims > head_dim || rope_dims % 2 != 0 {
			return Err(cfg_err(format!("RoPE over {rope_dims} of {head_dim} dimensions")));
		}
		let mut rope_freq_scale = 1.0;
		if let Some(v) = g.get(&k("rope.scaling.type")) {
			match v.as_str() {
				Some("none") => {},
				Some("linear") => {
					let f = g.f32_or(&k("rope.scaling.factor"), 1.0)?;
					if !(f.is_finite() && f > 0.0) {
						return Err(cfg_err(format!("RoPE scaling factor {f}")));
					}
					rope_freq_scale = 1.0 / f;
				},
				other =>
					return Err(cfg_err(format!(
						"RoPE scaling {other:?} is not supported (none and linear are)"
					))),
			}
		}
		let rope_base = g.f32_or(&k("rope.freq_base"), 10_000.0)?;
		let rms_eps = g.f32_or(&k("attention.layer_norm_rms_epsilon"), 1e-5)?;
		let in_range =
			rope_base.is_finite() && rope_base > 1.0 && rms_eps.is_finite() && rms_eps >= 0.0;
		if !in_range {
			return Err(cfg_err("RoPE base or RMS epsilon out of range"));
		}
		let vocab = match g.get("tokenizer.ggml.tokens") {
			Some(crate::gguf::Value::Array(a)) => a.len(),
			_ => return Err(cfg_err("tokenizer.ggml.tokens is missing")),
		};
		let n_layer = usize_of("block_count")?;
		let (mut attn_scale, mut embd_scale, mut swa) =
			(1.0 / (head_dim as f32).sqrt(), None, None);
		if arch == Arch::Gemma3 {
			// As llama.cpp: Gemma 3 27B (62 layers) scales queries by 1/√(n_embd / n_head),
			// the others by 1/√head_dim; GGUF has no key for it.
			if n_layer == 62 {
				attn_scale = 1.0 / ((n_embd / n_head) as f32).sqrt();
			}
			embd_scale = Some((n_embd as f32).sqrt());
			// Five sliding-window layers, then one global (the global layers alone take the
			// file's RoPE base and scaling; the local ones use base 10,000, unscaled).
			swa = Some(Swa {
				window: usize_of("attention.sliding_window")?,
				sliding: (0..n_layer).map(|l| l % 6 < 5).collect(),
				rope_base: 10_000.0,
			});
		}
		Ok(Self {
			arch,
			n_layer,
			n_embd,
			n_ff: usize_of("feed_forward_length")?,
			n_head,
			n_head_kv,
			head_dim,
			n_ctx_train: usize_of("context_length")?,
			vocab,
			rope_dims,
			rope_base,
			rope_freq_scale,
			rope_neox: arch != Arch::Llama,
			rms_eps,
			attn_scale,
			embd_scale,
			ffn_gelu: arch == Arch::Gemma3,
			swa,
		})
	}
}

/// A weight matrix in the file: `rows` rows of `cols` elements of type `ty`.
#[derive(Clone, Debug)]
struct Mat {
	offset: usize,
	ty: GgmlType,
	rows: usize,
	cols: usize,
}

impl Mat {
	fn row_bytes(&self) -> usize {
		self.ty.row_bytes(self.cols)
	}
}

struct Layer {
	attn_norm: Vec<f32>,
	wq: Mat,
	wk: Mat,
	wv: Mat,
	wo: Mat,
	bq: Option<Vec<f32>>,
	bk: Option<Vec<f32>>,
	bv: Option<Vec<f32>>,
	q_norm: Option<Vec<f32>>,
	k_norm: Option<Vec<f32>>,
	/// Gemma: RMSNorm of the attention output before the residual add.
	attn_post_norm: Option<Vec<f32>>,
	ffn_norm: Vec<f32>,
	/// Gemma: RMSNorm of the FFN output before the residual add.
	ffn_post_norm: Option<Vec<f32>>,
	gate: Mat,
	up: Mat,
	down: Mat,
}

pub struct Model {
	pub gguf: Gguf,
	pub cfg: Config,
	tok_embd: Mat,
	layers: Vec<Layer>,
	output_norm: Vec<f32>,
	output: Mat,
	/// Llama 3.x's per-frequency RoPE divisors.
	rope_freqs: Option<Vec<f32>>,
	pool: rayon::ThreadPool,
}

impl std::fmt::Debug for Model {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.debug_struct("Model").field("cfg", &self.cfg).finish()
	}
}

fn want_shape(t: &TensorInfo, want: &[usize]) -> Result<(), ModelError> {
	let want: Vec<u64> = want.iter().map(|&d| d as u64).collect();
	if t.dims != want {
		return Err(ModelError::Shape { name: t.name.clone(), got: t.dims.clone(), want });
	}
	Ok(())
}

impl Model {
	/// Checks the file's architecture, every tensor's presence, shape and type, and builds a
	/// thread pool of `threads` (0: one per core).
	pub fn load(gguf: Gguf, threads: usize) -> Result<Self, ModelError> {
		let cfg = Config::from_gguf(&gguf)?;
		let tensor =
			|name: &str| gguf.tensor(name).ok_or_else(|| ModelError::MissingTensor(name.into()));
		let mat = |name: &str, cols: usize, rows: usize| -> Result<Mat, ModelError> {
			let t = tensor(name)?;
			// Rows are whole blocks (checked by the parser), so activations quantize in whole
			// blocks.
			want_shape(t, &[cols, rows])?;
			Ok(Mat { offset: t.offset, ty: t.ty, rows, cols })
		};
		let vector = |name: &str, n: usize| -> Result<Vec<f32>, ModelError> {
			let t = tensor(name)?;
			want_shape(t, &[n])?;
			let mut v = vec![0f32; n];
			quant::dequantize(t.ty, gguf.data(t), &mut v);
			Ok(v)
		};
		let opt_vector = |name: &str, n: usize| -> Result<Option<Vec<f32>>, ModelError> {
			if gguf.tensor(name).is_some() {
				vector(name, n).map(Some)
			} else {
				Ok(None)
			}
		};
		let (e, hd) = (cfg.n_embd, cfg.head_dim);
		let (q_dim, kv_dim) = (cfg.n_head * hd, cfg.n_head_kv * hd);
		let mut layers = Vec::with_capacity(cfg.n_layer);
		for i in 0..cfg.n_layer {
			let n = |s: &str| format!("blk.{i}.{s}");
			let qk_norm = matches!(cfg.arch, Arch::Qwen3 | Arch::Gemma3);
			let post_norms = cfg.arch == Arch::Gemma3;
			let post = |name: &str| -> Result<Option<Vec<f32>>, ModelError> {
				if post_norms {
					vector(&n(name), e).map(Some)
				} else {
					Ok(None)
				}
			};
			layers.push(Layer {
				attn_norm: vector(&n("attn_norm.weight"), e)?,
				wq: mat(&n("attn_q.weight"), e, q_dim)?,
				wk: mat(&n("attn_k.weight"), e, kv_dim)?,
				wv: mat(&n("attn_v.weight"), e, kv_dim)?,
				wo: mat(&n("attn_output.weight"), q_dim, e)?,
				bq: opt_vector(&n("attn_q.bias"), q_dim)?,
				bk: opt_vector(&n("attn_k.bias"), kv_dim)?,
				bv: opt_vector(&n("attn_v.bias"), kv_dim)?,
				q_norm: if qk_norm { Some(vector(&n("attn_q_norm.weight"), hd)?) } else { None },
				k_norm: if qk_norm { Some(vector(&n("attn_k_norm.weight"), hd)?) } else { None },
				attn_post_norm: post("post_attention_norm.weight")?,
				ffn_norm: vector(&n("ffn_norm.weight"), e)?,
				ffn_post_norm: post("post_ffw_norm.weight")?,
				gate: mat(&n("ffn_gate.weight"), e, cfg.n_ff)?,
				up: mat(&n("ffn_up.weight"), e, cfg.n_ff)?,
				down: mat(&n("ffn_down.weight"), cfg.n_ff, e)?,
			});
		}
		let tok_embd = mat("token_embd.weight", e, cfg.vocab)?;
		// Tied embeddings: no output matrix of its own.
		let output = if gguf.tensor("output.weight").is_some() {
			mat("output.weight", e, cfg.vocab)?
		} else {
			tok_embd.clone()
		};
		let output_norm = vector("output_norm.weight", e)?;
		let rope_freqs = opt_vector("rope_freqs.weight", cfg.rope_dims / 2)?;
		let pool = rayon::ThreadPoolBuilder::new()
			.num_threads(threads)
			.thread_name(|i| format!("opg-llm-{i}"))
			.build()
			.map_err(|e| cfg_err(format!("cannot start the threads: {e}")))?;
		Ok(Self { gguf, cfg, tok_embd, layers, output_norm, output, rope_freqs, pool })
	}

	pub fn threads(&self) -> usize {
		self.pool.current_num_threads()
	}

	fn bytes(&self, m: &Mat) -> &[u8] {
		&self.gguf.bytes()[m.offset..m.offset + m.rows * m.row_bytes()]
	}

	/// Rows per parallel task of a matrix with `rows` rows.
	fn chunk(&self, rows: usize) -> usize {
		(rows / (self.threads() * 8)).clamp(8, 256)
	}

	/// [`Self::matmul`] of several matrices on the same tokens in one parallel pass: one
	/// wake-up of the threads instead of one per matrix (decode's Q, K, V and gate, up).
	/// Each output element is the same single dot product as `matmul`'s, so the same bits.
	fn matmuls(&self, jobs: &mut [(&Mat, &[Acts], &mut Vec<f32>)]) {
		if jobs.iter().any(|(_, acts, _)| acts.len() != 1) {
			for (m, acts, out) in jobs.iter_mut() {
				self.matmul(m, acts, out);
			}
			return;
		}
		let mut tasks = Vec::new();
		for (m, acts, out) in jobs.iter_mut() {
			out.clear();
			out.resize(m.rows, 0.0);
			let (chunk, w, x) = (self.chunk(m.rows), self.bytes(m), &acts[0]);
			for (c, o) in out.chunks_mut(chunk).enumerate() {
				tasks.push((*m, w, x, c * chunk, o));
			}
		}
		tasks.into_par_iter().for_each(|(m, w, x, first, o)| {
			let rb = m.row_bytes();
			for (r, v) in (first..).zip(o.iter_mut()) {
				*v = quant::dot_row(m.ty, &w[r * rb..(r + 1) * rb], x);
			}
		});
	}

	/// `out[t][r] = W[r] · x[t]` for the `t` activation vectors in `acts`.
	fn matmul(&self, m: &Mat, acts: &[Acts], out: &mut Vec<f32>) {
		let w = self.bytes(m);
		let rb = m.row_bytes();
		let t = acts.len();
		if t == 1 {
			return self.matmuls(&mut [(m, acts, out)]);
		}
		out.clear();
		out.resize(t * m.rows, 0.0);
		let chunk = self.chunk(m.rows);
		// Row-major per thread (each weight row read once for all tokens), then transposed.
		let mut by_row = vec![0f32; t * m.rows];
		by_row.par_chunks_mut(chunk * t).enumerate().for_each(|(c, o)| {
			for (i, row_out) in o.chunks_mut(t).enumerate() {
				let r = c * chunk + i;
				quant::dot_row_multi(m.ty, &w[r * rb..(r + 1) * rb], acts, row_out);
			}
		});
		for r in 0..m.rows {
			for j in 0..t {
				out[j * m.rows + r] = by_row[r * t + j];
			}
		}
	}

	/// The (cos, sin) pairs of position `pos`, for a global layer or (`local`) a
	/// sliding-window one.
	fn rope_cache(&self, pos: usize, local: bool) -> Vec<(f32, f32)> {
		let half = self.cfg.rope_dims / 2;
		let (base, freq_scale) = match (&self.cfg.swa, local) {
			(Some(swa), true) => (swa.rope_base, 1.0),
			_ => (self.cfg.rope_base, self.cfg.rope_freq_scale),
		};
		let theta_scale = base.powf(-2.0 / self.cfg.rope_dims as f32);
		let mut theta = pos as f32;
		(0..half)
			.map(|i| {
				let ff = self.rope_freqs.as_ref().map_or(1.0, |f| f[i]);
				let th = theta / ff * freq_scale;
				theta *= theta_scale;
				(th.cos(), th.sin())
			})
			.collect()
	}

	fn rope(&self, x: &mut [f32], cache: &[(f32, f32)]) {
		let d = self.cfg.rope_dims;
		for (i, &(c, s)) in cache.iter().enumerate() {
			let (a, b) = if self.cfg.rope_neox { (i, i + d / 2) } else { (2 * i, 2 * i + 1) };
			let (x0, x1) = (x[a], x[b]);
			x[a] = x0 * c - x1 * s;
			x[b] = x0 * s + x1 * c;
		}
	}
}

/// x ← x / rms(x) · w, the sum of squares in f64 as ggml sums it.
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
	let sum: f64 = x.iter().map(|&v| (v * v) as f64).sum();
	let mean = (sum / x.len() as f64) as f32;
	let scale = 1.0 / (mean + eps).sqrt();
	for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
		*o = v * scale * g;
	}
}

/// GELU as llama.cpp's CPU backend computes it: the tanh approximation, looked up by the
/// input rounded to f16 in a table of f16 results (exact outside ±10).
fn gelu(x: f32) -> f32 {
	static TABLE: std::sync::OnceLock<Vec<f16>> = std::sync::OnceLock::new();
	if x <= -10.0 {
		return 0.0;
	}
	if x >= 10.0 {
		return x;
	}
	let table = TABLE.get_or_init(|| {
		const SQRT_2_OVER_PI: f32 = 0.797_884_6;
		const COEF_A: f32 = 0.044_715;
		(0..=u16::MAX)
			.map(|bits| {
				let v = f16::from_bits(bits).to_f32();
				f16::from_f32(
					0.5 * v * (1.0 + (SQRT_2_OVER_PI * v * (1.0 + COEF_A * v * v)).tanh()),
				)
			})
			.collect()
	});
	table[f16::from_f32(x).to_bits() as usize].to_f32()
}

fn quantize_rows(kind: ActKind, x: &[f32], width: usize) -> Vec<Acts> {
	x.chunks_exact(width).map(|r| quant::quantize_acts(kind, r)).collect()
}

/// RMSNorm of each row of `o` (`width` wide) in place.
fn post_norm(o: &mut [f32], w: &[f32], eps: f32, width: usize) {
	let mut tmp = vec![0f32; width];
	for row in o.chunks_exact_mut(width) {
		rms_norm(row, w, eps, &mut tmp);
		row.copy_from_slice(&tmp);
	}
}

/// Most tokens one pass of [`Session::forward_inner`] takes: a longer prompt runs in pieces
/// (the same bits: every token's computation is its own), which bounds the activations'
/// memory and lets a sliding-window layer keep a ring of window + `CHUNK` positions.
const CHUNK: usize = 512;

/// One sequence's state: the KV cache (f16, preallocated) and its length. A global layer
/// keeps `cap` positions; a sliding-window layer a ring of at most window + [`CHUNK`]
/// (position p in slot p mod its size), enough that no position a token of the running
/// pass still attends to is overwritten by that pass.
pub struct Session<'m> {
	model: &'m Model,
	k: Vec<Vec<f16>>,
	v: Vec<Vec<f16>>,
	/// Positions each layer's cache holds.
	slots: Vec<usize>,
	len: usize,
	cap: usize,
}

impl<'m> Session<'m> {
	/// A session for up to `cap` positions (prompt and generated tokens), at most the model's
	/// training context.
	pub fn new(model: &'m Model, cap: usize) -> Result<Self, ModelError> {
		Self::with_rings(model, cap, true)
	}

	/// As [`Self::new`], with every layer keeping every position: what the rings are
	/// checked against.
	pub fn with_full_cache(model: &'m Model, cap: usize) -> Result<Self, ModelError> {
		Self::with_rings(model, cap, false)
	}

	fn with_rings(model: &'m Model, cap: usize, rings: bool) -> Result<Self, ModelError> {
		if cap == 0 || cap > model.cfg.n_ctx_train {
			return Err(ModelError::ContextFull { needed: cap, cap: model.cfg.n_ctx_train });
		}
		let c = &model.cfg;
		let kv = c.n_head_kv * c.head_dim;
		let slots: Vec<usize> = (0..c.n_layer)
			.map(|l| match &c.swa {
				Some(swa) if rings && swa.sliding[l] => cap.min(swa.window.saturating_add(CHUNK)),
				_ => cap,
			})
			.collect();
		let zeros = || slots.iter().map(|&n| vec![f16::ZERO; n * kv]).collect();
		Ok(Self { model, k: zeros(), v: zeros(), slots, len: 0, cap })
	}

	/// The KV cache's size in bytes.
	pub fn cache_bytes(&self) -> usize {
		self.k.iter().chain(&self.v).map(|c| c.len() * 2).sum()
	}

	pub fn len(&self) -> usize {
		self.len
	}

	pub fn is_empty(&self) -> bool {
		self.len == 0
	}

	/// Runs `tokens` (the prompt in one pass, or one generated token) and returns the logits
	/// that follow the last of them.
	pub fn forward(&mut self, tokens: &[TokenId]) -> Result<Vec<f32>, ModelError> {
		let m = self.model;
		if self.len + tokens.len() > self.cap {
			return Err(ModelError::ContextFull { needed: self.len + tokens.len(), cap: self.cap });
		}
		if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= m.cfg.vocab) {
			return Err(ModelError::Token(bad));
		}
		if tokens.is_empty() {
			return Err(cfg_err("nothing to run"));
		}
		let mut logits = Vec::new();
		for piece in tokens.chunks(CHUNK) {
			logits = m.pool.install(|| self.forward_inner(piece))?;
		}
		Ok(logits)
	}

	fn forward_inner(&mut self, tokens: &[TokenId]) -> Result<Vec<f32>, ModelError> {
		let m = self.model;
		let c = &m.cfg;
		let (e, hd, t) = (c.n_embd, c.head_dim, tokens.len());
		let (q_dim, kv_dim) = (c.n_head * hd, c.n_head_kv * hd);
		let p0 = self.len;

		let mut x = vec![0f32; t * e];
		let emb = m.bytes(&m.tok_embd);
		let rb = m.tok_embd.row_bytes();
		for (row, &tok) in x.chunks_exact_mut(e).zip(tokens) {
			quant::dequantize(m.tok_embd.ty, &emb[tok as usize * rb..(tok as usize + 1) * rb], row);
			if let Some(s) = c.embd_scale {
				row.iter_mut().for_each(|v| *v *= s);
			}
		}
		let ropes: Vec<Vec<(f32, f32)>> = (0..t).map(|i| m.rope_cache(p0 + i, false)).collect();
		let local_ropes: Vec<Vec<(f32, f32)>> = match c.swa {
			Some(_) => (0..t).map(|i| m.rope_cache(p0 + i, true)).collect(),
			None => Vec::new(),
		};
		let (mut h, mut q, mut k, mut v, mut o) =
			(vec![0f32; t * e], Vec::new(), Vec::new(), Vec::new(), Vec::new());
		let (mut g, mut u, mut att) = (Vec::new(), Vec::new(), vec![0f32; t * q_dim]);
		let scale = c.attn_scale;
		let group = c.n_head / c.n_head_kv;

		for (li, l) in m.layers.iter().enumerate() {
			// A sliding-window layer sees the last `window` positions (llama.cpp masks
			// position j for query position p when p - j >= window).
			let window = c.swa.as_ref().filter(|s| s.sliding[li]).map(|s| s.window);
			let ropes = if window.is_some() { &local_ropes } else { &ropes };
			for (xr, hr) in x.chunks_exact(e).zip(h.chunks_exact_mut(e)) {
				rms_norm(xr, &l.attn_norm, c.rms_eps, hr);
			}
			let acts = quantize_rows(l.wq.ty.act_kind(), &h, e);
			let acts_k = if l.wk.ty.act_kind() == l.wq.ty.act_kind() {
				None
			} else {
				Some(quantize_rows(l.wk.ty.act_kind(), &h, e))
			};
			let acts_v = if l.wv.ty.act_kind() == l.wq.ty.act_kind() {
				None
			} else {
				Some(quantize_rows(l.wv.ty.act_kind(), &h, e))
			};
			m.matmuls(&mut [
				(&l.wq, &acts, &mut q),
				(&l.wk, acts_k.as_ref().unwrap_or(&acts), &mut k),
				(&l.wv, acts_v.as_ref().unwrap_or(&acts), &mut v),
			]);
			for (bias, y, w) in
				[(&l.bq, &mut q, q_dim), (&l.bk, &mut k, kv_dim), (&l.bv, &mut v, kv_dim)]
			{
				if let Some(b) = bias {
					for row in y.chunks_exact_mut(w) {
						row.iter_mut().zip(b).for_each(|(a, b)| *a += b);
					}
				}
			}
			for (i, rope) in ropes.iter().enumerate() {
				for head in q[i * q_dim..(i + 1) * q_dim].chunks_exact_mut(hd) {
					if let Some(nw) = &l.q_norm {
						let src = head.to_vec();
						rms_norm(&src, nw, c.rms_eps, head);
					}
					m.rope(head, rope);
				}
				for head in k[i * kv_dim..(i + 1) * kv_dim].chunks_exact_mut(hd) {
					if let Some(nw) = &l.k_norm {
						let src = head.to_vec();
						rms_norm(&src, nw, c.rms_eps, head);
					}
					m.rope(head, rope);
				}
			}
			// Append to the cache in place.
			let slots = self.slots[li];
			let (kc, vc) = (&mut self.k[li], &mut self.v[li]);
			for i in 0..t {
				let at = (p0 + i) % slots * kv_dim;
				for j in 0..kv_dim {
					kc[at + j] = f16::from_f32(k[i * kv_dim + j]);
					vc[at + j] = f16::from_f32(v[i * kv_dim + j]);
				}
			}
			let (kc, vc) = (&self.k[li], &self.v[li]);
			// Causal attention: one task per (token, head), each summing in position order (q·k
			// in eight lanes, see `quant::dot_f16`).
			att.par_chunks_mut(hd).enumerate().for_each(|(task, out)| {
				let (i, head) = (task / c.n_head, task % c.n_head);
				let kvh = head / group;
				let pos = p0 + i;
				let qh = &q[i * q_dim + head * hd..i * q_dim + (head + 1) * hd];
				let first = window.map_or(0, |w| (pos + 1).saturating_sub(w));
				let mut s: Vec<f32> = (first..=pos)
					.map(|j| {
						let at = j % slots * kv_dim + kvh * hd;
						let kr = &kc[at..at + hd];
						quant::dot_f16(qh, kr) * scale
					})
					.collect();
				let max = s.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
				let mut sum = 0f64;
				for p in s.iter_mut() {
					*p = (*p - max).exp();
					sum += *p as f64;
				}
				let inv = (1.0 / sum) as f32;
				out.fill(0.0);
				for (j, p) in (first..).zip(&s) {
					let at = j % slots * kv_dim + kvh * hd;
					let vr = &vc[at..at + hd];
					quant::add_scaled_f16(out, p * inv, vr);
				}
			});
			let acts = quantize_rows(l.wo.ty.act_kind(), &att, q_dim);
			m.matmul(&l.wo, &acts, &mut o);
			if let Some(w) = &l.attn_post_norm {
				post_norm(&mut o, w, c.rms_eps, e);
			}
			x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);

			for (xr, hr) in x.chunks_exact(e).zip(h.chunks_exact_mut(e)) {
				rms_norm(xr, &l.ffn_norm, c.rms_eps, hr);
			}
			let acts = quantize_rows(l.gate.ty.act_kind(), &h, e);
			let acts_u = if l.up.ty.act_kind() == l.gate.ty.act_kind() {
				None
			} else {
				Some(quantize_rows(l.up.ty.act_kind(), &h, e))
			};
			m.matmuls(&mut [
				(&l.gate, &acts, &mut g),
				(&l.up, acts_u.as_ref().unwrap_or(&acts), &mut u),
			]);
			if c.ffn_gelu {
				// GeGLU: gelu(gate) · up.
				g.iter_mut().zip(&u).for_each(|(a, b)| *a = gelu(*a) * b);
			} else {
				// SwiGLU: silu(gate) · up.
				g.iter_mut().zip(&u).for_each(|(a, b)| *a = *a / (1.0 + (-*a).exp()) * b);
			}
			let acts = quantize_rows(l.down.ty.act_kind(), &g, c.n_ff);
			m.matmul(&l.down, &acts, &mut o);
			if let Some(w) = &l.ffn_post_norm {
				post_norm(&mut o, w, c.rms_eps, e);
			}
			x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
		}
		self.len += t;

		let last = &x[(t - 1) * e..];
		let mut hn = vec![0f32; e];
		rms_norm(last, &m.output_norm, c.rms_eps, &mut hn);
		let acts = vec![quant::quantize_acts(m.output.ty.act_kind(), &hn)];
		let mut logits = Vec::new();
		m.matmul(&m.output, &acts, &mut logits);
		Ok(logits)
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::gguf::{write, Value};

	/// Metadata only: `Config::from_gguf` reads no tensor.
	fn config(arch: &str, extra: &[(&str, Value)]) -> Result<Config, ModelError> {
		let k = |s: &str| format!("{arch}.{s}");
		let mut kv: Vec<(String, Value)> = vec![
			("general.architecture".into(), Value::String(arch.into())),
			(k("embedding_length"), Value::U32(640)),
			(k("block_count"), Value::U32(18)),
			(k("feed_forward_length"), Value::U32(2048)),
			(k("context_length"), Value::U32(32768)),
			(k("attention.head_count"), Value::U32(4)),
			(k("attention.head_count_kv"), Value::U32(1)),
			(k("attention.key_length"), Value::U32(256)),
			(k("rope.freq_base"), Value::F32(1e6)),
			(
				"tokenizer.ggml.tokens".into(),
				Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
			),
		];
		kv.extend(extra.iter().map(|(key, v)| (k(key), v.clone())));
		let kv: Vec<(&str, &Value)> = kv.iter().map(|(key, v)| (key.as_str(), v)).collect();
		Config::from_gguf(&Gguf::from_bytes(write(&kv, &[])).unwrap())
	}

	#[test]
	fn gemma3_has_five_sliding_layers_then_a_global_one() {
		let c = config("gemma3", &[("attention.sliding_window", Value::U32(512))]).unwrap();
		let swa = c.swa.expect("sliding window");
		assert_eq!(swa.window, 512);
		let global: Vec<usize> = (0..18).filter(|&l| !swa.sliding[l]).collect();
		assert_eq!(global, [5, 11, 17]);
		assert_eq!((swa.rope_base, c.rope_base), (10_000.0, 1e6));
		assert_eq!((c.attn_scale, c.embd_scale), (1.0 / 16.0, Some(640f32.sqrt())));
		assert!(c.ffn_gelu && c.rope_neox);
	}

	#[test]
	fn gemma3_without_its_window_is_refused_by_name() {
		let err = config("gemma3", &[]).unwrap_err().to_string();
		assert!(err.contains("gemma3.attention.sliding_window"), "{err}");
	}

	#[test]
	fn an_architecture_the_engine_cannot_run_is_refused_by_name() {
		for arch in ["gemma2", "phi3", "mamba"] {
			let err = config(arch, &[]).unwrap_err();
			assert!(matches!(&err, ModelError::Architecture(a) if a == arch), "{err}");
			assert!(err.to_string().contains(&format!("{arch:?} is not supported")));
		}
	}

	#[test]
	fn other_architectures_have_no_gemma_parts() {
		let c = config("llama", &[]).unwrap();
		assert!(c.swa.is_none() && c.embd_scale.is_none() && !c.ffn_gelu && !c.rope_neox);
		assert_eq!(c.attn_scale, 1.0 / 16.0);
	}

	#[test]
	fn gelu_is_llamacpps_table() {
		assert_eq!(gelu(-10.0), 0.0);
		assert_eq!(gelu(10.0), 10.0);
		assert_eq!(gelu(0.0), 0.0);
		// Inputs are rounded to f16 first: 1 and the next f32 above it give the same value.
		assert_eq!(gelu(1.0), gelu(1.0 + f32::EPSILON));
		for x in [-3.0f32, -0.5, 0.25, 1.0, 2.5] {
			let exact = 0.5 * x * (1.0 + (0.797_884_6 * x * (1.0 + 0.044_715 * x * x)).tanh());
			assert!((gelu(x) - exact).abs() <= 2e-3 * exact.abs().max(1e-2), "{x}");
		}
	}
}
