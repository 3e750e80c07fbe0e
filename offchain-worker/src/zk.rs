//! ZK mode: reads integer models from their ONNX graphs, keeps their proving keys, and proves
//! jobs with [`opg_zkml`].
//!
//! A model publisher runs `opg-worker zk-setup --model M.onnx --out DIR` once: it writes the
//! proving key `DIR/0x<key hash>.pk` (prefixed with the model file's blake2-256, so a key is
//! never used with another model) and the verifying key `DIR/0x<key hash>.vk` (the bytes to
//! register with `zk.registerVerifyingKey`, together with the model's blake2-256; the model's
//! release references the key by the key's blake2-256). Workers that serve the release in ZK
//! mode put the `.pk` file in their `--zk-keys` directory.

use std::{
	collections::HashMap,
	path::{Path, PathBuf},
	sync::{Arc, Mutex},
	time::{Duration, Instant},
};

use opg_primitives::ElemType;
use opg_zkml::{Dense, IntegerMlp};
use polkadot_sdk::sp_core::H256;

use crate::onnx::{Attribute, Dim, Model};

/// Why a job could not be proved.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
	/// The model file could not be had.
	#[error("model unavailable: {0}")]
	ModelUnavailable(String),
	/// The model is not an integer MLP the circuit compiler takes.
	#[error("model not provable: {0}")]
	Model(String),
	/// No proving key for the release's verifying key in the key directory.
	#[error("no proving key {0} (run `opg-worker zk-setup` and copy the .pk file there)")]
	NoKey(PathBuf),
	/// The key file is unreadable or belongs to another verifying key.
	#[error("proving key {0}: {1}")]
	BadKey(PathBuf, String),
	/// The input does not fit the model, or proving failed.
	#[error(transparent)]
	Prove(#[from] opg_zkml::Error),
	/// The proof does not verify under the release's key, as the chain would check it: a
	/// stale or wrong proving key, or a circuit that changed since the setup. Sending it would
	/// fail on chain and slash the worker; it is rejected instead.
	#[error("the proof does not verify under the release's key ({0}): not sent")]
	SelfCheck(String),
}

