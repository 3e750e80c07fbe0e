//! LLM jobs: what a GGUF release declares ([`LlmSpec`]), the SCALE job input
//! ([`ChatRequest`]) and output ([`ChatResponse`]), and the checks the chain runs on them.
//!
//! The chain has no tokenizer, so it bounds the prompt's tokens from bytes: a byte-level BPE or
//! a SentencePiece vocabulary with byte fallback never yields more tokens than bytes, and the
//! chat template's own tokens are bounded by the release's declared overheads (which the
//! worker checks against the file at load). That bound is what the escrow covers; the worker
//! reports the real counts and is paid for those.
//!
//! Sampling parameters are fixed-point integers: SCALE has no floats, and integers leave no
//! doubt about which `f32` a request means (the worker divides exactly as documented).

use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use polkadot_sdk::{
	frame_support::{BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound},
	sp_core::{Get, H256},
};
use scale_info::TypeInfo;
use serde::{Deserialize, Serialize};

/// Most messages in a chat request.
pub const MAX_MESSAGES: usize = 64;
/// Most stop strings in a request.
pub const MAX_STOP_STRINGS: usize = 4;
/// Longest stop string, in bytes.
pub const MAX_STOP_LEN: usize = 32;
/// Most tokens one request may ask for, whatever the context: 4,096 token ids take 16 KiB of
/// the response, which leaves room for their text within the chain's output limit.
pub const MAX_COMPLETION_TOKENS: u32 = 4096;
/// Longest engine-version or device-class string in a response.
pub const MAX_ENGINE_LEN: usize = 64;
/// Highest temperature, in thousandths.
pub const MAX_TEMPERATURE: u32 = 10_000;
/// Highest repetition penalty, in thousandths.
pub const MAX_REPEAT_PENALTY: u32 = 10_000;
/// Longest repetition window, in tokens.
pub const MAX_REPEAT_LAST_N: u32 = 4096;
/// `top_p` and `min_p` are in millionths: this is 1.
pub const PROBABILITY_ONE: u32 = 1_000_000;

/// What a GGUF release declares about its model, in place of tensor specs.
#[derive(
	CloneNoBound,
	PartialEqNoBound,
	EqNoBound,
	DebugNoBound,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Serialize,
	Deserialize,
)]
#[scale_info(skip_type_params(MaxName))]
#[codec(mel_bound())]
#[serde(bound = "")]
pub struct LlmSpec<MaxName: Get<u32>> {
	/// `general.architecture` of the file (`llama`, `qwen2`, ...).
	pub architecture: BoundedVec<u8, MaxName>,
	/// Tokens of context (prompt plus completion) the release is served with.
	pub context_length: u32,
	/// Tokens in the vocabulary: every token id of a response is below it.
	pub vocab_size: u32,
	/// blake2-256 of the tokenizer and chat template (`opg-llm`'s `tokenizer_hash`), so that
	/// a requester knows which tokenizer its tokens are counted with.
	pub template_hash: H256,
	/// Most tokens the template adds once per prompt (BOS, a default system turn, the
	/// assistant's opening), plus one for a tokenizer's leading-space prefix.
	pub prompt_overhead: u32,
	/// Most tokens the template adds per message (role markers, separators), plus one.
	pub message_overhead: u32,
}

/// Who speaks a message.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	TypeInfo,
	Serialize,
	Deserialize,
)]
pub enum Role {
	/// Instructions for the assistant.
	System,
	/// The user.
	User,
	/// The model's earlier answers.
	Assistant,
}

impl Role {
	/// The name chat templates know the role by.
	pub fn as_str(self) -> &'static str {
		match self {
			Role::System => "system",
			Role::User => "user",
			Role::Assistant => "assistant",
		}
	}
}

/// One message of a chat.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo, Serialize, Deserialize)]
pub struct ChatMessage {
	/// Who speaks.
	pub role: Role,
	/// UTF-8 text. Special-token texts in it stay plain text.
	pub content: Vec<u8>,
}

/// What the model is run on.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo, Serialize, Deserialize)]
pub enum Prompt {
	/// Messages, rendered with the release's chat template.
	Chat(Vec<ChatMessage>),
	/// UTF-8 text tokenized as it is (with the model's BOS token if it uses one).
	Raw(Vec<u8>),
}

/// Sampling parameters in fixed point. Temperature 0 is greedy.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo, Serialize, Deserialize)]
pub struct Sampling {
	/// Thousandths, `0..=MAX_TEMPERATURE`.
	pub temperature: u32,
	/// Keep the `top_k` most likely tokens; 0 keeps all.
	pub top_k: u32,
	/// Millionths, `1..=PROBABILITY_ONE`; `PROBABILITY_ONE` turns it off.
	pub top_p: u32,
	/// Millionths, `0..=PROBABILITY_ONE`; 0 turns it off.
	pub min_p: u32,
	/// Thousandths, `1..=MAX_REPEAT_PENALTY`; 1000 turns it off.
	pub repeat_penalty: u32,
	/// Tokens the penalty looks back over, `0..=MAX_REPEAT_LAST_N`.
	pub repeat_last_n: u32,
	/// Seed of the sampler's generator.
	pub seed: u64,
}

