//! LLM jobs: a GGUF release's model, checked against the release's [`LlmSpec`] at load, runs a
//! SCALE [`ChatRequest`] exactly as the chain defines it and answers a [`ChatResponse`].
//!
//! What the publisher declares and the worker checks: the architecture, the vocabulary size,
//! the tokenizer hash ([`tokenizer_hash`]), a context length the model was trained for, and
//! template overheads at least those measured here ([`LlmEngine::measured`]), so that the
//! chain's token budget bounds what the worker will report.

use codec::Encode;
use opg_llm::{
	chat::{ChatTemplate, Message},
	generate::{generate, FinishReason as LlmFinish, GenerateParams, SizeLimit},
	gguf::{Gguf, Value},
	model::Model,
	sample::{SamplingParams, SAMPLER_VERSION},
	tokenizer::{TokenId, Tokenizer},
	ENGINE_VERSION,
};
use opg_primitives::chat::{
	ChatRequest, ChatResponse, FinishReason, LlmSpec, Prompt, Role, PROBABILITY_ONE,
};
use polkadot_sdk::sp_core::{Get, H256};

/// What a response names as its engine: the engine and sampler versions.
pub fn engine_version() -> String {
	format!("{ENGINE_VERSION};{SAMPLER_VERSION}")
}

/// The device class results are computed on: the AVX2 and portable kernels give the same
/// bits (tested), but `exp` and the other libm functions are the platform's.
pub fn device_class() -> String {
	format!("cpu-{}", std::env::consts::ARCH)
}

/// blake2-256 of SCALE(`tokenizer.ggml.model`, `tokenizer.ggml.pre`, the token texts, the
/// merges, `tokenizer.chat_template`), each empty where the file has none: the tokenizer and
/// template a release's tokens are counted with.
pub fn tokenizer_hash(g: &Gguf) -> H256 {
	let text = |key: &str| g.get(key).and_then(Value::as_str).unwrap_or("").as_bytes().to_vec();
	let list = |key: &str| -> Vec<Vec<u8>> {
		g.array(key)
			.map(|a| a.iter().map(|v| v.as_str().unwrap_or("").as_bytes().to_vec()).collect())
			.unwrap_or_default()
	};
	let parts = (
		text("tokenizer.ggml.model"),
		text("tokenizer.ggml.pre"),
		list("tokenizer.ggml.tokens"),
		list("tokenizer.ggml.merges"),
		text("tokenizer.chat_template"),
	);
	H256(polkadot_sdk::sp_crypto_hashing::blake2_256(&parts.encode()))
}

/// What a GGUF file says of itself: the [`LlmSpec`] a release of it should declare (with the
/// context length it is trained for; a release may declare less).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measured {
	pub architecture: String,
	pub context_length: u32,
	pub vocab_size: u32,
	pub template_hash: H256,
	pub prompt_overhead: u32,
	pub message_overhead: u32,
}

/// Why a job was not answered with a response.
#[derive(Debug, thiserror::Error)]
pub enum LlmJobError {
	/// The request is valid on chain but this model cannot take it (the rendered prompt and
	/// `max_tokens` exceed the context, a template refuses the roles' order): no slash.
	#[error("{0}")]
	BadInput(String),
	/// The engine failed.
	#[error("{0}")]
	Failed(String),
}

/// A loaded GGUF model with its tokenizer and chat template.
pub struct LlmEngine {
	model: Model,
	tokenizer: Tokenizer,
	template: Option<ChatTemplate>,
	measured: Measured,
}

impl LlmEngine {
	/// Maps and checks the GGUF file at `path` (the weights stay in the page cache, shared),
	/// runs on `threads` threads (0: one per core).
	pub fn open(path: &std::path::Path, threads: usize) -> Result<Self, String> {
		Self::from_gguf(Gguf::open(path).map_err(|e| e.to_string())?, threads)
	}

	/// Parses and checks `bytes` (a GGUF file), runs on `threads` threads (0: one per core).
	pub fn load(bytes: Vec<u8>, threads: usize) -> Result<Self, String> {
		Self::from_gguf(Gguf::from_bytes(bytes).map_err(|e| e.to_string())?, threads)
	}

