//! The answers this worker has sent and not yet seen settled, kept on disk so that a restarted
//! worker does not answer a job a second time while its first answer is still in the pool.
//!
//! One line per job: `<job> <block> <tx hash | ->`, where `block` is the best block the answer
//! was built on and `-` marks a submission the pool refused (retried after a pause). The file
//! is rewritten atomically on every change; it holds at most the worker's open jobs.
//!
//! A second file, `started`, lists the jobs executing now. A job still listed when the worker
//! starts was running when the process died (a crash, the OOM killer): running it again
//! could crash it again, forever, so it is rejected instead. A clean stop empties the list.

use std::{
	collections::{BTreeMap, BTreeSet},
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

/// Persistent map of job → answer sent, and the jobs executing.
pub struct Journal {
	path: PathBuf,
	entries: BTreeMap<JobId, Sent>,
	started_path: PathBuf,
	started: BTreeSet<JobId>,
	/// Jobs that were executing when the previous process died.
	crashed: BTreeSet<JobId>,
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
		let started_path = dir.join("started");
		let crashed: BTreeSet<JobId> = match std::fs::read_to_string(&started_path) {
			Ok(text) => text.split_whitespace().filter_map(|j| j.parse().ok()).collect(),
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
			Err(e) => return Err(e),
		};
		if !crashed.is_empty() {
			tracing::warn!(
				target: "inference",
				jobs = ?crashed,
				"the last run stopped while executing these jobs: they are rejected, not run again"
			);
		}
		let journal = Journal { path, entries, started_path, started: BTreeSet::new(), crashed };
		journal.save_started()?;
		Ok(journal)
	}

	/// Whether `job` was executing when the previous process died.
	pub fn crashed(&self, job: JobId) -> bool {
		self.crashed.contains(&job)
	}

	/// Records that `job` starts executing, on disk before returning.
	pub fn start(&mut self, job: JobId) -> std::io::Result<()> {
		self.started.insert(job);
		self.save_started()
	}

	/// `job` finished executing (or never will, on a clean stop).
	pub fn finish(&mut self, jobs: &[JobId]) -> std::io::Result<()> {
		let before = self.started.len();
		for job in jobs {
			self.started.remove(job);
		}
		if self.started.len() != before {
			self.save_started()?;
		}
		Ok(())
	}

	/// Writes the executing jobs, and the crashed ones until they end on chain (a crash
	/// before the rejection lands must not clear them).
	fn save_started(&self) -> std::io::Result<()> {
		let text: String =
			self.started.union(&self.crashed).map(|job| format!("{job}\n")).collect();
		crate::write_atomically(&self.started_path, text.as_bytes())
	}

	/// What was sent for `job`.
	pub fn get(&self, job: JobId) -> Option<Sent> {
		self.entries.get(&job).copied()
	}

	/// Jobs with an entry.
	pub fn jobs(&self) -> Vec<JobId> {
		self.entries.keys().copied().collect()
	}

	/// Jobs the journal keeps something for until they end on chain: answered or crashed.
	pub fn tracked(&self) -> Vec<JobId> {
		let mut jobs: BTreeSet<JobId> = self.entries.keys().copied().collect();
		jobs.extend(self.crashed.iter().copied());
		jobs.into_iter().collect()
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
		let (before, crashed) = (self.entries.len(), self.crashed.len());
		for job in jobs {
			self.entries.remove(job);
			self.crashed.remove(job);
		}
		if self.entries.len() != before {
			self.save()?;
		}
		if self.crashed.len() != crashed {
			self.save_started()?;
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

	#[test]
	fn jobs_executing_when_the_process_died_are_known_after_a_restart() {
		let dir = tempfile::tempdir().unwrap();
		let mut journal = Journal::open(dir.path()).unwrap();
		journal.start(4).unwrap();
		journal.start(5).unwrap();
		journal.finish(&[5]).unwrap();
		// Killed here: job 4 was executing.
		drop(journal);
		let mut reopened = Journal::open(dir.path()).unwrap();
		assert!(reopened.crashed(4) && !reopened.crashed(5));
		// Remembered until the job ends on chain, even across another restart.
		drop(reopened);
		reopened = Journal::open(dir.path()).unwrap();
		assert!(reopened.crashed(4));
		reopened.remove(&[4]).unwrap();
		assert!(!Journal::open(dir.path()).unwrap().crashed(4));
	}
}