/// The integer MLP an ONNX graph describes: per layer `MatMulInteger(x, W:int8) → Add(b:int32)`,
/// then for a hidden layer `Relu → Div(2^k:int32) → Clip(0, 127) → Cast(int8)`; an int8 input
/// and an int32 output of fixed shapes.
pub fn integer_mlp(model: &Model) -> Result<IntegerMlp, ZkError> {
	let fail = |what: String| ZkError::Model(what);
	let fixed = |spec: &crate::onnx::ValueSpec| -> Result<Vec<u32>, ZkError> {
		spec.shape
			.as_ref()
			.ok_or_else(|| fail(format!("`{}` has no declared shape", spec.name)))?
			.iter()
			.map(|d| match d {
				Dim::Fixed(n) =>
					u32::try_from(*n).map_err(|_| fail(format!("`{}`: dimension {n}", spec.name))),
				Dim::Any => Err(fail(format!(
					"`{}` has a dynamic dimension: a circuit has one shape",
					spec.name
				))),
			})
			.collect()
	};
	let ([input], [output]) = (&model.inputs[..], &model.outputs[..]) else {
		return Err(fail("one input and one output expected".into()));
	};
	if input.elem != ElemType::I8 || output.elem != ElemType::I32 {
		return Err(fail(format!(
			"input {:?} and output {:?}: int8 in, int32 out expected",
			input.elem, output.elem
		)));
	}
	let constant = |name: &str, elem: ElemType| -> Result<&opg_primitives::Tensor, ZkError> {
		let t = model
			.initializers
			.get(name)
			.ok_or_else(|| fail(format!("`{name}` is not a constant")))?;
		if t.elem != elem {
			return Err(fail(format!("`{name}` is {:?}, not {elem:?}", t.elem)));
		}
		Ok(t)
	};
	let scalar = |name: &str| -> Result<i32, ZkError> {
		let t = constant(name, ElemType::I32)?;
		match t.data[..] {
			[a, b, c, d] => Ok(i32::from_le_bytes([a, b, c, d])),
			_ => Err(fail(format!("`{name}` is not a scalar"))),
		}
	};
	let mut nodes = model.nodes.iter().peekable();
	let mut next = |op: &str, from: &str| -> Result<&crate::onnx::Node, ZkError> {
		let node = nodes
			.next()
			.ok_or_else(|| fail(format!("the graph ends where {op} was expected")))?;
		if node.op != op ||
			node.inputs.first().map(String::as_str) != Some(from) ||
			node.outputs.len() != 1
		{
			return Err(fail(format!(
				"node `{}` ({}) where {op} on `{from}` was expected",
				node.name, node.op
			)));
		}
		Ok(node)
	};
	let mut layers = Vec::new();
	let mut current = input.name.clone();
	loop {
		let matmul = next("MatMulInteger", &current)?;
		if matmul.inputs.len() != 2 {
			return Err(fail(format!("`{}`: zero points are not supported", matmul.name)));
		}
		let w = constant(&matmul.inputs[1], ElemType::I8)?;
		let [inputs, outputs] = w.shape[..] else {
			return Err(fail(format!("`{}`: weights of rank 2", matmul.name)))
		};
		let add = next("Add", &matmul.outputs[0])?;
		let b = constant(add.inputs.get(1).map(String::as_str).unwrap_or_default(), ElemType::I32)?;
		let bias: Vec<i32> = b
			.data
			.chunks_exact(4)
			.map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")))
			.collect();
		let mut layer = Dense {
			inputs: inputs as usize,
			outputs: outputs as usize,
			weights: w.data.iter().map(|b| *b as i8).collect(),
			bias,
			shift: None,
		};
		current = add.outputs[0].clone();
		if current == output.name {
			layers.push(layer);
			break;
		}
		let relu = next("Relu", &current)?;
		let div = next("Div", &relu.outputs[0])?;
		let divisor = scalar(div.inputs.get(1).map(String::as_str).unwrap_or_default())?;
		if divisor <= 0 || divisor.count_ones() != 1 {
			return Err(fail(format!("`{}`: divisor {divisor} is not a power of two", div.name)));
		}
		layer.shift = Some(divisor.trailing_zeros() as u8);
		let clip = next("Clip", &div.outputs[0])?;
		let bounds = (clip.inputs.get(1).map(|n| scalar(n)), clip.inputs.get(2).map(|n| scalar(n)));
		if !matches!(bounds, (Some(Ok(0)), Some(Ok(127)))) {
			return Err(fail(format!(
				"`{}`: the hidden values must be clipped to [0, 127]",
				clip.name
			)));
		}
		let cast = next("Cast", &clip.outputs[0])?;
		if cast.attributes.get("to") != Some(&Attribute::Int(3)) {
			return Err(fail(format!("`{}`: the hidden values must be cast to int8", cast.name)));
		}
		current = cast.outputs[0].clone();
		layers.push(layer);
	}
	if let Some(extra) = nodes.next() {
		return Err(fail(format!("node `{}` ({}) after the output", extra.name, extra.op)));
	}
	let mlp = IntegerMlp { input_shape: fixed(input)?, output_shape: fixed(output)?, layers };
	mlp.validate()?;
	Ok(mlp)
}

/// The integer MLP in an ONNX file.
pub fn mlp_of(onnx: &[u8]) -> Result<IntegerMlp, ZkError> {
	integer_mlp(&Model::parse(onnx).map_err(|e| ZkError::Model(e.to_string()))?)
}

/// blake2-256 of a verifying key's compact bytes: how the chain names it (`pallet_zk::key_hash`).
pub fn key_hash(verifying_key: &opg_groth16::VerifyingKey) -> Result<H256, ZkError> {
	let bytes = verifying_key
		.encode()
		.map_err(|e| ZkError::Model(format!("verifying key: {e:?}")))?;
	Ok(H256(polkadot_sdk::sp_crypto_hashing::blake2_256(&bytes)))
}

/// What `zk-setup` made.
#[derive(Debug)]
pub struct SetupReport {
	/// The verifying key's hash (what a release references).
	pub key_hash: H256,
	/// The proving key file.
	pub proving_key: PathBuf,
	/// The verifying key file (compact bytes, for `zk.registerVerifyingKey`).
	pub verifying_key: PathBuf,
	/// Constraints of the circuit.
	pub constraints: usize,
	/// Time the setup took.
	pub took: Duration,
}

fn key_file(dir: &Path, hash: H256, extension: &str) -> PathBuf {
	dir.join(format!("{hash:?}.{extension}"))
}

