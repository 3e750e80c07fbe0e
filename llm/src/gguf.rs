//! GGUF files (llama.cpp's format, versions 2 and 3): the header, the typed metadata and the
//! tensor directory, checked before anything uses them, over a memory map (or bytes in memory)
//! that the tensors borrow from without copying.
//!
//! Every length and offset comes from the file and is checked against it: a count that cannot
//! fit in what is left, a tensor outside the data section or overlapping another, an element
//! count that overflows, a misaligned offset: each is a [`GgufError`], never a panic.

use std::{collections::HashMap, fs::File, path::Path, sync::Arc};

use crate::quant::GgmlType;

const MAGIC: &[u8; 4] = b"GGUF";
/// The default alignment of the data section and of every tensor in it.
const DEFAULT_ALIGNMENT: u64 = 32;
/// Bounds well above any real model's, so that a hostile count fails fast instead of
/// allocating: llama.cpp's largest vocabularies have ~260k tokens, models ~3,000 tensors.
pub const MAX_TENSORS: u64 = 1 << 16;
pub const MAX_METADATA: u64 = 1 << 16;
pub const MAX_DIMS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
	#[error("cannot read the model file: {0}")]
	Io(#[from] std::io::Error),
	#[error("not a GGUF file (magic {0:?})")]
	Magic([u8; 4]),
	#[error("GGUF version {0} is not supported (2 and 3 are)")]
	Version(u32),
	#[error("the file ends inside {0}")]
	Truncated(&'static str),
	#[error("{what} count {count} is over the limit of {limit}")]
	TooMany { what: &'static str, count: u64, limit: u64 },
	#[error("metadata key {0:?} appears twice")]
	DuplicateKey(String),
	#[error("metadata value type {0} is unknown")]
	ValueType(u32),
	#[error("a string in the file is not UTF-8")]
	Utf8,
	#[error("metadata {key:?}: {problem}")]
	Metadata { key: String, problem: String },
	#[error("tensor {name:?}: {problem}")]
	Tensor { name: String, problem: String },
}

fn meta_err(key: &str, problem: impl Into<String>) -> GgufError {
	GgufError::Metadata { key: key.into(), problem: problem.into() }
}

fn tensor_err(name: &str, problem: impl Into<String>) -> GgufError {
	GgufError::Tensor { name: name.into(), problem: problem.into() }
}

/// A metadata value as the file types it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
	U8(u8),
	I8(i8),
	U16(u16),
	I16(i16),
	U32(u32),
	I32(i32),
	U64(u64),
	I64(i64),
	F32(f32),
	F64(f64),
	Bool(bool),
	String(String),
	Array(Vec<Value>),
}

impl Value {
	/// Any integer type that fits in a u64 (GGUF writers differ in which they use).
	pub fn as_u64(&self) -> Option<u64> {
		match *self {
			Value::U8(v) => Some(v.into()),
			Value::U16(v) => Some(v.into()),
			Value::U32(v) => Some(v.into()),
			Value::U64(v) => Some(v),
			Value::I8(v) => u64::try_from(v).ok(),
			Value::I16(v) => u64::try_from(v).ok(),
			Value::I32(v) => u64::try_from(v).ok(),
			Value::I64(v) => u64::try_from(v).ok(),
			_ => None,
		}
	}

	pub fn as_f32(&self) -> Option<f32> {
		match *self {
			Value::F32(v) => Some(v),
			Value::F64(v) => Some(v as f32),
			_ => None,
		}
	}

	pub fn as_str(&self) -> Option<&str> {
		match self {
			Value::String(s) => Some(s),
			_ => None,
		}
	}
}

/// Where a tensor's bytes are, and what they hold.
#[derive(Clone, Debug)]
pub struct TensorInfo {
	pub name: String,
	/// GGML order: `dims[0]` is the contiguous (innermost) dimension.
	pub dims: Vec<u64>,
	pub ty: GgmlType,
	/// From the start of the file.
	pub offset: usize,
	pub len: usize,
}

impl TensorInfo {
	pub fn elements(&self) -> u64 {
		self.dims.iter().product()
	}
}

enum Storage {
	Mmap(memmap2::Mmap),
	Owned(Vec<u8>),
}

/// A checked GGUF file. Cheap to clone: the bytes are shared.
#[derive(Clone)]
pub struct Gguf {
	bytes: Arc<Storage>,
	pub version: u32,
	pub metadata: HashMap<String, Value>,
	pub tensors: Vec<TensorInfo>,
	by_name: HashMap<String, usize>,
}

impl std::fmt::Debug for Gguf {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.debug_struct("Gguf")
			.field("version", &self.version)
			.field("metadata", &self.metadata.len())
			.field("tensors", &self.tensors.len())
			.finish()
	}
}

