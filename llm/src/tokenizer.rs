//! The tokenizer a GGUF file carries (`tokenizer.ggml.*`): byte-level BPE (`gpt2`: Llama 3,
//! Qwen, SmolLM, GPT-2) and SentencePiece (`llama`: Llama 2, TinyLlama, Mistral, Gemma), with
//! llama.cpp's special-token partition and pre-tokenizers, so that token ids are llama.cpp's.
//! A tokenizer model or pre-tokenizer it does not know is refused at load, by name.

use std::{
	cmp::Reverse,
	collections::{BinaryHeap, HashMap},
	sync::OnceLock,
};

use crate::gguf::{Gguf, GgufError, Value};

pub type TokenId = u32;

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
	Normal,
	Unknown,
	Control,
	UserDefined,
	Unused,
	Byte,
}

impl TokenType {
	fn from_i64(v: i64) -> Self {
		match v {
			2 => Self::Unknown,
			3 => Self::Control,
			4 => Self::UserDefined,
			5 => Self::Unused,
			6 => Self::Byte,
			_ => Self::Normal,
		}
	}
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Model {
	/// Byte-level BPE with ranked merges.
	Bpe,
	/// SentencePiece: merges by score, byte fallback, `▁` for spaces.
	Spm,
}

/// How BPE text is split into words before merging (llama.cpp's pre-tokenizer types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PreTokenizer {
	/// GPT-2's pattern.
	Gpt2,
	/// Each digit a word of its own, then GPT-2's pattern (StarCoder, SmolLM, Refact, …).
	DigitsThenGpt2,
	/// Llama 3's pattern; numbers in groups of up to `max_digits` (3; Qwen 2 uses 1).
	Llama3 { max_digits: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
	#[error(transparent)]
	Gguf(#[from] GgufError),
	#[error("tokenizer model {0:?} is not supported (gpt2 and llama are)")]
	Model(String),
	#[error("pre-tokenizer {0:?} is not supported")]
	PreTokenizer(String),
	#[error("the tokenizer metadata is inconsistent: {0}")]
	Invalid(String),
}

#[derive(Debug)]
pub struct Tokenizer {
	model: Model,
	pre: PreTokenizer,
	tokens: Vec<String>,
	types: Vec<TokenType>,
	scores: Vec<f32>,
	by_text: HashMap<String, TokenId>,
	/// BPE: (left, right) → (rank, merged token).
	merges: HashMap<(TokenId, TokenId), (u32, TokenId)>,
	/// Control, user-defined and unknown tokens, longest text first, matched in raw text.
	specials: Vec<TokenId>,
	/// SentencePiece byte fallback: the `<0xXX>` token of each byte.
	byte_tokens: Vec<Option<TokenId>>,
	pub bos: Option<TokenId>,
	pub eos: Option<TokenId>,
	/// Tokens that end a generation: EOS, EOT and the chat-turn ends llama.cpp knows by text.
	eog: Vec<TokenId>,
	add_bos: bool,
	add_space_prefix: bool,
}

/// GPT-2's byte ↔ printable-char map: printable Latin-1 bytes stand for themselves, the others
/// are moved to U+0100 onwards.
fn byte_to_char() -> &'static [char; 256] {
	static MAP: OnceLock<[char; 256]> = OnceLock::new();
	MAP.get_or_init(|| {
		let mut map = ['\0'; 256];
		let mut next = 256u32;
		for b in 0..=255u8 {
			let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
			map[b as usize] = if printable {
				b as char
			} else {
				let c = char::from_u32(next).expect("U+0100.. are chars");
				next += 1;
				c
			};
		}
		map
	})
}

fn char_to_byte(c: char) -> Option<u8> {
	static MAP: OnceLock<HashMap<char, u8>> = OnceLock::new();
	MAP.get_or_init(|| byte_to_char().iter().enumerate().map(|(b, &c)| (c, b as u8)).collect())
		.get(&c)
		.copied()
}

fn strings(g: &Gguf, key: &str) -> Result<Vec<String>, TokenizerError> {
	g.array(key)?
		.iter()
		.map(|v| {
			v.as_str()
				.map(str::to_owned)
				.ok_or_else(|| TokenizerError::Invalid(format!("{key} holds a non-string")))
		})
		.collect()
}

fn token_id(g: &Gguf, key: &str, n: usize) -> Result<Option<TokenId>, TokenizerError> {
	match g.get(key).map(Value::as_u64) {
		None => Ok(None),
		Some(Some(id)) if (id as usize) < n => Ok(Some(id as TokenId)),
		// llama.cpp writes -1 (as u32 0xFFFFFFFF) for "none".
		Some(Some(id)) if id == u32::MAX as u64 => Ok(None),
		Some(v) => Err(TokenizerError::Invalid(format!("{key} = {v:?} is not a token id"))),
	}
}

impl Tokenizer {
	pub fn from_gguf(g: &Gguf) -> Result<Self, TokenizerError> {
		let model = match g.str("tokenizer.ggml.model")? {
			"gpt2" => Model::Bpe,
			"llama" => Model::Spm,
			other => return Err(TokenizerError::Model(other.into())),
		};
		let pre = match model {
			Model::Spm => PreTokenizer::Gpt2, // unused
			Model::Bpe =>
				match g.get("tokenizer.ggml.pre").and_then(Value::as_str).unwrap_or("default") {
					"gpt-2" | "gpt2" | "phi-2" | "jina-es" | "jina-de" | "mpt" | "olmo" |
					"jais" => PreTokenizer::Gpt2,
					"starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" |
					"minerva-7b" => PreTokenizer::DigitsThenGpt2,
					"llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "pixtral" | "dbrx" |
					"smaug-bpe" => PreTokenizer::Llama3 { max_digits: 3 },
					"qwen2" | "deepseek-r1-qwen" | "stablelm2" | "hunyuan" =>
						PreTokenizer::Llama3 { max_digits: 1 },
					other => return Err(TokenizerError::PreTokenizer(other.into())),
				},
		};
		let tokens = strings(g, "tokenizer.ggml.tokens")?;
		let n = tokens.len();
		if n == 0 || n > u32::MAX as usize / 2 {
			return Err(TokenizerError::Invalid(format!("{n} tokens")));
		}
		let types = match g.get("tokenizer.ggml.token_type") {
			None => vec![TokenType::Normal; n],
			Some(_) => {
				let a = g.array("tokenizer.ggml.token_type")?;
				if a.len() != n {
					return Err(TokenizerError::Invalid(format!(
						"{} token types for {n} tokens",
						a.len()
					)));
				}
				a.iter()
					.map(|v| match v {
						Value::I32(t) => Ok(TokenType::from_i64(*t as i64)),
						other =>
							other.as_u64().map(|t| TokenType::from_i64(t as i64)).ok_or_else(|| {
								TokenizerError::Invalid("a token type is not an integer".into())
							}),
					})
					.collect::<Result<_, _>>()?
			},
		};
		let scores = match g.get("tokenizer.ggml.scores") {
			None => vec![0.0; n],
			Some(_) => {
				let a = g.array("tokenizer.ggml.scores")?;
				if a.len() != n {
					return Err(TokenizerError::Invalid(format!(
						"{} scores for {n} tokens",
						a.len()
					)));
				}
				a.iter()
					.map(|v| {
						v.as_f32()
							.ok_or_else(|| TokenizerError::Invalid("a score is not a float".into()))
					})
					.collect::<Result<_, _>>()?
			},
		};
		let mut by_text = HashMap::with_capacity(n);
		for (i, t) in tokens.iter().enumerate() {
			// The first of duplicate texts wins, as in llama.cpp.
			by_text.entry(t.clone()).or_insert(i as TokenId);
		}

		let mut merges = HashMap::new();
		if model == Model::Bpe {
			for (rank, m) in strings(g, "tokenizer.ggml.merges")?.iter().enumerate() {
				let (l, r) = m.split_once(' ').ok_or_else(|| {
					TokenizerError::Invalid(format!("merge {m:?} is not two words"))
				})?;
				let (Some(&li), Some(&ri)) = (by_text.get(l), by_text.get(r)) else { continue };
				let Some(&merged) = by_text.get(&format!("{l}{r}")) else { continue };
				merges.entry((li, ri)).or_insert((rank as u32, merged));
			}
		}

		let mut specials: Vec<TokenId> = (0..n)
			.filter(|&i| {
				matches!(types[i], TokenType::Control | TokenType::UserDefined | TokenType::Unknown)
			})
			.filter(|&i| !tokens[i].is_empty())
			.map(|i| i as TokenId)
			.collect();
		specials.sort_by_key(|&i| (Reverse(tokens[i as usize].len()), i));

		let mut byte_tokens = vec![None; 256];
		for (b, slot) in byte_tokens.iter_mut().enumerate() {
			*slot = match model {
				Model::Spm => by_text.get(&format!("<0x{b:02X}>")).copied(),
				Model::Bpe => by_text.get(&byte_to_char()[b].to_string()).copied(),
			};
		}

		let bos = token_id(g, "tokenizer.ggml.bos_token_id", n)?;
		let eos = token_id(g, "tokenizer.ggml.eos_token_id", n)?;
		let mut eog: Vec<TokenId> = [
			eos,
			token_id(g, "tokenizer.ggml.eot_token_id", n)?,
			token_id(g, "tokenizer.ggml.eom_token_id", n)?,
		]
		.into_iter()
		.flatten()
		.collect();
		// llama.cpp also ends on these turn ends when the file marks them control tokens.
		for t in [
			"<|eot_id|>",
			"<|im_end|>",
			"<|end|>",
			"<end_of_turn>",
			"<|endoftext|>",
			"<|eom_id|>",
			"<EOT>",
			"<|end_of_text|>",
		] {
			if let Some(&id) = by_text.get(t) {
				if types[id as usize] == TokenType::Control && !eog.contains(&id) {
					eog.push(id);
				}
			}
		}

		let add_bos = g.bool_or("tokenizer.ggml.add_bos_token", model == Model::Spm)?;
		let add_space_prefix = g.bool_or("tokenizer.ggml.add_space_prefix", model == Model::Spm)?;
		Ok(Self {
			model,
			pre,
			tokens,
			types,
			scores,
			by_text,
			merges,
			specials,
			byte_tokens,
			bos,
			eos,
			eog,
			add_bos,
			add_space_prefix,
		})
	}

