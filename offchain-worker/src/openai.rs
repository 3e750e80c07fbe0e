//! OpenAI's chat completion request, read into the chain's [`ChatRequest`] (the canonical
//! request a voucher's hash is over), and the response objects built from a [`ChatResponse`].
//!
//! Defaults are OpenAI's, not the on-chain job's: temperature 1, `top_p` 1, no top-k or min-p
//! filter, no repetition penalty, a random seed unless one is given. Extensions llama.cpp's
//! server also takes: `top_k`, `min_p`, `repeat_penalty` (or `repetition_penalty`),
//! `repeat_last_n`. What the engine cannot do is refused by name rather than ignored: `n` other
//! than 1, tools, a non-text response format, logprobs, frequency and presence penalties.

use opg_primitives::chat::{
	ChatMessage, ChatRequest, ChatResponse, FinishReason, Prompt, Role, Sampling,
	MAX_COMPLETION_TOKENS, MAX_REPEAT_LAST_N, MAX_REPEAT_PENALTY, MAX_TEMPERATURE, PROBABILITY_ONE,
};
use serde_json::{json, Map, Value};

/// `max_tokens` when a request names none: what the voucher must cover, so a default bounds it.
pub const DEFAULT_MAX_TOKENS: u32 = 256;
/// `repeat_last_n` when a request names none (llama.cpp's).
pub const DEFAULT_REPEAT_LAST_N: u32 = 64;

/// A chat completion request as the worker runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatCompletion {
	/// The `model` field, a release id.
	pub model: Value,
	/// The request as the chain defines it.
	pub request: ChatRequest,
	/// `stream: true`: answered as server-sent events.
	pub stream: bool,
}

/// Why a request body is not a chat completion request this worker can run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
	/// A stable code.
	pub code: &'static str,
	/// What is wrong, for people.
	pub message: String,
}

fn refused(code: &'static str, message: impl Into<String>) -> Refused {
	Refused { code, message: message.into() }
}

fn number(body: &Map<String, Value>, key: &str) -> Result<Option<f64>, Refused> {
	match body.get(key) {
		None | Some(Value::Null) => Ok(None),
		Some(Value::Number(n)) => Ok(n.as_f64()),
		Some(_) => Err(refused("invalid_parameter", format!("`{key}` is a number"))),
	}
}

/// `key` as a fixed-point integer (`value × scale`, rounded) within `range`, or `default`.
fn fixed(
	body: &Map<String, Value>,
	key: &str,
	scale: f64,
	range: std::ops::RangeInclusive<u32>,
	default: u32,
) -> Result<u32, Refused> {
	let Some(v) = number(body, key)? else { return Ok(default) };
	let scaled = (v * scale).round();
	if !scaled.is_finite() || scaled < *range.start() as f64 || scaled > *range.end() as f64 {
		return Err(refused(
			"invalid_parameter",
			format!(
				"`{key}` must be within {}..={}",
				*range.start() as f64 / scale,
				*range.end() as f64 / scale
			),
		));
	}
	Ok(scaled as u32)
}

fn integer(body: &Map<String, Value>, key: &str) -> Result<Option<u64>, Refused> {
	match body.get(key) {
		None | Some(Value::Null) => Ok(None),
		Some(v) => v.as_u64().map(Some).ok_or_else(|| {
			refused("invalid_parameter", format!("`{key}` is a non-negative integer"))
		}),
	}
}

fn content(value: &Value, at: usize) -> Result<String, Refused> {
	match value {
		Value::String(s) => Ok(s.clone()),
		// Text parts are joined; other parts (images, audio) need a model that takes them.
		Value::Array(parts) => parts
			.iter()
			.map(|p| match (p.get("type").and_then(Value::as_str), p.get("text")) {
				(Some("text"), Some(Value::String(t))) => Ok(t.as_str()),
				_ => Err(refused(
					"unsupported_content",
					format!("messages[{at}]: only text content parts are supported"),
				)),
			})
			.collect::<Result<Vec<_>, _>>()
			.map(|parts| parts.concat()),
		_ => Err(refused("invalid_messages", format!("messages[{at}].content is a string"))),
	}
}

