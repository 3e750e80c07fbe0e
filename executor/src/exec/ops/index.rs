//! Indexing: Gather and Slice on the device; GatherElements, GatherND, ScatterElements,
//! ScatterND, OneHot, NonZero, Trilu, TopK, DepthToSpace and SpaceToDepth, which move
//! elements by computed indices, on the host (copies change no bits, and scatter reductions
//! apply in index order).

use super::{boxed, one, reshape, Args, Attrs, Cx, Elems, Op, Registry, R};
use crate::exec::{
	host::{self, strides, Host},
	int_from_host, Value,
};
use burn::tensor::{backend::Backend, Slice};
use opg_primitives::ElemType;
use std::borrow::Cow;

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	r.add("Gather", |node, _| boxed(Gather { axis: Attrs(node).int("axis", 0) }));
	r.add("Slice", |node, opset| {
		// Before opset 10 the ranges are attributes, then inputs 1 to 4 (without steps before).
		let a = Attrs(node);
		let legacy = (opset < 10).then(|| LegacyRanges {
			starts: a.ints("starts").unwrap_or_default(),
			ends: a.ints("ends").unwrap_or_default(),
			axes: a.ints("axes"),
		});
		boxed(SliceOp { legacy })
	});
	r.add("GatherElements", |node, _| boxed(GatherElements { axis: Attrs(node).int("axis", 0) }));
	r.add("GatherND", |node, _| {
		let b = Attrs(node).int("batch_dims", 0);
		if b < 0 {
			return Attrs(node).unsupported("a negative batch_dims");
		}
		boxed(GatherNd { batch_dims: b as usize })
	});
	r.add("ScatterElements", |node, _| {
		let a = Attrs(node);
		boxed(ScatterElements { axis: a.int("axis", 0), reduction: Reduction::parse(a)? })
	});
	r.add("ScatterND", |node, _| boxed(ScatterNd { reduction: Reduction::parse(Attrs(node))? }));
	r.add("OneHot", |node, _| boxed(OneHot { axis: Attrs(node).int("axis", -1) }));
	r.add("NonZero", |_, _| boxed(NonZero));
	r.add("Trilu", |node, _| boxed(Trilu { upper: Attrs(node).int("upper", 1) != 0 }));
	r.add("TopK", |node, opset| {
		let a = Attrs(node);
		if opset < 10 {
			return a.unsupported("TopK before opset 10 (k as an attribute)");
		}
		boxed(TopK { axis: a.int("axis", -1), largest: a.int("largest", 1) != 0 })
	});
	r.add("DepthToSpace", |node, _| {
		let a = Attrs(node);
		let crd = match a.string("mode").as_deref() {
			None | Some("DCR") => false,
			Some("CRD") => true,
			Some(m) => return a.unsupported(format!("mode=\"{m}\"")),
		};
		boxed(Blocks { size: a.int("blocksize", 0), to_space: true, crd })
	});
	r.add("SpaceToDepth", |node, _| {
		boxed(Blocks { size: Attrs(node).int("blocksize", 0), to_space: false, crd: false })
	});
}

/// TopK: the `k` largest (or smallest) elements along an axis and their int64 indices,
/// extreme first, equal values in index order (onnxruntime's order). Unsorted output is
/// given sorted too, one of the orders the operator allows.
struct TopK {
	axis: i64,
	largest: bool,
}

