//! int8 quantization as onnxruntime's `quantize_dynamic` and `quantize_static` write it:
//! QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, QLinearMatMul,
//! ConvInteger and QLinearConv.
//!
//! Quantized tensors live on the host like every integer tensor. The rounding follows
//! onnxruntime's CPU kernels (divide by the scale, clamp, round half to even), and integer
//! products are exact: the integer matmuls and convolutions multiply in f32 over depth slices
//! whose partial sums stay below 2^24, so their result is the same on every backend and in
//! every summation order. The QLinear ops requantize their int32 sums as onnxruntime does.

use super::{
	boxed, conv::Conv, linalg::matmul, shape, slice_axis, Args, Attrs, Cx, Op, Registry, R,
};
use crate::exec::{
	cpu, float_from_vec, float_to_vec,
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
	r.add("MatMulInteger", |_, _| {
		boxed(IntegerMatMul::<B> { linear: false, b: None, packed: None, int8: None })
	});
	r.add("QLinearMatMul", |_, _| {
		boxed(IntegerMatMul::<B> { linear: true, b: None, packed: None, int8: None })
	});
	r.add("ConvInteger", |node, _| {
		boxed(IntegerConv::<B> { conv: Conv::parse(Attrs(node))?, linear: false, w: None })
	});
	r.add("QLinearConv", |node, _| {
		boxed(IntegerConv::<B> { conv: Conv::parse(Attrs(node))?, linear: true, w: None })
	});
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
		let Some((lo, hi)) = crate::exec::cpu::min_max_finite(&v) else {
			return cx.invalid("a non-finite value has no quantization range");
		};
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

/// Every f32 sum of integers whose magnitudes add up to less than this is exact.
const EXACT_F32: i64 = 1 << 24;

/// An 8-bit operand less its zero point, as f32 on the device, and its largest magnitude.
struct Centred<B: Backend> {
	t: FloatTensor<B>,
	rank: usize,
	max: i64,
}

/// `m - zero` as f32 values, with `at(i)` the index in `zero` of element `i`'s zero point,
/// and their largest magnitude.
fn centre_values<B: Backend>(
	cx: &Cx<B>,
	m: &Host,
	zero: Option<&Host>,
	at: impl Fn(usize) -> usize,
) -> R<(Vec<f32>, i64)> {
	if !matches!(m.elem, ElemType::U8 | ElemType::I8) {
		return cx.invalid(format!("{} takes 8-bit tensors, not {:?}", cx.node.op, m.elem));
	}
	if zero.is_some_and(|z| z.elem != m.elem) {
		return cx.invalid("a zero point's type differs from its tensor's");
	}
	let mut max = 0;
	let data: Vec<f32> = match zero.map(|z| &z.data[..]) {
		// One zero point (the common case): a loop without an index per element.
		None | Some([_]) => {
			let z = zero.map_or(0, |z| z.data[0]);
			m.data
				.iter()
				.map(|&v| {
					let c = v - z;
					max = max.max(c.abs());
					c as f32
				})
				.collect()
		},
		Some(z) => m
			.data
			.iter()
			.enumerate()
			.map(|(i, &v)| {
				let c = v - z[at(i)];
				max = max.max(c.abs());
				c as f32
			})
			.collect(),
	};
	Ok((data, max))
}

/// [`centre_values`] as a tensor on the device.
fn centre<B: Backend>(
	cx: &Cx<B>,
	m: &Host,
	zero: Option<&Host>,
	at: impl Fn(usize) -> usize,
) -> R<Centred<B>> {
	let (data, max) = centre_values(cx, m, zero, at)?;
	let t = B::float_from_data(TensorData::new(data, Shape::from(m.shape.clone())), cx.device);
	Ok(Centred { t, rank: m.shape.len(), max })
}

/// A scale or zero-point input with one value, or (where `per` is given) one value per
/// `per` (rows, columns, output channels): the length it has.
fn param_len<B: Backend>(cx: &Cx<B>, shape: &[usize], len: usize, per: Option<usize>) -> R<usize> {
	if shape.len() > 1 || (len != 1 && Some(len) != per) {
		return cx.invalid(format!(
			"a scale or zero point of shape {shape:?}: one value{} expected",
			per.map_or(String::new(), |n| format!(" or {n}"))
		));
	}
	Ok(len)
}

/// The zero point of an optional input `i`, checked to hold one value or one per `per`.
fn zero_input<'a, B: Backend>(
	cx: &Cx<B>,
	a: &'a Args<B>,
	i: usize,
	per: Option<usize>,
) -> R<Option<&'a Host>> {
	let Some(z) = zero_points(cx, a, i)? else { return Ok(None) };
	param_len(cx, &z.shape, z.data.len(), per)?;
	Ok(Some(z))
}