/// Reads an OpenAI chat completion request. `seed` gives the seed when the request names none.
pub fn parse_chat(body: &[u8], seed: impl FnOnce() -> u64) -> Result<ChatCompletion, Refused> {
	let value: Value =
		serde_json::from_slice(body).map_err(|e| refused("invalid_json", e.to_string()))?;
	let Value::Object(body) = value else {
		return Err(refused("invalid_json", "the body is a JSON object"));
	};
	let model = body.get("model").cloned().unwrap_or(Value::Null);
	for key in ["tools", "functions", "tool_choice", "function_call", "audio", "prediction"] {
		if body.get(key).is_some_and(|v| !v.is_null()) {
			return Err(refused("unsupported_parameter", format!("`{key}` is not supported")));
		}
	}
	if body.get("logprobs").is_some_and(|v| v.as_bool() == Some(true)) {
		return Err(refused("unsupported_parameter", "`logprobs` is not supported"));
	}
	if let Some(format) = body.get("response_format").filter(|v| !v.is_null()) {
		if format.get("type").and_then(Value::as_str) != Some("text") {
			return Err(refused(
				"unsupported_parameter",
				"`response_format` other than {\"type\": \"text\"} is not supported",
			));
		}
	}
	if integer(&body, "n")?.is_some_and(|n| n != 1) {
		return Err(refused("unsupported_parameter", "`n` must be 1: one completion per request"));
	}
	for key in ["frequency_penalty", "presence_penalty"] {
		if number(&body, key)?.is_some_and(|v| v != 0.0) {
			return Err(refused(
				"unsupported_parameter",
				format!("`{key}` is not supported (use `repeat_penalty`)"),
			));
		}
	}

	let messages = match body.get("messages") {
		Some(Value::Array(m)) if !m.is_empty() => m,
		_ => return Err(refused("invalid_messages", "`messages` is a non-empty array")),
	};
	let messages = messages
		.iter()
		.enumerate()
		.map(|(at, m)| {
			let role = match m.get("role").and_then(Value::as_str) {
				Some("system" | "developer") => Role::System,
				Some("user") => Role::User,
				Some("assistant") => Role::Assistant,
				Some(other) =>
					return Err(refused(
						"unsupported_role",
						format!("messages[{at}]: role {other:?} is not supported"),
					)),
				None =>
					return Err(refused("invalid_messages", format!("messages[{at}] has no role"))),
			};
			let text = content(m.get("content").unwrap_or(&Value::Null), at)?;
			Ok(ChatMessage { role, content: text.into_bytes() })
		})
		.collect::<Result<Vec<_>, _>>()?;

	let max_tokens = match integer(&body, "max_completion_tokens")? {
		Some(n) => Some(n),
		None => integer(&body, "max_tokens")?,
	};
	let max_tokens = match max_tokens {
		None => DEFAULT_MAX_TOKENS,
		Some(n) if (1..=MAX_COMPLETION_TOKENS as u64).contains(&n) => n as u32,
		Some(_) =>
			return Err(refused(
				"invalid_parameter",
				format!("`max_tokens` must be within 1..={MAX_COMPLETION_TOKENS}"),
			)),
	};
	let stop = match body.get("stop") {
		None | Some(Value::Null) => vec![],
		Some(Value::String(s)) => vec![s.clone().into_bytes()],
		Some(Value::Array(a)) => a
			.iter()
			.map(|s| {
				s.as_str()
					.map(|s| s.as_bytes().to_vec())
					.ok_or_else(|| refused("invalid_parameter", "`stop` holds strings"))
			})
			.collect::<Result<_, _>>()?,
		Some(_) => return Err(refused("invalid_parameter", "`stop` is a string or an array")),
	};
	let top_k = match integer(&body, "top_k")? {
		Some(k) =>
			u32::try_from(k).map_err(|_| refused("invalid_parameter", "`top_k` is too large"))?,
		None => 0,
	};
	let repeat_penalty = match body.get("repeat_penalty").filter(|v| !v.is_null()) {
		Some(_) => fixed(&body, "repeat_penalty", 1000.0, 1..=MAX_REPEAT_PENALTY, 1000)?,
		None => fixed(&body, "repetition_penalty", 1000.0, 1..=MAX_REPEAT_PENALTY, 1000)?,
	};
	let repeat_last_n = match integer(&body, "repeat_last_n")? {
		Some(n) if n <= MAX_REPEAT_LAST_N as u64 => n as u32,
		Some(_) =>
			return Err(refused(
				"invalid_parameter",
				format!("`repeat_last_n` must be within 0..={MAX_REPEAT_LAST_N}"),
			)),
		None => DEFAULT_REPEAT_LAST_N,
	};
	let sampling = Sampling {
		temperature: fixed(&body, "temperature", 1000.0, 0..=MAX_TEMPERATURE, 1000)?,
		top_k,
		top_p: fixed(&body, "top_p", PROBABILITY_ONE as f64, 1..=PROBABILITY_ONE, PROBABILITY_ONE)?,
		min_p: fixed(&body, "min_p", PROBABILITY_ONE as f64, 0..=PROBABILITY_ONE, 0)?,
		repeat_penalty,
		repeat_last_n,
		seed: match body.get("seed") {
			None | Some(Value::Null) => seed(),
			// OpenAI's seeds are signed 64-bit integers: the same bits.
			Some(v) => v
				.as_u64()
				.or_else(|| v.as_i64().map(|i| i as u64))
				.ok_or_else(|| refused("invalid_parameter", "`seed` is a 64-bit integer"))?,
		},
	};
	let stream = match body.get("stream") {
		None | Some(Value::Null) => false,
		Some(Value::Bool(b)) => *b,
		Some(_) => return Err(refused("invalid_parameter", "`stream` is a boolean")),
	};
	let request = ChatRequest { prompt: Prompt::Chat(messages), max_tokens, sampling, stop };
	Ok(ChatCompletion { model, request, stream })
}

