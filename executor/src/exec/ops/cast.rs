//! Element types: Cast, and Constant (evaluated once, at load).

use super::{boxed, shape, to_float, Args, Attrs, Cx, Op, Registry, F, R};
use crate::{
	exec::{
		float_from_vec, float_to_vec,
		host::{self, Host},
		to_value, Value,
	},
	onnx::Attribute,
};
use burn::tensor::{backend::Backend, FloatDType};
use opg_primitives::{ElemType, Tensor};

pub(super) fn register<B: Backend>(r: &mut Registry<B>) {
	r.add("Cast", |node, _| {
		let a = Attrs(node);
		let to = match a.int_opt("to") {
			Some(t) => match crate::onnx::elem_type(t as i32) {
				Some(to) => to,
				None => return a.unsupported(format!("casting to ONNX type {t}")),
			},
			None => return a.unsupported("Cast without `to`"),
		};
		boxed(Cast { to })
	});
	r.add("Constant", |node, _| {
		let a = Attrs(node);
		if a.has("sparse_value") {
			return a.unsupported("sparse constants");
		}
		// The first of these attributes the node has, in this order.
		let attrs = &node.attributes;
		let value = if let Some(Attribute::Tensor(t)) = attrs.get("value") {
			Literal::Tensor(t.clone())
		} else if let Some(Attribute::Float(f)) = attrs.get("value_float") {
			Literal::Float(*f)
		} else if let Some(Attribute::Floats(f)) = attrs.get("value_floats") {
			Literal::Floats(f.clone())
		} else if let Some(Attribute::Int(i)) = attrs.get("value_int") {
			Literal::Int(*i)
		} else if let Some(Attribute::Ints(i)) = attrs.get("value_ints") {
			Literal::Ints(i.clone())
		} else {
			Literal::Missing
		};
		boxed(Constant { value })
	});
}

struct Cast {
	to: ElemType,
}

impl<B: Backend> Op<B> for Cast {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let to = self.to;
		let v = a.get(cx, 0)?;
		let float = |t: F<B>, elem| {
			let dtype = if elem == ElemType::F64 { FloatDType::F64 } else { FloatDType::F32 };
			Value::Float(if v.elem() == elem { t } else { B::float_cast(t, dtype) })
		};
		// float16 is held as f32; the executor rounds the output (see `half_values`).
		let to = if to == ElemType::F16 { ElemType::F32 } else { to };
		Ok(vec![match (v, to) {
			(Value::Float(t), ElemType::F32 | ElemType::F64) => float(t.clone(), to),
			(Value::Host(h), ElemType::F32 | ElemType::F64) =>
				float(to_float::<B>(h, cx.device), to),
			(Value::Host(h), elem) => Value::Host(Host::new(
				elem,
				h.shape.clone(),
				h.data.iter().map(|&x| host::wrap(elem, x)).collect(),
			)),
			(Value::Float(t), elem) => {
				let s = shape::<B>(t);
				let vals = float_to_vec::<B>(t.clone())?;
				if vals.iter().any(|v| !v.is_finite()) && elem != ElemType::Bool {
					return cx.invalid("casting a non-finite float to an integer");
				}
				// Float to integer truncates toward zero, then wraps like the C cast.
				let data = vals
					.iter()
					.map(|&v| {
						if elem == ElemType::Bool {
							(v != 0.0) as i64
						} else {
							host::wrap(elem, v as i64)
						}
					})
					.collect();
				Value::Host(Host::new(elem, s, data))
			},
		}])
	}
}

/// A Constant's value attribute.
enum Literal {
	Tensor(Tensor),
	Float(f32),
	Floats(Vec<f32>),
	Int(i64),
	Ints(Vec<i64>),
	/// None of them: refused when the model is loaded and its constants evaluated.
	Missing,
}

struct Constant {
	value: Literal,
}

impl<B: Backend> Op<B> for Constant {
	fn run(&self, cx: &Cx<B>, _: Args<B>) -> R<Vec<Value<B>>> {
		let v = match &self.value {
			Literal::Tensor(t) => to_value::<B>(t, cx.device)?,
			Literal::Float(f) => Value::Float(float_from_vec::<B>(vec![*f], &[], cx.device)),
			Literal::Floats(f) =>
				Value::Float(float_from_vec::<B>(f.clone(), &[f.len()], cx.device)),
			Literal::Int(i) => Value::Host(Host::scalar_i64(*i)),
			Literal::Ints(i) => Value::Host(Host::vector_i64(i.clone())),
			Literal::Missing =>
				return cx.unsupported("a Constant without a tensor, float or int value"),
		};
		Ok(vec![v])
	}

	fn is_constant(&self) -> bool {
		true
	}
}
