//! The model store: fetching, verification, corruption, size caps and LRU eviction; untrusted
//! sources (files outside the allowed directory, private hosts, slow servers) and the pause
//! after a failed fetch.

use opg_worker::store::{blake2_256, is_public, ModelStore, StoreConfig, StoreError};
use std::{
	io::{Read, Write},
	net::TcpListener,
	sync::atomic::Ordering,
};

fn source(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
	let p = dir.join(name);
	std::fs::write(&p, bytes).unwrap();
	format!("file://{}", p.display())
}

/// A store whose `file://` sources may be anywhere under the temporary directory, retrying a
/// failed fetch at once.
fn store(dir: &std::path::Path, max_cache: u64) -> ModelStore {
	let mut c = StoreConfig::new(dir.join("cache"));
	c.max_cache_bytes = max_cache;
	c.max_model_bytes = 1000;
	c.file_root = Some(std::env::temp_dir());
	c.retry_after_failure = std::time::Duration::ZERO;
	ModelStore::open(c).unwrap()
}

#[test]
fn fetches_verifies_and_caches() {
	let tmp = tempfile::tempdir().unwrap();
	let bytes = b"model bytes".to_vec();
	let (hash, uri) = (blake2_256(&bytes), source(tmp.path(), "m.onnx", &bytes));
	// The same hash the chain computes for artifacts.
	assert_eq!(hash.0, opg_primitives::payload_hash(&bytes).0);
	let s = store(tmp.path(), 1 << 20);
	assert_eq!(s.get(hash, bytes.len() as u64, &uri).unwrap(), bytes);
	assert_eq!(s.stats.misses.load(Ordering::Relaxed), 1);
	// The source may disappear: the cached copy serves.
	std::fs::remove_file(tmp.path().join("m.onnx")).unwrap();
	assert_eq!(s.get(hash, bytes.len() as u64, &uri).unwrap(), bytes);
	assert_eq!(s.stats.hits.load(Ordering::Relaxed), 1);
	// A restart finds it again.
	let s = store(tmp.path(), 1 << 20);
	assert!(s.contains(&hash));
	assert_eq!(s.get(hash, bytes.len() as u64, &uri).unwrap(), bytes);
}

#[test]
fn mismatching_or_oversized_downloads_are_deleted_and_reported() {
	let tmp = tempfile::tempdir().unwrap();
	let s = store(tmp.path(), 1 << 20);
	let uri = source(tmp.path(), "m.onnx", b"tampered");
	let want = blake2_256(b"original");
	assert!(matches!(s.get(want, 8, &uri), Err(StoreError::HashMismatch { .. })));
	assert!(matches!(s.get(want, 4, &uri), Err(StoreError::SizeMismatch { got: 8, want: 4, .. })));
	assert!(matches!(
		s.get(want, 20, &uri),
		Err(StoreError::SizeMismatch { got: 8, want: 20, .. })
	));
	assert!(matches!(
		s.get(want, 5000, &uri),
		Err(StoreError::TooLarge { size: 5000, limit: 1000 })
	));
	assert!(matches!(s.get(want, 8, "ftp://x/m.onnx"), Err(StoreError::UnsupportedUri(_))));
	assert!(matches!(s.get(want, 8, "file:///nonexistent/m.onnx"), Err(StoreError::Fetch { .. })));
	// Nothing is left behind: no final file, no partial download.
	assert_eq!(std::fs::read_dir(tmp.path().join("cache")).unwrap().count(), 0);
	assert_eq!(s.cached_bytes(), 0);
}

#[test]
fn a_corrupted_cache_file_is_refetched_never_returned() {
	let tmp = tempfile::tempdir().unwrap();
	let bytes = b"good model".to_vec();
	let (hash, uri) = (blake2_256(&bytes), source(tmp.path(), "m.onnx", &bytes));
	let s = store(tmp.path(), 1 << 20);
	s.get(hash, bytes.len() as u64, &uri).unwrap();
	std::fs::write(s.path_of(&hash), b"bad model!").unwrap();
	assert_eq!(s.get(hash, bytes.len() as u64, &uri).unwrap(), bytes);
	assert_eq!(s.stats.corrupt.load(Ordering::Relaxed), 1);
	assert_eq!(std::fs::read(s.path_of(&hash)).unwrap(), bytes);
}