	pub fn vocab_size(&self) -> usize {
		self.tokens.len()
	}

	pub fn token_text(&self, id: TokenId) -> Option<&str> {
		self.tokens.get(id as usize).map(String::as_str)
	}

	pub fn is_eog(&self, id: TokenId) -> bool {
		self.eog.contains(&id)
	}

	/// Tokenizes `text`. With `parse_special`, the texts of control tokens in it become those
	/// tokens (as in a rendered chat template); without, they are plain text. User-defined
	/// tokens (Gemma's whitespace runs and HTML tags) are pieces of text: their texts always
	/// become them, as in llama.cpp. With `add_bos`, the model's BOS is put first where its
	/// metadata asks for one.
	pub fn encode(&self, text: &str, add_bos: bool, parse_special: bool) -> Vec<TokenId> {
		self.encode_inner(text, add_bos, parse_special.then_some(&[]))
	}

	/// Tokenizes `text` with its special-token texts parsed, except inside the `protected`
	/// byte ranges (a chat's message contents), where control tokens stay plain text.
	pub fn encode_protected(
		&self,
		text: &str,
		add_bos: bool,
		protected: &[(usize, usize)],
	) -> Vec<TokenId> {
		self.encode_inner(text, add_bos, Some(protected))
	}

	fn encode_inner(
		&self,
		text: &str,
		add_bos: bool,
		special: Option<&[(usize, usize)]>,
	) -> Vec<TokenId> {
		let mut out = Vec::new();
		if add_bos && self.add_bos {
			out.extend(self.bos);
		}
		let mut fragments = vec![Fragment::Raw(0, text.len())];
		for &sp in &self.specials {
			let piece = self.types[sp as usize] == TokenType::UserDefined;
			let protected = match special {
				_ if piece => &[][..],
				Some(protected) => protected,
				None => continue,
			};
			let needle = self.tokens[sp as usize].as_str();
			let mut next = Vec::with_capacity(fragments.len());
			for f in fragments {
				let Fragment::Raw(mut start, end) = f else {
					next.push(f);
					continue;
				};
				let mut search = start;
				while let Some(at) = text[search..end].find(needle) {
					let (s, e) = (search + at, search + at + needle.len());
					if protected.iter().any(|&(ps, pe)| s < pe && ps < e) {
						search = s + text[s..].chars().next().map_or(1, char::len_utf8);
						continue;
					}
					if s > start {
						next.push(Fragment::Raw(start, s));
					}
					next.push(Fragment::Token(sp));
					start = e;
					search = e;
				}
				if start < end {
					next.push(Fragment::Raw(start, end));
				}
			}
			fragments = next;
		}
		let mut prev_special = true;
		for f in fragments {
			match f {
				Fragment::Token(t) => {
					out.push(t);
					prev_special = true;
				},
				Fragment::Raw(s, e) => {
					match self.model {
						Model::Bpe => self.encode_bpe(&text[s..e], &mut out),
						Model::Spm => {
							let mut t = String::with_capacity(e - s + 3);
							if self.add_space_prefix && prev_special {
								t.push(' ');
							}
							t.push_str(&text[s..e]);
							self.encode_spm(&t.replace(' ', "\u{2581}"), &mut out);
						},
					}
					prev_special = false;
				},
			}
		}
		out
	}