/// A scale input with one value, or one per `per`.
fn scale_input<B: Backend>(cx: &Cx<B>, a: &Args<B>, i: usize, per: Option<usize>) -> R<Vec<f32>> {
	let s = scales(cx, a, i)?;
	param_len(cx, &[s.len()], s.len(), per)?;
	Ok(s)
}

/// onnxruntime's requantization of an int32 sum: times the output scale (input scale times
/// weight scale, over the output scale, in that order, in f32), clamped to the output type's
/// range less the zero point, rounded half to even, plus the zero point.
fn requantize(sum: i64, scale: f32, zero: i64, (lo, hi): (f32, f32)) -> i64 {
	let z = zero as f32;
	let v = (sum as i32 as f32 * scale).max(lo - z).min(hi - z);
	v.round_ties_even() as i64 + zero
}

/// The QLinear ops' output: `sums` of `shape` (with `out(i)` the index of element `i`'s output row
/// or channel, `scale(i)` the index of its input scale) requantized to the type of the output
/// zero point, input `y`.
fn requantized<B: Backend>(
	cx: &Cx<B>,
	a: &Args<B>,
	y: usize,
	(sums, shape): (Vec<i64>, Vec<usize>),
	scale: impl Fn(usize) -> f32,
	per_out: usize,
	out: impl Fn(usize) -> usize,
) -> R<Vec<Value<B>>> {
	let ys = scale_input(cx, a, y, Some(per_out))?;
	let Some(yz) = zero_input(cx, a, y + 1, Some(per_out))? else {
		return cx.invalid("the output zero point is missing");
	};
	if yz.data.len() != ys.len() {
		return cx.invalid("the output scale and zero point differ in length");
	}
	let Some(bounds) = range(yz.elem) else {
		return cx.invalid(format!("quantizing to {:?}", yz.elem));
	};
	let data = sums
		.into_iter()
		.enumerate()
		.map(|(i, s)| {
			let o = if ys.len() == 1 { 0 } else { out(i) };
			requantize(s, scale(i) / ys[o], yz.data[o], bounds)
		})
		.collect();
	Ok(vec![Value::Host(Host::new(yz.elem, shape, data))])
}

/// MatMulInteger (A, B, A's zero point, B's zero point: the int32 product of the centred
/// operands, numpy MatMul semantics) and QLinearMatMul (A, its scale and zero point, B, its
/// scale and zero point, the output's scale and zero point: the product requantized). A's
/// parameters are one value or one per row (its second-to-last axis), B's and the output's
/// one value or one per column.
struct IntegerMatMul<B: Backend> {
	linear: bool,
	/// B centred at load, when it and its zero point are constants.
	b: Option<Centred<B>>,
	/// A 2-D constant B, also packed for the CPU kernel of few-row products.
	packed: Option<cpu::PackedB>,
	/// A 2-D constant B with a constant zero point, packed as bytes for CPUs with AVX-512
	/// VNNI (the same exact sums, for any number of rows).
	int8: Option<cpu::PackedI8>,
}

/// Most rows (all batch axes together) the packed kernel takes, as for MatMul.
const PACKED_ROWS: usize = 64;

/// Where the integer ops (`linear`: the QLinear forms, which put scales between) take the
/// activation, its zero point, the weight and its zero point.
fn slots(linear: bool) -> [usize; 4] {
	if linear {
		[0, 2, 3, 5]
	} else {
		[0, 2, 1, 3]
	}
}

impl<B: Backend> IntegerMatMul<B> {
	/// The inputs A, A's zero point, B, B's zero point.
	fn slots(&self) -> [usize; 4] {
		slots(self.linear)
	}

