//! Picks the burn backend at run time: the CPU (burn-flex) always, CUDA when built with the
//! `cuda` feature and asked for with `--inference-gpu`.

use super::{ExecError, Executor};
use crate::onnx::{Model, ModelError};
use opg_primitives::Tensor;

/// Where models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
	Cpu,
	/// A CUDA device by index.
	Cuda(usize),
}

impl std::fmt::Display for Device {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		match self {
			Device::Cpu => write!(f, "cpu"),
			Device::Cuda(i) => write!(f, "cuda:{i}"),
		}
	}
}

/// Why a model cannot be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
	#[error(transparent)]
	Model(#[from] ModelError),
	#[error(transparent)]
	Exec(#[from] ExecError),
	#[error("this worker was built without the `cuda` feature")]
	NoCuda,
}

pub type CpuBackend = burn_flex::Flex;
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda<f32, i32>;

/// A model loaded onto a device.
pub enum Engine {
	Cpu(Executor<CpuBackend>),
	#[cfg(feature = "cuda")]
	Cuda(Executor<CudaBackend>),
}

impl Engine {
	/// Parses, checks and uploads a model file (an `.onnx`, or a bundle with its external
	/// data, see [`Model::parse`]).
	pub fn load(bytes: &[u8], device: Device) -> Result<Engine, LoadError> {
		Engine::from_model(Model::parse(bytes)?, device)
	}

	/// Checks and uploads a parsed model.
	pub fn from_model(model: Model, device: Device) -> Result<Engine, LoadError> {
		match device {
			Device::Cpu => Ok(Engine::Cpu(Executor::new(model, Default::default())?)),
			#[cfg(feature = "cuda")]
			Device::Cuda(i) =>
				Ok(Engine::Cuda(Executor::new(model, burn::backend::cuda::CudaDevice::new(i))?)),
			#[cfg(not(feature = "cuda"))]
			Device::Cuda(_) => Err(LoadError::NoCuda),
		}
	}

	pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, ExecError> {
		match self {
			Engine::Cpu(x) => x.run(inputs),
			#[cfg(feature = "cuda")]
			Engine::Cuda(x) => x.run(inputs),
		}
	}

	/// [`Engine::run`] with each node's time (see [`Executor::run_profiled`]).
	pub fn run_profiled(
		&self,
		inputs: &[Tensor],
	) -> Result<(Vec<Tensor>, super::NodeTimes), ExecError> {
		match self {
			Engine::Cpu(x) => x.run_profiled(inputs),
			#[cfg(feature = "cuda")]
			Engine::Cuda(x) => x.run_profiled(inputs),
		}
	}

	/// Caps the bytes one run's live tensors may take (see [`Executor::with_memory_limit`]).
	pub fn with_memory_limit(self, bytes: usize) -> Engine {
		match self {
			Engine::Cpu(x) => Engine::Cpu(x.with_memory_limit(bytes)),
			#[cfg(feature = "cuda")]
			Engine::Cuda(x) => Engine::Cuda(x.with_memory_limit(bytes)),
		}
	}

	pub fn model(&self) -> &Model {
		match self {
			Engine::Cpu(x) => x.model(),
			#[cfg(feature = "cuda")]
			Engine::Cuda(x) => x.model(),
		}
	}
}