	fn encode_bpe(&self, text: &str, out: &mut Vec<TokenId>) {
		let chars: Vec<char> = text.chars().collect();
		let cats = categories(text, chars.len());
		let mut words = vec![(0, chars.len())];
		match self.pre {
			PreTokenizer::Gpt2 => words = split_gpt2(&chars, &cats, &words),
			PreTokenizer::DigitsThenGpt2 => {
				words = split_digits(&cats, &words);
				words = split_gpt2(&chars, &cats, &words);
			},
			PreTokenizer::Llama3 { max_digits } =>
				words = split_llama3(&chars, &cats, &words, max_digits),
		}
		let mut buf = [0u8; 4];
		for (s, e) in words {
			let mut symbols: Vec<TokenId> = Vec::with_capacity(e - s);
			for &c in &chars[s..e] {
				// Every byte's char is a token in a byte-level vocabulary; skip one that a
				// broken file lacks rather than invent an id.
				symbols.extend(
					c.encode_utf8(&mut buf).bytes().filter_map(|b| self.byte_tokens[b as usize]),
				);
			}
			self.merge_bpe(&mut symbols);
			out.extend(symbols);
		}
	}

	/// Merges the lowest-ranked adjacent pair, leftmost first, until none is left: the order
	/// llama.cpp's and Hugging Face's BPE use, in O(n log n) for hostile, long words.
	fn merge_bpe(&self, symbols: &mut Vec<TokenId>) {
		if symbols.len() < 2 {
			return;
		}
		let n = symbols.len();
		let mut ids: Vec<Option<TokenId>> = symbols.iter().map(|&t| Some(t)).collect();
		let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
		let mut next: Vec<usize> = (1..=n).collect();
		let mut heap = BinaryHeap::new();
		let push = |heap: &mut BinaryHeap<_>, ids: &[Option<TokenId>], l: usize, r: usize| {
			if let (Some(a), Some(b)) = (ids[l], ids[r]) {
				if let Some(&(rank, merged)) = self.merges.get(&(a, b)) {
					heap.push(Reverse((rank, l, r, a, b, merged)));
				}
			}
		};
		for i in 0..n - 1 {
			push(&mut heap, &ids, i, i + 1);
		}
		while let Some(Reverse((_, l, r, a, b, merged))) = heap.pop() {
			// Stale: a side was merged away since this pair was queued.
			if ids[l] != Some(a) || ids[r] != Some(b) || next[l] != r {
				continue;
			}
			ids[l] = Some(merged);
			ids[r] = None;
			next[l] = next[r];
			if next[r] < n {
				prev[next[r]] = l;
			}
			if prev[l] < n {
				push(&mut heap, &ids, prev[l], l);
			}
			if next[l] < n {
				push(&mut heap, &ids, l, next[l]);
			}
		}
		symbols.clear();
		symbols.extend(ids.into_iter().flatten());
	}

