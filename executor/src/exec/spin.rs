//! The thread pool the CPU kernels split their work over. Its workers spin for a moment after
//! each parallel section before they sleep, so the next section of the same inference (a
//! layer later, tens of microseconds on) finds them awake. With rayon, every section woke a
//! sleeping thread through the kernel, which on a 2-vCPU VM cost more than half of a
//! batch-1 convolution. onnxruntime's pool spins the same way.
//!
//! One section runs at a time: a second caller meanwhile, or a kernel called from inside a
//! task, runs its tasks on its own thread.

use std::{
	cell::Cell,
	sync::{
		atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
		Condvar, Mutex, OnceLock, TryLockError,
	},
	time::{Duration, Instant},
};

/// How long an idle worker keeps spinning before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// One parallel section: tasks `0..n`, claimed one at a time.
struct Section<'a> {
	task: &'a (dyn Fn(usize) + Sync),
	n: usize,
	next: AtomicUsize,
	done: AtomicUsize,
	panicked: AtomicBool,
}

impl Section<'_> {
	/// Runs tasks until none is left to claim.
	fn work(&self) {
		loop {
			let i = self.next.fetch_add(1, Ordering::Relaxed);
			if i >= self.n {
				return;
			}
			let run = std::panic::AssertUnwindSafe(|| (self.task)(i));
			if std::panic::catch_unwind(run).is_err() {
				self.panicked.store(true, Ordering::Relaxed);
			}
			// Release: what the task wrote is visible to the caller once it sees the count.
			self.done.fetch_add(1, Ordering::Release);
		}
	}
}

/// The section workers may join, as a pointer whose lifetime the caller guarantees.
struct Current(*const Section<'static>);
// SAFETY: the section is only reached while its caller waits for every attached worker.
unsafe impl Send for Current {}

struct Pool {
	workers: usize,
	/// The running section (null when none) and how many workers sleep, under one lock so
	/// that a wake-up is never lost.
	current: Mutex<(Current, usize)>,
	wake: Condvar,
	/// Bumped for each section; workers spin on it.
	epoch: AtomicU64,
	/// Workers holding the current section.
	attached: AtomicUsize,
	/// Held by the caller of the running section.
	busy: Mutex<()>,
}

thread_local! {
	/// Set on the pool's threads and inside tasks: a section started there runs inline.
	static INSIDE: Cell<bool> = const { Cell::new(false) };
}

fn pool() -> &'static Pool {
	static POOL: OnceLock<&'static Pool> = OnceLock::new();
	POOL.get_or_init(|| {
		// As many threads as rayon's pool (RAYON_NUM_THREADS or the cores), the caller included.
		let workers = rayon::current_num_threads().saturating_sub(1);
		let pool: &'static Pool = Box::leak(Box::new(Pool {
			workers,
			current: Mutex::new((Current(std::ptr::null()), 0)),
			wake: Condvar::new(),
			epoch: AtomicU64::new(0),
			attached: AtomicUsize::new(0),
			busy: Mutex::new(()),
		}));
		for i in 0..workers {
			let spawned = std::thread::Builder::new()
				.name(format!("opg-exec-{i}"))
				.spawn(move || pool.worker());
			if spawned.is_err() {
				// Fewer threads only means less parallelism; sections still complete.
				tracing::warn!(target: "opg-worker", "could not start executor thread {i}");
			}
		}
		pool
	})
}