	/// B less its zero point, one value or one per column.
	fn centre_b(cx: &Cx<B>, m: &Host, zero: Option<&Host>) -> R<Centred<B>> {
		let Some(&cols) = m.shape.last() else {
			return cx.invalid(format!("{} of a scalar", cx.node.op));
		};
		if let Some(z) = zero {
			param_len(cx, &z.shape, z.data.len(), Some(cols))?;
		}
		let n = zero.map_or(1, |z| z.data.len());
		centre(cx, m, zero, |i| i % cols % n)
	}

	/// A times the centred B `q`, as exact integers (not yet wrapped to int32), and the
	/// product's shape: f32 products over slices of the depth short enough that no partial
	/// sum can reach 2^24 (any summation order, fused or not, is then exact, on every
	/// backend), the slices' results added as integers.
	fn times(
		&self,
		cx: &Cx<B>,
		a: &Args<B>,
		[xi, xz, ..]: [usize; 4],
		q: &Centred<B>,
	) -> R<(Vec<i64>, Vec<usize>)> {
		let x = a.host(cx, xi)?;
		let rank = x.shape.len();
		if rank == 0 {
			return cx.invalid(format!("{} of a scalar", cx.node.op));
		}
		let rows = if rank >= 2 { x.shape[rank - 2] } else { 1 };
		let az = zero_input(cx, a, xz, Some(rows))?;
		let (cols, n) = (x.shape[rank - 1], az.map_or(1, |z| z.data.len()));
		let depth = x.shape[rank - 1];
		let step = |p_max: i64| {
			let bound = p_max * q.max;
			if bound == 0 {
				depth.max(1)
			} else {
				((EXACT_F32 - 1) / bound).max(1) as usize
			}
		};
		let all_rows = x.data.len() / depth.max(1);
		// A constant B packed as bytes: the VNNI kernel, whatever the rows.
		let same_type = az.is_none_or(|z| z.elem == x.elem);
		if let Some(int8) = self.int8.as_ref().filter(|p| p.depth() == depth && rank >= 2) {
			if matches!(x.elem, ElemType::U8 | ElemType::I8) && same_type {
				let signed = x.elem == ElemType::I8;
				let za = |r: usize| az.map_or(0, |z| z.data[r % n]);
				let sums = int8.times(&x.data, all_rows, signed, za);
				let mut out_shape = x.shape[..rank - 1].to_vec();
				out_shape.push(sums.len() / all_rows.max(1));
				return Ok((sums, out_shape));
			}
		}
		// Few rows by a packed constant B: one pass of the register-tile kernel.
		if let Some(packed) = self.packed.as_ref().filter(|p| p.depth() == depth) {
			if rank >= 2 && all_rows <= PACKED_ROWS {
				let (p, p_max) = centre_values::<B>(cx, x, az, |i| i / cols % n)?;
				let sums = packed.times_exact(&p, all_rows, step(p_max));
				let mut out_shape = x.shape[..rank - 1].to_vec();
				out_shape.push(sums.len() / all_rows.max(1));
				return Ok((sums, out_shape));
			}
		}
		let p = centre::<B>(cx, x, az, |i| i / cols % n)?;
		let q_axis = if q.rank == 1 { 0 } else { q.rank - 2 };
		let step = step(p.max);
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
		Ok((sum, out_shape))
	}
}