	/// SentencePiece: merges the adjacent pair whose concatenation is the best-scored token,
	/// then spells what is not a token with its bytes (`<0xXX>`).
	fn encode_spm(&self, text: &str, out: &mut Vec<TokenId>) {
		let mut sym: Vec<(usize, usize)> =
			text.char_indices().map(|(i, c)| (i, i + c.len_utf8())).collect();
		let n = sym.len();
		if n == 0 {
			return;
		}
		let mut alive = vec![true; n];
		let mut next: Vec<usize> = (1..=n).collect();
		let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
		// The best score first (f32 total order, as `f32::total_cmp`), ties to the leftmost.
		let key = |s: f32| {
			let b = s.to_bits() as i32;
			b ^ (((b >> 31) as u32) >> 1) as i32
		};
		let mut heap = BinaryHeap::new();
		let try_push = |heap: &mut BinaryHeap<_>, sym: &[(usize, usize)], l: usize, r: usize| {
			let t = &text[sym[l].0..sym[r].1];
			if let Some(&id) = self.by_text.get(t) {
				heap.push((
					key(self.scores[id as usize]),
					Reverse(l),
					sym[l].1 - sym[l].0,
					sym[r].1 - sym[r].0,
				));
			}
		};
		for i in 0..n - 1 {
			try_push(&mut heap, &sym, i, i + 1);
		}
		while let Some((_, Reverse(l), llen, rlen)) = heap.pop() {
			let r = next[l];
			if !alive[l] || r >= n || sym[l].1 - sym[l].0 != llen || sym[r].1 - sym[r].0 != rlen {
				continue;
			}
			sym[l].1 = sym[r].1;
			alive[r] = false;
			next[l] = next[r];
			if next[r] < n {
				prev[next[r]] = l;
			}
			if prev[l] < n {
				try_push(&mut heap, &sym, prev[l], l);
			}
			if next[l] < n {
				try_push(&mut heap, &sym, l, next[l]);
			}
		}
		let mut i = 0;
		while i < n {
			let piece = &text[sym[i].0..sym[i].1];
			match self.by_text.get(piece) {
				Some(&id) => out.push(id),
				None => out.extend(piece.bytes().filter_map(|b| self.byte_tokens[b as usize])),
			}
			i = next[i];
		}
	}

