//! # OPG inference worker
//!
//! Runs the models registered in the model hub and answers the jobs assigned to its
//! account: [`onnx`] loads any model file at run time into a checked graph, [`exec`]
//! interprets it with burn (burn-flex on the CPU, CUDA with the `cuda` feature), [`llm`] runs
//! the chat jobs of GGUF releases with `opg-llm`, [`store`]
//! fetches and caches model files by content hash, [`worker`] follows the chain and answers
//! each job once with a signed extrinsic through a [`chain::Chain`] (the node's own client
//! in-process, JSON-RPC when standalone), [`tee`] keeps an enclave key attested and signs
//! TEE-mode results with it, [`zk`] proves integer models for ZK-mode jobs, and [`metrics`] exports
//! what it does to Prometheus.

pub mod api;
pub mod chain;
pub mod channels;
pub mod cli;
pub mod embeddings;
pub mod journal;
pub mod json;
pub mod llm;
pub mod metrics;
pub mod openai;
pub mod receipts;
pub mod store;
pub mod tee;
pub mod worker;
pub mod zk;

pub use opg_exec::{exec, onnx};

/// Replaces `path` with `bytes` all at once: written and synced beside it, then renamed, so a
/// crash leaves the old file or the new one, never half of it; then the folder is synced, so
/// that the rename itself survives a power loss (a voucher or a receipt the worker answered
/// with must not come back as the file before it). 0.15 ms per folder sync on the
/// development VM.
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
	use std::io::Write;
	let mut name = path.file_name().unwrap_or_default().to_os_string();
	name.push(".tmp");
	let tmp = path.with_file_name(name);
	let mut file = std::fs::File::create(&tmp)?;
	file.write_all(bytes)?;
	file.sync_all()?;
	std::fs::rename(&tmp, path)?;
	sync_dir(path.parent().unwrap_or(std::path::Path::new(".")))
}

/// Syncs a folder's entries (files created, renamed or removed in it) to disk.
pub(crate) fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
	let dir = if dir.as_os_str().is_empty() { std::path::Path::new(".") } else { dir };
	#[cfg(unix)]
	std::fs::File::open(dir)?.sync_all()?;
	Ok(())
}

/// `M_MMAP_THRESHOLD` of [`tune_allocator`]: allocations below 64 MiB come from the heap, not
/// from a fresh mmap each (the executor benchmark's figures were taken with this value). glibc
/// before 2.35 refuses anything above `HEAP_MAX_SIZE / 2` (32 MiB on 64-bit: `mallopt` returns
/// 0); there [`MMAP_THRESHOLD_FALLBACK`] is set instead.
pub const MMAP_THRESHOLD: i32 = 64 << 20;

/// The largest `M_MMAP_THRESHOLD` every glibc accepts on 64-bit.
pub const MMAP_THRESHOLD_FALLBACK: i32 = 32 << 20;

/// `M_TRIM_THRESHOLD` of [`tune_allocator`]: free memory at the top of the heap is given back
/// to the kernel only above 256 MiB.
pub const TRIM_THRESHOLD: i32 = 256 << 20;

/// One `mallopt` call of [`tune_allocator`] and glibc's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorSetting {
	/// The parameter, e.g. `M_MMAP_THRESHOLD`.
	pub param: &'static str,
	/// The value asked for.
	pub value: i32,
	/// What `mallopt` returned: 1 on success, 0 when glibc refused the value.
	pub returned: i32,
}

impl AllocatorSetting {
	/// Whether glibc took the value.
	pub fn accepted(&self) -> bool {
		self.returned == 1
	}
}

/// Makes glibc keep freed memory for reuse instead of returning it to the kernel after every
/// large tensor: executing a model allocates and frees the same sizes op after op, and glibc
/// serves each allocation above 128 KiB (every activation of a CNN) with a fresh mmap, so each
/// op's output cost page faults and zeroing (a third of a CNN's run time in the benchmark).
///
/// It sets [`MMAP_THRESHOLD`] and [`TRIM_THRESHOLD`] for the whole process (a node's other
/// allocations too), once: later calls return the first call's answers. Each `mallopt`'s
/// return value is logged (target `inference`), a refused one as a warning. Empty where the
/// allocator is not glibc's.
pub fn tune_allocator() -> &'static [AllocatorSetting] {
	static TUNED: std::sync::OnceLock<Vec<AllocatorSetting>> = std::sync::OnceLock::new();
	TUNED.get_or_init(|| {
		let settings = set_allocator_parameters();
		for s in &settings {
			let mib = s.value >> 20;
			if s.accepted() {
				tracing::info!(
					target: "inference",
					"allocator: mallopt({}, {mib} MiB) returned {}",
					s.param,
					s.returned
				);
			} else {
				tracing::warn!(
					target: "inference",
					"allocator: mallopt({}, {mib} MiB) returned {}: glibc refused it",
					s.param,
					s.returned
				);
			}
		}
		settings
	})
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_allocator_parameters() -> Vec<AllocatorSetting> {
	let set = |param, number, value| {
		// SAFETY: mallopt only changes allocator parameters; it refuses a value it does not
		// take (returns 0) and changes nothing then.
		let returned = unsafe { libc::mallopt(number, value) };
		AllocatorSetting { param, value, returned }
	};
	let mut settings = vec![set("M_MMAP_THRESHOLD", libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD)];
	if !settings[0].accepted() {
		settings.push(set("M_MMAP_THRESHOLD", libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_FALLBACK));
	}
	settings.push(set("M_TRIM_THRESHOLD", libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD));
	settings
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_allocator_parameters() -> Vec<AllocatorSetting> {
	Vec::new()
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
	#[test]
	fn glibc_accepts_the_allocator_tuning() {
		let settings = super::tune_allocator();
		// The last value asked for each parameter is the one in force; glibc took both.
		let last = |param| settings.iter().rev().find(|s| s.param == param).unwrap();
		assert!(last("M_MMAP_THRESHOLD").accepted(), "mallopt refused: {settings:?}");
		assert!(last("M_TRIM_THRESHOLD").accepted(), "mallopt refused: {settings:?}");
		// Only a refused 64 MiB threshold is followed by the 32 MiB fallback.
		let first = settings[0];
		assert_eq!((first.param, first.value), ("M_MMAP_THRESHOLD", super::MMAP_THRESHOLD));
		assert_eq!(settings.len(), if first.accepted() { 2 } else { 3 });
		// Once per process: a second call changes nothing and answers the same.
		assert_eq!(super::tune_allocator(), settings);
	}
}
