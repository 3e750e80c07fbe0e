//! # OPG inference worker
//!
//! Runs the ONNX models registered in the model hub and answers the jobs assigned to its
//! account: [`onnx`] loads any model file at run time into a checked graph, [`exec`]
//! interprets it with burn (burn-flex on the CPU, CUDA with the `cuda` feature), and [`store`]
//! fetches and caches model files by content hash.

pub mod exec;
pub mod onnx;
pub mod store;