	/// The bytes a token stands for in generated text. Control tokens stand for nothing.
	pub fn token_bytes(&self, id: TokenId, out: &mut Vec<u8>) {
		let Some(text) = self.tokens.get(id as usize) else { return };
		match self.types[id as usize] {
			TokenType::Control | TokenType::Unknown | TokenType::Unused => {},
			TokenType::UserDefined => out.extend_from_slice(text.as_bytes()),
			TokenType::Byte if self.model == Model::Spm => {
				if let Some(b) = text
					.strip_prefix("<0x")
					.and_then(|h| h.strip_suffix('>'))
					.and_then(|h| u8::from_str_radix(h, 16).ok())
				{
					out.push(b);
				}
			},
			_ => match self.model {
				Model::Bpe =>
					for c in text.chars() {
						match char_to_byte(c) {
							Some(b) => out.push(b),
							None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
						}
					},
				Model::Spm => out.extend_from_slice(text.replace('\u{2581}', " ").as_bytes()),
			},
		}
	}

	/// The text of generated tokens (invalid UTF-8 where a token sequence splits a character
	/// becomes U+FFFD), without the space SentencePiece puts before the first word.
	pub fn decode(&self, ids: &[TokenId]) -> String {
		let mut bytes = Vec::new();
		for &id in ids {
			self.token_bytes(id, &mut bytes);
		}
		String::from_utf8_lossy(&bytes).into_owned()
	}