impl Gguf {
	/// Maps the file read-only: the weights stay in the page cache, shared by every job (and
	/// process) that uses them.
	pub fn open(path: &Path) -> Result<Self, GgufError> {
		let file = File::open(path)?;
		// SAFETY: the map is read-only and private to this process; a file truncated under us
		// would fault, which is why models live in the worker's own store, written once.
		let map = unsafe { memmap2::Mmap::map(&file)? };
		Self::parse(Arc::new(Storage::Mmap(map)))
	}

	pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, GgufError> {
		Self::parse(Arc::new(Storage::Owned(bytes)))
	}

	pub fn bytes(&self) -> &[u8] {
		match &*self.bytes {
			Storage::Mmap(m) => m,
			Storage::Owned(v) => v,
		}
	}

	fn parse(storage: Arc<Storage>) -> Result<Self, GgufError> {
		let bytes: &[u8] = match &*storage {
			Storage::Mmap(m) => m,
			Storage::Owned(v) => v,
		};
		let mut r = Reader { bytes, pos: 0 };
		let magic: [u8; 4] = r.take(4, "the header")?.try_into().expect("4 bytes");
		if &magic != MAGIC {
			return Err(GgufError::Magic(magic));
		}
		let version = r.u32("the header")?;
		if !(2..=3).contains(&version) {
			return Err(GgufError::Version(version));
		}
		let n_tensors = r.u64("the header")?;
		let n_kv = r.u64("the header")?;
		if n_tensors > MAX_TENSORS {
			return Err(GgufError::TooMany { what: "tensor", count: n_tensors, limit: MAX_TENSORS });
		}
		if n_kv > MAX_METADATA {
			return Err(GgufError::TooMany { what: "metadata", count: n_kv, limit: MAX_METADATA });
		}

		let mut metadata = HashMap::new();
		for _ in 0..n_kv {
			let key = r.string("a metadata key")?;
			let ty = r.u32("a metadata value")?;
			let value = r.value(ty, 0)?;
			if metadata.insert(key.clone(), value).is_some() {
				return Err(GgufError::DuplicateKey(key));
			}
		}

		let mut raw = Vec::with_capacity(n_tensors as usize);
		for _ in 0..n_tensors {
			let name = r.string("a tensor name")?;
			let n_dims = r.u32("a tensor's dimensions")? as usize;
			if n_dims == 0 || n_dims > MAX_DIMS {
				return Err(tensor_err(
					&name,
					format!("{n_dims} dimensions (1 to {MAX_DIMS} allowed)"),
				));
			}
			let mut dims = Vec::with_capacity(n_dims);
			for _ in 0..n_dims {
				dims.push(r.u64("a tensor's dimensions")?);
			}
			let ty_id = r.u32("a tensor's type")?;
			let offset = r.u64("a tensor's offset")?;
			raw.push((name, dims, ty_id, offset));
		}

		let alignment = match metadata.get("general.alignment") {
			None => DEFAULT_ALIGNMENT,
			Some(v) => match v.as_u64() {
				Some(a) if a.is_power_of_two() && (8..=1 << 16).contains(&a) => a,
				_ =>
					return Err(meta_err(
						"general.alignment",
						format!("{v:?} is not a power of two in 8..=65536"),
					)),
			},
		};
		let data_start = (r.pos as u64).div_ceil(alignment) * alignment;
		let file_len = bytes.len() as u64;

		let mut tensors = Vec::with_capacity(raw.len());
		let mut by_name = HashMap::with_capacity(raw.len());
		for (name, dims, ty_id, offset) in raw {
			let ty = GgmlType::from_id(ty_id).map_err(|t| {
				tensor_err(&name, format!("type {t}, which this engine does not run"))
			})?;
			if dims.contains(&0) {
				return Err(tensor_err(&name, "a zero-size dimension"));
			}
			let elements = dims
				.iter()
				.try_fold(1u64, |acc, &d| acc.checked_mul(d))
				.filter(|&n| n <= i64::MAX as u64)
				.ok_or_else(|| tensor_err(&name, "its element count overflows"))?;
			if dims[0] % ty.block_len() as u64 != 0 {
				return Err(tensor_err(
					&name,
					format!(
						"its rows of {} are not whole {} blocks of {}",
						dims[0],
						ty.name(),
						ty.block_len()
					),
				));
			}
			let len = (elements / ty.block_len() as u64)
				.checked_mul(ty.block_bytes() as u64)
				.ok_or_else(|| tensor_err(&name, "its byte size overflows"))?;
			if offset % alignment != 0 {
				return Err(tensor_err(
					&name,
					format!("offset {offset} is not a multiple of {alignment}"),
				));
			}
			let start = data_start
				.checked_add(offset)
				.filter(|s| s.checked_add(len).is_some_and(|end| end <= file_len))
				.ok_or_else(|| tensor_err(&name, "its data lies outside the file"))?;
			let info = TensorInfo {
				name: name.clone(),
				dims,
				ty,
				offset: start as usize,
				len: len as usize,
			};
			if by_name.insert(name.clone(), tensors.len()).is_some() {
				return Err(tensor_err(&name, "the name appears twice"));
			}
			tensors.push(info);
		}
		let mut spans: Vec<(usize, usize, &str)> =
			tensors.iter().map(|t| (t.offset, t.offset + t.len, t.name.as_str())).collect();
		spans.sort_unstable();
		for w in spans.windows(2) {
			if w[1].0 < w[0].1 {
				return Err(tensor_err(w[1].2, format!("its data overlaps {:?}'s", w[0].2)));
			}
		}

		Ok(Self { bytes: storage.clone(), version, metadata, tensors, by_name })
	}

	pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
		self.by_name.get(name).map(|&i| &self.tensors[i])
	}

	/// The bytes of a tensor (in bounds: checked at parse).
	pub fn data(&self, t: &TensorInfo) -> &[u8] {
		&self.bytes()[t.offset..t.offset + t.len]
	}

	pub fn get(&self, key: &str) -> Option<&Value> {
		self.metadata.get(key)
	}

	pub fn str(&self, key: &str) -> Result<&str, GgufError> {
		let v = self.get(key).ok_or_else(|| meta_err(key, "missing"))?;
		v.as_str().ok_or_else(|| meta_err(key, "not a string"))
	}

	pub fn u64(&self, key: &str) -> Result<u64, GgufError> {
		let v = self.get(key).ok_or_else(|| meta_err(key, "missing"))?;
		v.as_u64()
			.ok_or_else(|| meta_err(key, format!("{v:?} is not a non-negative integer")))
	}

	pub fn u64_or(&self, key: &str, default: u64) -> Result<u64, GgufError> {
		if self.get(key).is_none() {
			Ok(default)
		} else {
			self.u64(key)
		}
	}

	pub fn f32_or(&self, key: &str, default: f32) -> Result<f32, GgufError> {
		match self.get(key) {
			None => Ok(default),
			Some(v) => v.as_f32().ok_or_else(|| meta_err(key, format!("{v:?} is not a float"))),
		}
	}

	pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, GgufError> {
		match self.get(key) {
			None => Ok(default),
			Some(Value::Bool(b)) => Ok(*b),
			Some(v) => Err(meta_err(key, format!("{v:?} is not a bool"))),
		}
	}

	/// An array metadata value, or an error naming the key.
	pub fn array(&self, key: &str) -> Result<&[Value], GgufError> {
		match self.get(key) {
			Some(Value::Array(a)) => Ok(a),
			Some(_) => Err(meta_err(key, "not an array")),
			None => Err(meta_err(key, "missing")),
		}
	}
}