impl Default for Sampling {
	/// Greedy, with the sampler's usual filters (they do not matter at temperature 0).
	fn default() -> Self {
		Sampling {
			temperature: 0,
			top_k: 40,
			top_p: 950_000,
			min_p: 50_000,
			repeat_penalty: 1000,
			repeat_last_n: 64,
			seed: 0,
		}
	}
}

/// The input of an LLM job.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo, Serialize, Deserialize)]
pub struct ChatRequest {
	/// Messages or raw text.
	pub prompt: Prompt,
	/// Most tokens to generate, `1..=min(context_length, MAX_COMPLETION_TOKENS)`.
	pub max_tokens: u32,
	/// How tokens are drawn.
	pub sampling: Sampling,
	/// Generation stops before the first of these (UTF-8, at most `MAX_STOP_STRINGS`, each
	/// `1..=MAX_STOP_LEN` bytes).
	pub stop: Vec<Vec<u8>>,
}

/// Why generation ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, TypeInfo, Serialize, Deserialize)]
pub enum FinishReason {
	/// An end-of-generation token or a stop string.
	Stop,
	/// `max_tokens` reached, or the response would have passed the chain's `MaxOutputLen`.
	Length,
}

/// The output of an LLM job.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo, Serialize, Deserialize)]
pub struct ChatResponse {
	/// The completion (UTF-8), cut before a stop string.
	pub text: Vec<u8>,
	/// The generated tokens, without the end-of-generation token.
	pub token_ids: Vec<u32>,
	/// Why generation ended.
	pub finish_reason: FinishReason,
	/// Tokens of the rendered prompt.
	pub prompt_tokens: u32,
	/// Tokens generated: `token_ids.len()`.
	pub completion_tokens: u32,
	/// The engine and its version (a change that can move a bit changes it).
	pub engine: Vec<u8>,
	/// The device class the tokens were computed on (`cpu-x86_64-avx2`, ...).
	pub device_class: Vec<u8>,
	/// FNV-1a over every step's logits: what a re-execution compares besides the tokens.
	pub logits_digest: u64,
}

/// The most tokens a request can be billed for: what its escrow covers.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Default,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub struct TokenBudget {
	/// Bound of the prompt's tokens (from its bytes and the template's overheads).
	pub prompt: u32,
	/// `max_tokens`.
	pub completion: u32,
}

/// The tokens a response reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Encode, Decode, TypeInfo)]
pub struct TokenUsage {
	/// Tokens of the rendered prompt.
	pub prompt: u32,
	/// Tokens generated.
	pub completion: u32,
}

/// Why a chat request or response is refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub enum ChatError {
	/// Not a SCALE-encoded request (or response), or trailing bytes.
	Malformed,
	/// A text is not UTF-8.
	NotUtf8,
	/// A chat with no message, or an empty raw prompt.
	EmptyPrompt,
	/// More than `MAX_MESSAGES` messages.
	TooManyMessages,
	/// More than `MAX_STOP_STRINGS` stop strings, or one empty or over `MAX_STOP_LEN` bytes.
	BadStopStrings,
	/// `max_tokens` is 0 or above the context length or `MAX_COMPLETION_TOKENS`.
	BadMaxTokens,
	/// A sampling parameter is out of its range.
	BadSampling,
	/// The response's counts disagree with its tokens, or a token id is outside the
	/// vocabulary, or its engine strings are empty or too long.
	Inconsistent,
}

fn decode_all<D: Decode>(payload: &[u8]) -> Result<D, ChatError> {
	let mut input = payload;
	let value = D::decode(&mut input).map_err(|_| ChatError::Malformed)?;
	if !input.is_empty() {
		return Err(ChatError::Malformed);
	}
	Ok(value)
}

fn utf8(bytes: &[u8]) -> Result<(), ChatError> {
	core::str::from_utf8(bytes).map(|_| ()).map_err(|_| ChatError::NotUtf8)
}

impl Sampling {
	/// Whether every parameter is within its documented range.
	pub fn is_valid(&self) -> bool {
		self.temperature <= MAX_TEMPERATURE &&
			(1..=PROBABILITY_ONE).contains(&self.top_p) &&
			self.min_p <= PROBABILITY_ONE &&
			(1..=MAX_REPEAT_PENALTY).contains(&self.repeat_penalty) &&
			self.repeat_last_n <= MAX_REPEAT_LAST_N
	}
}