impl<B: Backend> Op<B> for IntegerMatMul<B> {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let slots = self.slots();
		let owned;
		let q = match &self.b {
			Some(b) => b,
			None => {
				let y = a.host(cx, slots[2])?;
				let per = y.shape.last().copied();
				owned = Self::centre_b(cx, y, zero_input(cx, &a, slots[3], per)?)?;
				&owned
			},
		};
		let (sums, out_shape) = self.times(cx, &a, slots, q)?;
		if !self.linear {
			// int32 wraps as onnxruntime's accumulator does.
			let data = sums.into_iter().map(|v| host::wrap(ElemType::I32, v)).collect();
			return Ok(vec![Value::Host(Host::new(ElemType::I32, out_shape, data))]);
		}
		let r = out_shape.len();
		let cols = out_shape.get(r.wrapping_sub(1)).copied().unwrap_or(1);
		let rows = if r >= 2 { out_shape[r - 2] } else { 1 };
		let x_rows = a.host(cx, 0)?.shape.len() >= 2;
		let sa = scale_input(cx, &a, 1, x_rows.then_some(rows))?;
		let sb = scale_input(cx, &a, 4, Some(cols))?;
		let scale = |i: usize| {
			let ai = if sa.len() == 1 { 0 } else { i / cols % rows };
			let bi = if sb.len() == 1 { 0 } else { i % cols };
			sa[ai] * sb[bi]
		};
		requantized(cx, &a, 6, (sums, out_shape), scale, cols, |i| i % cols)
	}

	/// Constant weights (B and its zero point, as the quantization tools write them) are
	/// centred and converted once.
	fn specialize(&self, cx: &Cx<B>, known: &[Option<&Value<B>>]) -> Option<Box<dyn Op<B>>> {
		let [_, _, bi, bz] = self.slots();
		let b = constant_centred(cx, known, bi, bz, Self::centre_b)?;
		let (mut packed, mut int8) = (None, None);
		if b.rank == 2 {
			// Packed as bytes where the CPU has VNNI, else as f32: one of the two.
			let (m, zero) = constant_with_zero(cx, known, bi, bz)?;
			let nz = zero.map_or(1, |z| z.data.len().max(1));
			let zb = |c: usize| zero.map_or(0, |z| z.data[c % nz]);
			int8 = cpu::PackedI8::pack(&m.data, m.shape[0], m.shape[1], m.elem == ElemType::I8, zb);
			if int8.is_none() {
				packed = cpu::PackedB::pack::<B>(&b.t);
			}
		}
		Some(Box::new(IntegerMatMul { linear: self.linear, b: Some(b), packed, int8 }))
	}
}

/// How an op centres its weights: [`IntegerMatMul::centre_b`], [`IntegerConv::centre_w`].
type Centre<B> = fn(&Cx<B>, &Host, Option<&Host>) -> R<Centred<B>>;

/// A constant 8-bit input `i`, less its constant (or omitted) zero point `z`, centred once.
fn constant_centred<B: Backend>(
	cx: &Cx<B>,
	known: &[Option<&Value<B>>],
	i: usize,
	z: usize,
	centre: Centre<B>,
) -> Option<Centred<B>> {
	let (m, zero) = constant_with_zero(cx, known, i, z)?;
	centre(cx, m, zero).ok()
}

/// A constant input `i` and its constant (or omitted) zero point `z`, as given.
fn constant_with_zero<'a, B: Backend>(
	cx: &Cx<B>,
	known: &[Option<&'a Value<B>>],
	i: usize,
	z: usize,
) -> Option<(&'a Host, Option<&'a Host>)> {
	let Some(Some(Value::Host(m))) = known.get(i) else { return None };
	let zero = match known.get(z) {
		None | Some(None) if cx.node.inputs.get(z).is_none_or(|n| n.is_empty()) => None,
		Some(Some(Value::Host(h))) => Some(h),
		_ => return None,
	};
	Some((m, zero))
}

/// ConvInteger (X, W, X's zero point, W's zero point: the int32 convolution of the centred
/// operands) and QLinearConv (X, its scale and zero point, W, its scale and zero point, the
/// output's scale and zero point, an int32 bias: the convolution plus the bias, requantized).
/// X's parameters are one value, W's one value or one per output channel; padding is by the
/// zero point, as the specification says.
struct IntegerConv<B: Backend> {
	conv: Conv,
	linear: bool,
	/// W centred at load, when it and its zero point are constants.
	w: Option<Centred<B>>,
}

impl<B: Backend> IntegerConv<B> {
	/// The inputs X, X's zero point, W, W's zero point.
	fn slots(&self) -> [usize; 4] {
		slots(self.linear)
	}

	/// W less its zero point, one value or one per output channel.
	fn centre_w(cx: &Cx<B>, w: &Host, zero: Option<&Host>) -> R<Centred<B>> {
		if w.shape.len() < 3 {
			return cx.invalid(format!("weight of shape {:?}", w.shape));
		}
		let m = w.shape[0];
		if let Some(z) = zero {
			param_len(cx, &z.shape, z.data.len(), Some(m))?;
		}
		let (n, each) = (zero.map_or(1, |z| z.data.len()), w.data.len() / m.max(1));
		centre(cx, w, zero, |i| i / each % n)
	}