/// Writes a GGUF (version 3) file: the metadata in the order given, then each tensor's data
/// aligned to 32 bytes. For tools and tests (a model converted in memory, say); the parser
/// above is what checks files from elsewhere.
pub fn write(metadata: &[(&str, &Value)], tensors: &[(&str, &[u64], GgmlType, &[u8])]) -> Vec<u8> {
	let tensors: Vec<_> = tensors.iter().map(|&(n, d, ty, b)| (n, d, ty.id(), b)).collect();
	write_raw(metadata, &tensors)
}

/// [`write`] with raw GGML type ids, so tests can also write types the parser refuses.
fn write_raw(metadata: &[(&str, &Value)], tensors: &[(&str, &[u64], u32, &[u8])]) -> Vec<u8> {
	fn string(b: &mut Vec<u8>, s: &str) {
		b.extend((s.len() as u64).to_le_bytes());
		b.extend(s.as_bytes());
	}
	fn type_id(v: &Value) -> u32 {
		match v {
			Value::U8(_) => 0,
			Value::I8(_) => 1,
			Value::U16(_) => 2,
			Value::I16(_) => 3,
			Value::U32(_) => 4,
			Value::I32(_) => 5,
			Value::F32(_) => 6,
			Value::Bool(_) => 7,
			Value::String(_) => 8,
			Value::Array(_) => 9,
			Value::U64(_) => 10,
			Value::I64(_) => 11,
			Value::F64(_) => 12,
		}
	}
	fn value(b: &mut Vec<u8>, v: &Value) {
		match v {
			Value::U8(x) => b.push(*x),
			Value::I8(x) => b.push(*x as u8),
			Value::U16(x) => b.extend(x.to_le_bytes()),
			Value::I16(x) => b.extend(x.to_le_bytes()),
			Value::U32(x) => b.extend(x.to_le_bytes()),
			Value::I32(x) => b.extend(x.to_le_bytes()),
			Value::U64(x) => b.extend(x.to_le_bytes()),
			Value::I64(x) => b.extend(x.to_le_bytes()),
			Value::F32(x) => b.extend(x.to_le_bytes()),
			Value::F64(x) => b.extend(x.to_le_bytes()),
			Value::Bool(x) => b.push(*x as u8),
			Value::String(x) => string(b, x),
			Value::Array(items) => {
				// An empty array is written as an array of u8s.
				b.extend(items.first().map_or(0, type_id).to_le_bytes());
				b.extend((items.len() as u64).to_le_bytes());
				items.iter().for_each(|i| value(b, i));
			},
		}
	}
	let mut b = MAGIC.to_vec();
	b.extend(3u32.to_le_bytes());
	b.extend((tensors.len() as u64).to_le_bytes());
	b.extend((metadata.len() as u64).to_le_bytes());
	for (k, v) in metadata {
		string(&mut b, k);
		b.extend(type_id(v).to_le_bytes());
		value(&mut b, v);
	}
	let mut offset = 0u64;
	for (name, dims, ty, data) in tensors {
		string(&mut b, name);
		b.extend((dims.len() as u32).to_le_bytes());
		dims.iter().for_each(|d| b.extend(d.to_le_bytes()));
		b.extend(ty.to_le_bytes());
		b.extend(offset.to_le_bytes());
		offset += (data.len() as u64).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
	}
	let pad = |b: &mut Vec<u8>| {
		b.resize(
			(b.len() as u64).div_ceil(DEFAULT_ALIGNMENT) as usize * DEFAULT_ALIGNMENT as usize,
			0,
		)
	};
	pad(&mut b);
	for (_, _, _, data) in tensors {
		b.extend_from_slice(data);
		pad(&mut b);
	}
	b
}

struct Reader<'a> {
	bytes: &'a [u8],
	pos: usize,
}

/// Nesting of arrays in arrays: GGUF writers use one level; two leave room, more is hostile.
const MAX_ARRAY_DEPTH: u32 = 2;

