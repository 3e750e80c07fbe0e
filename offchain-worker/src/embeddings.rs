//! OpenAI's embeddings request for a text-encoder release, read into the release's canonical
//! input tensors, and the response built from its output.
//!
//! A text-encoder release takes `input_ids` and, optionally, `attention_mask` and
//! `token_type_ids` (int64 or int32, `[batch, tokens]`), and gives one f32 `[batch, dim]`
//! output: the pooling is in the graph, so the receipt covers exactly what the model computed.
//! `input` is token ids, one array or an array of arrays (a batch): the voucher signs the
//! canonical request, which is the id tensors, so the client tokenizes (`opg-client` does it
//! for OpenAI clients, with the model's tokenizer). Shorter rows are padded on the right with
//! id 0 and mask 0; a release without `attention_mask` needs rows of one length.

use opg_primitives::{ElemType, Tensor, TensorSpec};
use polkadot_sdk::sp_core::Get;
use serde_json::{json, Map, Value};

use crate::openai::Refused;

/// Most inputs in one request (OpenAI's limit is 2,048; a CPU worker answers 256 texts in
/// seconds, and the body limit bounds their tokens).
pub const MAX_INPUTS: usize = 256;

/// An embeddings request as the worker runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingsRequest {
	/// The `model` field, a release id.
	pub model: Value,
	/// Each input's token ids.
	pub rows: Vec<Vec<i64>>,
	/// `encoding_format: "base64"`: each vector as the base64 of its little-endian f32s.
	pub base64: bool,
	/// `dimensions`, when given: it must be the release's own.
	pub dimensions: Option<u64>,
}

fn refused(code: &'static str, message: impl Into<String>) -> Refused {
	Refused { code, message: message.into() }
}

const TEXT_REFUSED: &str = "`input` is token ids: an array of ids, or an array of such arrays \
	(tokenize with the model's tokenizer; `opg-client proxy` does it for OpenAI clients)";

fn ids(value: &Value, at: &str) -> Result<Vec<i64>, Refused> {
	let Value::Array(items) = value else {
		return Err(refused("text_input_unsupported", TEXT_REFUSED));
	};
	if items.is_empty() {
		return Err(refused("invalid_input", format!("{at} has no tokens")));
	}
	items
		.iter()
		.map(|v| {
			v.as_i64().filter(|id| *id >= 0).ok_or_else(|| match v {
				Value::String(_) => refused("text_input_unsupported", TEXT_REFUSED),
				_ =>
					refused("invalid_input", format!("{at}: a token id is a non-negative integer")),
			})
		})
		.collect()
}

/// Reads an OpenAI embeddings request.
pub fn parse_embeddings(body: &[u8]) -> Result<EmbeddingsRequest, Refused> {
	let value: Value =
		serde_json::from_slice(body).map_err(|e| refused("invalid_json", e.to_string()))?;
	let Value::Object(body) = value else {
		return Err(refused("invalid_json", "the body is a JSON object"));
	};
	let model = body.get("model").cloned().unwrap_or(Value::Null);
	let rows = match body.get("input") {
		None | Some(Value::Null) => return Err(refused("invalid_input", "`input` is required")),
		Some(Value::Array(items)) if items.first().is_some_and(Value::is_array) => {
			if items.len() > MAX_INPUTS {
				return Err(refused(
					"invalid_input",
					format!("{} inputs: at most {MAX_INPUTS} a request", items.len()),
				));
			}
			items
				.iter()
				.enumerate()
				.map(|(i, row)| ids(row, &format!("input[{i}]")))
				.collect::<Result<Vec<_>, _>>()?
		},
		Some(one) => vec![ids(one, "`input`")?],
	};
	let base64 = match body.get("encoding_format") {
		None | Some(Value::Null) => false,
		Some(Value::String(f)) if f == "float" => false,
		Some(Value::String(f)) if f == "base64" => true,
		Some(_) =>
			return Err(refused("invalid_parameter", "`encoding_format` is \"float\" or \"base64\"")),
	};
	let dimensions = match body.get("dimensions") {
		None | Some(Value::Null) => None,
		Some(v) =>
			Some(v.as_u64().filter(|d| *d > 0).ok_or_else(|| {
				refused("invalid_parameter", "`dimensions` is a positive integer")
			})?),
	};
	Ok(EmbeddingsRequest { model, rows, base64, dimensions })
}

