//! # OPG inference worker
//!
//! Runs the ONNX models registered in the model hub and answers the jobs assigned to its
//! account: [`onnx`] loads any model file at run time into a checked graph, [`exec`]
//! interprets it with burn (burn-flex on the CPU, CUDA with the `cuda` feature), [`store`]
//! fetches and caches model files by content hash, [`worker`] follows the chain and answers
//! each job once with a signed extrinsic through a [`chain::Chain`] (the node's own client
//! in-process, JSON-RPC when standalone), [`tee`] keeps an enclave key attested and signs
//! TEE-mode results with it, [`zk`] proves integer models for ZK-mode jobs, and [`metrics`] exports
//! what it does to Prometheus.

pub mod chain;
pub mod exec;
pub mod journal;
pub mod metrics;
pub mod onnx;
pub mod store;
pub mod tee;
pub mod worker;
pub mod zk;

/// Replaces `path` with `bytes` all at once: written and synced beside it, then renamed, so a
/// crash leaves the old file or the new one, never half of it.
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
	use std::io::Write;
	let mut name = path.file_name().unwrap_or_default().to_os_string();
	name.push(".tmp");
	let tmp = path.with_file_name(name);
	let mut file = std::fs::File::create(&tmp)?;
	file.write_all(bytes)?;
	file.sync_all()?;
	std::fs::rename(&tmp, path)
}

/// Makes glibc keep freed memory for reuse instead of returning it to the kernel after every
/// large tensor: executing a model allocates and frees the same sizes op after op, and
/// page-faulting fresh memory each time cost a third of a CNN's run time in the benchmark.
pub fn tune_allocator() {
	#[cfg(all(target_os = "linux", target_env = "gnu"))]
	// SAFETY: mallopt only changes allocator parameters; any value is accepted or refused.
	unsafe {
		// Largest value glibc accepts for the mmap threshold on 64-bit (32 MiB).
		libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
		libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
	}
}
