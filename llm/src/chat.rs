//! Chat prompts: the model's own Jinja chat template (`tokenizer.chat_template`) rendered with
//! minijinja as Hugging Face renders it (`trim_blocks`, `lstrip_blocks`, Python string
//! methods, `raise_exception`), then tokenized so that control-token texts inside a message's
//! content stay plain text: a user cannot forge `<|im_end|>` or a system turn.

use crate::{
	gguf::{Gguf, Value},
	tokenizer::{TokenId, Tokenizer},
};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
	pub role: String,
	pub content: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
	#[error("the model has no chat template (tokenizer.chat_template): send a raw prompt")]
	NoTemplate,
	#[error("role {0:?} is not one of system, user, assistant")]
	Role(String),
	#[error("the conversation has no messages")]
	Empty,
	#[error("the chat template failed: {0}")]
	Template(String),
	#[error("the chat template changes message contents in a way that cannot be traced back")]
	Untraceable,
}

pub struct ChatTemplate {
	source: String,
	bos: String,
	eos: String,
}

impl std::fmt::Debug for ChatTemplate {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.debug_struct("ChatTemplate").field("len", &self.source.len()).finish()
	}
}

/// Private-use characters around each message's index in the structural render: no template
/// trims or splits them, and no message can contain them (they are refused in contents).
const MARK_OPEN: char = '\u{10FFFD}';
const MARK_CLOSE: char = '\u{10FFFC}';

impl ChatTemplate {
	pub fn from_gguf(g: &Gguf, tok: &Tokenizer) -> Result<Self, ChatError> {
		let source = match g.get("tokenizer.chat_template") {
			Some(Value::String(s)) => s.clone(),
			_ => return Err(ChatError::NoTemplate),
		};
		let text =
			|id: Option<TokenId>| id.and_then(|i| tok.token_text(i)).unwrap_or("").to_owned();
		let t = Self { source, bos: text(tok.bos), eos: text(tok.eos) };
		// Compile once now, so a broken template is refused at load, not per request.
		t.env()
			.template_from_str(&t.source)
			.map_err(|e| ChatError::Template(e.to_string()))?;
		Ok(t)
	}

	fn env(&self) -> minijinja::Environment<'static> {
		let mut env = minijinja::Environment::new();
		env.set_trim_blocks(true);
		env.set_lstrip_blocks(true);
		env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
		env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
			Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
		});
		env
	}

	fn render_with(
		&self,
		messages: &[Message],
		add_generation_prompt: bool,
	) -> Result<String, ChatError> {
		let env = self.env();
		let ctx = minijinja::context! {
			messages => messages,
			add_generation_prompt => add_generation_prompt,
			bos_token => &self.bos,
			eos_token => &self.eos,
		};
		env.render_str(&self.source, ctx)
			.map_err(|e| ChatError::Template(e.to_string()))
	}

	/// The prompt text, and the byte ranges in it that are message content.
	pub fn render(
		&self,
		messages: &[Message],
		add_generation_prompt: bool,
	) -> Result<(String, Vec<(usize, usize)>), ChatError> {
		if messages.is_empty() {
			return Err(ChatError::Empty);
		}
		for m in messages {
			if !matches!(m.role.as_str(), "system" | "user" | "assistant") {
				return Err(ChatError::Role(m.role.clone()));
			}
			if m.content.contains([MARK_OPEN, MARK_CLOSE]) {
				return Err(ChatError::Untraceable);
			}
		}
		let text = self.render_with(messages, add_generation_prompt)?;
		// The same template over markers instead of contents shows where each content went.
		let marked: Vec<Message> = messages
			.iter()
			.enumerate()
			.map(|(i, m)| Message {
				role: m.role.clone(),
				content: format!("{MARK_OPEN}{i}{MARK_CLOSE}"),
			})
			.collect();
		let skeleton = self.render_with(&marked, add_generation_prompt)?;
		let spans = trace(&text, &skeleton, messages)?;
		Ok((text, spans))
	}

	/// The prompt's tokens: BOS where the model wants it (once), template text with special
	/// tokens, message contents without.
	pub fn encode(&self, tok: &Tokenizer, messages: &[Message]) -> Result<Vec<TokenId>, ChatError> {
		let (text, spans) = self.render(messages, true)?;
		let mut ids = tok.encode_protected(&text, true, &spans);
		// Templates that write the BOS text themselves would otherwise give two.
		if ids.len() >= 2 && tok.bos.is_some() && ids[0] == ids[1] && Some(ids[0]) == tok.bos {
			ids.remove(0);
		}
		Ok(ids)
	}
}

/// Aligns the render of the real contents with the render over markers: the template text
/// between markers must appear in order, and what lies between is the content (verbatim, or
/// as the template trimmed it).
fn trace(
	text: &str,
	skeleton: &str,
	messages: &[Message],
) -> Result<Vec<(usize, usize)>, ChatError> {
	let mut spans = Vec::new();
	let mut pos = 0; // in text
	let mut rest = skeleton;
	loop {
		let Some(open) = rest.find(MARK_OPEN) else {
			return if text[pos..] == *rest { Ok(spans) } else { Err(ChatError::Untraceable) };
		};
		let literal = &rest[..open];
		if !text[pos..].starts_with(literal) {
			return Err(ChatError::Untraceable);
		}
		pos += literal.len();
		let after = &rest[open + MARK_OPEN.len_utf8()..];
		let close = after.find(MARK_CLOSE).ok_or(ChatError::Untraceable)?;
		let i: usize = after[..close].parse().map_err(|_| ChatError::Untraceable)?;
		let content = &messages.get(i).ok_or(ChatError::Untraceable)?.content;
		rest = &after[close + MARK_CLOSE.len_utf8()..];
		let next_literal = &rest[..rest.find(MARK_OPEN).unwrap_or(rest.len())];
		let len = [content.as_str(), content.trim(), content.trim_start(), content.trim_end()]
			.into_iter()
			.find(|c| text[pos..].starts_with(c) && text[pos + c.len()..].starts_with(next_literal))
			.map(str::len)
			.ok_or(ChatError::Untraceable)?;
		spans.push((pos, pos + len));
		pos += len;
	}
}
