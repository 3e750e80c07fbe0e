//! The CBOR subset attestation documents use (RFC 8949): definite lengths only, unsigned and
//! negative integers, byte and text strings, arrays, maps, tags, and the simple values null,
//! true, false. Anything else is an error; nothing panics, and every length is checked against
//! the bytes left before anything is allocated, so decoding time is linear in the input.

use crate::Error;

/// A decoded item. Strings borrow from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item<'a> {
	Uint(u64),
	/// −1 − n.
	Negative(u64),
	Bytes(&'a [u8]),
	Text(&'a str),
	Array(alloc::vec::Vec<Item<'a>>),
	Map(alloc::vec::Vec<(Item<'a>, Item<'a>)>),
	Tag(u64, alloc::boxed::Box<Item<'a>>),
	Bool(bool),
	Null,
}

/// Deepest nesting accepted; documents nest three levels.
const MAX_DEPTH: u32 = 8;

/// Decodes one item that must span all of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Item<'_>, Error> {
	let mut reader = Reader { bytes, pos: 0 };
	let item = reader.item(0)?;
	if reader.pos != bytes.len() {
		return Err(Error::Cbor);
	}
	Ok(item)
}

struct Reader<'a> {
	bytes: &'a [u8],
	pos: usize,
}

impl<'a> Reader<'a> {
	fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
		let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(Error::Cbor)?;
		let out = &self.bytes[self.pos..end];
		self.pos = end;
		Ok(out)
	}

	fn remaining(&self) -> usize {
		self.bytes.len() - self.pos
	}

	/// The argument of a head: the value or length that follows the major type.
	fn argument(&mut self, info: u8) -> Result<u64, Error> {
		let n = match info {
			0..=23 => return Ok(info as u64),
			24 => 1,
			25 => 2,
			26 => 4,
			27 => 8,
			// Reserved values and indefinite lengths (31) are not accepted.
			_ => return Err(Error::Cbor),
		};
		Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
	}

	/// A length that must fit in what is left, each element taking at least `min` bytes.
	fn length(&mut self, info: u8, min: usize) -> Result<usize, Error> {
		let n = self.argument(info)?;
		if n > (self.remaining() / min.max(1)) as u64 {
			return Err(Error::Cbor);
		}
		Ok(n as usize)
	}

	fn item(&mut self, depth: u32) -> Result<Item<'a>, Error> {
		if depth > MAX_DEPTH {
			return Err(Error::Cbor);
		}
		let head = self.take(1)?[0];
		let (major, info) = (head >> 5, head & 0x1f);
		Ok(match major {
			0 => Item::Uint(self.argument(info)?),
			1 => Item::Negative(self.argument(info)?),
			2 => {
				let n = self.length(info, 1)?;
				Item::Bytes(self.take(n)?)
			},
			3 => {
				let n = self.length(info, 1)?;
				Item::Text(core::str::from_utf8(self.take(n)?).map_err(|_| Error::Cbor)?)
			},
			4 => {
				let n = self.length(info, 1)?;
				let mut items = alloc::vec::Vec::with_capacity(n);
				for _ in 0..n {
					items.push(self.item(depth + 1)?);
				}
				Item::Array(items)
			},
			5 => {
				let n = self.length(info, 2)?;
				let mut entries = alloc::vec::Vec::with_capacity(n);
				for _ in 0..n {
					let key = self.item(depth + 1)?;
					entries.push((key, self.item(depth + 1)?));
				}
				Item::Map(entries)
			},
			6 => {
				let tag = self.argument(info)?;
				Item::Tag(tag, alloc::boxed::Box::new(self.item(depth + 1)?))
			},
			_ => match info {
				20 => Item::Bool(false),
				21 => Item::Bool(true),
				22 => Item::Null,
				_ => return Err(Error::Cbor),
			},
		})
	}
}

/// Writes the head of a byte string of `len` bytes (for the COSE signature structure).
pub fn bytes_head(len: usize, out: &mut alloc::vec::Vec<u8>) {
	head(2, len as u64, out)
}

/// Writes a head of `major` type with argument `n`, in the shortest form.
pub fn head(major: u8, n: u64, out: &mut alloc::vec::Vec<u8>) {
	let m = major << 5;
	match n {
		0..=23 => out.push(m | n as u8),
		24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
		0x100..=0xffff => {
			out.push(m | 25);
			out.extend_from_slice(&(n as u16).to_be_bytes());
		},
		0x1_0000..=0xffff_ffff => {
			out.push(m | 26);
			out.extend_from_slice(&(n as u32).to_be_bytes());
		},
		_ => {
			out.push(m | 27);
			out.extend_from_slice(&n.to_be_bytes());
		},
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn decodes_the_subset_and_refuses_the_rest() {
		// {1: -35} as in the COSE protected header.
		assert_eq!(
			decode(&[0xa1, 0x01, 0x38, 0x22]),
			Ok(Item::Map(alloc::vec![(Item::Uint(1), Item::Negative(34))]))
		);
		assert_eq!(decode(&[0x43, 1, 2, 3]), Ok(Item::Bytes(&[1, 2, 3])));
		assert_eq!(decode(&[0xf6]), Ok(Item::Null));
		// Indefinite length, a float, trailing bytes, a length past the end, bad UTF-8.
		for bad in [
			&[0x5f, 0xff][..],
			&[0xfa, 0, 0, 0, 0],
			&[0x01, 0x01],
			&[0x5a, 0xff, 0xff, 0xff, 0xff],
			&[0x62, 0xc3, 0x28],
		] {
			assert_eq!(decode(bad), Err(Error::Cbor), "{bad:?}");
		}
		// A huge declared array is refused before allocating.
		assert_eq!(
			decode(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
			Err(Error::Cbor)
		);
		// Nesting is bounded.
		assert_eq!(decode(&[0x81; 64]), Err(Error::Cbor));
	}

	#[test]
	fn heads_are_shortest() {
		for (n, len) in [(0u64, 1), (23, 1), (24, 2), (255, 2), (256, 3), (65_536, 5), (1 << 32, 9)]
		{
			let mut out = alloc::vec::Vec::new();
			head(2, n, &mut out);
			assert_eq!(out.len(), len, "{n}");
			let mut reader = Reader { bytes: &out, pos: 1 };
			assert_eq!(reader.argument(out[0] & 0x1f), Ok(n));
		}
	}
}
