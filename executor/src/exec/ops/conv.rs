//! Convolutions: Conv (with the CPU kernel, which applies a Relu and a max pooling after it)
//! and ConvTranspose; and the window attributes they share with the poolings.

use super::{
	arr, boxed, pad_constant, shape, slice_axis, Args, Attrs, Cx, Epilogue, Fused, Op, Registry, F,
	R,
};
use crate::exec::{cpu, Value};
use burn::tensor::{
	backend::Backend,
	ops::{ConvOptions, ConvTransposeOptions},
};

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	r.add("Conv", |node, _| boxed(Conv::parse(Attrs(node))?));
	r.add("ConvTranspose", |node, _| {
		let a = Attrs(node);
		boxed(ConvTranspose {
			window: Spatial::parse(a)?,
			group: a.int("group", 1),
			output_padding: a.ints("output_padding"),
			output_shape: a.ints("output_shape"),
		})
	});
}

// ---------------------------------------------------------------------------------------
// Window attributes, of convolutions and poolings.

#[derive(Clone, Copy, PartialEq)]
pub(super) enum AutoPad {
	/// `NOTSET` or absent: the `pads` attribute.
	NotSet,
	Valid,
	SameUpper,
	SameLower,
}

/// `auto_pad`, `pads`, `strides` and `dilations`, read at load; they are checked against the
/// input's rank when the op runs.
#[derive(Clone)]
pub(super) struct Spatial {
	pub auto_pad: AutoPad,
	pads: Option<Vec<i64>>,
	strides: Option<Vec<i64>>,
	dilations: Option<Vec<i64>>,
}

impl Spatial {
	/// Refuses an `auto_pad` value ONNX does not define.
	pub(super) fn parse(a: Attrs) -> R<Spatial> {
		let auto_pad = match a.string("auto_pad").as_deref() {
			None | Some("NOTSET") => AutoPad::NotSet,
			Some("VALID") => AutoPad::Valid,
			Some("SAME_UPPER") => AutoPad::SameUpper,
			Some("SAME_LOWER") => AutoPad::SameLower,
			Some(other) => return a.unsupported(format!("auto_pad=\"{other}\"")),
		};
		Ok(Spatial {
			auto_pad,
			pads: a.ints("pads"),
			strides: a.ints("strides"),
			dilations: a.ints("dilations"),
		})
	}

	pub(super) fn strides<B: Backend>(&self, cx: &Cx<B>, r: usize) -> R<Vec<usize>> {
		spatial_attr(cx, "strides", self.strides.as_deref(), r, 1)
	}

	pub(super) fn dilations<B: Backend>(&self, cx: &Cx<B>, r: usize) -> R<Vec<usize>> {
		spatial_attr(cx, "dilations", self.dilations.as_deref(), r, 1)
	}

	/// Per-axis (begin, end) padding from `pads` or `auto_pad`.
	pub(super) fn pads<B: Backend>(
		&self,
		cx: &Cx<B>,
		input: &[usize],
		kernel: &[usize],
		strides: &[usize],
		dilations: &[usize],
	) -> R<Vec<(usize, usize)>> {
		let r = input.len();
		match self.auto_pad {
			AutoPad::SameUpper | AutoPad::SameLower => {
				let upper = self.auto_pad == AutoPad::SameUpper;
				Ok((0..r)
					.map(|i| {
						let out = input[i].div_ceil(strides[i]);
						let span = (kernel[i] - 1) * dilations[i] + 1;
						let total = ((out - 1) * strides[i] + span).saturating_sub(input[i]);
						same_pads(total, upper)
					})
					.collect())
			},
			AutoPad::Valid => Ok(vec![(0, 0); r]),
			AutoPad::NotSet => {
				let pads = self.pads.clone().unwrap_or_else(|| vec![0; 2 * r]);
				if pads.len() != 2 * r || pads.iter().any(|&p| p < 0) {
					return cx.invalid(format!("pads {pads:?} for {r} spatial axes"));
				}
				Ok((0..r).map(|i| (pads[i] as usize, pads[i + r] as usize)).collect())
			},
		}
	}
}

/// SAME padding: `total` split in halves, the odd element at the end (upper) or start (lower).
fn same_pads(total: usize, upper: bool) -> (usize, usize) {
	let small = total / 2;
	if upper {
		(small, total - small)
	} else {
		(total - small, small)
	}
}

fn spatial_attr<B: Backend>(
	cx: &Cx<B>,
	name: &str,
	value: Option<&[i64]>,
	r: usize,
	default: usize,
) -> R<Vec<usize>> {
	match value {
		None => Ok(vec![default; r]),
		Some(v) if v.len() == r && v.iter().all(|&x| x >= 1) =>
			Ok(v.iter().map(|&x| x as usize).collect()),
		Some(v) => cx.invalid(format!("{name} {v:?} for {r} spatial axes")),
	}
}

