//! The generation loop: prompt prefill in one pass, then one token at a time until an
//! end-of-generation token, a stop string or `max_tokens`.

use std::time::{Duration, Instant};

use crate::{
	model::{Model, ModelError, Session},
	sample::{Sampler, SamplingParams},
	tokenizer::{TokenId, Tokenizer},
};

#[derive(Clone, Debug, PartialEq)]
pub struct GenerateParams {
	pub max_tokens: u32,
	pub sampling: SamplingParams,
	/// Generation stops before the first occurrence of any of these in the text.
	pub stop: Vec<String>,
	/// A cap on the completion's size, for answers that must fit a bounded field.
	pub size_limit: Option<SizeLimit>,
}

/// Generation stops (`Length`) before the token that would take the completion over `bytes`:
/// its text as returned (each invalid UTF-8 sequence counted as the U+FFFD that replaces it)
/// plus `per_token` bytes for each token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeLimit {
	pub bytes: usize,
	pub per_token: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
	/// An end-of-generation token or a stop string.
	Stop,
	/// `max_tokens` or the size limit reached.
	Length,
}

impl FinishReason {
	pub fn as_str(self) -> &'static str {
		match self {
			FinishReason::Stop => "stop",
			FinishReason::Length => "length",
		}
	}
}

#[derive(Clone, Debug)]
pub struct Generation {
	/// The generated tokens, without the end-of-generation token.
	pub tokens: Vec<TokenId>,
	pub text: String,
	pub finish: FinishReason,
	pub prompt_tokens: usize,
	/// FNV-1a over the bits of every step's logits: equal runs have equal digests. A
	/// fingerprint for determinism checks, not a commitment.
	pub logits_digest: u64,
	pub prefill: Duration,
	pub decode: Duration,
}

fn fnv1a(mut h: u64, logits: &[f32]) -> u64 {
	for l in logits {
		for b in l.to_bits().to_le_bytes() {
			h ^= b as u64;
			h = h.wrapping_mul(0x0100_0000_01b3);
		}
	}
	h
}

/// Runs `prompt` and samples up to `p.max_tokens` tokens. `on_token` sees each token as it
/// is accepted (for streaming); the text it adds is in [`Generation::text`] at the end.
pub fn generate(
	model: &Model,
	tokenizer: &Tokenizer,
	prompt: &[TokenId],
	p: &GenerateParams,
	mut on_token: impl FnMut(TokenId),
) -> Result<Generation, ModelError> {
	p.sampling.check().map_err(ModelError::Config)?;
	if prompt.is_empty() {
		return Err(ModelError::Config("the prompt is empty".into()));
	}
	let cap = prompt.len() + p.max_tokens as usize;
	let mut session = Session::new(model, cap)?;
	let mut sampler = Sampler::new(p.sampling.clone());
	prompt.iter().for_each(|&t| sampler.accept(t));

	let t0 = Instant::now();
	let mut logits = session.forward(prompt)?;
	let prefill = t0.elapsed();
	let t1 = Instant::now();

	let mut digest = 0xcbf2_9ce4_8422_2325;
	let mut tokens = Vec::new();
	let mut bytes = Vec::new();
	let mut finish = FinishReason::Length;
	let mut stop_at = None;
	let longest_stop = p.stop.iter().map(String::len).max().unwrap_or(0);
	let mut size = TextSize::default();
	while tokens.len() < p.max_tokens as usize {
		digest = fnv1a(digest, &logits);
		let tok = sampler.sample(&mut logits);
		if tokenizer.is_eog(tok) {
			finish = FinishReason::Stop;
			break;
		}
		let before = bytes.len();
		tokenizer.token_bytes(tok, &mut bytes);
		if let Some(limit) = p.size_limit {
			// Checked before the token is streamed: what was sent stays a prefix of the text.
			let per_token = limit.per_token.saturating_mul(tokens.len() + 1);
			if size.measure(&bytes).saturating_add(per_token) > limit.bytes {
				bytes.truncate(before);
				break;
			}
		}
		tokens.push(tok);
		sampler.accept(tok);
		on_token(tok);
		if longest_stop > 0 {
			// Only a match that ends in the new bytes can be new.
			let from = before.saturating_sub(longest_stop - 1);
			if let Some(at) = p
				.stop
				.iter()
				.filter(|s| !s.is_empty())
				.filter_map(|s| find(&bytes[from..], s.as_bytes()).map(|i| from + i))
				.min()
			{
				stop_at = Some(at);
				finish = FinishReason::Stop;
				break;
			}
		}
		if tokens.len() == p.max_tokens as usize {
			break;
		}
		logits = session.forward(&[tok])?;
	}
	if let Some(at) = stop_at {
		bytes.truncate(at);
	}
	Ok(Generation {
		tokens,
		text: String::from_utf8_lossy(&bytes).into_owned(),
		finish,
		prompt_tokens: prompt.len(),
		logits_digest: digest,
		prefill,
		decode: t1.elapsed(),
	})
}

/// The size of `String::from_utf8_lossy` of a growing byte string, counted as it grows.
#[derive(Default)]
struct TextSize {
	/// Bytes read: everything before is complete characters or replaced invalid sequences.
	read: usize,
	/// Their size once converted.
	size: usize,
}

impl TextSize {
	/// The converted size of `bytes`, which extends the bytes of the last call. An incomplete
	/// character at the end counts as the U+FFFD it becomes if nothing completes it.
	fn measure(&mut self, bytes: &[u8]) -> usize {
		loop {
			match core::str::from_utf8(&bytes[self.read..]) {
				Ok(_) => {
					self.size += bytes.len() - self.read;
					self.read = bytes.len();
					return self.size;
				},
				Err(e) => {
					self.size += e.valid_up_to();
					self.read += e.valid_up_to();
					match e.error_len() {
						// An invalid sequence becomes one U+FFFD.
						Some(n) => {
							self.size += char::REPLACEMENT_CHARACTER.len_utf8();
							self.read += n;
						},
						// Incomplete: read again next time, the next token may complete it.
						None => return self.size + char::REPLACEMENT_CHARACTER.len_utf8(),
					}
				},
			}
		}
	}
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
	hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
	use super::TextSize;

	/// Bytes added a token at a time: text, invalid bytes, characters split between tokens,
	/// completed or not.
	#[test]
	fn text_size_is_the_size_of_the_lossy_conversion() {
		let pieces: [&[u8]; 10] = [
			b"ab",
			"\u{e9}".as_bytes(),
			&[0xE2, 0x82],
			&[0xAC, b'x'],
			&[0xFF, 0xFE],
			&[0xF0, 0x9F],
			&[0x98],
			&[0x41],
			&[0xC3],
			&[],
		];
		let mut bytes = Vec::new();
		let mut size = TextSize::default();
		for piece in pieces {
			bytes.extend_from_slice(piece);
			assert_eq!(size.measure(&bytes), String::from_utf8_lossy(&bytes).len(), "{bytes:?}");
		}
	}
}