	pub fn is_control(&self, id: TokenId) -> bool {
		self.types.get(id as usize) == Some(&TokenType::Control)
	}
}

#[derive(Clone, Copy, Debug)]
enum Fragment {
	Raw(usize, usize),
	Token(TokenId),
}

/// Unicode classes the pre-tokenizers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cat {
	Letter,
	Number,
	Space,
	Other,
}

fn categories(text: &str, n_chars: usize) -> Vec<Cat> {
	static RE: OnceLock<regex::Regex> = OnceLock::new();
	let re = RE.get_or_init(|| regex::Regex::new(r"(\p{L}+)|(\p{N}+)").expect("a valid pattern"));
	let mut cats = Vec::with_capacity(n_chars);
	let mut last = 0;
	let push_other = |cats: &mut Vec<Cat>, s: &str| {
		for c in s.chars() {
			cats.push(if c.is_whitespace() { Cat::Space } else { Cat::Other });
		}
	};
	for m in re.captures_iter(text) {
		let whole = m.get(0).expect("group 0");
		push_other(&mut cats, &text[last..whole.start()]);
		let cat = if m.get(1).is_some() { Cat::Letter } else { Cat::Number };
		cats.extend(std::iter::repeat_n(cat, whole.as_str().chars().count()));
		last = whole.end();
	}
	push_other(&mut cats, &text[last..]);
	cats
}

/// Each number character a word of its own; the text between stays whole.
fn split_digits(cats: &[Cat], words: &[(usize, usize)]) -> Vec<(usize, usize)> {
	let mut out = Vec::new();
	for &(s, e) in words {
		let mut start = s;
		for (i, &cat) in cats.iter().enumerate().take(e).skip(s) {
			if cat == Cat::Number {
				if start < i {
					out.push((start, i));
				}
				out.push((i, i + 1));
				start = i + 1;
			}
		}
		if start < e {
			out.push((start, e));
		}
	}
	out
}

/// The length of `'s|'t|'re|'ve|'m|'ll|'d` at `pos` within a word ending at `end` (any ASCII
/// case for Llama 3's `(?i:…)`), if one starts there.
fn contraction(chars: &[char], pos: usize, end: usize, any_case: bool) -> Option<usize> {
	if chars[pos] != '\'' || pos + 1 >= end {
		return None;
	}
	let fold = |c: char| if any_case { c.to_ascii_lowercase() } else { c };
	let n1 = fold(chars[pos + 1]);
	if matches!(n1, 's' | 't' | 'm' | 'd') {
		return Some(2);
	}
	let two =
		pos + 2 < end && matches!((n1, fold(chars[pos + 2])), ('r', 'e') | ('v', 'e') | ('l', 'l'));
	two.then_some(3)
}

/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, within each word.
fn split_gpt2(chars: &[char], cats: &[Cat], words: &[(usize, usize)]) -> Vec<(usize, usize)> {
	let mut out = Vec::new();
	for &(s, e) in words {
		let cat = |p: usize| if p < e { Some(cats[p]) } else { None };
		let mut start = s;
		let mut pos = s;
		let emit = |out: &mut Vec<(usize, usize)>, start: &mut usize, end: usize| {
			if end > *start {
				out.push((*start, end));
			}
			*start = end;
		};
		while pos < e {
			let c = chars[pos];
			if let Some(n) = contraction(chars, pos, e, false) {
				pos += n;
				emit(&mut out, &mut start, pos);
				continue;
			}
			let c2 = if c == ' ' { cat(pos + 1) } else { cat(pos) };
			if let Some(k @ (Cat::Letter | Cat::Number | Cat::Other)) = c2 {
				pos += (c == ' ') as usize;
				while cat(pos) == Some(k) {
					pos += 1;
				}
				emit(&mut out, &mut start, pos);
				continue;
			}
			let mut ws = 0;
			while cat(pos + ws) == Some(Cat::Space) {
				ws += 1;
			}
			if ws > 1 && pos + ws < e {
				pos += ws - 1;
			} else if ws > 0 {
				pos += ws;
			} else {
				pos += 1;
			}
			emit(&mut out, &mut start, pos);
		}
	}
	out
}