/// OpenAI's name of a finish reason.
pub fn finish_reason(reason: FinishReason) -> &'static str {
	match reason {
		FinishReason::Stop => "stop",
		FinishReason::Length => "length",
	}
}

/// The `usage` object of a response.
pub fn usage(response: &ChatResponse) -> Value {
	json!({
		"prompt_tokens": response.prompt_tokens,
		"completion_tokens": response.completion_tokens,
		"total_tokens": response.prompt_tokens.saturating_add(response.completion_tokens),
	})
}

/// The engine and device a response was made with, as OpenAI's `system_fingerprint`.
pub fn fingerprint(response: &ChatResponse) -> String {
	format!(
		"{}@{}",
		String::from_utf8_lossy(&response.engine),
		String::from_utf8_lossy(&response.device_class)
	)
}

#[cfg(test)]
mod tests {
	use super::*;

	fn parse(body: Value) -> Result<ChatCompletion, Refused> {
		parse_chat(body.to_string().as_bytes(), || 42)
	}

	#[test]
	fn a_minimal_request_gets_openai_defaults() {
		let c =
			parse(json!({"model": "3", "messages": [{"role": "user", "content": "Hi"}]})).unwrap();
		assert_eq!(c.model, json!("3"));
		assert!(!c.stream);
		let r = c.request;
		assert_eq!(r.max_tokens, DEFAULT_MAX_TOKENS);
		assert_eq!(
			r.sampling,
			Sampling {
				temperature: 1000,
				top_k: 0,
				top_p: PROBABILITY_ONE,
				min_p: 0,
				repeat_penalty: 1000,
				repeat_last_n: DEFAULT_REPEAT_LAST_N,
				seed: 42
			}
		);
		assert_eq!(
			r.prompt,
			Prompt::Chat(vec![ChatMessage { role: Role::User, content: b"Hi".to_vec() }])
		);
	}

