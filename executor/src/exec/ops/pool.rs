//! Poolings: MaxPool (which a Conv kernel can apply to its output) and AveragePool over a
//! window, GlobalMaxPool and GlobalAveragePool over the spatial axes.

use super::{
	arr, boxed,
	conv::{split_pads, Spatial},
	one, over_dims, shape, Args, Attrs, Cx, Epilogue, Op, Registry, F, R,
};
use crate::exec::{cpu, Value};
use burn::tensor::{backend::Backend, Shape};

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	r.add("MaxPool", |node, _| {
		let a = Attrs(node);
		if a.extra_outputs(1) {
			return a.unsupported("the Indices output");
		}
		if a.int("storage_order", 0) != 0 {
			return a.unsupported("storage_order=1");
		}
		boxed(Pool::parse(a, true)?)
	});
	r.add("AveragePool", |node, _| {
		let a = Attrs(node);
		if a.ints("dilations").is_some_and(|d| d.iter().any(|&d| d != 1)) {
			return a.unsupported("dilated average pooling");
		}
		boxed(Pool::parse(a, false)?)
	});
	r.add("GlobalMaxPool", |_, _| boxed(GlobalPool { max: true }));
	r.add("GlobalAveragePool", |_, _| boxed(GlobalPool { max: false }));
}

/// MaxPool or AveragePool.
pub(crate) struct Pool {
	max: bool,
	kernel_shape: Option<Vec<i64>>,
	window: Spatial,
	ceil: bool,
	count_include_pad: bool,
}

/// A pooling node's window, checked against its input shape.
pub(super) struct PoolWindow {
	kernel: Vec<usize>,
	strides: Vec<usize>,
	dilations: Vec<usize>,
	pads: Vec<(usize, usize)>,
	ceil: bool,
	max: bool,
}

impl PoolWindow {
	/// The window as the CPU's 2-D max pooling takes it, if it has that form: kernel, stride,
	/// symmetric pads and dilation.
	pub(super) fn cpu_max_2d(&self) -> Option<cpu::Window> {
		let symmetric = self.pads.iter().all(|&(b, e)| b == e);
		(self.max && !self.ceil && symmetric && self.kernel.len() == 2).then(|| cpu::Window {
			kernel: arr(&self.kernel),
			stride: arr(&self.strides),
			pads: [self.pads[0].0, self.pads[1].0],
			dilation: arr(&self.dilations),
		})
	}
}

impl Pool {
	fn parse(a: Attrs, max: bool) -> R<Pool> {
		Ok(Pool {
			max,
			kernel_shape: a.ints("kernel_shape"),
			window: Spatial::parse(a)?,
			ceil: a.int("ceil_mode", 0) != 0,
			count_include_pad: a.int("count_include_pad", 0) != 0,
		})
	}

	/// The window over input `xs`; `cx` is the pooling node's.
	pub(super) fn window<B: Backend>(&self, cx: &Cx<B>, xs: &[usize]) -> R<PoolWindow> {
		let r = xs.len().saturating_sub(2);
		let Some(kernel) = &self.kernel_shape else {
			return cx.invalid("kernel_shape is required");
		};
		if r == 0 || kernel.len() != r || kernel.iter().any(|&k| k < 1) || xs[2..].contains(&0) {
			return cx.invalid(format!("kernel_shape {kernel:?} for input {xs:?}"));
		}
		let kernel: Vec<usize> = kernel.iter().map(|&k| k as usize).collect();
		let strides = self.window.strides(cx, r)?;
		let dilations = self.window.dilations(cx, r)?;
		let pads = self.window.pads(cx, &xs[2..], &kernel, &strides, &dilations)?;
		for i in 0..r {
			if pads[i].0.max(pads[i].1) * 2 > (kernel[i] - 1) * dilations[i] + 1 {
				return cx.unsupported("padding wider than half the window");
			}
			if xs[2 + i] + pads[i].0 + pads[i].1 < (kernel[i] - 1) * dilations[i] + 1 {
				return cx.invalid("the window is larger than the padded input");
			}
		}
		Ok(PoolWindow { kernel, strides, dilations, pads, ceil: self.ceil, max: self.max })
	}
}