impl Pool {
	fn worker(&self) {
		INSIDE.with(|inside| inside.set(true));
		let mut seen = 0;
		loop {
			// Spin on the epoch for a while, then sleep until it moves.
			let start = Instant::now();
			let mut spins = 0u32;
			loop {
				let epoch = self.epoch.load(Ordering::Acquire);
				if epoch != seen {
					seen = epoch;
					break;
				}
				spins = spins.wrapping_add(1);
				if spins.is_multiple_of(64) && start.elapsed() > SPIN {
					let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
					current.1 += 1;
					while self.epoch.load(Ordering::Acquire) == seen {
						current = self.wake.wait(current).unwrap_or_else(|e| e.into_inner());
					}
					current.1 -= 1;
					seen = self.epoch.load(Ordering::Acquire);
					break;
				}
				std::hint::spin_loop();
			}
			let section = {
				let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
				if current.0 .0.is_null() {
					continue;
				}
				self.attached.fetch_add(1, Ordering::Acquire);
				current.0 .0
			};
			// SAFETY: the caller keeps the section alive until `attached` is back to zero.
			unsafe { &*section }.work();
			self.attached.fetch_sub(1, Ordering::Release);
		}
	}
}

/// The threads a section runs on, the caller's included.
pub(crate) fn threads() -> usize {
	pool().workers + 1
}

/// Runs `task(i)` for every `i < n` on the pool's threads and this one, and returns when all
/// have run. A panic in a task is raised here once every task has finished.
pub(crate) fn for_each(n: usize, task: impl Fn(usize) + Sync) {
	let inline = || (0..n).for_each(&task);
	if n <= 1 || INSIDE.with(Cell::get) {
		return inline();
	}
	let pool = pool();
	if pool.workers == 0 {
		return inline();
	}
	let _busy = match pool.busy.try_lock() {
		Ok(guard) => guard,
		Err(TryLockError::WouldBlock) => return inline(),
		Err(TryLockError::Poisoned(e)) => e.into_inner(),
	};
	let task: &(dyn Fn(usize) + Sync) = &task;
	let section = Section {
		task,
		n,
		next: AtomicUsize::new(0),
		done: AtomicUsize::new(0),
		panicked: AtomicBool::new(false),
	};
	{
		let mut current = pool.current.lock().unwrap_or_else(|e| e.into_inner());
		// SAFETY (of the lifetime): this function does not return before every worker that
		// attached to the section has detached (below).
		current.0 = Current((&section as *const Section<'_>).cast());
		pool.epoch.fetch_add(1, Ordering::Release);
		if current.1 > 0 {
			pool.wake.notify_all();
		}
	}
	INSIDE.with(|inside| inside.set(true));
	section.work();
	INSIDE.with(|inside| inside.set(false));
	while section.done.load(Ordering::Acquire) < n {
		std::hint::spin_loop();
	}
	pool.current.lock().unwrap_or_else(|e| e.into_inner()).0 = Current(std::ptr::null());
	while pool.attached.load(Ordering::Acquire) > 0 {
		std::hint::spin_loop();
	}
	if section.panicked.load(Ordering::Relaxed) {
		panic!("an executor task panicked");
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use std::sync::atomic::AtomicU32;

	#[test]
	fn every_task_runs_once_across_many_sections() {
		for n in [0, 1, 2, 3, 17, 1000] {
			for _ in 0..50 {
				let hits: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
				for_each(n, |i| {
					hits[i].fetch_add(1, Ordering::Relaxed);
				});
				assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "n = {n}");
			}
		}
	}

	#[test]
	fn nested_and_concurrent_sections_complete() {
		let total = AtomicUsize::new(0);
		std::thread::scope(|s| {
			for _ in 0..3 {
				s.spawn(|| {
					for _ in 0..100 {
						for_each(4, |_| for_each(5, |_| _ = total.fetch_add(1, Ordering::Relaxed)));
					}
				});
			}
		});
		assert_eq!(total.load(Ordering::Relaxed), 3 * 100 * 4 * 5);
	}

	#[test]
	fn a_panicking_task_is_raised_to_the_caller_and_the_pool_goes_on() {
		let caught = std::panic::catch_unwind(|| for_each(8, |i| assert_ne!(i, 5, "task five")));
		assert!(caught.is_err());
		let count = AtomicUsize::new(0);
		for_each(8, |_| _ = count.fetch_add(1, Ordering::Relaxed));
		assert_eq!(count.load(Ordering::Relaxed), 8);
	}
}