impl<B: Backend> Op<B> for TopK {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (s, v) = Elems::of(a.get(cx, 0)?)?;
		let k = match &a.host(cx, 1)?.data[..] {
			[k] if *k >= 0 => *k as usize,
			_ => return cx.invalid("k must be one non-negative integer"),
		};
		if s.is_empty() {
			return cx.invalid("TopK of a scalar");
		}
		let axis = cx.axis(self.axis, s.len())?;
		let (len, inner) = (s[axis], s[axis + 1..].iter().product::<usize>());
		if k > len {
			return cx.invalid(format!("k = {k} is over the axis length {len}"));
		}
		let outer = v.len() / (len * inner).max(1);
		let mut order = Vec::with_capacity(outer * inner * k);
		let mut idx = vec![0usize; len];
		for o in 0..outer {
			for i in 0..inner {
				let at = |j: usize| (o * len + j) * inner + i;
				idx.iter_mut().enumerate().for_each(|(j, x)| *x = j);
				// NaN ranks above every number, as onnxruntime's comparison puts it.
				let key = |j: usize| {
					let x = v.get_f64(at(j));
					if x.is_nan() {
						f64::INFINITY
					} else if self.largest {
						x
					} else {
						-x
					}
				};
				idx.sort_by(|&p, &q| key(q).total_cmp(&key(p)).then(p.cmp(&q)));
				order.extend(idx[..k].iter().map(|&j| (at(j), j)));
			}
		}
		// `order` is in (outer, inner, rank) order; the outputs are (outer, rank, inner).
		let mut out = s.clone();
		out[axis] = k;
		let mut src = vec![0usize; order.len()];
		let mut ind = vec![0i64; order.len()];
		for (n, &(from, j)) in order.iter().enumerate() {
			let (oi, r) = (n / k, n % k);
			let (o, i) = (oi / inner.max(1), oi % inner.max(1));
			let to = (o * k + r) * inner + i;
			src[to] = from;
			ind[to] = j as i64;
		}
		if k == 0 && !matches!(v, Elems::Int(..)) {
			return cx.unsupported("an empty float TopK");
		}
		Ok(vec![
			v.pick(src.into_iter()).into_value::<B>(&out, cx.device),
			Value::Host(Host::new(ElemType::I64, out, ind)),
		])
	}
}

/// DepthToSpace (DCR or CRD order) and SpaceToDepth on NCHW tensors: a reshape, a
/// permutation and a reshape, done as one gather.
struct Blocks {
	size: i64,
	to_space: bool,
	crd: bool,
}

impl<B: Backend> Op<B> for Blocks {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (s, v) = Elems::of(a.get(cx, 0)?)?;
		let b = self.size;
		if s.len() != 4 || b < 1 {
			return cx.invalid(format!("an NCHW input and a positive blocksize, got {s:?}, {b}"));
		}
		let b = b as usize;
		let [n, c, h, w] = [s[0], s[1], s[2], s[3]];
		// The 6-D view of the input and the permutation of it that the output reads.
		let (view, perm, out) = if self.to_space {
			if c % (b * b) != 0 {
				return cx.invalid(format!("{c} channels for blocksize {b}"));
			}
			let c2 = c / (b * b);
			if self.crd {
				(vec![n, c2, b, b, h, w], [0, 1, 4, 2, 5, 3], vec![n, c2, h * b, w * b])
			} else {
				(vec![n, b, b, c2, h, w], [0, 3, 4, 1, 5, 2], vec![n, c2, h * b, w * b])
			}
		} else {
			if h % b != 0 || w % b != 0 {
				return cx.invalid(format!("{h}x{w} is not a multiple of blocksize {b}"));
			}
			(vec![n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4], vec![n, c * b * b, h / b, w / b])
		};
		let st = strides(&view);
		let pshape: Vec<usize> = perm.iter().map(|&p| view[p]).collect();
		let pst = strides(&pshape);
		let total: usize = out.iter().product();
		let src = (0..total).map(|i| {
			(0..6).map(|d| ((i / pst[d]) % pshape[d].max(1)) * st[perm[d]]).sum::<usize>()
		});
		Ok(vec![v.pick(src).into_value::<B>(&out, cx.device)])
	}
}

/// Normalises a possibly negative index into `0..dim`.
fn index<B: Backend>(cx: &Cx<B>, i: i64, dim: usize) -> R<usize> {
	let d = dim as i64;
	if i < -d || i >= d {
		return cx.invalid(format!("index {i} out of range for an axis of size {dim}"));
	}
	Ok(if i < 0 { i + d } else { i } as usize)
}

