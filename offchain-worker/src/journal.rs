//! The answers this worker has sent and not yet seen settled, kept on disk so that a restarted
//! worker does not answer a job a second time while its first answer is still in the pool.
//!
//! One line per job: `<job> <block> <tx hash | ->`, where `block` is the best block the answer
//! was built on and `-` marks a submission the pool refused (retried after a pause). The file
//! is rewritten atomically on every change; it holds at most the worker's open jobs.

use std::{
	collections::BTreeMap,
	path::{Path, PathBuf},
};

use opg_primitives::JobId;
use polkadot_sdk::sp_core::{bytes, H256};

/// An answer sent for a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
	/// Best block the answer was built on.
	pub block: u32,
	/// Pool hash of the extrinsic, `None` if the pool refused it.
	pub tx: Option<H256>,
}

/// Persistent map of job → answer sent.
pub struct Journal {
	path: PathBuf,
	entries: BTreeMap<JobId, Sent>,
}

impl Journal {
	/// Opens (or creates) the journal at `dir/answers`; unreadable lines are dropped with a
	/// warning (the chain, not the journal, says which jobs are open).
	pub fn open(dir: &Path) -> std::io::Result<Journal> {
		std::fs::create_dir_all(dir)?;
		let path = dir.join("answers");
		let mut entries = BTreeMap::new();
		match std::fs::read_to_string(&path) {
			Ok(text) =>
				for line in text.lines().filter(|l| !l.trim().is_empty()) {
					match parse(line) {
						Some((job, sent)) => {
							entries.insert(job, sent);
						},
						None =>
							tracing::warn!(target: "inference", line, "ignoring unreadable journal line"),
					}
				},
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => {},
			Err(e) => return Err(e),
		}
		Ok(Journal { path, entries })
	}

	/// What was sent for `job`.
	pub fn get(&self, job: JobId) -> Option<Sent> {
		self.entries.get(&job).copied()
	}

	/// Jobs with an entry.
	pub fn jobs(&self) -> Vec<JobId> {
		self.entries.keys().copied().collect()
	}

	/// Number of entries.
	pub fn len(&self) -> usize {
		self.entries.len()
	}

	/// Whether there are no entries.
	pub fn is_empty(&self) -> bool {
		self.entries.is_empty()
	}

	/// Records an answer and writes the file before returning.
	pub fn insert(&mut self, job: JobId, sent: Sent) -> std::io::Result<()> {
		self.entries.insert(job, sent);
		self.save()
	}

	/// Forgets `jobs` (ended on chain); writes the file if anything changed.
	pub fn remove(&mut self, jobs: &[JobId]) -> std::io::Result<()> {
		let before = self.entries.len();
		for job in jobs {
			self.entries.remove(job);
		}
		if self.entries.len() != before {
			self.save()?;
		}
		Ok(())
	}

	fn save(&self) -> std::io::Result<()> {
		let mut text = String::new();
		for (job, sent) in &self.entries {
			let tx = sent
				.tx
				.map(|h| bytes::to_hex(h.as_bytes(), false))
				.unwrap_or_else(|| "-".into());
			text.push_str(&format!("{job} {} {tx}\n", sent.block));
		}
		crate::write_atomically(&self.path, text.as_bytes())
	}
}

fn parse(line: &str) -> Option<(JobId, Sent)> {
	let mut parts = line.split_whitespace();
	let job = parts.next()?.parse().ok()?;
	let block = parts.next()?.parse().ok()?;
	let tx = match parts.next()? {
		"-" => None,
		hex => {
			let raw = bytes::from_hex(hex).ok().filter(|raw| raw.len() == 32)?;
			Some(H256::from_slice(&raw))
		},
	};
	parts.next().is_none().then_some((job, Sent { block, tx }))
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn survives_a_restart_and_drops_bad_lines() {
		let dir = tempfile::tempdir().unwrap();
		let mut journal = Journal::open(dir.path()).unwrap();
		assert!(journal.is_empty());
		journal
			.insert(7, Sent { block: 12, tx: Some(H256::repeat_byte(0xab)) })
			.unwrap();
		journal.insert(9, Sent { block: 13, tx: None }).unwrap();
		let mut text = std::fs::read_to_string(dir.path().join("answers")).unwrap();
		text.push_str("garbage line\n10 x -\n");
		std::fs::write(dir.path().join("answers"), text).unwrap();

		let mut reopened = Journal::open(dir.path()).unwrap();
		assert_eq!(reopened.jobs(), vec![7, 9]);
		assert_eq!(reopened.get(7), Some(Sent { block: 12, tx: Some(H256::repeat_byte(0xab)) }));
		assert_eq!(reopened.get(9), Some(Sent { block: 13, tx: None }));
		reopened.remove(&[7, 100]).unwrap();
		assert_eq!(Journal::open(dir.path()).unwrap().jobs(), vec![9]);
	}
}
