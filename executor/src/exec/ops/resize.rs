//! Resampling: Resize, nearest and linear, one axis at a time on the host (n-linear
//! interpolation is separable; nearest is a gather, exact). Cubic, antialiasing,
//! tf_crop_and_resize and the opset-18 `axes` are refused at load.

use super::{boxed, Args, Attrs, Cx, Elems, Op, Registry, R};
use crate::exec::Value;
use burn::tensor::backend::Backend;

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	r.add("Resize", |node, opset| Resize::parse(node, opset));
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
	Nearest,
	Linear,
}

/// How an output coordinate maps to an input one.
#[derive(Clone, Copy)]
enum Coordinates {
	HalfPixel,
	PytorchHalfPixel,
	AlignCorners,
	Asymmetric,
}

/// How nearest mode rounds the input coordinate.
#[derive(Clone, Copy)]
enum Rounding {
	PreferFloor,
	PreferCeil,
	Floor,
	Ceil,
}

struct Resize {
	mode: Mode,
	coordinates: Coordinates,
	rounding: Rounding,
	/// Opset 10: inputs are (X, scales); from 11: (X, roi, scales, sizes).
	scales_at: usize,
}

impl Resize {
	fn parse<B: Backend>(node: &crate::onnx::Node, opset: i64) -> R<Box<dyn Op<B>>> {
		let a = Attrs(node);
		let mode = match a.string("mode").as_deref() {
			None | Some("nearest") => Mode::Nearest,
			Some("linear") | Some("bilinear") => Mode::Linear,
			Some(m) => return a.unsupported(format!("mode=\"{m}\"")),
		};
		let coordinates = match a.string("coordinate_transformation_mode").as_deref() {
			None if opset < 11 => Coordinates::Asymmetric,
			None | Some("half_pixel") => Coordinates::HalfPixel,
			Some("pytorch_half_pixel") => Coordinates::PytorchHalfPixel,
			Some("align_corners") => Coordinates::AlignCorners,
			Some("asymmetric") => Coordinates::Asymmetric,
			Some(m) => return a.unsupported(format!("coordinate_transformation_mode=\"{m}\"")),
		};
		let rounding = match a.string("nearest_mode").as_deref() {
			None if opset < 11 => Rounding::Floor,
			None | Some("round_prefer_floor") => Rounding::PreferFloor,
			Some("round_prefer_ceil") => Rounding::PreferCeil,
			Some("floor") => Rounding::Floor,
			Some("ceil") => Rounding::Ceil,
			Some(m) => return a.unsupported(format!("nearest_mode=\"{m}\"")),
		};
		if a.int("antialias", 0) != 0 {
			return a.unsupported("antialias");
		}
		if a.has("axes") {
			return a.unsupported("the axes attribute");
		}
		if a.string("keep_aspect_ratio_policy").is_some_and(|p| p != "stretch") {
			return a.unsupported("a keep_aspect_ratio_policy other than stretch");
		}
		boxed(Resize { mode, coordinates, rounding, scales_at: if opset < 11 { 1 } else { 2 } })
	}

	/// The input coordinate of output coordinate `x` on an axis resized from `len` to `out`
	/// with `scale`.
	fn source(&self, x: usize, len: usize, out: usize, scale: f32) -> f32 {
		let x = x as f32;
		match self.coordinates {
			Coordinates::HalfPixel => (x + 0.5) / scale - 0.5,
			Coordinates::PytorchHalfPixel =>
				if out > 1 {
					(x + 0.5) / scale - 0.5
				} else {
					0.0
				},
			Coordinates::AlignCorners =>
				if out == 1 {
					0.0
				} else {
					x * (len - 1) as f32 / (out - 1) as f32
				},
			Coordinates::Asymmetric => x / scale,
		}
	}

	fn nearest(&self, v: f32, len: usize) -> usize {
		let i = match self.rounding {
			Rounding::PreferFloor if v.fract() == 0.5 => v.floor(),
			Rounding::PreferCeil if v.fract() == 0.5 => v.ceil(),
			Rounding::PreferFloor | Rounding::PreferCeil => v.round(),
			Rounding::Floor => v.floor(),
			Rounding::Ceil => v.ceil(),
		};
		(i.max(0.0) as usize).min(len - 1)
	}
}