/// The multi-index of flat position `i` in a tensor with strides `st`.
fn unravel(i: usize, st: &[usize], shape: &[usize]) -> Vec<usize> {
	(0..shape.len()).map(|d| (i / st[d]) % shape[d].max(1)).collect()
}

/// For GatherElements and ScatterElements: the flat position in data (shape `s`) of each
/// element of `idx`, which is its own position with the index it holds along `axis`.
fn element_targets<B: Backend>(cx: &Cx<B>, s: &[usize], idx: &Host, axis: i64) -> R<Vec<usize>> {
	if idx.shape.len() != s.len() || s.is_empty() {
		return cx.invalid("data and indices must have the same rank (at least 1)");
	}
	let axis = cx.axis(axis, s.len())?;
	if idx.shape.iter().zip(s).enumerate().any(|(d, (&i, &n))| d != axis && i > n) {
		return cx.invalid(format!("indices {:?} exceed data {s:?}", idx.shape));
	}
	let (ist, dst) = (strides(&idx.shape), strides(s));
	idx.data
		.iter()
		.enumerate()
		.map(|(i, &k)| {
			let mut pos = unravel(i, &ist, &idx.shape);
			pos[axis] = index(cx, k, s[axis])?;
			Ok(pos.iter().zip(&dst).map(|(p, st)| p * st).sum())
		})
		.collect()
}

struct GatherElements {
	axis: i64,
}

impl<B: Backend> Op<B> for GatherElements {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (s, v) = Elems::of(a.get(cx, 0)?)?;
		let idx = a.host(cx, 1)?;
		let src = element_targets(cx, &s, idx, self.axis)?;
		Ok(vec![v.pick(src.into_iter()).into_value::<B>(&idx.shape, cx.device)])
	}
}

struct GatherNd {
	batch_dims: usize,
}

impl<B: Backend> Op<B> for GatherNd {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (s, v) = Elems::of(a.get(cx, 0)?)?;
		let idx = a.host(cx, 1)?;
		let b = self.batch_dims;
		let (q, r) = (idx.shape.len(), s.len());
		if q < 1 || r < 1 || b >= q.min(r) || idx.shape[..b] != s[..b] {
			return cx.invalid(format!("indices {:?} do not index data {s:?}", idx.shape));
		}
		let k = idx.shape[q - 1];
		if b + k > r {
			return cx.invalid(format!("index tuples of {k} for data of rank {r}"));
		}
		let dst = strides(&s);
		let chunk: usize = s[b + k..].iter().product();
		let batch_size: usize = s[b..].iter().product();
		let tuples = idx.data.len() / k.max(1);
		let per_batch = tuples / s[..b].iter().product::<usize>().max(1);
		let mut out_shape = idx.shape[..q - 1].to_vec();
		out_shape.extend(&s[b + k..]);
		cx.check_elements(&out_shape)?;
		let mut src = Vec::with_capacity(tuples * chunk);
		for t in 0..tuples {
			let mut base = (t / per_batch.max(1)) * batch_size;
			for m in 0..k {
				base += index(cx, idx.data[t * k + m], s[b + m])? * dst[b + m];
			}
			src.extend(base..base + chunk);
		}
		Ok(vec![v.pick(src.into_iter()).into_value::<B>(&out_shape, cx.device)])
	}
}

/// How a scatter combines an update with the element it lands on.
#[derive(Clone, Copy)]
enum Reduction {
	None,
	Add,
	Mul,
	Max,
	Min,
}

impl Reduction {
	fn parse(a: Attrs) -> R<Reduction> {
		Ok(match a.string("reduction").as_deref() {
			None | Some("none") => Reduction::None,
			Some("add") => Reduction::Add,
			Some("mul") => Reduction::Mul,
			Some("max") => Reduction::Max,
			Some("min") => Reduction::Min,
			Some(other) => return a.unsupported(format!("reduction=\"{other}\"")),
		})
	}

