//! Tensors as JSON, for people and HTTP clients: element type, shape and values as numbers.

/// One tensor in JSON: `opg-worker run`'s input and the HTTP API's `/v1/infer`.
#[derive(serde::Deserialize, Debug, Clone)]
pub struct JsonTensor {
	/// Element type: `F32`, `F64`, `F16`, `I8`, `U8`, `I32`, `I64` or `Bool`.
	pub elem: String,
	/// Dimensions.
	pub shape: Vec<u32>,
	/// Values in row-major order, as numbers.
	pub values: Vec<f64>,
}

/// The canonical tensor of a JSON one; values are cast to the element type.
pub fn tensor_from_json(t: &JsonTensor) -> Result<opg_primitives::Tensor, String> {
	use opg_primitives::ElemType::*;
	let elem = match t.elem.as_str() {
		"F32" => F32,
		"F64" => F64,
		"F16" => F16,
		"I8" => I8,
		"U8" => U8,
		"I32" => I32,
		"I64" => I64,
		"Bool" => Bool,
		other => return Err(format!("unknown element type {other:?}")),
	};
	let mut data = Vec::with_capacity(t.values.len() * elem.size());
	for &v in &t.values {
		match elem {
			F32 => data.extend((v as f32).to_le_bytes()),
			F64 => data.extend(v.to_le_bytes()),
			F16 => data.extend(half::f16::from_f64(v).to_le_bytes()),
			I8 => data.extend((v as i8).to_le_bytes()),
			U8 | Bool => data.push(v as u8),
			I32 => data.extend((v as i32).to_le_bytes()),
			I64 => data.extend((v as i64).to_le_bytes()),
		}
	}
	let tensor = opg_primitives::Tensor { elem, shape: t.shape.clone(), data };
	if !tensor.is_consistent() {
		return Err(format!("{} values do not fill shape {:?}", t.values.len(), t.shape));
	}
	Ok(tensor)
}

/// A tensor as JSON (`elem`, `shape`, `values`).
pub fn tensor_to_json(t: &opg_primitives::Tensor) -> serde_json::Value {
	use opg_primitives::ElemType::*;
	let size = t.elem.size();
	let values: Vec<serde_json::Value> = t
		.data
		.chunks_exact(size)
		.map(|b| match t.elem {
			F32 => serde_json::json!(f32::from_le_bytes(b.try_into().expect("4 bytes"))),
			F64 => serde_json::json!(f64::from_le_bytes(b.try_into().expect("8 bytes"))),
			F16 => serde_json::json!(half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
			I8 => serde_json::json!(b[0] as i8),
			U8 | Bool => serde_json::json!(b[0]),
			I32 => serde_json::json!(i32::from_le_bytes(b.try_into().expect("4 bytes"))),
			I64 => serde_json::json!(i64::from_le_bytes(b.try_into().expect("8 bytes"))),
		})
		.collect();
	serde_json::json!({ "elem": format!("{:?}", t.elem), "shape": t.shape, "values": values })
}