/// Groth16 setup for the integer model in `onnx`, keys written into `dir`. The randomness
/// comes from the OS and is dropped when this returns.
pub fn setup(onnx: &[u8], dir: &Path) -> Result<SetupReport, ZkError> {
	let mlp = mlp_of(onnx)?;
	let constraints = opg_zkml::constraint_count(&mlp)?;
	let started = Instant::now();
	let keys = opg_zkml::setup(&mlp, &mut rand::rngs::OsRng)?;
	let took = started.elapsed();
	let hash = key_hash(&keys.verifying)?;
	let io = |path: &Path, e: std::io::Error| ZkError::BadKey(path.to_path_buf(), e.to_string());
	std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
	let (pk, vk) = (key_file(dir, hash, "pk"), key_file(dir, hash, "vk"));
	let vk_bytes = keys
		.verifying
		.encode()
		.map_err(|e| ZkError::Model(format!("verifying key: {e:?}")))?;
	let artifact = crate::store::blake2_256(onnx);
	let pk_bytes = [&artifact.0[..], &opg_zkml::write_proving_key(&keys.proving)].concat();
	crate::write_atomically(&pk, &pk_bytes).map_err(|e| io(&pk, e))?;
	crate::write_atomically(&vk, &vk_bytes).map_err(|e| io(&vk, e))?;
	Ok(SetupReport { key_hash: hash, proving_key: pk, verifying_key: vk, constraints, took })
}

struct Prover {
	model: IntegerMlp,
	key: ark_groth16::ProvingKey<ark_bn254::Bn254>,
	/// The release's verifying key, prepared once: every proof is checked before it is sent.
	verifying: opg_groth16::PreparedVerifyingKey,
}

/// Proving keys found in a directory, loaded on first use.
pub struct Provers {
	dir: PathBuf,
	/// By verifying key and model file.
	loaded: Mutex<HashMap<(H256, H256), Arc<Prover>>>,
}

impl Provers {
	/// Provers whose keys are files in `dir`.
	pub fn new(dir: impl Into<PathBuf>) -> Self {
		Provers { dir: dir.into(), loaded: Mutex::new(HashMap::new()) }
	}

	/// The key directory.
	pub fn dir(&self) -> &Path {
		&self.dir
	}

	fn prover(
		&self,
		key: H256,
		artifact: H256,
		model: impl FnOnce() -> Result<Vec<u8>, String>,
	) -> Result<Arc<Prover>, ZkError> {
		// Held while loading: jobs arriving together wait for one load (seconds, 25 MB for
		// the demo model) instead of each reading and checking the key.
		let mut loaded = self.loaded.lock().expect("prover cache lock");
		if let Some(prover) = loaded.get(&(key, artifact)) {
			return Ok(prover.clone());
		}
		let path = key_file(&self.dir, key, "pk");
		let started = Instant::now();
		let bytes = std::fs::read(&path).map_err(|_| ZkError::NoKey(path.clone()))?;
		let (made_for, bytes) = bytes
			.split_at_checked(32)
			.ok_or_else(|| ZkError::BadKey(path.clone(), "truncated".into()))?;
		if made_for != artifact.0 {
			return Err(ZkError::BadKey(
				path,
				format!("made for model {}, not {artifact:?}", H256::from_slice(made_for)),
			));
		}
		let proving = opg_zkml::read_proving_key(bytes)
			.map_err(|e| ZkError::BadKey(path.clone(), e.to_string()))?;
		let verifying = opg_zkml::verifying_key_of(&proving);
		if key_hash(&verifying)? != key {
			return Err(ZkError::BadKey(path, "it belongs to another verifying key".into()));
		}
		let model = mlp_of(&model().map_err(ZkError::ModelUnavailable)?)?;
		let prover = Arc::new(Prover { model, key: proving, verifying: verifying.prepare() });
		tracing::info!(
			?key,
			bytes = bytes.len(),
			took_ms = started.elapsed().as_millis() as u64,
			"proving key loaded"
		);
		loaded.insert((key, artifact), prover.clone());
		Ok(prover)
	}

	/// Proves the release's model (file hash `artifact`) on the canonical `input` under the
	/// proving key of verifying key `key`: the output payload and the proof. `model` gives the
	/// verified model file; it is read only when this key and model are not loaded yet.
	pub fn prove(
		&self,
		key: H256,
		artifact: H256,
		model: impl FnOnce() -> Result<Vec<u8>, String>,
		input: &[u8],
	) -> Result<opg_zkml::Proved, ZkError> {
		let prover = self.prover(key, artifact, model)?;
		let proved = opg_zkml::prove(&prover.model, &prover.key, input, &mut rand::rngs::OsRng)?;
		// The chain's check, made here first (≈ 2 ms): a proof it refuses costs the worker a
		// slash, a rejection costs nothing.
		let proof = opg_groth16::Proof::decode(&proved.proof)
			.map_err(|e| ZkError::SelfCheck(format!("{e:?}")))?;
		opg_groth16::verify(&prover.verifying, &proof, &opg_zkml::statement(input, &proved.output))
			.map_err(|e| ZkError::SelfCheck(format!("{e:?}")))?;
		Ok(proved)
	}
}