	/// `data` with each `(target, source)` pair of `moves` applied in order.
	fn apply(self, data: Elems, updates: &Elems, moves: &[(usize, usize)]) -> Elems {
		macro_rules! apply {
			($d:expr, $u:expr, $add:expr, $mul:expr) => {{
				let mut d = $d;
				for &(t, s) in moves {
					let (x, y) = (d[t], $u[s]);
					d[t] = match self {
						Reduction::None => y,
						Reduction::Add => $add(x, y),
						Reduction::Mul => $mul(x, y),
						Reduction::Max =>
							if y > x {
								y
							} else {
								x
							},
						Reduction::Min =>
							if y < x {
								y
							} else {
								x
							},
					};
				}
				d
			}};
		}
		match (data, updates) {
			(Elems::Int(e, d), Elems::Int(_, u)) => Elems::Int(
				e,
				apply!(
					d,
					u,
					|p: i64, q: i64| host::wrap(e, p.wrapping_add(q)),
					|p: i64, q: i64| host::wrap(e, p.wrapping_mul(q))
				),
			),
			(Elems::F32(d), Elems::F32(u)) =>
				Elems::F32(apply!(d, u, |p: f32, q| p + q, |p: f32, q| p * q)),
			(Elems::F64(d), Elems::F64(u)) =>
				Elems::F64(apply!(d, u, |p: f64, q| p + q, |p: f64, q| p * q)),
			(d, _) => d,
		}
	}
}

/// Data and updates of the same kind of element, or an error.
fn same_kind<B: Backend>(cx: &Cx<B>, d: &Elems, u: &Elems) -> R<()> {
	match (d, u) {
		(Elems::Int(p, _), Elems::Int(q, _)) if p == q => Ok(()),
		(Elems::F32(_), Elems::F32(_)) | (Elems::F64(_), Elems::F64(_)) => Ok(()),
		_ => cx.invalid("data and updates differ in type"),
	}
}

struct ScatterElements {
	axis: i64,
	reduction: Reduction,
}

impl<B: Backend> Op<B> for ScatterElements {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (s, v) = Elems::of(a.get(cx, 0)?)?;
		let idx = a.host(cx, 1)?;
		let (us, u) = Elems::of(a.get(cx, 2)?)?;
		same_kind(cx, &v, &u)?;
		if us != idx.shape {
			return cx.invalid("indices and updates must have the same shape");
		}
		let targets = element_targets(cx, &s, idx, self.axis)?;
		let moves: Vec<(usize, usize)> =
			targets.into_iter().enumerate().map(|(i, t)| (t, i)).collect();
		Ok(vec![self.reduction.apply(v, &u, &moves).into_value::<B>(&s, cx.device)])
	}
}

struct ScatterNd {
	reduction: Reduction,
}

impl<B: Backend> Op<B> for ScatterNd {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (s, v) = Elems::of(a.get(cx, 0)?)?;
		let idx = a.host(cx, 1)?;
		let (us, u) = Elems::of(a.get(cx, 2)?)?;
		same_kind(cx, &v, &u)?;
		let q = idx.shape.len();
		let k = idx.shape.last().copied().unwrap_or(0);
		let mut want = idx.shape[..q.saturating_sub(1)].to_vec();
		want.extend(s.get(k..).unwrap_or(&[]));
		if q < 1 || k > s.len() || us != want {
			return cx.invalid(format!(
				"indices {:?} and updates {us:?} do not fit data {s:?}",
				idx.shape
			));
		}
		let dst = strides(&s);
		let chunk: usize = s[k..].iter().product();
		let mut moves = Vec::with_capacity(u.len());
		for t in 0..idx.data.len() / k.max(1) {
			let mut base = 0;
			for m in 0..k {
				base += index(cx, idx.data[t * k + m], s[m])? * dst[m];
			}
			moves.extend((0..chunk).map(|c| (base + c, t * chunk + c)));
		}
		Ok(vec![self.reduction.apply(v, &u, &moves).into_value::<B>(&s, cx.device)])
	}
}

/// One-hot vectors of `depth` along `axis`, with the off and on values of input 2.
struct OneHot {
	axis: i64,
}