/// Decodes an LLM job's input and checks it against the release: texts are UTF-8, every
/// limit is kept, `max_tokens` fits the context. Returns the request and the token budget
/// its escrow must cover.
pub fn check_chat_request<N: Get<u32>>(
	payload: &[u8],
	spec: &LlmSpec<N>,
) -> Result<(ChatRequest, TokenBudget), ChatError> {
	let request: ChatRequest = decode_all(payload)?;
	let prompt = match &request.prompt {
		Prompt::Chat(messages) => {
			if messages.is_empty() {
				return Err(ChatError::EmptyPrompt);
			}
			if messages.len() > MAX_MESSAGES {
				return Err(ChatError::TooManyMessages);
			}
			let mut tokens = spec.prompt_overhead;
			for m in messages {
				utf8(&m.content)?;
				tokens = tokens
					.saturating_add(m.content.len() as u32)
					.saturating_add(spec.message_overhead);
			}
			tokens
		},
		Prompt::Raw(text) => {
			if text.is_empty() {
				return Err(ChatError::EmptyPrompt);
			}
			utf8(text)?;
			spec.prompt_overhead.saturating_add(text.len() as u32)
		},
	};
	if request.stop.len() > MAX_STOP_STRINGS ||
		request.stop.iter().any(|s| s.is_empty() || s.len() > MAX_STOP_LEN)
	{
		return Err(ChatError::BadStopStrings);
	}
	for s in &request.stop {
		utf8(s)?;
	}
	if request.max_tokens == 0 ||
		request.max_tokens > spec.context_length.min(MAX_COMPLETION_TOKENS)
	{
		return Err(ChatError::BadMaxTokens);
	}
	if !request.sampling.is_valid() {
		return Err(ChatError::BadSampling);
	}
	let budget = TokenBudget { prompt, completion: request.max_tokens };
	Ok((request, budget))
}

/// Decodes an LLM job's output and checks it on its own: UTF-8 text, counts that match the
/// tokens, token ids within `vocab_size`, engine strings present and bounded. Whether the
/// counts fit the job's budget is the market's check.
pub fn check_chat_response(payload: &[u8], vocab_size: u32) -> Result<ChatResponse, ChatError> {
	let response: ChatResponse = decode_all(payload)?;
	utf8(&response.text)?;
	let engine_ok = |s: &[u8]| !s.is_empty() && s.len() <= MAX_ENGINE_LEN && utf8(s).is_ok();
	if response.completion_tokens as usize != response.token_ids.len() ||
		response.token_ids.iter().any(|t| *t >= vocab_size) ||
		!engine_ok(&response.engine) ||
		!engine_ok(&response.device_class)
	{
		return Err(ChatError::Inconsistent);
	}
	Ok(response)
}

