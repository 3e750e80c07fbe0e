//! int8 quantization as onnxruntime's `quantize_dynamic` and `quantize_static` write it:
//! QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear and MatMulInteger.
//!
//! Quantized tensors live on the host like every integer tensor. The rounding follows
//! onnxruntime's CPU kernels (divide by the scale, clamp, round half to even), and integer
//! products are exact: MatMulInteger multiplies in f32 over depth slices whose partial sums
//! stay below 2^24, so its result is the same on every backend and in every summation order.

use super::{boxed, linalg::matmul, shape, slice_axis, Args, Attrs, Cx, Op, Registry, R};
use crate::exec::{
	float_from_vec, float_to_vec,
	host::{self, Host},
	Value,
};
use burn::tensor::{backend::Backend, ops::FloatTensor, Shape, TensorData};
use opg_primitives::ElemType;

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	r.add("QuantizeLinear", |node, _| {
		let a = Attrs(node);
		if a.int("block_size", 0) != 0 {
			return a.unsupported("blocked quantization (block_size)");
		}
		let output = match a.int_opt("output_dtype") {
			None | Some(0) => None,
			Some(t) => match crate::onnx::elem_type(t as i32) {
				Some(e @ (ElemType::U8 | ElemType::I8)) => Some(e),
				_ => return a.unsupported(format!("quantizing to ONNX type {t}")),
			},
		};
		boxed(QuantizeLinear { axis: a.int("axis", 1), output })
	});
	r.add("DequantizeLinear", |node, _| {
		let a = Attrs(node);
		if a.int("block_size", 0) != 0 {
			return a.unsupported("blocked dequantization (block_size)");
		}
		if a.int_opt("output_dtype").is_some_and(|t| t != 0 && t != 1) {
			return a.unsupported("an output type other than float32");
		}
		boxed(DequantizeLinear { axis: a.int("axis", 1) })
	});
	r.add("DynamicQuantizeLinear", |_, _| boxed(DynamicQuantizeLinear));
	r.add("MatMulInteger", |_, _| boxed(MatMulInteger));
}

/// The range of an 8-bit type.
fn range(elem: ElemType) -> Option<(f32, f32)> {
	match elem {
		ElemType::U8 => Some((0.0, 255.0)),
		ElemType::I8 => Some((-128.0, 127.0)),
		_ => None,
	}
}

/// onnxruntime's quantization of one value: `x / scale`, clamped to the type's range less the
/// zero point, rounded half to even, plus the zero point.
fn quantize(x: f32, scale: f32, zero: i64, (lo, hi): (f32, f32)) -> i64 {
	let z = zero as f32;
	let v = (x / scale).max(lo - z).min(hi - z);
	// NaN (0/0, or a NaN input) becomes the zero point, as the SIMD kernels' conversion of
	// their clamped value does.
	if v.is_nan() {
		return zero;
	}
	v.round_ties_even() as i64 + zero
}

/// The per-element scale and zero-point indices of a per-tensor (one element) or per-axis
/// (1-D along `axis`) quantization parameter of a tensor of `shape`.
fn param_index<B: Backend>(
	cx: &Cx<B>,
	shape: &[usize],
	axis: i64,
	len: usize,
) -> R<Box<dyn Fn(usize) -> usize>> {
	if len == 1 {
		return Ok(Box::new(|_| 0));
	}
	let axis = cx.axis(axis, shape.len())?;
	if shape[axis] != len {
		return cx.invalid(format!(
			"{len} scales for axis {axis} of length {} (shape {shape:?})",
			shape[axis]
		));
	}
	let inner: usize = shape[axis + 1..].iter().product();
	Ok(Box::new(move |i| (i / inner) % len))
}

/// Reads a scale input: a scalar or a 1-D float tensor.
fn scales<B: Backend>(cx: &Cx<B>, a: &Args<B>, i: usize) -> R<Vec<f32>> {
	let s = a.float(cx, i)?;
	if shape::<B>(&s).len() > 1 {
		return cx.invalid("the scale must be a scalar or 1-D");
	}
	float_to_vec::<B>(s)
}

/// Reads an optional zero-point input: a scalar or a 1-D 8-bit (or, for
/// DequantizeLinear, int32) tensor; `None` when omitted.
fn zero_points<'a, B: Backend>(cx: &Cx<B>, a: &'a Args<B>, i: usize) -> R<Option<&'a Host>> {
	let Some(_) = a.opt(i) else { return Ok(None) };
	let h = a.host(cx, i)?;
	if h.shape.len() > 1 {
		return cx.invalid("the zero point must be a scalar or 1-D");
	}
	Ok(Some(h))
}

