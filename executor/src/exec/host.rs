//! Integer and boolean tensors, kept on the host.
//!
//! In ONNX graphs these are shapes, indices and masks: small, and read back by the ops that
//! consume them (Reshape, Slice, Expand …). Computing them on the host in `i64` also makes
//! integer results bit-identical on every backend.

use opg_primitives::ElemType;

/// An integer or boolean tensor. `data` holds every element widened to `i64`; `elem` is the
/// ONNX type it stands for (booleans are 0/1).
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
	pub elem: ElemType,
	pub shape: Vec<usize>,
	pub data: Vec<i64>,
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
	let mut s = vec![1; shape.len()];
	for i in (0..shape.len().saturating_sub(1)).rev() {
		s[i] = s[i + 1] * shape[i + 1];
	}
	s
}

/// Numpy (multidirectional) broadcasting of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
	let rank = a.len().max(b.len());
	let at = |s: &[usize], i: usize| {
		if i + s.len() >= rank {
			s[i + s.len() - rank]
		} else {
			1
		}
	};
	(0..rank)
		.map(|i| match (at(a, i), at(b, i)) {
			(x, y) if x == y => Some(x),
			(1, y) => Some(y),
			(x, 1) => Some(x),
			_ => None,
		})
		.collect()
}

impl Host {
	pub fn new(elem: ElemType, shape: Vec<usize>, data: Vec<i64>) -> Host {
		debug_assert_eq!(shape.iter().product::<usize>(), data.len());
		Host { elem, shape, data }
	}

	pub fn scalar_i64(v: i64) -> Host {
		Host::new(ElemType::I64, vec![], vec![v])
	}

	pub fn vector_i64(v: Vec<i64>) -> Host {
		Host::new(ElemType::I64, vec![v.len()], v)
	}

	/// A tensor of `out_shape` whose element at a multi-index comes from `self.data[src(index)]`.
	fn remap(&self, out_shape: Vec<usize>, src: impl Fn(&[usize]) -> usize) -> Host {
		let n: usize = out_shape.iter().product();
		let mut data = Vec::with_capacity(n);
		let mut index = vec![0usize; out_shape.len()];
		for _ in 0..n {
			data.push(self.data[src(&index)]);
			for d in (0..out_shape.len()).rev() {
				index[d] += 1;
				if index[d] < out_shape[d] {
					break;
				}
				index[d] = 0;
			}
		}
		Host { elem: self.elem, shape: out_shape, data }
	}

	/// Broadcasts to `shape`, which must be a broadcast of `self.shape`.
	pub fn broadcast_to(&self, shape: &[usize]) -> Host {
		if self.shape == shape {
			return self.clone();
		}
		let offset = shape.len() - self.shape.len();
		let st = strides(&self.shape);
		let dims = self.shape.clone();
		self.remap(shape.to_vec(), |ix| {
			(0..dims.len())
				.map(|d| if dims[d] == 1 { 0 } else { ix[d + offset] * st[d] })
				.sum()
		})
	}

	/// Element-wise `f` with broadcasting; `None` if the shapes do not broadcast.
	pub fn zip(&self, other: &Host, elem: ElemType, f: impl Fn(i64, i64) -> i64) -> Option<Host> {
		let shape = broadcast(&self.shape, &other.shape)?;
		let (a, b) = (self.broadcast_to(&shape), other.broadcast_to(&shape));
		let data = a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect();
		Some(Host { elem, shape, data })
	}

	pub fn permute(&self, perm: &[usize]) -> Host {
		let st = strides(&self.shape);
		let shape = perm.iter().map(|&p| self.shape[p]).collect();
		self.remap(shape, |ix| perm.iter().enumerate().map(|(o, &p)| ix[o] * st[p]).sum())
	}

	/// Elements `start, start+step, …` (`count` of them) along each axis.
	pub fn slice(&self, ranges: &[(i64, i64, usize)]) -> Host {
		let st = strides(&self.shape);
		let shape = ranges.iter().map(|r| r.2).collect();
		self.remap(shape, |ix| {
			ranges
				.iter()
				.enumerate()
				.map(|(d, &(start, step, _))| (start + step * ix[d] as i64) as usize * st[d])
				.sum()
		})
	}