fn name<N: Get<u32>, R: Get<u32>>(spec: &TensorSpec<N, R>) -> &str {
	std::str::from_utf8(&spec.name).unwrap_or("")
}

/// The embedding's length the release declares (0: not fixed), or why the release is not a
/// text encoder.
pub fn encoder_dimension<N: Get<u32>, R: Get<u32>>(
	inputs: &[TensorSpec<N, R>],
	outputs: &[TensorSpec<N, R>],
) -> Result<u32, String> {
	let ids_ok = |s: &TensorSpec<N, R>| {
		matches!(s.elem, ElemType::I64 | ElemType::I32) && s.shape.len() == 2
	};
	let names: Vec<&str> = inputs.iter().map(name).collect();
	if !names.contains(&"input_ids") ||
		!inputs.iter().all(|s| {
			ids_ok(s) && matches!(name(s), "input_ids" | "attention_mask" | "token_type_ids")
		}) {
		return Err(format!(
			"its inputs are {names:?}, not token ids (`input_ids`, and optionally \
			 `attention_mask` and `token_type_ids`, int64 or int32 [batch, tokens])"
		));
	}
	match outputs {
		[out] if out.elem == ElemType::F32 && out.shape.len() == 2 => Ok(out.shape[1]),
		_ => Err("its output is not one f32 [batch, dim] embedding".into()),
	}
}

/// The release's input tensors for `rows`, in the release's input order, and the count of real
/// (unpadded) tokens. The release must be a text encoder ([`encoder_dimension`]).
pub fn encoder_inputs<N: Get<u32>, R: Get<u32>>(
	rows: &[Vec<i64>],
	inputs: &[TensorSpec<N, R>],
) -> Result<(Vec<Tensor>, u64), Refused> {
	let width = rows.iter().map(Vec::len).max().unwrap_or(0);
	let ragged = rows.iter().any(|r| r.len() != width);
	if ragged && !inputs.iter().any(|s| name(s) == "attention_mask") {
		return Err(refused(
			"invalid_input",
			"this release has no attention_mask to pad with: send inputs of one length",
		));
	}
	let tokens = rows.iter().map(|r| r.len() as u64).sum();
	let tensors = inputs
		.iter()
		.map(|spec| {
			let value = |row: &Vec<i64>, at: usize| -> i64 {
				match name(spec) {
					"input_ids" => row.get(at).copied().unwrap_or(0),
					"attention_mask" => (at < row.len()) as i64,
					_ => 0,
				}
			};
			let mut data = Vec::with_capacity(rows.len() * width * spec.elem.size());
			for row in rows {
				for at in 0..width {
					let v = value(row, at);
					match spec.elem {
						ElemType::I32 => data.extend(
							i32::try_from(v)
								.map_err(|_| {
									refused(
										"invalid_input",
										format!("token id {v} is over this release's int32 ids"),
									)
								})?
								.to_le_bytes(),
						),
						_ => data.extend(v.to_le_bytes()),
					}
				}
			}
			Ok(Tensor { elem: spec.elem, shape: vec![rows.len() as u32, width as u32], data })
		})
		.collect::<Result<Vec<_>, Refused>>()?;
	Ok((tensors, tokens))
}

