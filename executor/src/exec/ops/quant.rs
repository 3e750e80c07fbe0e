//! int8 quantization as onnxruntime's `quantize_dynamic` and `quantize_static` write it:
//! QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear and MatMulInteger.
//!
//! Quantized tensors live on the host like every integer tensor. The rounding follows
//! onnxruntime's CPU kernels (divide by the scale, clamp, round half to even), and integer
//! products are exact: MatMulInteger multiplies in f64, where every partial sum of 8-bit
//! products is an integer below 2^53, so its result is the same on every backend and in
//! every summation order.

use super::{boxed, linalg::matmul, shape, Args, Attrs, Cx, Op, Registry, R};
use crate::exec::{
	float_from_vec, float_to_vec,
	host::{self, Host},
	Value,
};
use burn::tensor::{backend::Backend, Shape, TensorData};
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
		let data = v.iter().map(|&x| quantize(x, scale, zero, (0.0, 255.0))).collect();
		Ok(vec![
			Value::Host(Host::new(ElemType::U8, xs, data)),
			Value::Float(float_from_vec::<B>(vec![scale], &[], cx.device)),
			Value::Host(Host::new(ElemType::U8, vec![], vec![zero])),
		])
	}
}

/// The int32 product of two 8-bit matrices less their zero points (numpy MatMul semantics).
struct MatMulInteger;

impl MatMulInteger {
	/// `m - zero` as an f64 tensor on the device. A's zero point is a scalar or one per row
	/// (its second-to-last axis), B's a scalar or one per column (its last axis).
	fn centred<B: Backend>(
		cx: &Cx<B>,
		m: &Host,
		zero: Option<&Host>,
		rows: bool,
	) -> R<burn::tensor::ops::FloatTensor<B>> {
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
		let data: Vec<f64> = m
			.data
			.iter()
			.enumerate()
			.map(|(i, &v)| (v - zero.map_or(0, |z| z.data[index(i)])) as f64)
			.collect();
		let shape = Shape::from(m.shape.clone());
		Ok(B::float_from_data(TensorData::new(data, shape), cx.device))
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
		Self::times(cx, &a, q)
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
	b: burn::tensor::ops::FloatTensor<B>,
}

impl<B: Backend> Op<B> for MatMulIntegerPacked<B> {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		MatMulInteger::times(cx, &a, self.b.clone())
	}
}

impl MatMulInteger {
	/// A (input 0, less its zero point, input 2) times the centred B `q`, as int32.
	fn times<B: Backend>(
		cx: &Cx<B>,
		a: &Args<B>,
		q: burn::tensor::ops::FloatTensor<B>,
	) -> R<Vec<Value<B>>> {
		let x = a.host(cx, 0)?;
		if x.shape.is_empty() {
			return cx.invalid("MatMulInteger of a scalar");
		}
		let az = a.opt(2).map(|_| a.host(cx, 2)).transpose()?;
		let p = Self::centred(cx, x, az, true)?;
		let out = matmul(cx, p, q)?;
		let s = shape::<B>(&out);
		let data = crate::exec::read::<B>(out)?
			.into_vec::<f64>()
			.map_err(|e| crate::exec::ExecError::Backend(format!("{e:?}")))?;
		// Exact integers: the cast loses nothing; int32 wraps as onnxruntime's accumulator.
		let data = data.into_iter().map(|v| host::wrap(ElemType::I32, v as i64)).collect();
		Ok(vec![Value::Host(Host::new(ElemType::I32, s, data))])
	}
}