	/// ONNX Gather along `axis` with already normalised, in-range indices.
	pub fn gather(&self, axis: usize, indices: &Host) -> Host {
		let st = strides(&self.shape);
		let ir = indices.shape.len();
		let mut shape = self.shape[..axis].to_vec();
		shape.extend(&indices.shape);
		shape.extend(&self.shape[axis + 1..]);
		let ist = strides(&indices.shape);
		self.remap(shape, |ix| {
			let i: usize = (0..ir).map(|d| ix[axis + d] * ist[d]).sum();
			let mut src = indices.data[i] as usize * st[axis];
			for d in 0..axis {
				src += ix[d] * st[d];
			}
			for d in axis + 1..self.shape.len() {
				src += ix[d - 1 + ir] * st[d];
			}
			src
		})
	}

	/// ONNX Tile: `reps[d]` copies along each axis (all ≥ 1, one per axis; checked by the caller).
	pub fn tile(&self, reps: &[i64]) -> Host {
		let st = strides(&self.shape);
		let dims = self.shape.clone();
		let out = dims.iter().zip(reps).map(|(&d, &r)| d * r as usize).collect();
		self.remap(out, |ix| (0..dims.len()).map(|d| (ix[d] % dims[d]) * st[d]).sum())
	}

	/// Concatenation along `axis`; shapes are checked by the caller.
	pub fn concat(parts: &[Host], axis: usize) -> Host {
		let mut shape = parts[0].shape.clone();
		shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
		let outer: usize = shape[..axis].iter().product();
		let mut data = Vec::with_capacity(shape.iter().product());
		for o in 0..outer {
			for p in parts {
				let chunk: usize = p.shape[axis..].iter().product();
				data.extend_from_slice(&p.data[o * chunk..(o + 1) * chunk]);
			}
		}
		Host { elem: parts[0].elem, shape, data }
	}
}

/// Wraps a value to the range of an integer element type, as a C cast would.
pub fn wrap(elem: ElemType, v: i64) -> i64 {
	match elem {
		ElemType::I8 => v as i8 as i64,
		ElemType::U8 => v as u8 as i64,
		ElemType::I32 => v as i32 as i64,
		ElemType::Bool => (v != 0) as i64,
		_ => v,
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn t(shape: Vec<usize>, data: Vec<i64>) -> Host {
		Host::new(ElemType::I64, shape, data)
	}

	#[test]
	fn broadcasting_follows_numpy() {
		assert_eq!(broadcast(&[2, 1, 3], &[4, 1]), Some(vec![2, 4, 3]));
		assert_eq!(broadcast(&[], &[5]), Some(vec![5]));
		assert_eq!(broadcast(&[2, 3], &[3, 2]), None);
		let a = t(vec![2, 1], vec![10, 20]);
		let b = t(vec![3], vec![1, 2, 3]);
		assert_eq!(
			a.zip(&b, ElemType::I64, |x, y| x + y).unwrap().data,
			vec![11, 12, 13, 21, 22, 23]
		);
	}

	#[test]
	fn layout_ops() {
		let a = t(vec![2, 3], (0..6).collect());
		assert_eq!(a.permute(&[1, 0]).data, vec![0, 3, 1, 4, 2, 5]);
		assert_eq!(a.slice(&[(1, 1, 1), (2, -2, 2)]).data, vec![5, 3]);
		let idx = t(vec![2, 2], vec![2, 0, 1, 1]);
		let g = a.gather(1, &idx);
		assert_eq!(g.shape, vec![2, 2, 2]);
		assert_eq!(g.data, vec![2, 0, 1, 1, 5, 3, 4, 4]);
		let c = Host::concat(&[a.clone(), t(vec![2, 1], vec![9, 9])], 1);
		assert_eq!(c.data, vec![0, 1, 2, 9, 3, 4, 5, 9]);
		let tiled = t(vec![1, 2], vec![7, 8]).tile(&[2, 2]);
		assert_eq!((tiled.shape, tiled.data), (vec![2, 4], vec![7, 8, 7, 8, 7, 8, 7, 8]));
		assert_eq!(wrap(ElemType::U8, -1), 255);
	}
}