/// The `data` and `usage` of OpenAI's embeddings response, from the model's output: one
/// f32 `[rows, dim]` tensor.
pub fn embeddings_body(
	outputs: &[Tensor],
	rows: usize,
	tokens: u64,
	base64: bool,
) -> Result<Value, String> {
	let out = match outputs {
		[t] if t.elem == ElemType::F32 && t.shape.len() == 2 && t.shape[0] as usize == rows => t,
		_ => return Err(format!("the output is not one f32 [{rows}, dim] tensor")),
	};
	let dim = out.shape[1] as usize;
	let data: Vec<Value> = out
		.data
		.chunks_exact(dim * 4)
		.enumerate()
		.map(|(index, bytes)| {
			let embedding = if base64 {
				use base64::Engine;
				Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
			} else {
				bytes
					.chunks_exact(4)
					.map(|b| json!(f32::from_le_bytes(b.try_into().expect("4 bytes"))))
					.collect()
			};
			json!({ "object": "embedding", "index": index, "embedding": embedding })
		})
		.collect();
	let mut body = Map::new();
	body.insert("object".into(), json!("list"));
	body.insert("data".into(), Value::Array(data));
	body.insert("usage".into(), json!({ "prompt_tokens": tokens, "total_tokens": tokens }));
	Ok(Value::Object(body))
}

#[cfg(test)]
mod tests {
	use super::*;
	use polkadot_sdk::sp_core::ConstU32;

	type Spec = TensorSpec<ConstU32<64>, ConstU32<8>>;

	fn spec(name: &str, elem: ElemType, shape: &[u32]) -> Spec {
		TensorSpec {
			name: name.as_bytes().to_vec().try_into().unwrap(),
			elem,
			shape: shape.to_vec().try_into().unwrap(),
		}
	}

	fn bert() -> Vec<Spec> {
		vec![
			spec("input_ids", ElemType::I64, &[0, 0]),
			spec("attention_mask", ElemType::I64, &[0, 0]),
			spec("token_type_ids", ElemType::I64, &[0, 0]),
		]
	}