impl<B: Backend> Op<B> for Resize {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let (mut shape, mut v) = Elems::of(a.get(cx, 0)?)?;
		let rank = shape.len();
		let sizes = if self.scales_at == 2 { a.opt(3) } else { None };
		let scales = a.opt(self.scales_at).filter(|s| s.shape().iter().product::<usize>() > 0);
		let (out, scale): (Vec<usize>, Vec<f32>) = match (sizes, scales) {
			(Some(_), Some(_)) => return cx.invalid("both scales and sizes are given"),
			(Some(_), None) => {
				let s = a.host(cx, 3)?;
				if s.data.len() != rank || s.data.iter().any(|&d| d < 1) {
					return cx.invalid(format!("sizes {:?} for rank {rank}", s.data));
				}
				let out: Vec<usize> = s.data.iter().map(|&d| d as usize).collect();
				let scale = out.iter().zip(&shape).map(|(&o, &i)| o as f32 / i as f32).collect();
				(out, scale)
			},
			(None, Some(_)) => {
				let (_, s) = Elems::of(a.get(cx, self.scales_at)?)?;
				let scale: Vec<f32> = (0..s.len()).map(|i| s.get_f64(i) as f32).collect();
				if scale.len() != rank || scale.iter().any(|&f| !(f > 0.0 && f.is_finite())) {
					return cx.invalid(format!("scales {scale:?} for rank {rank}"));
				}
				let out = shape
					.iter()
					.zip(&scale)
					.map(|(&i, &f)| ((i as f32 * f).floor() as usize).max(1))
					.collect();
				(out, scale)
			},
			(None, None) => return cx.invalid("neither scales nor sizes is given"),
		};
		cx.check_elements(&out)?;
		if self.mode == Mode::Linear && matches!(v, Elems::Int(..)) {
			return cx.unsupported("linear resizing of an integer tensor");
		}
		for d in 0..rank {
			if out[d] == shape[d] && scale[d] == 1.0 {
				continue;
			}
			let (len, n) = (shape[d], out[d]);
			let inner: usize = shape[d + 1..].iter().product();
			let outer: usize = shape[..d].iter().product();
			let at = |o: usize, j: usize, i: usize| (o * len + j) * inner + i;
			v = match self.mode {
				Mode::Nearest => {
					let src: Vec<usize> = (0..n)
						.map(|j| self.nearest(self.source(j, len, n, scale[d]), len))
						.collect();
					let picks = (0..outer * n * inner).map(|k| {
						let (o, rest) = (k / (n * inner), k % (n * inner));
						at(o, src[rest / inner], rest % inner)
					});
					v.pick(picks)
				},
				Mode::Linear => {
					// Input coordinates clamped to the axis, as onnxruntime does.
					let taps: Vec<(usize, usize, f32)> = (0..n)
						.map(|j| {
							let x = self.source(j, len, n, scale[d]).clamp(0.0, (len - 1) as f32);
							let x0 = x.floor() as usize;
							(x0, (x0 + 1).min(len - 1), x - x0 as f32)
						})
						.collect();
					macro_rules! lerp {
						($vals:expr, $t:ty) => {
							(0..outer * n * inner)
								.map(|k| {
									let (o, rest) = (k / (n * inner), k % (n * inner));
									let (x0, x1, w) = taps[rest / inner];
									let i = rest % inner;
									let (p, q) = ($vals[at(o, x0, i)], $vals[at(o, x1, i)]);
									p * (1.0 - w as $t) + q * w as $t
								})
								.collect()
						};
					}
					match &v {
						Elems::F32(vals) => Elems::F32(lerp!(vals, f32)),
						Elems::F64(vals) => Elems::F64(lerp!(vals, f64)),
						Elems::Int(..) => unreachable!("refused above"),
					}
				},
			};
			shape[d] = n;
		}
		Ok(vec![v.into_value::<B>(&shape, cx.device)])
	}
}