	fn from_gguf(gguf: Gguf, threads: usize) -> Result<Self, String> {
		let tokenizer = Tokenizer::from_gguf(&gguf).map_err(|e| e.to_string())?;
		let hash = tokenizer_hash(&gguf);
		let model = Model::load(gguf, threads).map_err(|e| e.to_string())?;
		let template = match model.gguf.get("tokenizer.chat_template") {
			Some(_) =>
				Some(ChatTemplate::from_gguf(&model.gguf, &tokenizer).map_err(|e| e.to_string())?),
			None => None,
		};
		let (prompt_overhead, message_overhead) = overheads(&tokenizer, template.as_ref())?;
		let measured = Measured {
			architecture: model.cfg.arch.name().into(),
			context_length: model.cfg.n_ctx_train.try_into().unwrap_or(u32::MAX),
			vocab_size: tokenizer.vocab_size() as u32,
			template_hash: hash,
			prompt_overhead,
			message_overhead,
		};
		Ok(LlmEngine { model, tokenizer, template, measured })
	}

	/// What the file says of itself.
	pub fn measured(&self) -> &Measured {
		&self.measured
	}

	/// Whether `spec` (a release's) describes this file: same architecture, vocabulary and
	/// tokenizer, a context it was trained for, overheads no lower than measured.
	pub fn check<N: Get<u32>>(&self, spec: &LlmSpec<N>) -> Result<(), String> {
		let m = &self.measured;
		let mut wrong = Vec::new();
		if spec.architecture[..] != *m.architecture.as_bytes() {
			wrong.push(format!(
				"architecture {:?}, the file's is {:?}",
				String::from_utf8_lossy(&spec.architecture),
				m.architecture
			));
		}
		if spec.vocab_size != m.vocab_size {
			wrong.push(format!("vocabulary {}, the file's is {}", spec.vocab_size, m.vocab_size));
		}
		if spec.template_hash != m.template_hash {
			wrong.push(format!(
				"tokenizer hash {:?}, the file's is {:?}",
				spec.template_hash, m.template_hash
			));
		}
		if spec.context_length > m.context_length {
			wrong.push(format!(
				"context {}, the model is trained for {}",
				spec.context_length, m.context_length
			));
		}
		if spec.prompt_overhead < m.prompt_overhead || spec.message_overhead < m.message_overhead {
			wrong.push(format!(
				"template overheads {}/{}, below the measured {}/{}",
				spec.prompt_overhead, spec.message_overhead, m.prompt_overhead, m.message_overhead
			));
		}
		if wrong.is_empty() {
			Ok(())
		} else {
			Err(format!("the release's LLM spec does not match the file: {}", wrong.join("; ")))
		}
	}

	/// The prompt's tokens: the chat rendered with the template (contents never parsed for
	/// special tokens), or raw text as its author wrote it (special-token texts parsed: the
	/// requester writes the whole prompt).
	pub fn prompt(&self, prompt: &Prompt) -> Result<Vec<TokenId>, LlmJobError> {
		let text = |b: &[u8]| {
			String::from_utf8(b.to_vec())
				.map_err(|_| LlmJobError::BadInput("a text is not UTF-8".into()))
		};
		match prompt {
			Prompt::Raw(t) => Ok(self.tokenizer.encode(&text(t)?, true, true)),
			Prompt::Chat(messages) => {
				let template = self.template.as_ref().ok_or_else(|| {
					LlmJobError::BadInput(
						"the model has no chat template: send a raw prompt".into(),
					)
				})?;
				let messages = messages
					.iter()
					.map(|m| {
						Ok(Message { role: m.role.as_str().into(), content: text(&m.content)? })
					})
					.collect::<Result<Vec<_>, LlmJobError>>()?;
				template
					.encode(&self.tokenizer, &messages)
					.map_err(|e| LlmJobError::BadInput(e.to_string()))
			},
		}
	}

	/// Runs `request` within `context_length` tokens (the release's).
	pub fn run(
		&self,
		request: &ChatRequest,
		context_length: u32,
	) -> Result<ChatResponse, LlmJobError> {
		self.run_streaming(request, context_length, &mut |_| {})
	}

	/// Runs `request` like [`Self::run`], handing the completion's text to `on_text` as it is
	/// generated: pieces that, joined, are a prefix of the response's text (text that may
	/// still turn out to start a stop string, or an incomplete UTF-8 character, is held back;
	/// the caller sends the rest of the final text after the last piece).
	pub fn run_streaming(
		&self,
		request: &ChatRequest,
		context_length: u32,
		on_text: &mut dyn FnMut(&str),
	) -> Result<ChatResponse, LlmJobError> {
		let prompt = self.prompt(&request.prompt)?;
		let needed = prompt.len() as u64 + u64::from(request.max_tokens);
		if needed > u64::from(context_length) {
			return Err(LlmJobError::BadInput(format!(
				"{} prompt tokens and max_tokens {} exceed the context of {context_length}",
				prompt.len(),
				request.max_tokens
			)));
		}
		let mut params = generate_params(request)?;
		params.size_limit = Some(response_size_limit());
		let mut pieces = TextPieces::new(&params.stop);
		let out = generate(&self.model, &self.tokenizer, &prompt, &params, |token| {
			let piece = pieces.push(|bytes| self.tokenizer.token_bytes(token, bytes));
			if !piece.is_empty() {
				on_text(&piece);
			}
		})
		.map_err(|e| LlmJobError::Failed(e.to_string()))?;
		Ok(ChatResponse {
			text: out.text.into_bytes(),
			completion_tokens: out.tokens.len() as u32,
			token_ids: out.tokens,
			finish_reason: match out.finish {
				LlmFinish::Stop => FinishReason::Stop,
				LlmFinish::Length => FinishReason::Length,
			},
			prompt_tokens: prompt.len() as u32,
			engine: engine_version().into_bytes(),
			device_class: device_class().into_bytes(),
			logits_digest: out.logits_digest,
		})
	}
}

