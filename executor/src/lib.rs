//! # OPG executor
//!
//! [`onnx`] parses any ONNX model file at run time into a checked graph; [`exec`] interprets it
//! with burn: burn-flex on the CPU, CUDA with the `cuda` feature. The worker (`opg-worker`)
//! runs jobs with it; it is a crate of its own so that the fuzz targets (`fuzz/`) can build it
//! without the chain's client and runtime.

pub mod exec;
pub mod onnx;
