//! Control flow: If. Each branch is a subgraph loaded as an executor of its own when the
//! model is loaded; the values it reads from the graphs around it (by name, as ONNX scopes
//! them) are bound to the If node as extra inputs, so the outer graph keeps them alive until
//! the If has run and the branch gets them like any input. A condition that is a constant is
//! resolved once, at load, by constant folding where the branch's inputs are constants too.

use super::{Args, Attrs, Cx, Op, R};
use crate::{
	exec::{ExecError, Executor, Value},
	onnx::{Attribute, Graph, Model, Node, ValueSpec},
};
use burn::tensor::backend::Backend;
use opg_primitives::ElemType;
use std::collections::HashSet;

/// The values `g` reads from the graphs around it, in the order it first reads them: the
/// inputs of its nodes and of their subgraphs, and its outputs, that it does not define.
fn outer_values(g: &Graph) -> Vec<String> {
	let mut defined: HashSet<String> =
		g.inputs.iter().chain(g.initializers.keys()).cloned().collect();
	let mut outer = Vec::new();
	let mut read = |name: &String, defined: &HashSet<String>| {
		if !name.is_empty() && !defined.contains(name) && !outer.contains(name) {
			outer.push(name.clone());
		}
	};
	for node in &g.nodes {
		for name in &node.inputs {
			read(name, &defined);
		}
		for a in node.attributes.values() {
			if let Attribute::Graph(sub) = a {
				for name in outer_values(sub) {
					read(&name, &defined);
				}
			}
		}
		defined.extend(node.outputs.iter().filter(|n| !n.is_empty()).cloned());
	}
	for name in &g.outputs {
		read(name, &defined);
	}
	outer
}

/// Appends to an If node's inputs (after its condition) the values its branches read from
/// the graphs around it.
pub(crate) fn bind_outer_values(node: &mut Node) {
	let mut extra = Vec::new();
	for key in ["then_branch", "else_branch"] {
		if let Some(Attribute::Graph(g)) = node.attributes.get(key) {
			for name in outer_values(g) {
				if !extra.contains(&name) {
					extra.push(name);
				}
			}
		}
	}
	node.inputs.truncate(1);
	node.inputs.extend(extra);
}

/// One branch: its executor, and for each of its inputs the If node's input that feeds it.
struct Branch<B: Backend> {
	exec: Executor<B>,
	args: Vec<usize>,
}

struct If<B: Backend> {
	/// `then_branch`, `else_branch`.
	branches: [Branch<B>; 2],
}

/// Loads an If node (its inputs bound by [`bind_outer_values`]) and both its branches.
pub(crate) fn load_if<B: Backend>(
	node: &Node,
	opset: i64,
	device: &B::Device,
	half: &HashSet<String>,
) -> R<Box<dyn Op<B>>> {
	let a = Attrs(node);
	let branch = |key: &str| -> R<Branch<B>> {
		let Some(Attribute::Graph(g)) = node.attributes.get(key) else {
			return a.unsupported(format!("an If without a `{key}` graph"));
		};
		if !g.inputs.is_empty() {
			return a.unsupported(format!("a `{key}` that declares inputs"));
		}
		if g.outputs.len() != node.outputs.len() {
			return a.unsupported(format!(
				"a `{key}` with {} outputs for the node's {}",
				g.outputs.len(),
				node.outputs.len()
			));
		}
		let outer = outer_values(g);
		let args = outer
			.iter()
			.map(|name| node.inputs.iter().skip(1).position(|i| i == name).map(|p| p + 1))
			.collect::<Option<Vec<_>>>()
			.ok_or_else(|| {
				ExecError::Undefined(format!("{} (read by `{key}`)", outer.join(", ")))
			})?;
		// The element types of values from outside are known when they arrive: a branch is
		// run with `Executor::run_values`, which does not check declared types. Only which of
		// them are float16 matters to the branch (it rounds what it computes from them).
		let spec = |name: &String| {
			let elem = if half.contains(name) { ElemType::F16 } else { ElemType::F32 };
			ValueSpec { name: name.clone(), elem, shape: None }
		};
		let model = Model {
			opset,
			inputs: outer.iter().map(spec).collect(),
			outputs: g.outputs.iter().map(spec).collect(),
			initializers: g.initializers.clone(),
			nodes: g.nodes.clone(),
		};
		Ok(Branch { exec: Executor::new(model, device.clone())?, args })
	};
	Ok(Box::new(If { branches: [branch("then_branch")?, branch("else_branch")?] }))
}

impl<B: Backend> Op<B> for If<B> {
	fn run(&self, cx: &Cx<B>, a: Args<B>) -> R<Vec<Value<B>>> {
		let cond = a.host(cx, 0)?;
		if cond.elem != ElemType::Bool || cond.data.len() != 1 {
			return cx.invalid(format!(
				"the condition must be one boolean, got {:?} of shape {:?}",
				cond.elem, cond.shape
			));
		}
		let branch = &self.branches[if cond.data[0] != 0 { 0 } else { 1 }];
		let values = branch
			.args
			.iter()
			.map(|&i| a.get(cx, i).cloned())
			.collect::<R<Vec<Value<B>>>>()?;
		branch.exec.run_values(values)
	}

	fn limit_memory(&mut self, bytes: usize) {
		for b in &mut self.branches {
			b.exec.set_memory_limit(bytes);
		}
	}
}