	fn parse(body: Value) -> Result<EmbeddingsRequest, &'static str> {
		parse_embeddings(body.to_string().as_bytes()).map_err(|r| r.code)
	}

	#[test]
	fn one_row_or_a_batch_of_token_ids() {
		let one = parse(json!({ "model": "3", "input": [101, 7592, 102] })).unwrap();
		assert_eq!(one.rows, vec![vec![101, 7592, 102]]);
		assert!(!one.base64 && one.dimensions.is_none());
		let batch = parse(json!({ "model": 3, "input": [[101, 102], [101, 5, 102]],
			"encoding_format": "base64", "dimensions": 384, "user": "x" }))
		.unwrap();
		assert_eq!(batch.rows, vec![vec![101, 102], vec![101, 5, 102]]);
		assert!(batch.base64);
		assert_eq!(batch.dimensions, Some(384));
	}

	#[test]
	fn text_and_bad_inputs_are_refused_by_name() {
		assert_eq!(parse(json!({ "model": "3", "input": "hello" })), Err("text_input_unsupported"));
		assert_eq!(
			parse(json!({ "model": "3", "input": ["a", "b"] })),
			Err("text_input_unsupported")
		);
		assert_eq!(
			parse(json!({ "model": "3", "input": [[1], "b"] })),
			Err("text_input_unsupported")
		);
		assert_eq!(parse(json!({ "model": "3" })), Err("invalid_input"));
		assert_eq!(parse(json!({ "model": "3", "input": [] })), Err("invalid_input"));
		assert_eq!(parse(json!({ "model": "3", "input": [[1], []] })), Err("invalid_input"));
		assert_eq!(parse(json!({ "model": "3", "input": [1, -2] })), Err("invalid_input"));
		assert_eq!(parse(json!({ "model": "3", "input": [1.5] })), Err("invalid_input"));
		let edge = vec![vec![1]; MAX_INPUTS];
		assert!(parse(json!({ "model": "3", "input": edge })).is_ok());
		let over = vec![vec![1]; MAX_INPUTS + 1];
		assert_eq!(parse(json!({ "model": "3", "input": over })), Err("invalid_input"));
		assert_eq!(
			parse(json!({ "model": "3", "input": [1], "encoding_format": "int8" })),
			Err("invalid_parameter")
		);
		assert_eq!(
			parse(json!({ "model": "3", "input": [1], "dimensions": 0 })),
			Err("invalid_parameter")
		);
		assert_eq!(parse_embeddings(b"[1]").map_err(|r| r.code), Err("invalid_json"));
	}

	#[test]
	fn only_token_id_releases_with_one_embedding_output_are_encoders() {
		let out = vec![spec("sentence_embedding", ElemType::F32, &[0, 384])];
		assert_eq!(encoder_dimension(&bert(), &out), Ok(384));
		assert_eq!(encoder_dimension(&bert()[..1], &out), Ok(384));
		let image = vec![spec("pixels", ElemType::F32, &[1, 3, 224, 224])];
		assert!(encoder_dimension(&image, &out).is_err());
		assert!(encoder_dimension(&bert()[1..], &out).is_err(), "no input_ids");
		let floats = vec![spec("input_ids", ElemType::F32, &[0, 0])];
		assert!(encoder_dimension(&floats, &out).is_err());
		let tokens = vec![spec("last_hidden_state", ElemType::F32, &[0, 0, 384])];
		assert!(
			encoder_dimension(&bert(), &tokens).is_err(),
			"unpooled outputs are not embeddings"
		);
		assert!(encoder_dimension(&bert(), &[out[0].clone(), out[0].clone()]).is_err());
	}

	fn i64s(t: &Tensor) -> Vec<i64> {
		t.data
			.chunks_exact(8)
			.map(|b| i64::from_le_bytes(b.try_into().unwrap()))
			.collect()
	}

	#[test]
	fn rows_are_padded_on_the_right_with_a_zero_mask() {
		let (tensors, tokens) =
			encoder_inputs(&[vec![101, 7, 102], vec![101, 102]], &bert()).unwrap();
		assert_eq!(tokens, 5);
		assert!(tensors.iter().all(|t| t.shape == vec![2, 3] && t.is_consistent()));
		assert_eq!(i64s(&tensors[0]), vec![101, 7, 102, 101, 102, 0]);
		assert_eq!(i64s(&tensors[1]), vec![1, 1, 1, 1, 1, 0]);
		assert_eq!(i64s(&tensors[2]), vec![0; 6]);
	}

	#[test]
	fn int32_ids_and_rows_without_a_mask() {
		let specs = vec![spec("input_ids", ElemType::I32, &[0, 0])];
		let (tensors, _) = encoder_inputs(&[vec![1, 2], vec![3, 4]], &specs).unwrap();
		assert_eq!(tensors[0].data.len(), 16);
		assert_eq!(tensors[0].elem, ElemType::I32);
		let ragged = encoder_inputs(&[vec![1, 2], vec![3]], &specs).map_err(|r| r.code);
		assert_eq!(ragged, Err("invalid_input"));
		let wide = encoder_inputs(&[vec![1 << 40]], &specs).map_err(|r| r.code);
		assert_eq!(wide, Err("invalid_input"));
	}

	#[test]
	fn the_response_holds_each_row_as_floats_or_base64() {
		let values = [1.5f32, -2.0, 0.25, 3.0];
		let out = Tensor {
			elem: ElemType::F32,
			shape: vec![2, 2],
			data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
		};
		let floats = embeddings_body(std::slice::from_ref(&out), 2, 7, false).unwrap();
		assert_eq!(floats["data"][1]["embedding"], json!([0.25, 3.0]));
		assert_eq!(floats["data"][1]["index"], 1);
		assert_eq!(floats["usage"], json!({ "prompt_tokens": 7, "total_tokens": 7 }));
		let packed = embeddings_body(std::slice::from_ref(&out), 2, 7, true).unwrap();
		use base64::Engine;
		let bytes = base64::engine::general_purpose::STANDARD
			.decode(packed["data"][0]["embedding"].as_str().unwrap())
			.unwrap();
		assert_eq!(bytes, out.data[..8]);
		assert!(embeddings_body(&[out], 3, 7, false).is_err());
	}
}