struct QuantizeLinear {
	axis: i64,
	/// `output_dtype` (opset 21), when it names one.
	output: Option<ElemType>,
}

impl<B: Backend> Op<B> for QuantizeLinear {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let xs = shape::<B>(&x);
		let scale = scales(cx, &a, 1)?;
		let zero = zero_points(cx, &a, 2)?;
		let elem = match (zero, self.output) {
			(Some(z), Some(o)) if z.elem != o =>
				return cx.invalid("the zero point's type differs from output_dtype"),
			(Some(z), _) => z.elem,
			(None, o) => o.unwrap_or(ElemType::U8),
		};
		let Some(bounds) = range(elem) else {
			return cx.unsupported(format!("quantizing to {elem:?}"));
		};
		if zero.is_some_and(|z| z.data.len() != scale.len()) {
			return cx.invalid("the scale and the zero point differ in length");
		}
		let at = param_index(cx, &xs, self.axis, scale.len())?;
		let data = float_to_vec::<B>(x)?
			.into_iter()
			.enumerate()
			.map(|(i, v)| {
				let p = at(i);
				quantize(v, scale[p], zero.map_or(0, |z| z.data[p]), bounds)
			})
			.collect();
		Ok(vec![Value::Host(Host::new(elem, xs, data))])
	}
}

struct DequantizeLinear {
	axis: i64,
}

impl<B: Backend> Op<B> for DequantizeLinear {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.host(cx, 0)?;
		if !matches!(x.elem, ElemType::U8 | ElemType::I8 | ElemType::I32) {
			return cx.unsupported(format!("dequantizing {:?}", x.elem));
		}
		let scale = scales(cx, &a, 1)?;
		let zero = zero_points(cx, &a, 2)?;
		if let Some(z) = zero {
			if z.elem != x.elem || z.data.len() != scale.len() {
				return cx.invalid("the zero point must match the input's type and the scale");
			}
		}
		let at = param_index(cx, &x.shape, self.axis, scale.len())?;
		// As onnxruntime: the difference is converted to float, then scaled.
		let data = x
			.data
			.iter()
			.enumerate()
			.map(|(i, &v)| {
				let p = at(i);
				(v - zero.map_or(0, |z| z.data[p])) as f32 * scale[p]
			})
			.collect();
		Ok(vec![Value::Float(float_from_vec::<B>(data, &x.shape, cx.device))])
	}
}

/// uint8 quantization of a float tensor with a scale and zero point chosen from its range
/// (which always includes 0), as onnxruntime computes them.
struct DynamicQuantizeLinear;

impl<B: Backend> Op<B> for DynamicQuantizeLinear {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let x = a.float(cx, 0)?;
		let xs = shape::<B>(&x);
		let v = float_to_vec::<B>(x)?;
		if v.iter().any(|v| !v.is_finite()) {
			return cx.invalid("a non-finite value has no quantization range");
		}
		let lo = v.iter().copied().fold(0f32, f32::min);
		let hi = v.iter().copied().fold(0f32, f32::max);
		// All zeros: onnxruntime's scale of 1 (the specification's 0 would divide by zero).
		let scale = if hi == lo { 1.0 } else { (hi - lo) / 255.0 };
		let zero = (0.0 - lo / scale).clamp(0.0, 255.0).round_ties_even() as i64;
		// The same arithmetic as `quantize`, in a vectorized kernel.
		let data = crate::exec::cpu::quantize_u8(&v, scale, zero);
		Ok(vec![
			Value::Host(Host::new(ElemType::U8, xs, data)),
			Value::Float(float_from_vec::<B>(vec![scale], &[], cx.device)),
			Value::Host(Host::new(ElemType::U8, vec![], vec![zero])),
		])
	}
}

/// The int32 product of two 8-bit matrices less their zero points (numpy MatMul semantics).
struct MatMulInteger;

/// Every f32 sum of integers whose magnitudes add up to less than this is exact.
const EXACT_F32: i64 = 1 << 24;

/// An 8-bit operand less its zero point, as f32 on the device, and its largest magnitude.
struct Centred<B: Backend> {
	t: FloatTensor<B>,
	rank: usize,
	max: i64,
}