/// The completion a [`ChatResponse`] can carry within the chain's `MaxOutputLen`: a longer
/// answer could neither be posted as a job's result nor be opened when its receipt is audited,
/// so generation stops there (`length`), as at `max_tokens`.
pub fn response_size_limit() -> SizeLimit {
	let rest = ChatResponse {
		text: Vec::new(),
		token_ids: Vec::new(),
		finish_reason: FinishReason::Length,
		prompt_tokens: 0,
		completion_tokens: 0,
		engine: engine_version().into_bytes(),
		device_class: device_class().into_bytes(),
		logits_digest: 0,
	}
	.encoded_size();
	// The two lengths' compact prefixes grow from 1 byte to at most 4 below 2^30 bytes.
	SizeLimit { bytes: crate::worker::max_output_len().saturating_sub(rest + 2 * 3), per_token: 4 }
}

/// Cuts a completion's bytes into the text pieces a stream may send: never an incomplete UTF-8
/// character, never bytes that may be the start of a stop string (`generate` cuts the text
/// before the first stop string, so what was sent stays a prefix of the final text).
struct TextPieces<'a> {
	bytes: Vec<u8>,
	sent: usize,
	stop: &'a [String],
}

impl<'a> TextPieces<'a> {
	fn new(stop: &'a [String]) -> Self {
		TextPieces { bytes: Vec::new(), sent: 0, stop }
	}

	/// Appends a token's bytes (written by `append`) and returns the text now safe to send.
	fn push(&mut self, append: impl FnOnce(&mut Vec<u8>)) -> String {
		append(&mut self.bytes);
		let mut end = self.bytes.len();
		// An incomplete character at the end waits for its next bytes.
		if let Some(lead) = self.bytes[end.saturating_sub(3)..end]
			.iter()
			.rposition(|b| b & 0xC0 != 0x80)
			.map(|i| end.saturating_sub(3) + i)
		{
			let needs = match self.bytes[lead] {
				b if b >= 0xF0 => 4,
				b if b >= 0xE0 => 3,
				b if b >= 0xC0 => 2,
				_ => 1,
			};
			if end - lead < needs {
				end = lead;
			}
		}
		let mut end = end.max(self.sent);
		// A stop string completed by this token: the text ends before it (`generate` stops).
		let longest = self.stop.iter().map(String::len).max().unwrap_or(0);
		let from = self.sent.saturating_sub(longest.saturating_sub(1));
		if let Some(at) = self
			.stop
			.iter()
			.filter(|s| !s.is_empty())
			.filter_map(|s| self.bytes[from..end].windows(s.len()).position(|w| w == s.as_bytes()))
			.min()
		{
			end = end.min(from + at);
		}
		// A suffix that a stop string starts with waits: it may complete the stop string.
		let (bytes, sent) = (&self.bytes[..end], self.sent);
		let held = self
			.stop
			.iter()
			.flat_map(|s| {
				let s = s.as_bytes();
				(1..s.len().min(end - sent + 1)).filter(move |&n| bytes.ends_with(&s[..n]))
			})
			.max()
			.unwrap_or(0);
		let end = end - held;
		if end <= self.sent {
			return String::new();
		}
		let piece = String::from_utf8_lossy(&self.bytes[self.sent..end]).into_owned();
		self.sent = end;
		piece
	}
}

