//! # OPG LLM engine
//!
//! Runs decoder-only language models from GGUF files (llama.cpp's format) on the CPU:
//! [`gguf`] checks and maps the file, [`tokenizer`] is the tokenizer it carries, [`model`] the
//! transformer with its KV cache, [`sample`] the seeded sampler, [`generate`] the loop. Greedy
//! tokens are checked against llama.cpp's on the same file (`tests/llamacpp.rs`).
//!
//! Determinism, which the optimistic verification mode will rest on: for the same file,
//! request, seed and engine version, on the same device class, the tokens and every step's
//! logits are the same bits whatever the thread count (each output element is one sequential
//! dot product; reductions run in a fixed order).

pub mod chat;
pub mod generate;
pub mod gguf;
pub mod model;
pub mod quant;
pub mod sample;
pub mod simd;
pub mod tokenizer;

/// Recorded with every result: a change to any kernel or rule that can move a bit bumps it.
pub const ENGINE_VERSION: &str = concat!("opg-llm/", env!("CARGO_PKG_VERSION"), "+cpu-3");