#[test]
fn least_recently_used_models_are_evicted_above_the_cap() {
	let tmp = tempfile::tempdir().unwrap();
	let s = store(tmp.path(), 250);
	let models: Vec<(Vec<u8>, String)> = (0..3u8)
		.map(|i| {
			let b = vec![i; 100];
			let u = source(tmp.path(), &format!("{i}.onnx"), &b);
			(b, u)
		})
		.collect();
	let get = |i: usize| s.get(blake2_256(&models[i].0), 100, &models[i].1).unwrap();
	get(0);
	std::thread::sleep(std::time::Duration::from_millis(10));
	get(1);
	std::thread::sleep(std::time::Duration::from_millis(10));
	get(0); // 1 is now the least recently used
	std::thread::sleep(std::time::Duration::from_millis(10));
	get(2);
	assert!(s.contains(&blake2_256(&models[0].0)));
	assert!(!s.contains(&blake2_256(&models[1].0)));
	assert!(s.contains(&blake2_256(&models[2].0)));
	assert_eq!(s.cached_bytes(), 200);
	assert!(!s.path_of(&blake2_256(&models[1].0)).exists());
	assert_eq!(s.stats.evictions.load(Ordering::Relaxed), 1);
}

#[test]
fn fetches_over_http() {
	let tmp = tempfile::tempdir().unwrap();
	let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
	let listener = TcpListener::bind("127.0.0.1:0").unwrap();
	let port = listener.local_addr().unwrap().port();
	let body = bytes.clone();
	std::thread::spawn(move || {
		for stream in listener.incoming().take(1) {
			let mut stream = stream.unwrap();
			let mut req = [0u8; 1024];
			let _ = stream.read(&mut req).unwrap();
			write!(
				stream,
				"HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
				body.len()
			)
			.unwrap();
			stream.write_all(&body).unwrap();
		}
	});
	let mut c = StoreConfig::new(tmp.path().join("cache"));
	c.max_model_bytes = 1 << 20;
	c.allow_private_hosts = true;
	let s = ModelStore::open(c).unwrap();
	let uri = format!("http://127.0.0.1:{port}/models/m.onnx");
	assert_eq!(s.get(blake2_256(&bytes), bytes.len() as u64, &uri).unwrap(), bytes);
	assert_eq!(s.stats.downloaded_bytes.load(Ordering::Relaxed), 300_000);
}

#[test]
fn interrupted_downloads_are_cleaned_up_on_open() {
	let tmp = tempfile::tempdir().unwrap();
	std::fs::create_dir_all(tmp.path().join("cache")).unwrap();
	std::fs::write(tmp.path().join("cache/.partial-abc-1"), b"half").unwrap();
	let _s = store(tmp.path(), 1 << 20);
	assert!(!tmp.path().join("cache/.partial-abc-1").exists());
}

#[test]
fn concurrent_fetches_of_one_model_all_succeed() {
	// Jobs on the same model start together: each download must finish its own temporary file.
	let tmp = tempfile::tempdir().unwrap();
	let bytes: Vec<u8> = (0..900u32).map(|i| (i * 7) as u8).collect();
	let (hash, uri) = (blake2_256(&bytes), source(tmp.path(), "m.onnx", &bytes));
	for round in 0..20 {
		let s = store(&tmp.path().join(round.to_string()), 1 << 20);
		let barrier = std::sync::Barrier::new(8);
		std::thread::scope(|scope| {
			for _ in 0..8 {
				scope.spawn(|| {
					barrier.wait();
					assert_eq!(
						s.get(hash, bytes.len() as u64, &uri).unwrap(),
						bytes,
						"round {round}"
					);
				});
			}
		});
	}
}

#[test]
fn file_sources_are_regular_files_under_the_allowed_directory_only() {
	let tmp = tempfile::tempdir().unwrap();
	let allowed = tmp.path().join("allowed");
	std::fs::create_dir(&allowed).unwrap();
	let bytes = b"model".to_vec();
	let hash = blake2_256(&bytes);
	let inside = source(&allowed, "m.onnx", &bytes);
	source(tmp.path(), "outside.onnx", &bytes);
	std::os::unix::fs::symlink(tmp.path().join("outside.onnx"), allowed.join("link.onnx")).unwrap();
	let fifo = allowed.join("fifo.onnx");
	let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
	assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);

	// Off unless the operator names a directory.
	let off = ModelStore::open(StoreConfig::new(tmp.path().join("cache-off"))).unwrap();
	match off.get(hash, 5, &inside) {
		Err(StoreError::Forbidden { reason, .. }) => assert!(reason.contains("--allow-file-uri")),
		other => panic!("{other:?}"),
	}

	let mut c = StoreConfig::new(tmp.path().join("cache"));
	c.file_root = Some(allowed.clone());
	c.retry_after_failure = std::time::Duration::ZERO;
	let s = ModelStore::open(c).unwrap();
	for uri in [
		format!("file://{}", tmp.path().join("outside.onnx").display()),
		format!("file://{}/../outside.onnx", allowed.display()),
		format!("file://{}", allowed.join("link.onnx").display()),
		"file:///dev/zero".to_string(),
		format!("file://{}", fifo.display()),
	] {
		let started = std::time::Instant::now();
		match s.get(hash, 5, &uri) {
			Err(StoreError::Forbidden { .. }) => {},
			other => panic!("{uri}: {other:?}"),
		}
		assert!(started.elapsed() < std::time::Duration::from_secs(5), "{uri} hung");
	}
	assert_eq!(s.get(hash, 5, &inside).unwrap(), bytes);
}

