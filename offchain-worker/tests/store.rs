//! The model store: fetching, verification, corruption, size caps and LRU eviction.

use opg_worker::store::{blake2_256, ModelStore, StoreConfig, StoreError};
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

fn store(dir: &std::path::Path, max_cache: u64) -> ModelStore {
	let mut c = StoreConfig::new(dir.join("cache"));
	c.max_cache_bytes = max_cache;
	c.max_model_bytes = 1000;
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
