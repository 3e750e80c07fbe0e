//! External tensor data: weights kept outside the `.onnx` protobuf, as exporters write models
//! over 2 GB (`location`, `offset`, `length` per tensor, the location relative to the model).
//!
//! A release is one file, hashed as a whole, so a model with external data is published as a
//! **bundle**: an uncompressed tar (ustar or pax, as `tar cf` and Python's `tarfile` write it)
//! holding exactly one `.onnx` and the files it names. Locally, `Model::load` reads the files
//! next to the model. Either way a location must stay inside: no absolute path, no `..`.

use super::ModelError;
use std::{
	cell::RefCell,
	collections::HashMap,
	path::{Component, Path, PathBuf},
	rc::Rc,
};

/// Where a model's external data comes from.
pub(super) enum Source<'a> {
	/// None: a model that references external data is refused.
	None,
	/// The other members of a bundle, by path inside it.
	Bundle(HashMap<String, &'a [u8]>),
	/// Files under a directory, read once each.
	Dir(PathBuf, RefCell<HashMap<String, Rc<Vec<u8>>>>),
}

/// A location as a relative path of normal components joined by `/`, or why it is refused.
fn normalise(location: &str) -> Result<String, String> {
	let path = Path::new(location);
	let mut parts = Vec::new();
	for c in path.components() {
		match c {
			Component::Normal(p) => parts.push(p.to_str().ok_or("not UTF-8")?.to_string()),
			Component::CurDir => {},
			_ => return Err("it must be a relative path inside the model's directory".into()),
		}
	}
	if parts.is_empty() || location.contains('\\') || location.contains('\0') {
		return Err("it is not a file name".into());
	}
	Ok(parts.join("/"))
}

impl Source<'_> {
	/// `length` bytes (the rest, when `None`) from `offset` of the file at `location`.
	pub(super) fn read(
		&self,
		tensor: &str,
		location: &str,
		offset: u64,
		length: Option<u64>,
	) -> Result<Vec<u8>, ModelError> {
		let bad = |reason: String| ModelError::BadTensor { name: tensor.into(), reason };
		let name = normalise(location)
			.map_err(|why| bad(format!("external data location `{location}`: {why}")))?;
		let slice = |file: &[u8]| -> Result<Vec<u8>, ModelError> {
			let start = usize::try_from(offset).ok().filter(|&o| o <= file.len());
			let start = start.ok_or_else(|| {
				bad(format!("offset {offset} is past the end of `{name}` ({} bytes)", file.len()))
			})?;
			let end = match length {
				None => Some(file.len()),
				Some(l) => usize::try_from(l).ok().and_then(|l| start.checked_add(l)),
			}
			.filter(|&e| e <= file.len())
			.ok_or_else(|| bad(format!("{length:?} bytes from {offset} overrun `{name}`")))?;
			Ok(file[start..end].to_vec())
		};
		match self {
			Source::None => Err(ModelError::ExternalData(tensor.into())),
			Source::Bundle(files) => match files.get(&name) {
				Some(file) => slice(file),
				None => Err(bad(format!("the bundle has no file `{name}`"))),
			},
			Source::Dir(dir, cache) => {
				let kept = cache.borrow().get(&name).cloned();
				let file = match kept {
					Some(f) => f,
					None => {
						let bytes = std::fs::read(dir.join(&name))
							.map_err(|e| bad(format!("external data `{name}`: {e}")))?;
						let f = Rc::new(bytes);
						cache.borrow_mut().insert(name.clone(), f.clone());
						f
					},
				};
				slice(&file)
			},
		}
	}
}

/// An archive's regular files: path and contents.
type Members<'a> = Vec<(String, &'a [u8])>;

/// The members of a tar archive (regular files by path; directories skipped), or `None` if
/// `bytes` is not one.
pub(super) fn tar_members(bytes: &[u8]) -> Option<Result<Members<'_>, ModelError>> {
	if bytes.len() < 512 || &bytes[257..262] != b"ustar" {
		return None;
	}
	Some(read_tar(bytes))
}