impl ChatResponse {
	/// The counts the worker is paid for.
	pub fn usage(&self) -> TokenUsage {
		TokenUsage { prompt: self.prompt_tokens, completion: self.completion_tokens }
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use alloc::vec;
	use polkadot_sdk::sp_core::ConstU32;

	fn spec() -> LlmSpec<ConstU32<16>> {
		LlmSpec {
			architecture: b"llama".to_vec().try_into().unwrap(),
			context_length: 2048,
			vocab_size: 100,
			template_hash: H256::zero(),
			prompt_overhead: 10,
			message_overhead: 5,
		}
	}

	fn chat(contents: &[&str]) -> ChatRequest {
		ChatRequest {
			prompt: Prompt::Chat(
				contents
					.iter()
					.map(|c| ChatMessage { role: Role::User, content: c.as_bytes().to_vec() })
					.collect(),
			),
			max_tokens: 32,
			sampling: Sampling::default(),
			stop: vec![],
		}
	}

	fn check(r: &ChatRequest) -> Result<TokenBudget, ChatError> {
		check_chat_request(&r.encode(), &spec()).map(|(_, b)| b)
	}

	#[test]
	fn budget_is_bytes_plus_overheads() {
		assert_eq!(
			check(&chat(&["héllo", "ab"])),
			Ok(TokenBudget { prompt: 10 + 6 + 5 + 2 + 5, completion: 32 })
		);
		let raw = ChatRequest { prompt: Prompt::Raw(b"abc".to_vec()), ..chat(&["x"]) };
		assert_eq!(check(&raw), Ok(TokenBudget { prompt: 13, completion: 32 }));
	}

	#[test]
	fn every_limit_has_its_error() {
		assert_eq!(check(&chat(&[])), Err(ChatError::EmptyPrompt));
		let raw = ChatRequest { prompt: Prompt::Raw(vec![]), ..chat(&["x"]) };
		assert_eq!(check(&raw), Err(ChatError::EmptyPrompt));
		let many: Vec<&str> = vec!["a"; MAX_MESSAGES + 1];
		assert_eq!(check(&chat(&many)), Err(ChatError::TooManyMessages));
		assert!(check(&chat(&many[..MAX_MESSAGES])).is_ok());
		let mut bad = chat(&["x"]);
		if let Prompt::Chat(m) = &mut bad.prompt {
			m[0].content = vec![0xff, 0xfe];
		}
		assert_eq!(check(&bad), Err(ChatError::NotUtf8));

		let with_stop = |stop: Vec<Vec<u8>>| ChatRequest { stop, ..chat(&["x"]) };
		assert!(check(&with_stop(vec![vec![b'a'; MAX_STOP_LEN]; MAX_STOP_STRINGS])).is_ok());
		assert_eq!(
			check(&with_stop(vec![vec![b'a'; MAX_STOP_LEN + 1]])),
			Err(ChatError::BadStopStrings)
		);
		assert_eq!(check(&with_stop(vec![vec![]])), Err(ChatError::BadStopStrings));
		assert_eq!(
			check(&with_stop(vec![vec![b'a']; MAX_STOP_STRINGS + 1])),
			Err(ChatError::BadStopStrings)
		);
		assert_eq!(check(&with_stop(vec![vec![0xc3]])), Err(ChatError::NotUtf8));

		let with_max = |max_tokens| ChatRequest { max_tokens, ..chat(&["x"]) };
		assert_eq!(check(&with_max(0)), Err(ChatError::BadMaxTokens));
		assert!(check(&with_max(2048)).is_ok());
		assert_eq!(check(&with_max(2049)), Err(ChatError::BadMaxTokens));
		let mut long = spec();
		long.context_length = 1 << 20;
		let r = with_max(MAX_COMPLETION_TOKENS + 1);
		assert_eq!(
			check_chat_request(&r.encode(), &long).map(|_| ()),
			Err(ChatError::BadMaxTokens)
		);

		let with = |f: fn(&mut Sampling)| {
			let mut r = chat(&["x"]);
			f(&mut r.sampling);
			check(&r)
		};
		assert!(with(|s| s.temperature = MAX_TEMPERATURE).is_ok());
		assert_eq!(with(|s| s.temperature = MAX_TEMPERATURE + 1), Err(ChatError::BadSampling));
		assert_eq!(with(|s| s.top_p = 0), Err(ChatError::BadSampling));
		assert_eq!(with(|s| s.top_p = PROBABILITY_ONE + 1), Err(ChatError::BadSampling));
		assert_eq!(with(|s| s.min_p = PROBABILITY_ONE + 1), Err(ChatError::BadSampling));
		assert_eq!(with(|s| s.repeat_penalty = 0), Err(ChatError::BadSampling));
		assert_eq!(with(|s| s.repeat_last_n = MAX_REPEAT_LAST_N + 1), Err(ChatError::BadSampling));

		let mut trailing = chat(&["x"]).encode();
		trailing.push(0);
		assert_eq!(check_chat_request(&trailing, &spec()).map(|_| ()), Err(ChatError::Malformed));
		assert_eq!(check_chat_request(&[0xff; 3], &spec()).map(|_| ()), Err(ChatError::Malformed));
	}

	#[test]
	fn responses_must_be_consistent() {
		let ok = ChatResponse {
			text: "Paris".into(),
			token_ids: vec![1, 99],
			finish_reason: FinishReason::Stop,
			prompt_tokens: 20,
			completion_tokens: 2,
			engine: b"opg-llm/0.1.0+cpu-1".to_vec(),
			device_class: b"cpu".to_vec(),
			logits_digest: 7,
		};
		assert_eq!(check_chat_response(&ok.encode(), 100), Ok(ok.clone()));
		let bad = |f: fn(&mut ChatResponse)| {
			let mut r = ok.clone();
			f(&mut r);
			check_chat_response(&r.encode(), 100)
		};
		assert_eq!(bad(|r| r.completion_tokens = 3), Err(ChatError::Inconsistent));
		assert_eq!(bad(|r| r.token_ids[1] = 100), Err(ChatError::Inconsistent));
		assert_eq!(bad(|r| r.engine.clear()), Err(ChatError::Inconsistent));
		assert_eq!(
			bad(|r| r.device_class = vec![b'x'; MAX_ENGINE_LEN + 1]),
			Err(ChatError::Inconsistent)
		);
		assert_eq!(bad(|r| r.text = vec![0xff]), Err(ChatError::NotUtf8));
		let mut trailing = ok.encode();
		trailing.push(1);
		assert_eq!(check_chat_response(&trailing, 100), Err(ChatError::Malformed));
	}
}