/// Applies the asymmetric part of `pads` explicitly, leaving symmetric padding for the kernel.
pub(super) fn split_pads<B: Backend>(
	cx: &Cx<B>,
	mut x: F<B>,
	pads: &[(usize, usize)],
	value: f32,
) -> (F<B>, Vec<usize>) {
	let mut sym = Vec::with_capacity(pads.len());
	for (i, &(b, e)) in pads.iter().enumerate() {
		let p = b.min(e);
		x = pad_constant(cx, x, 2 + i, b - p, e - p, value);
		sym.push(p);
	}
	(x, sym)
}

// ---------------------------------------------------------------------------------------
// The operators.

#[derive(Clone)]
pub(super) struct Conv {
	window: Spatial,
	group: i64,
	kernel_shape: Option<Vec<i64>>,
}

impl<B: Backend> Op<B> for Conv {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		Ok(self.run_fused(cx, a, &[])?.0)
	}

	fn fuses(&self, chain: &[Epilogue<'_>]) -> bool {
		matches!(
			chain,
			[Epilogue::Relu] | [Epilogue::MaxPool(_)] | [Epilogue::Relu, Epilogue::MaxPool(_)]
		)
	}

	/// Conv, and the number of epilogue nodes (a Relu, a MaxPool) its CPU kernel applied.
	fn run_fused(
		&self,
		cx: &Cx<B>,
		a: Args<B>,
		epilogue: &[Fused<'_>],
	) -> R<(Vec<Value<B>>, usize)> {
		let (x, w, bias) = (a.float(cx, 0)?, a.float(cx, 1)?, a.opt_float(cx, 2)?);
		let (out, fused) = self.apply(cx, x, w, bias, epilogue)?;
		Ok((vec![Value::Float(out)], fused))
	}
}

impl Conv {
	/// Reads ConvInteger's and QLinearConv's attributes, which are Conv's.
	pub(super) fn parse(a: Attrs) -> R<Conv> {
		Ok(Conv {
			window: Spatial::parse(a)?,
			group: a.int("group", 1),
			kernel_shape: a.ints("kernel_shape"),
		})
	}

	pub(super) fn group(&self) -> i64 {
		self.group
	}

	/// The convolution of `x` by `w` (plus `bias`), and how many epilogue nodes it applied.
	pub(super) fn apply<B: Backend>(
		&self,
		cx: &Cx<B>,
		x: F<B>,
		w: F<B>,
		bias: Option<F<B>>,
		epilogue: &[Fused<'_>],
	) -> R<(F<B>, usize)> {
		let (xs, ws) = (shape::<B>(&x), shape::<B>(&w));
		let r = xs.len().saturating_sub(2);
		if r == 0 || ws.len() != xs.len() {
			return cx.invalid(format!("input {xs:?} and weight {ws:?} ranks"));
		}
		// The window arithmetic below (and the kernels) assume at least one element each way.
		if xs[2..].contains(&0) || ws[2..].contains(&0) {
			return cx.invalid(format!("empty spatial extent: input {xs:?}, weight {ws:?}"));
		}
		let group = self.group;
		if group < 1 || xs[1] as i64 != ws[1] as i64 * group || ws[0] as i64 % group != 0 {
			return cx.invalid(format!("channels: input {xs:?}, weight {ws:?}, group {group}"));
		}
		if let Some(k) = &self.kernel_shape {
			if k.iter().map(|&v| v as usize).ne(ws[2..].iter().copied()) {
				return cx.invalid(format!("kernel_shape {k:?} does not match weight {ws:?}"));
			}
		}
		if let Some(b) = &bias {
			if shape::<B>(b) != [ws[0]] {
				return cx.invalid("bias must have one value per output channel");
			}
		}
		let strides = self.window.strides(cx, r)?;
		let dilations = self.window.dilations(cx, r)?;
		let pads = self.window.pads(cx, &xs[2..], &ws[2..], &strides, &dilations)?;
		for i in 0..r {
			if xs[2 + i] + pads[i].0 + pads[i].1 < (ws[2 + i] - 1) * dilations[i] + 1 {
				return cx.invalid("the kernel is larger than the padded input");
			}
		}
		let (x, p) = split_pads(cx, x, &pads, 0.0);
		let g = group as usize;
		let out = match r {
			1 => B::conv1d(x, w, bias, ConvOptions::new([strides[0]], [p[0]], [dilations[0]], g)),
			2 => {
				let relu = matches!(epilogue.first(), Some(Fused { op: Epilogue::Relu, .. }));
				// A MaxPool next is pooled per image, inside the kernel, if it has the form the
				// CPU pooling kernel takes; otherwise it runs as its own node.
				let pool = match epilogue.get(relu as usize) {
					Some(&Fused { node, op: Epilogue::MaxPool(pool) }) => {
						let pcx = Cx::<B> { node, device: cx.device };
						let padded = shape::<B>(&x);
						let out: Vec<usize> = (0..2)
							.map(|i| {
								cpu::out_len(
									padded[2 + i],
									p[i],
									ws[2 + i],
									strides[i],
									dilations[i],
								)
							})
							.collect();
						let window = pool.window(&pcx, &[xs[0], ws[0], out[0], out[1]])?;
						window.cpu_max_2d()
					},
					_ => None,
				};
				let (k, s, d) = (arr(&strides), arr(&p), arr(&dilations));
				match cpu::conv2d::<B>(&x, &w, bias.as_ref(), k, s, d, g, relu, pool) {
					Some(out) => return Ok((out, relu as usize + pool.is_some() as usize)),
					None => B::conv2d(x, w, bias, ConvOptions::new(k, s, d, g)),
				}
			},
			3 =>
				B::conv3d(x, w, bias, ConvOptions::new(arr(&strides), arr(&p), arr(&dilations), g)),
			_ => return cx.unsupported(format!("{r}-d convolution")),
		};
		Ok((out, 0))
	}
}

struct ConvTranspose {
	window: Spatial,
	group: i64,
	output_padding: Option<Vec<i64>>,
	output_shape: Option<Vec<i64>>,
}

impl<B: Backend> Op<B> for ConvTranspose {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (x, w, bias) = (a.float(cx, 0)?, a.float(cx, 1)?, a.opt_float(cx, 2)?);
		let (xs, ws) = (shape::<B>(&x), shape::<B>(&w));
		let r = xs.len().saturating_sub(2);
		let g = self.group;
		if r == 0 || ws.len() != xs.len() || g < 1 || ws[0] != xs[1] || xs[1] % g as usize != 0 {
			return cx.invalid(format!("input {xs:?}, weight {ws:?}, group {g}"));
		}
		if xs[2..].contains(&0) || ws[2..].contains(&0) {
			return cx.invalid(format!("empty spatial extent: input {xs:?}, weight {ws:?}"));
		}
		let g = g as usize;
		let strides = self.window.strides(cx, r)?;
		let dilations = self.window.dilations(cx, r)?;
		let out_pad: Vec<usize> = match &self.output_padding {
			None => vec![0; r],
			Some(v) if v.len() == r && v.iter().all(|&p| p >= 0) =>
				v.iter().map(|&p| p as usize).collect(),
			Some(v) => return cx.invalid(format!("output_padding {v:?}")),
		};
		// Full output size before cropping by the pads.
		let full: Vec<usize> = (0..r)
			.map(|i| strides[i] * (xs[2 + i] - 1) + out_pad[i] + (ws[2 + i] - 1) * dilations[i] + 1)
			.collect();
		let auto_pad = self.window.auto_pad;
		let pads: Vec<(usize, usize)> = if let Some(shape) = &self.output_shape {
			let want: Vec<usize> = shape.iter().rev().take(r).rev().map(|&d| d as usize).collect();
			if want.len() != r || want.iter().zip(&full).any(|(w, f)| w > f) {
				return cx.invalid(format!("output_shape {shape:?}"));
			}
			let upper = auto_pad != AutoPad::SameLower;
			(0..r)
				.map(|i| {
					let total = full[i] - want[i];
					same_pads(total, upper)
				})
				.collect()
		} else {
			match auto_pad {
				AutoPad::SameUpper | AutoPad::SameLower => {
					let upper = auto_pad == AutoPad::SameUpper;
					(0..r)
						.map(|i| {
							let total = full[i].saturating_sub(xs[2 + i] * strides[i]);
							same_pads(total, upper)
						})
						.collect()
				},
				_ => self.window.pads(cx, &xs[2..], &ws[2..], &strides, &dilations)?,
			}
		};
		if (0..r).any(|i| pads[i].0 + pads[i].1 >= full[i]) {
			return cx.invalid("pads remove the whole output");
		}
		// The kernel takes symmetric padding; the remainder is cropped afterwards.
		let p: Vec<usize> = pads.iter().map(|&(b, e)| b.min(e)).collect();
		let mut out = match r {
			1 => B::conv_transpose1d(
				x,
				w,
				bias,
				ConvTransposeOptions::new([strides[0]], [p[0]], [out_pad[0]], [dilations[0]], g),
			),
			2 => B::conv_transpose2d(
				x,
				w,
				bias,
				ConvTransposeOptions::new(
					arr(&strides),
					arr(&p),
					arr(&out_pad),
					arr(&dilations),
					g,
				),
			),
			3 => B::conv_transpose3d(
				x,
				w,
				bias,
				ConvTransposeOptions::new(
					arr(&strides),
					arr(&p),
					arr(&out_pad),
					arr(&dilations),
					g,
				),
			),
			_ => return cx.unsupported(format!("{r}-d transposed convolution")),
		};
		for (i, &(b, e)) in pads.iter().enumerate() {
			let len = shape::<B>(&out)[2 + i];
			let (cut_b, cut_e) = (b - p[i], e - p[i]);
			if cut_b + cut_e > 0 {
				out = slice_axis::<B>(out, 2 + i, cut_b, len - cut_e);
			}
		}
		Ok(vec![Value::Float(out)])
	}
}