impl<'a> Reader<'a> {
	fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], GgufError> {
		let end = self
			.pos
			.checked_add(n)
			.filter(|&e| e <= self.bytes.len())
			.ok_or(GgufError::Truncated(what))?;
		let s = &self.bytes[self.pos..end];
		self.pos = end;
		Ok(s)
	}

	fn remaining(&self) -> usize {
		self.bytes.len() - self.pos
	}

	fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
		Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
	}

	fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
		Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
	}

	fn string(&mut self, what: &'static str) -> Result<String, GgufError> {
		let len = self.u64(what)?;
		let len = usize::try_from(len).map_err(|_| GgufError::Truncated(what))?;
		let b = self.take(len, what)?;
		String::from_utf8(b.to_vec()).map_err(|_| GgufError::Utf8)
	}

	fn value(&mut self, ty: u32, depth: u32) -> Result<Value, GgufError> {
		const W: &str = "a metadata value";
		Ok(match ty {
			0 => Value::U8(self.take(1, W)?[0]),
			1 => Value::I8(self.take(1, W)?[0] as i8),
			2 => Value::U16(u16::from_le_bytes(self.take(2, W)?.try_into().expect("2"))),
			3 => Value::I16(i16::from_le_bytes(self.take(2, W)?.try_into().expect("2"))),
			4 => Value::U32(self.u32(W)?),
			5 => Value::I32(self.u32(W)? as i32),
			6 => Value::F32(f32::from_bits(self.u32(W)?)),
			7 => match self.take(1, W)?[0] {
				0 => Value::Bool(false),
				1 => Value::Bool(true),
				b =>
					return Err(GgufError::Metadata {
						key: String::new(),
						problem: format!("bool byte {b}"),
					}),
			},
			8 => Value::String(self.string(W)?),
			9 => {
				if depth >= MAX_ARRAY_DEPTH {
					return Err(GgufError::TooMany {
						what: "array nesting",
						count: depth as u64 + 1,
						limit: 2,
					});
				}
				let item_ty = self.u32(W)?;
				let n = self.u64(W)?;
				// Every item takes at least one byte: a count beyond what is left is a lie.
				if n > self.remaining() as u64 {
					return Err(GgufError::Truncated("a metadata array"));
				}
				let mut items = Vec::with_capacity(n as usize);
				for _ in 0..n {
					items.push(self.value(item_ty, depth + 1)?);
				}
				Value::Array(items)
			},
			10 => Value::U64(self.u64(W)?),
			11 => Value::I64(self.u64(W)? as i64),
			12 => Value::F64(f64::from_bits(self.u64(W)?)),
			t => return Err(GgufError::ValueType(t)),
		})
	}
}

#[cfg(test)]
pub(crate) mod tests {
	use super::*;

	/// A GGUF builder for tests: string and u32 metadata, tensors of any type id (including
	/// ones the parser refuses), written by [`write_raw`].
	pub(crate) struct Writer {
		kv: Vec<(String, Value)>,
		tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
	}

	impl Writer {
		pub(crate) fn new() -> Self {
			Self { kv: vec![], tensors: vec![] }
		}
		pub(crate) fn str(mut self, k: &str, v: &str) -> Self {
			self.kv.push((k.into(), Value::String(v.into())));
			self
		}
		pub(crate) fn u32(mut self, k: &str, v: u32) -> Self {
			self.kv.push((k.into(), Value::U32(v)));
			self
		}
		pub(crate) fn tensor(mut self, name: &str, dims: &[u64], ty: u32, data: Vec<u8>) -> Self {
			self.tensors.push((name.into(), dims.to_vec(), ty, data));
			self
		}
		pub(crate) fn build(&self) -> Vec<u8> {
			let kv: Vec<_> = self.kv.iter().map(|(k, v)| (k.as_str(), v)).collect();
			let tensors: Vec<_> = self
				.tensors
				.iter()
				.map(|(n, d, ty, b)| (n.as_str(), d.as_slice(), *ty, b.as_slice()))
				.collect();
			write_raw(&kv, &tensors)
		}
	}

