//! # OPG inference worker
//!
//! Runs the ONNX models registered in the model hub and answers the jobs assigned to its
//! account. Built so far: [`onnx`], which loads any model file at run time into a checked
//! graph. The executor on burn, the model store and the chain client follow (see README).

pub mod onnx;