	#[test]
	fn every_parameter_is_read_exactly() {
		let c = parse(json!({
			"model": 3,
			"messages": [
				{"role": "developer", "content": "Be brief."},
				{"role": "user", "content": [{"type": "text", "text": "Capital of "}, {"type": "text", "text": "France?"}]},
				{"role": "assistant", "content": "Paris."},
				{"role": "user", "content": "And Italy?", "name": "ann"}
			],
			"max_completion_tokens": 12, "max_tokens": 99,
			"temperature": 0.7, "top_p": 0.95, "top_k": 40, "min_p": 0.05,
			"repetition_penalty": 1.1, "repeat_last_n": 32, "seed": -1,
			"stop": ["\n\n", "END"], "stream": true, "n": 1, "user": "u1",
			"frequency_penalty": 0, "response_format": {"type": "text"}
		}))
		.unwrap();
		assert!(c.stream);
		let r = c.request;
		assert_eq!(r.max_tokens, 12, "max_completion_tokens wins");
		assert_eq!(
			r.sampling,
			Sampling {
				temperature: 700,
				top_k: 40,
				top_p: 950_000,
				min_p: 50_000,
				repeat_penalty: 1100,
				repeat_last_n: 32,
				seed: u64::MAX
			}
		);
		assert_eq!(r.stop, vec![b"\n\n".to_vec(), b"END".to_vec()]);
		let Prompt::Chat(m) = r.prompt else { panic!() };
		assert_eq!(m[0].role, Role::System);
		assert_eq!(m[1].content, b"Capital of France?");
		assert_eq!(m[3].role, Role::User);
	}

	#[test]
	fn what_the_engine_cannot_do_is_refused_by_name() {
		let with = |extra: Value| {
			let mut body = json!({"model": "3", "messages": [{"role": "user", "content": "Hi"}]});
			body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
			parse(body).unwrap_err()
		};
		assert_eq!(with(json!({"n": 2})).code, "unsupported_parameter");
		assert_eq!(with(json!({"tools": []})).code, "unsupported_parameter");
		assert_eq!(with(json!({"logprobs": true})).code, "unsupported_parameter");
		assert_eq!(with(json!({"presence_penalty": 0.5})).code, "unsupported_parameter");
		assert_eq!(
			with(json!({"response_format": {"type": "json_object"}})).code,
			"unsupported_parameter"
		);
		assert_eq!(with(json!({"temperature": 10.5})).code, "invalid_parameter");
		assert_eq!(with(json!({"temperature": "hot"})).code, "invalid_parameter");
		assert_eq!(with(json!({"top_p": 0})).code, "invalid_parameter");
		assert_eq!(with(json!({"max_tokens": 0})).code, "invalid_parameter");
		assert_eq!(with(json!({"max_tokens": 4097})).code, "invalid_parameter");
		assert_eq!(with(json!({"stop": 5})).code, "invalid_parameter");
		assert_eq!(with(json!({"stream": "yes"})).code, "invalid_parameter");
		assert_eq!(with(json!({"seed": 1.5})).code, "invalid_parameter");
		let bad = |messages: Value| parse(json!({"model": "3", "messages": messages})).unwrap_err();
		assert_eq!(bad(json!([])).code, "invalid_messages");
		assert_eq!(bad(json!([{"role": "tool", "content": "x"}])).code, "unsupported_role");
		assert_eq!(bad(json!([{"content": "x"}])).code, "invalid_messages");
		assert_eq!(bad(json!([{"role": "user", "content": 5}])).code, "invalid_messages");
		assert_eq!(
			bad(json!([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]))
				.code,
			"unsupported_content"
		);
		assert_eq!(parse_chat(b"[1]", || 0).unwrap_err().code, "invalid_json");
		assert_eq!(parse_chat(b"{", || 0).unwrap_err().code, "invalid_json");
	}
}