	fn f32s(n: usize) -> Vec<u8> {
		(0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
	}

	#[test]
	fn what_write_writes_parses_back() {
		let arch = Value::String("llama".into());
		let toks = Value::Array(vec![Value::String("a".into()), Value::String("b".into())]);
		let data = f32s(8);
		let b = write(
			&[("general.architecture", &arch), ("tokenizer.ggml.tokens", &toks)],
			&[("t", &[4, 2], GgmlType::F32, &data)],
		);
		let g = Gguf::from_bytes(b).unwrap();
		assert_eq!(g.get("tokenizer.ggml.tokens"), Some(&toks));
		assert_eq!(g.data(g.tensor("t").unwrap()), &data[..]);
	}

	#[test]
	fn a_well_formed_file_parses() {
		let b = Writer::new()
			.str("general.architecture", "llama")
			.tensor("a", &[4, 2], 0, f32s(8))
			.build();
		let g = Gguf::from_bytes(b).unwrap();
		assert_eq!(g.str("general.architecture").unwrap(), "llama");
		let t = g.tensor("a").unwrap();
		assert_eq!((t.elements(), t.ty, t.len), (8, GgmlType::F32, 32));
		assert_eq!(&g.data(t)[4..8], &1f32.to_le_bytes());
	}

	#[test]
	fn every_truncation_is_an_error_not_a_panic() {
		// 32 bytes of data: the file ends where the data does, with no padding after it.
		let b = Writer::new().str("k", "v").u32("n", 7).tensor("a", &[8], 0, f32s(8)).build();
		for cut in 0..b.len() {
			assert!(Gguf::from_bytes(b[..cut].to_vec()).is_err(), "cut at {cut}");
		}
	}

	#[test]
	fn hostile_headers_are_refused() {
		let mut b = Writer::new().build();
		b[0] = b'X';
		assert!(matches!(Gguf::from_bytes(b), Err(GgufError::Magic(_))));
		let mut b = Writer::new().build();
		b[4..8].copy_from_slice(&1u32.to_le_bytes());
		assert!(matches!(Gguf::from_bytes(b), Err(GgufError::Version(1))));
		let mut b = Writer::new().build();
		b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
		assert!(matches!(Gguf::from_bytes(b), Err(GgufError::TooMany { what: "tensor", .. })));
		// A string length past the end of the file.
		let mut b = Writer::new().str("k", "v").build();
		b[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
		assert!(matches!(Gguf::from_bytes(b), Err(GgufError::Truncated(_))));
	}

	#[test]
	fn tensors_must_lie_in_the_file_and_not_overlap() {
		let b = Writer::new().tensor("a", &[8], 0, f32s(8)).build();
		// Claim twice the elements: the data would run past the end.
		let mut long = b.clone();
		let dims_at = 24 + 8 + 1 + 4;
		long[dims_at..dims_at + 8].copy_from_slice(&1024u64.to_le_bytes());
		assert!(matches!(Gguf::from_bytes(long), Err(GgufError::Tensor { .. })));
		// Two tensors at the same offset.
		let w = Writer::new().tensor("a", &[8], 0, f32s(8)).tensor("b", &[8], 0, f32s(8));
		let mut b = w.build();
		let second_offset = 24 + (8 + 1 + 4 + 8 + 4 + 8) + (8 + 1 + 4 + 8 + 4);
		b[second_offset..second_offset + 8].copy_from_slice(&0u64.to_le_bytes());
		let err = Gguf::from_bytes(b).unwrap_err().to_string();
		assert!(err.contains("overlaps"), "{err}");
		// Quantized rows must be whole blocks; zero-size and unknown types are refused by name.
		let err = Gguf::from_bytes(Writer::new().tensor("q", &[16], 2, vec![0; 18]).build())
			.unwrap_err()
			.to_string();
		assert!(err.contains("whole Q4_0 blocks"), "{err}");
		let err = Gguf::from_bytes(Writer::new().tensor("z", &[0], 0, vec![]).build())
			.unwrap_err()
			.to_string();
		assert!(err.contains("zero-size"), "{err}");
		let err = Gguf::from_bytes(Writer::new().tensor("k", &[256], 10, vec![0; 84]).build())
			.unwrap_err()
			.to_string();
		assert!(err.contains("Q2_K"), "{err}");
	}
}