/// Llama 3's pattern (Qwen 2's with `max_digits` 1), within each word:
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
/// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
fn split_llama3(
	chars: &[char],
	cats: &[Cat],
	words: &[(usize, usize)],
	max_digits: usize,
) -> Vec<(usize, usize)> {
	let mut out = Vec::new();
	for &(s, e) in words {
		let cat = |p: usize| if p < e { Some(cats[p]) } else { None };
		let ch = |p: usize| if p < e { Some(chars[p]) } else { None };
		let mut start = s;
		let mut pos = s;
		let emit = |out: &mut Vec<(usize, usize)>, start: &mut usize, end: usize| {
			if end > *start {
				out.push((*start, end));
			}
			*start = end;
		};
		while pos < e {
			let c = chars[pos];
			if let Some(n) = contraction(chars, pos, e, true) {
				pos += n;
				emit(&mut out, &mut start, pos);
				continue;
			}
			if !(c == '\r' || c == '\n' || cats[pos] == Cat::Number) &&
				(cats[pos] == Cat::Letter || cat(pos + 1) == Some(Cat::Letter))
			{
				pos += 1;
				while cat(pos) == Some(Cat::Letter) {
					pos += 1;
				}
				emit(&mut out, &mut start, pos);
				continue;
			}
			if cats[pos] == Cat::Number {
				let mut run = 0;
				while cat(pos) == Some(Cat::Number) {
					pos += 1;
					run += 1;
					if run == max_digits {
						emit(&mut out, &mut start, pos);
						run = 0;
					}
				}
				emit(&mut out, &mut start, pos);
				continue;
			}
			let c2 = if c == ' ' { cat(pos + 1) } else { cat(pos) };
			if c2 == Some(Cat::Other) {
				pos += (c == ' ') as usize;
				while cat(pos) == Some(Cat::Other) {
					pos += 1;
				}
				while matches!(ch(pos), Some('\r' | '\n')) {
					pos += 1;
				}
				emit(&mut out, &mut start, pos);
				continue;
			}
			let mut ws = 0;
			let mut last_newline_end = None;
			while cat(pos + ws) == Some(Cat::Space) {
				if matches!(chars[pos + ws], '\r' | '\n') {
					last_newline_end = Some(pos + ws + 1);
				}
				ws += 1;
			}
			if let Some(end) = last_newline_end {
				pos = end;
			} else if ws > 1 && pos + ws < e {
				pos += ws - 1;
			} else if ws > 0 {
				pos += ws;
			} else {
				pos += 1;
			}
			emit(&mut out, &mut start, pos);
		}
	}
	out
}

#[cfg(test)]
mod tests {
	use super::*;

	fn words(
		text: &str,
		f: impl Fn(&[char], &[Cat], &[(usize, usize)]) -> Vec<(usize, usize)>,
	) -> Vec<String> {
		let chars: Vec<char> = text.chars().collect();
		let cats = categories(text, chars.len());
		f(&chars, &cats, &[(0, chars.len())])
			.into_iter()
			.map(|(s, e)| chars[s..e].iter().collect())
			.collect()
	}

	#[test]
	fn gpt2_pattern_splits_as_the_regex_does() {
		assert_eq!(
			words("Hello world's  end 42!?  \n x", split_gpt2),
			["Hello", " world", "'s", " ", " end", " 42", "!?", "  \n", " x"]
		);
		assert_eq!(words("  ", split_gpt2), ["  "]);
	}

	#[test]
	fn llama3_pattern_groups_digits_and_newlines() {
		let f = |c: &[char], k: &[Cat], w: &[(usize, usize)]| split_llama3(c, k, w, 3);
		assert_eq!(
			words("12345 I'LL go\n\n  x", f),
			["123", "45", " I", "'LL", " go", "\n\n", " ", " x"]
		);
	}

	#[test]
	fn byte_map_is_a_bijection() {
		let m = byte_to_char();
		for b in 0..=255u8 {
			assert_eq!(char_to_byte(m[b as usize]), Some(b));
		}
		assert_eq!(m[b' ' as usize], 'Ġ');
	}
}