	/// The exact integer convolution of the centred X by the centred W and its shape: one f32
	/// convolution where no partial sum can reach 2^24, else one per slice of the input
	/// channels short enough, the results added as integers.
	fn exact(&self, cx: &Cx<B>, x: &Centred<B>, w: &Centred<B>) -> R<(Vec<i64>, Vec<usize>)> {
		let ws = shape::<B>(&w.t);
		let (channels, window) = (ws[1], ws[2..].iter().product::<usize>());
		let per_channel = x.max * w.max * window as i64;
		let step =
			if per_channel == 0 { channels } else { ((EXACT_F32 - 1) / per_channel) as usize };
		let conv = |xt, wt| -> R<(Vec<i64>, Vec<usize>)> {
			let out = self.conv.apply(cx, xt, wt, None, &[])?.0;
			let s = shape::<B>(&out);
			Ok((float_to_vec::<B>(out)?.into_iter().map(|v| v as i64).collect(), s))
		};
		if step >= channels {
			return conv(x.t.clone(), w.t.clone());
		}
		if step == 0 || self.conv.group() != 1 {
			return cx.unsupported(format!(
				"an exact {}-element window of {} x {} products",
				window, x.max, w.max
			));
		}
		let (mut sum, mut out_shape) = (Vec::<i64>::new(), Vec::new());
		for start in (0..channels).step_by(step) {
			let end = (start + step).min(channels);
			let (part, s) = conv(
				slice_axis::<B>(x.t.clone(), 1, start, end),
				slice_axis::<B>(w.t.clone(), 1, start, end),
			)?;
			out_shape = s;
			if sum.is_empty() {
				sum = part;
			} else {
				sum.iter_mut().zip(part).for_each(|(s, v)| *s += v);
			}
		}
		Ok((sum, out_shape))
	}
}

impl<B: Backend> Op<B> for IntegerConv<B> {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let [xi, xz, wi, wz] = self.slots();
		let owned;
		let w = match &self.w {
			Some(w) => w,
			None => {
				let w = a.host(cx, wi)?;
				let per = w.shape.first().copied();
				owned = Self::centre_w(cx, w, zero_input(cx, &a, wz, per)?)?;
				&owned
			},
		};
		let x = a.host(cx, xi)?;
		let x = centre::<B>(cx, x, zero_input(cx, &a, xz, None)?, |_| 0)?;
		let (mut sums, out_shape) = self.exact(cx, &x, w)?;
		let m = out_shape.get(1).copied().unwrap_or(1);
		let spatial: usize = out_shape.iter().skip(2).product();
		let channel = |i: usize| i / spatial.max(1) % m.max(1);
		if !self.linear {
			let data = sums.into_iter().map(|v| host::wrap(ElemType::I32, v)).collect();
			return Ok(vec![Value::Host(Host::new(ElemType::I32, out_shape, data))]);
		}
		if a.opt(8).is_some() {
			let b = a.host(cx, 8)?;
			if b.elem != ElemType::I32 || b.shape != [m] {
				return cx.invalid("the bias must be int32, one value per output channel");
			}
			for (i, s) in sums.iter_mut().enumerate() {
				*s = host::wrap(ElemType::I32, *s + b.data[channel(i)]);
			}
		}
		let sx = scale_input(cx, &a, 1, None)?;
		let sw = scale_input(cx, &a, 4, Some(m))?;
		let scale = |i: usize| sx[0] * sw[if sw.len() == 1 { 0 } else { channel(i) }];
		requantized(cx, &a, 6, (sums, out_shape), scale, 1, channel)
	}

	/// Constant weights (W and its zero point) are centred and converted once.
	fn specialize(&self, cx: &Cx<B>, known: &[Option<&Value<B>>]) -> Option<Box<dyn Op<B>>> {
		let [_, _, wi, wz] = self.slots();
		let w = constant_centred(cx, known, wi, wz, Self::centre_w)?;
		Some(Box::new(IntegerConv { conv: self.conv.clone(), linear: self.linear, w: Some(w) }))
	}
}