fn read_tar(bytes: &[u8]) -> Result<Members<'_>, ModelError> {
	let bad = |why: &str| ModelError::Bundle(why.to_string());
	let text = |field: &[u8]| -> String {
		let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
		String::from_utf8_lossy(&field[..end]).into_owned()
	};
	let octal = |field: &[u8]| -> Result<u64, ModelError> {
		let t = text(field);
		u64::from_str_radix(t.trim_matches(|c: char| c == ' ' || c == '\0'), 8)
			.map_err(|_| bad("a member's size is not an octal number"))
	};
	let (mut members, mut pos, mut long_name) = (Vec::new(), 0usize, None::<String>);
	while pos + 512 <= bytes.len() {
		let header = &bytes[pos..pos + 512];
		if header.iter().all(|&b| b == 0) {
			return Ok(members);
		}
		let size = octal(&header[124..136])?;
		let size = usize::try_from(size).map_err(|_| bad("a member is too large"))?;
		let start = pos + 512;
		let data = start
			.checked_add(size)
			.filter(|&end| end <= bytes.len())
			.map(|end| &bytes[start..end])
			.ok_or_else(|| bad("a member runs past the end of the archive"))?;
		let mut name = text(&header[0..100]);
		let prefix = text(&header[345..500]);
		if !prefix.is_empty() && &header[257..263] == b"ustar\0" {
			name = format!("{prefix}/{name}");
		}
		if let Some(long) = long_name.take() {
			name = long;
		}
		match header[156] {
			b'0' | 0 => members.push((name, data)),
			b'5' => {},
			// GNU long name: the next member's path.
			b'L' => long_name = Some(text(data)),
			// pax: the next member's path may be in a `path=` record; global headers apply
			// to nothing a model needs.
			b'x' => long_name = pax_path(data),
			b'g' => {},
			t => return Err(bad(&format!("member `{name}` is of tar type `{}`", t as char))),
		}
		pos = start + size.div_ceil(512) * 512;
	}
	Err(bad("the archive ends without its end marker"))
}

/// The `path` record of a pax extended header.
fn pax_path(data: &[u8]) -> Option<String> {
	let text = String::from_utf8_lossy(data);
	text.lines()
		.find_map(|l| l.split_once(' ')?.1.strip_prefix("path=").map(str::to_string))
}

/// A bundle's model and its other files, by path relative to the model's directory.
pub(super) fn bundle(bytes: &[u8]) -> Option<Result<(&[u8], Source<'_>), ModelError>> {
	let members = match tar_members(bytes)? {
		Ok(m) => m,
		Err(e) => return Some(Err(e)),
	};
	let models: Vec<&(String, &[u8])> =
		members.iter().filter(|(n, _)| n.ends_with(".onnx")).collect();
	let [(model_path, model)] = models[..] else {
		return Some(Err(ModelError::Bundle(format!(
			"a bundle holds exactly one .onnx file, this one {}",
			models.len()
		))));
	};
	let dir = model_path.rsplit_once('/').map_or("", |(d, _)| d);
	let mut files = HashMap::new();
	for (name, data) in &members {
		let Ok(name) = normalise(name) else { continue };
		let relative = match dir {
			"" => Some(name.as_str()),
			d => name.strip_prefix(d).and_then(|r| r.strip_prefix('/')),
		};
		if let Some(r) = relative {
			files.insert(r.to_string(), *data);
		}
	}
	Some(Ok((model, Source::Bundle(files))))
}

/// The directory a model file's external data is read from.
pub(super) fn dir_of(path: &Path) -> Source<'static> {
	let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
	Source::Dir(dir, RefCell::new(HashMap::new()))
}

/// Reads the external data entries of a tensor: location, offset, length.
pub(super) fn entries(
	tensor: &str,
	entries: &[super::proto::StringStringEntryProto],
) -> Result<(String, u64, Option<u64>), ModelError> {
	let bad = |reason: String| ModelError::BadTensor { name: tensor.into(), reason };
	let (mut location, mut offset, mut length) = (None, 0, None);
	for e in entries {
		let value = e.value.clone().unwrap_or_default();
		let number = |v: &str| v.parse::<u64>().map_err(|_| bad(format!("external data {v:?}")));
		match e.key.as_deref() {
			Some("location") => location = Some(value),
			Some("offset") => offset = number(&value)?,
			Some("length") => length = Some(number(&value)?),
			_ => {},
		}
	}
	let location = location.ok_or_else(|| bad("external data without a location".into()))?;
	Ok((location, offset, length))
}