impl<B: Backend> Op<B> for Pool {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let xs = shape::<B>(&x);
		let PoolWindow { kernel, strides, dilations, pads, ceil, max } = self.window(cx, &xs)?;
		let include = self.count_include_pad;
		let asymmetric = pads.iter().any(|&(b, e)| b != e);
		let out = if max {
			let (x, p) = split_pads(cx, x, &pads, f32::NEG_INFINITY);
			pool_nd::<B>(x, true, &kernel, &strides, &p, &dilations, ceil, false)
		} else if asymmetric && !include {
			// Mean over the valid elements: pooled sums of x over pooled counts of a mask,
			// both zero-padded and averaged the same way.
			let ones = cx.full(&x, &xs, 1.0);
			let (xp, p) = split_pads(cx, x, &pads, 0.0);
			let (mp, _) = split_pads(cx, ones, &pads, 0.0);
			let sx = pool_nd::<B>(xp, false, &kernel, &strides, &p, &dilations, ceil, true);
			let sm = pool_nd::<B>(mp, false, &kernel, &strides, &p, &dilations, ceil, true);
			B::float_div(sx, sm)
		} else {
			let (x, p) = split_pads(cx, x, &pads, 0.0);
			pool_nd::<B>(x, false, &kernel, &strides, &p, &dilations, ceil, include)
		};
		one(out)
	}

	fn as_epilogue(&self) -> Option<Epilogue<'_>> {
		self.max.then_some(Epilogue::MaxPool(self))
	}
}

/// Pooling with symmetric padding. 1-D and 2-D use burn's kernels; higher ranks pool one
/// axis at a time, which is exact because a box window is a product of 1-D windows.
#[allow(clippy::too_many_arguments)]
fn pool_nd<B: Backend>(
	x: F<B>,
	max: bool,
	k: &[usize],
	s: &[usize],
	p: &[usize],
	d: &[usize],
	ceil: bool,
	include: bool,
) -> F<B> {
	match k.len() {
		1 if max => B::max_pool1d(x, k[0], s[0], p[0], d[0], ceil),
		1 => B::avg_pool1d(x, k[0], s[0], p[0], include, ceil),
		2 if max && !ceil => match cpu::max_pool2d::<B>(
			&x,
			cpu::Window { kernel: arr(k), stride: arr(s), pads: arr(p), dilation: arr(d) },
		) {
			Some(out) => out,
			None => B::max_pool2d(x, arr(k), arr(s), arr(p), arr(d), ceil),
		},
		2 if max => B::max_pool2d(x, arr(k), arr(s), arr(p), arr(d), ceil),
		2 => B::avg_pool2d(x, arr(k), arr(s), arr(p), include, ceil),
		r => {
			let mut x = x;
			for i in 0..r {
				let axis = 2 + i;
				let xs = shape::<B>(&x);
				let rank = xs.len();
				let mut perm: Vec<usize> = (0..rank).filter(|&a| a != axis).collect();
				perm.push(axis);
				let moved = B::float_permute(x, &perm);
				let rows: usize = xs.iter().product::<usize>() / xs[axis];
				let flat = B::float_reshape(moved, Shape::from(vec![rows, 1, xs[axis]]));
				let pooled = pool_nd::<B>(
					flat,
					max,
					&k[i..=i],
					&s[i..=i],
					&p[i..=i],
					&d[i..=i],
					ceil,
					include,
				);
				let len = shape::<B>(&pooled)[2];
				let mut back: Vec<usize> = perm[..rank - 1].iter().map(|&a| xs[a]).collect();
				back.push(len);
				let unflat = B::float_reshape(pooled, Shape::from(back));
				let mut inverse = vec![0; rank];
				for (pos, &a) in perm.iter().enumerate() {
					inverse[a] = pos;
				}
				x = B::float_permute(unflat, &inverse);
			}
			x
		},
	}
}

/// GlobalMaxPool or GlobalAveragePool.
struct GlobalPool {
	max: bool,
}

impl<B: Backend> Op<B> for GlobalPool {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let dims: Vec<usize> = (2..shape::<B>(&x).len()).collect();
		let reduce = if self.max { B::float_max_dim } else { B::float_mean_dim };
		one(over_dims::<B>(x, &dims, reduce))
	}
}
