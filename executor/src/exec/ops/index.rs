//! Indexing: Gather and Slice.

use super::{boxed, one, reshape, Args, Attrs, Cx, Op, Registry, R};
use crate::exec::{host::Host, int_from_host, Value};
use burn::tensor::{backend::Backend, Slice};
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
				if norm.data.is_empty() {
					return cx.unsupported("an empty Gather");
				}
				let flat = Host::vector_i64(norm.data.clone());
				let picked = B::float_select(t.clone(), axis, int_from_host::<B>(&flat, cx.device));
				let mut out = s[..axis].to_vec();
				out.extend(&norm.shape);
				out.extend(&s[axis + 1..]);
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