#[test]
fn private_and_link_local_hosts_are_refused_unless_allowed() {
	for (ip, public) in [
		("8.8.8.8", true),
		("1.1.1.1", true),
		("2606:4700::1111", true),
		("127.0.0.1", false),
		("10.1.2.3", false),
		("172.16.0.1", false),
		("192.168.1.1", false),
		("169.254.169.254", false),
		("100.64.0.1", false),
		("0.0.0.0", false),
		("255.255.255.255", false),
		("::1", false),
		("fe80::1", false),
		("fd00::1", false),
		("::ffff:169.254.169.254", false),
	] {
		assert_eq!(is_public(ip.parse().unwrap()), public, "{ip}");
	}
	let tmp = tempfile::tempdir().unwrap();
	let mut c = StoreConfig::new(tmp.path().join("cache"));
	c.retry_after_failure = std::time::Duration::ZERO;
	let s = ModelStore::open(c).unwrap();
	for uri in [
		"http://127.0.0.1:9/m.onnx",
		"http://169.254.169.254/latest/meta-data",
		"http://localhost:9/m",
	] {
		match s.get(blake2_256(b"x"), 1, uri) {
			Err(StoreError::Fetch { reason, .. }) =>
				assert!(reason.contains("not a public address"), "{uri}: {reason}"),
			other => panic!("{uri}: {other:?}"),
		}
	}
}

#[test]
fn a_download_has_a_total_deadline() {
	// A server that sends a little, then nothing (each read within the per-read timeout).
	let listener = TcpListener::bind("127.0.0.1:0").unwrap();
	let port = listener.local_addr().unwrap().port();
	std::thread::spawn(move || {
		if let Some(Ok(mut stream)) = listener.incoming().next() {
			let mut req = [0u8; 1024];
			let _ = stream.read(&mut req);
			let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
			for _ in 0..50 {
				let _ = stream.write_all(b"x");
				std::thread::sleep(std::time::Duration::from_millis(100));
			}
		}
	});
	let tmp = tempfile::tempdir().unwrap();
	let mut c = StoreConfig::new(tmp.path().join("cache"));
	c.allow_private_hosts = true;
	c.download_deadline = std::time::Duration::from_millis(500);
	let s = ModelStore::open(c).unwrap();
	let started = std::time::Instant::now();
	let result = s.get(blake2_256(b"x"), 100, &format!("http://127.0.0.1:{port}/m.onnx"));
	assert!(matches!(result, Err(StoreError::Fetch { .. })), "{result:?}");
	assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
}

#[test]
fn a_failed_fetch_is_not_retried_before_its_time() {
	let tmp = tempfile::tempdir().unwrap();
	let bytes = b"original".to_vec();
	let hash = blake2_256(&bytes);
	let uri = source(tmp.path(), "m.onnx", b"tampered");
	let mut c = StoreConfig::new(tmp.path().join("cache"));
	c.file_root = Some(tmp.path().to_path_buf());
	c.retry_after_failure = std::time::Duration::from_secs(3600);
	let s = ModelStore::open(c).unwrap();
	assert!(matches!(s.get(hash, 8, &uri), Err(StoreError::HashMismatch { .. })));
	// Fixed at the source, but the failure is remembered: no refetch for every job.
	source(tmp.path(), "m.onnx", &bytes);
	match s.get(hash, 8, &uri) {
		Err(StoreError::RecentlyFailed { reason, retry_in_s, .. }) => {
			assert!(reason.contains("hashes to"), "{reason}");
			assert!(retry_in_s > 3500);
		},
		other => panic!("{other:?}"),
	}
	assert_eq!(s.stats.misses.load(Ordering::Relaxed), 1);
	// Another store (a restart) tries again.
	assert_eq!(store(tmp.path(), 1 << 20).get(hash, 8, &uri).unwrap(), bytes);
}