impl<B: Backend> Op<B> for OneHot {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (s, idx) = Elems::of(a.get(cx, 0)?)?;
		let depth = match Elems::of(a.get(cx, 1)?)? {
			(d, e) if d.iter().product::<usize>() == 1 => e.get_f64(0),
			_ => return cx.invalid("depth must be a scalar"),
		};
		if !(depth >= 1.0 && depth <= super::MAX_ELEMENTS as f64) {
			return cx.invalid(format!("depth {depth} is not a positive size"));
		}
		let depth = depth as usize;
		let (vs, values) = Elems::of(a.get(cx, 2)?)?;
		if vs.iter().product::<usize>() != 2 || vs.len() != 1 {
			return cx.invalid("values must be [off, on]");
		}
		let axis = cx.axis(self.axis, s.len() + 1)?;
		let mut out = s.clone();
		out.insert(axis, depth);
		cx.check_elements(&out)?;
		let inner: usize = s[axis..].iter().product();
		let total: usize = out.iter().product();
		let picks = (0..total).map(|o| {
			let (outer, rest) = (o / (depth * inner), o % (depth * inner));
			let (d, i) = (rest / inner, rest % inner);
			// Truncated toward zero like onnxruntime; negative indices count from the end.
			let mut k = idx.get_f64(outer * inner + i) as i64;
			if k < 0 {
				k += depth as i64;
			}
			(k == d as i64) as usize
		});
		Ok(vec![values.pick(picks).into_value::<B>(&out, cx.device)])
	}
}

/// The indices of the non-zero elements, one row per axis (int64 [rank, count]).
struct NonZero;

impl<B: Backend> Op<B> for NonZero {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (s, v) = Elems::of(a.get(cx, 0)?)?;
		let st = strides(&s);
		let hits: Vec<usize> = (0..v.len()).filter(|&i| v.get_f64(i) != 0.0).collect();
		let mut data = vec![0; s.len() * hits.len()];
		for (j, &i) in hits.iter().enumerate() {
			for (d, p) in unravel(i, &st, &s).into_iter().enumerate() {
				data[d * hits.len() + j] = p as i64;
			}
		}
		Ok(vec![Value::Host(Host::new(ElemType::I64, vec![s.len(), hits.len()], data))])
	}
}

/// The upper (or lower) triangle of the last two axes from diagonal `k` (input 1), the rest 0.
struct Trilu {
	upper: bool,
}

impl<B: Backend> Op<B> for Trilu {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (s, v) = Elems::of(a.get(cx, 0)?)?;
		if s.len() < 2 {
			return cx.invalid("Trilu needs a rank of at least 2");
		}
		let k = match a.opt(1) {
			Some(_) => match &a.host(cx, 1)?.data[..] {
				[k] => *k,
				_ => return cx.invalid("k must be a scalar"),
			},
			None => 0,
		};
		let (rows, cols) = (s[s.len() - 2], s[s.len() - 1]);
		let keep = |i: usize| {
			let (r, c) = ((i / cols.max(1)) % rows.max(1), i % cols.max(1));
			let d = c as i64 - r as i64;
			if self.upper {
				d >= k
			} else {
				d <= k
			}
		};
		let r = match v {
			Elems::Int(e, d) => Elems::Int(
				e,
				d.into_iter().enumerate().map(|(i, x)| if keep(i) { x } else { 0 }).collect(),
			),
			Elems::F32(d) => Elems::F32(
				d.into_iter().enumerate().map(|(i, x)| if keep(i) { x } else { 0.0 }).collect(),
			),
			Elems::F64(d) => Elems::F64(
				d.into_iter().enumerate().map(|(i, x)| if keep(i) { x } else { 0.0 }).collect(),
			),
		};
		Ok(vec![r.into_value::<B>(&s, cx.device)])
	}
}

struct Gather {
	axis: i64,
}