/// The engine's parameters for `request`: fixed-point values divided exactly (an integer
/// below 2^24 and a power-of-ten divisor are both exact `f32`s, and IEEE division rounds
/// once).
pub fn generate_params(request: &ChatRequest) -> Result<GenerateParams, LlmJobError> {
	let s = &request.sampling;
	let sampling = SamplingParams {
		temperature: s.temperature as f32 / 1000.0,
		top_k: s.top_k,
		top_p: s.top_p as f32 / PROBABILITY_ONE as f32,
		min_p: s.min_p as f32 / PROBABILITY_ONE as f32,
		repeat_penalty: s.repeat_penalty as f32 / 1000.0,
		repeat_last_n: s.repeat_last_n,
		seed: s.seed,
	};
	sampling.check().map_err(LlmJobError::BadInput)?;
	let stop = request
		.stop
		.iter()
		.map(|s| {
			String::from_utf8(s.clone())
				.map_err(|_| LlmJobError::BadInput("a stop string is not UTF-8".into()))
		})
		.collect::<Result<_, _>>()?;
	Ok(GenerateParams { max_tokens: request.max_tokens, sampling, stop, size_limit: None })
}

/// The template's own tokens: once per prompt (with the first message: BOS, a default system
/// turn, the assistant's opening) and per further message, each with one token of margin for
/// a leading-space prefix. Measured on one-byte contents; a template that refuses an order of
/// roles is measured on the orders it takes.
fn overheads(tok: &Tokenizer, template: Option<&ChatTemplate>) -> Result<(u32, u32), String> {
	let Some(template) = template else {
		// A raw prompt: BOS and a leading-space prefix.
		return Ok((2, 0));
	};
	let m = |role: Role| Message { role: role.as_str().into(), content: "x".into() };
	let count = |messages: &[Message]| template.encode(tok, messages).map(|t| t.len() as u32);
	let one = count(&[m(Role::User)]).map_err(|e| format!("the chat template: {e}"))?;
	let per_message = [
		[m(Role::User), m(Role::Assistant)],
		[m(Role::User), m(Role::User)],
		[m(Role::System), m(Role::User)],
		[m(Role::Assistant), m(Role::User)],
	]
	.iter()
	.filter_map(|pair| count(pair).ok())
	.map(|two| two.saturating_sub(one))
	.max()
	.unwrap_or(0);
	// `one` counts its content's token too: that is the margin of the first message.
	Ok((one + 1, per_message + 1))
}

#[cfg(test)]
mod tests {
	use super::*;

	/// The pieces of `tokens` (each a token's bytes) with `stop`, and what the last call held.
	fn pieces(tokens: &[&[u8]], stop: &[&str]) -> Vec<String> {
		let stop: Vec<String> = stop.iter().map(|s| s.to_string()).collect();
		let mut p = TextPieces::new(&stop);
		tokens.iter().map(|t| p.push(|b| b.extend_from_slice(t))).collect()
	}

	/// Any split of the limit between text and tokens, short or long (so the lengths' prefixes
	/// take 1, 2 or 4 bytes), encodes within the chain's `MaxOutputLen`.
	#[test]
	fn a_response_at_the_size_limit_fits_the_chains_output_limit() {
		let most = crate::worker::max_output_len();
		let limit = response_size_limit();
		assert!(limit.bytes > most - 100, "{limit:?}");
		for tokens in [0, 1, 63, 64, 4_096, limit.bytes / 4] {
			let text = limit.bytes - 4 * tokens;
			let response = ChatResponse {
				text: vec![b'a'; text],
				token_ids: vec![7; tokens],
				finish_reason: FinishReason::Length,
				prompt_tokens: u32::MAX,
				completion_tokens: tokens as u32,
				engine: engine_version().into_bytes(),
				device_class: device_class().into_bytes(),
				logits_digest: u64::MAX,
			};
			assert!(response.encoded_size() <= most, "{tokens} tokens, {text} bytes");
		}
	}

	#[test]
	fn pieces_hold_back_incomplete_characters() {
		let euro = "€".as_bytes();
		assert_eq!(
			pieces(&[b"a", &euro[..1], &euro[1..2], &euro[2..], b"b"], &[]),
			["a", "", "", "€", "b"]
		);
		assert_eq!(pieces(&["é".as_bytes(), b"!"], &[]), ["é", "!"]);
	}

	#[test]
	fn pieces_hold_back_what_may_start_a_stop_string_and_end_before_one() {
		assert_eq!(pieces(&[b"Paris", b" EN", b"D of it"], &["END"]), ["Paris", " ", ""]);
		// A held prefix that does not complete the stop string is sent with what follows.
		assert_eq!(pieces(&[b"Paris E", b"nd"], &["END"]), ["Paris ", "End"]);
		assert_eq!(pieces(&[b"a</s>b"], &["</s>"]), ["a"]);
		assert_eq!(pieces(&[b"x", b"\n\n"], &["\n\n\n", "\n\nQ"]), ["x", ""]);
	}
}