impl MatMulInteger {
	/// `m - zero`. A's zero point is a scalar or one per row (its second-to-last axis), B's a
	/// scalar or one per column (its last axis).
	fn centred<B: Backend>(cx: &Cx<B>, m: &Host, zero: Option<&Host>, rows: bool) -> R<Centred<B>> {
		if !matches!(m.elem, ElemType::U8 | ElemType::I8) {
			return cx.invalid(format!("MatMulInteger multiplies 8-bit tensors, not {:?}", m.elem));
		}
		let rank = m.shape.len();
		let index: Box<dyn Fn(usize) -> usize> = match zero {
			None => Box::new(|_| 0),
			Some(z) if z.elem != m.elem => return cx.invalid("a zero point's type differs"),
			Some(z) if z.data.len() == 1 => Box::new(|_| 0),
			Some(z) if rows && rank >= 2 && z.data.len() == m.shape[rank - 2] => {
				let cols = m.shape[rank - 1];
				let n = z.data.len();
				Box::new(move |i| (i / cols) % n)
			},
			Some(z) if !rows && z.data.len() == m.shape[rank.max(1) - 1] => {
				let n = z.data.len();
				Box::new(move |i| i % n)
			},
			Some(_) => return cx.invalid("a zero point must be a scalar or one per row/column"),
		};
		let mut max = 0;
		let data: Vec<f32> = m
			.data
			.iter()
			.enumerate()
			.map(|(i, &v)| {
				let c = v - zero.map_or(0, |z| z.data[index(i)]);
				max = max.max(c.abs());
				c as f32
			})
			.collect();
		let t = B::float_from_data(TensorData::new(data, Shape::from(m.shape.clone())), cx.device);
		Ok(Centred { t, rank, max })
	}

	/// A (input 0, less its zero point, input 2) times the centred B `q`, as int32, exactly:
	/// f32 products over slices of the depth short enough that no partial sum can reach 2^24
	/// (any summation order, fused or not, is then exact, on every backend), the slices'
	/// results added as integers.
	fn times<B: Backend>(cx: &Cx<B>, a: &Args<B>, q: &Centred<B>) -> R<Vec<Value<B>>> {
		let x = a.host(cx, 0)?;
		if x.shape.is_empty() {
			return cx.invalid("MatMulInteger of a scalar");
		}
		let az = a.opt(2).map(|_| a.host(cx, 2)).transpose()?;
		let p = Self::centred(cx, x, az, true)?;
		let depth = x.shape[x.shape.len() - 1];
		let q_axis = if q.rank == 1 { 0 } else { q.rank - 2 };
		let bound = p.max * q.max;
		let step = if bound == 0 { depth } else { ((EXACT_F32 - 1) / bound).max(1) as usize };
		let (mut sum, mut out_shape) = (Vec::<i64>::new(), Vec::new());
		for start in (0..depth.max(1)).step_by(step.max(1)) {
			let end = (start + step).min(depth);
			let (pa, qb) = if start == 0 && end == depth {
				(p.t.clone(), q.t.clone())
			} else {
				(
					slice_axis::<B>(p.t.clone(), p.rank - 1, start, end),
					slice_axis::<B>(q.t.clone(), q_axis, start, end),
				)
			};
			let out = matmul(cx, pa, qb)?;
			out_shape = shape::<B>(&out);
			let part = float_to_vec::<B>(out)?;
			if sum.is_empty() {
				sum = part.into_iter().map(|v| v as i64).collect();
			} else {
				sum.iter_mut().zip(part).for_each(|(s, v)| *s += v as i64);
			}
		}
		// int32 wraps as onnxruntime's accumulator does.
		let data = sum.into_iter().map(|v| host::wrap(ElemType::I32, v)).collect();
		Ok(vec![Value::Host(Host::new(ElemType::I32, out_shape, data))])
	}
}

impl<B: Backend> Op<B> for MatMulInteger {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let y = a.host(cx, 1)?;
		let bz = a.opt(3).map(|_| a.host(cx, 3)).transpose()?;
		if y.shape.is_empty() {
			return cx.invalid("MatMulInteger of a scalar");
		}
		let q = Self::centred(cx, y, bz, false)?;
		Self::times(cx, &a, &q)
	}

	/// Constant weights (B and its zero point, as quantize_dynamic writes them) are centred
	/// and converted once.
	fn specialize(&self, cx: &Cx<B>, known: &[Option<&Value<B>>]) -> Option<Box<dyn Op<B>>> {
		let Some(Some(Value::Host(y))) = known.get(1) else { return None };
		let bz = match known.get(3) {
			None | Some(None) if cx.node.inputs.get(3).is_none_or(|n| n.is_empty()) => None,
			Some(Some(Value::Host(z))) => Some(z),
			_ => return None,
		};
		if y.shape.is_empty() {
			return None;
		}
		let b = Self::centred(cx, y, bz, false).ok()?;
		Some(Box::new(MatMulIntegerPacked::<B> { b }))
	}
}

/// MatMulInteger with B centred and on the device since load.
struct MatMulIntegerPacked<B: Backend> {
	b: Centred<B>,
}

impl<B: Backend> Op<B> for MatMulIntegerPacked<B> {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		MatMulInteger::times(cx, &a, &self.b)
	}
}