impl<B: Backend> Op<B> for Gather {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let v = a.get(cx, 0)?;
		let s = v.shape();
		if s.is_empty() {
			return cx.invalid("Gather from a scalar");
		}
		let axis = cx.axis(self.axis, s.len())?;
		let idx = a.host(cx, 1)?;
		let dim = s[axis] as i64;
		let mut norm = idx.clone();
		for i in norm.data.iter_mut() {
			if *i < -dim || *i >= dim {
				return cx.invalid(format!("index {i} out of range for axis of size {dim}"));
			}
			if *i < 0 {
				*i += dim;
			}
		}
		match v {
			Value::Host(h) => Ok(vec![Value::Host(h.gather(axis, &norm))]),
			Value::Float(t) => {
				let mut out = s[..axis].to_vec();
				out.extend(&norm.shape);
				out.extend(&s[axis + 1..]);
				if norm.data.is_empty() {
					return one(cx.full(t, &out, 0.0));
				}
				let flat = Host::vector_i64(norm.data.clone());
				let picked = B::float_select(t.clone(), axis, int_from_host::<B>(&flat, cx.device));
				one(reshape::<B>(picked, &out))
			},
		}
	}
}

/// Slice's `starts`, `ends` and `axes` attributes (opsets before 10).
struct LegacyRanges {
	starts: Vec<i64>,
	ends: Vec<i64>,
	axes: Option<Vec<i64>>,
}

struct SliceOp {
	legacy: Option<LegacyRanges>,
}

impl<B: Backend> Op<B> for SliceOp {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let v = a.get(cx, 0)?;
		let s = v.shape();
		let (starts, ends, axes, steps): (&[i64], &[i64], _, _) = match &self.legacy {
			Some(r) => (&r.starts, &r.ends, r.axes.as_deref().map(Cow::Borrowed), None),
			None => {
				let opt = |i: usize| {
					a.opt(i).map(|_| a.host(cx, i).map(|h| Cow::Borrowed(&h.data[..]))).transpose()
				};
				(&a.host(cx, 1)?.data, &a.host(cx, 2)?.data, opt(3)?, opt(4)?)
			},
		};
		let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
		let steps = steps.unwrap_or_else(|| vec![1; starts.len()].into());
		if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
			return cx.invalid("starts, ends, axes and steps differ in length");
		}
		let mut ranges: Vec<(i64, i64, usize)> = s.iter().map(|&d| (0, 1, d)).collect();
		let mut seen = vec![false; s.len()];
		for i in 0..starts.len() {
			let axis = cx.axis(axes[i], s.len())?;
			if std::mem::replace(&mut seen[axis], true) {
				return cx.invalid(format!("axis {axis} sliced twice"));
			}
			let (dim, step) = (s[axis] as i64, steps[i]);
			if step == 0 {
				return cx.invalid("step 0");
			}
			let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
			let (start, count) = if step > 0 {
				let (st, en) = (norm(starts[i]).clamp(0, dim), norm(ends[i]).clamp(0, dim));
				(st, if en > st { (en - st + step - 1) / step } else { 0 })
			} else {
				let (st, en) =
					(norm(starts[i]).clamp(0, dim - 1), norm(ends[i]).clamp(-1, dim - 1));
				(st, if st > en { (st - en + (-step) - 1) / (-step) } else { 0 })
			};
			ranges[axis] = (start, step, count as usize);
		}
		match v {
			Value::Host(h) => Ok(vec![Value::Host(h.slice(&ranges))]),
			Value::Float(t) => {
				if ranges.iter().any(|r| r.2 == 0) {
					return cx.unsupported("an empty slice of a float tensor");
				}
				let mut flips = Vec::new();
				let slices: Vec<Slice> = ranges
					.iter()
					.enumerate()
					.map(|(d, &(start, step, count))| {
						let last = start + step * (count as i64 - 1);
						if step > 0 {
							Slice::new(start as isize, Some(last as isize + 1), step as isize)
						} else {
							// Take the same elements in ascending order, then reverse the axis.
							flips.push(d);
							Slice::new(last as isize, Some(start as isize + 1), -step as isize)
						}
					})
					.collect();
				let mut t = B::float_slice(t.clone(), &slices);
				if !flips.is_empty() {
					t = B::float_flip(t, &flips);
				}
				one(t)
			},
		}
	}
}
