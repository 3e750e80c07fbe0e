//! Content-addressed model cache.
//!
//! A release names its artifact by blake2-256 hash, size and source URI. The store fetches the
//! file (file://, http(s)://, ipfs:// through a gateway, or a gateway URL), streams it under a
//! size cap into a temporary file, checks size and hash against the chain, and renames it into
//! place, so a file under its final name is always complete and verified when written. Files
//! are re-hashed on every load (they are read whole to parse anyway): a corrupt file is deleted,
//! reported and fetched again, never run. Above `max_cache_bytes` the least recently used
//! models are evicted.
//!
//! Sources are untrusted (anyone can publish a release): `file://` reads only regular files
//! under the directory the operator allows (`--allow-file-uri`), HTTP(S) never connects to a
//! loopback, private or link-local address (every hop of a redirect included, checked at
//! resolution), a download has a total deadline, and a failed fetch is not retried for a
//! while, so a bad release cannot keep the worker busy.

use blake2::{digest::consts::U32, Blake2b, Digest};
use primitive_types::H256;
use std::{
	collections::HashMap,
	fs,
	io::{Read, Write},
	net::{IpAddr, SocketAddr, ToSocketAddrs},
	path::{Path, PathBuf},
	sync::{
		atomic::{AtomicU64, Ordering},
		Mutex,
	},
	time::{Duration, Instant, SystemTime},
};

type Blake2b256 = Blake2b<U32>;

/// blake2-256 of a byte string, as the chain computes artifact hashes.
pub fn blake2_256(bytes: &[u8]) -> H256 {
	H256(Blake2b256::digest(bytes).into())
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
	/// Cache directory (`--model-dir`).
	pub dir: PathBuf,
	/// Evict least recently used models above this many bytes.
	pub max_cache_bytes: u64,
	/// Refuse any single model larger than this, whatever the release declares.
	pub max_model_bytes: u64,
	/// Gateway for `ipfs://` URIs, e.g. `https://ipfs.io`.
	pub ipfs_gateway: String,
	/// Connect and per-read network timeout.
	pub timeout: Duration,
	/// Longest one download may take in all (connection, redirects, body).
	pub download_deadline: Duration,
	/// Directory whose regular files `file://` URIs may name (`--allow-file-uri`); `None`
	/// refuses `file://`.
	pub file_root: Option<PathBuf>,
	/// Whether HTTP sources may be loopback, private or link-local hosts
	/// (`--allow-private-model-hosts`: a model server on the operator's own network).
	pub allow_private_hosts: bool,
	/// How long a failed fetch of an artifact is remembered before it is tried again.
	pub retry_after_failure: Duration,
}

impl StoreConfig {
	pub fn new(dir: impl Into<PathBuf>) -> Self {
		StoreConfig {
			dir: dir.into(),
			max_cache_bytes: 8 << 30,
			max_model_bytes: 2 << 30,
			ipfs_gateway: "https://ipfs.io".into(),
			timeout: Duration::from_secs(60),
			// 2 GiB at 4 MB/s.
			download_deadline: Duration::from_secs(600),
			file_root: None,
			allow_private_hosts: false,
			retry_after_failure: Duration::from_secs(300),
		}
	}
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
	#[error("unsupported source URI `{0}` (use file://, http(s):// or ipfs://)")]
	UnsupportedUri(String),
	#[error("model is {size} bytes, over the worker's limit of {limit}")]
	TooLarge { size: u64, limit: u64 },
	#[error("download of {uri} is {got} bytes, the release declares {want}")]
	SizeMismatch { uri: String, got: u64, want: u64 },
	#[error("download of {uri} hashes to {got:?}, the release declares {want:?}")]
	HashMismatch { uri: String, got: H256, want: H256 },
	#[error("fetching {uri}: {reason}")]
	Fetch { uri: String, reason: String },
	#[error("{uri}: {reason}")]
	Forbidden { uri: String, reason: String },
	#[error("fetching this model failed {ago_s} s ago ({reason}); next try in {retry_in_s} s")]
	RecentlyFailed { reason: String, ago_s: u64, retry_in_s: u64 },
	#[error("model cache: {0}")]
	Io(#[from] std::io::Error),
}

/// Counters for the metrics endpoint.
#[derive(Debug, Default)]
pub struct StoreStats {
	pub hits: AtomicU64,
	pub misses: AtomicU64,
	pub downloaded_bytes: AtomicU64,
	pub corrupt: AtomicU64,
	pub evictions: AtomicU64,
}

struct Entry {
	size: u64,
	last_used: SystemTime,
}

pub struct ModelStore {
	config: StoreConfig,
	index: Mutex<HashMap<H256, Entry>>,
	/// Artifacts whose last fetch failed: when, and why.
	failures: Mutex<HashMap<H256, (Instant, String)>>,
	pub stats: StoreStats,
}

/// Whether `ip` is an address on the public internet: not loopback, private (RFC 1918, IPv6
/// unique local), link-local (where cloud metadata services live), shared (CGNAT),
/// unspecified, broadcast, multicast or documentation.
pub fn is_public(ip: IpAddr) -> bool {
	match ip {
		IpAddr::V4(a) => {
			let [first, second, ..] = a.octets();
			!(a.is_loopback() ||
				a.is_private() ||
				a.is_link_local() ||
				a.is_unspecified() ||
				a.is_broadcast() ||
				a.is_multicast() ||
				a.is_documentation() ||
				first == 0 || (first == 100 && second & 0xc0 == 64))
		},
		IpAddr::V6(a) => {
			if let Some(v4) = a.to_ipv4_mapped() {
				return is_public(IpAddr::V4(v4));
			}
			let first = a.segments()[0];
			!(a.is_loopback() ||
				a.is_unspecified() ||
				a.is_multicast() ||
				first & 0xfe00 == 0xfc00 ||
				first & 0xffc0 == 0xfe80)
		},
	}
}

/// Resolves hosts for downloads, refusing names that resolve to a non-public address. It runs
/// for every connection, redirects included, so what is checked is what is connected to.
struct PublicHostsOnly;

impl ureq::Resolver for PublicHostsOnly {
	fn resolve(&self, netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
		let addrs: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
		if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
			return Err(std::io::Error::new(
				std::io::ErrorKind::PermissionDenied,
				format!(
					"{netloc} resolves to {}, not a public address (--allow-private-model-hosts)",
					bad.ip()
				),
			));
		}
		Ok(addrs)
	}
}

fn hex(h: &H256) -> String {
	h.0.iter().map(|b| format!("{b:02x}")).collect()
}

impl ModelStore {
	/// Opens (creating if needed) the cache directory, drops leftovers of interrupted
	/// downloads and indexes the models already there.
	pub fn open(config: StoreConfig) -> Result<Self, StoreError> {
		fs::create_dir_all(&config.dir)?;
		let mut index = HashMap::new();
		for entry in fs::read_dir(&config.dir)? {
			let entry = entry?;
			let name = entry.file_name().to_string_lossy().into_owned();
			if name.starts_with(".partial-") {
				fs::remove_file(entry.path())?;
				continue;
			}
			let Some(stem) = name.strip_suffix(".onnx") else {
				continue;
			};
			let mut hash = [0u8; 32];
			if stem.len() != 64 ||
				(0..32).any(|i| {
					u8::from_str_radix(&stem[2 * i..2 * i + 2], 16).map(|b| hash[i] = b).is_err()
				}) {
				continue;
			}
			let meta = entry.metadata()?;
			index.insert(
				H256(hash),
				Entry {
					size: meta.len(),
					last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
				},
			);
		}
		Ok(ModelStore {
			config,
			index: Mutex::new(index),
			failures: Mutex::new(HashMap::new()),
			stats: StoreStats::default(),
		})
	}

	pub fn path_of(&self, hash: &H256) -> PathBuf {
		self.config.dir.join(format!("{}.onnx", hex(hash)))
	}

	/// Bytes currently cached.
	pub fn cached_bytes(&self) -> u64 {
		self.index.lock().expect("store lock").values().map(|e| e.size).sum()
	}

	pub fn contains(&self, hash: &H256) -> bool {
		self.index.lock().expect("store lock").contains_key(hash)
	}

	/// The verified bytes of an artifact, fetched from `uri` if not cached.
	pub fn get(&self, hash: H256, size: u64, uri: &str) -> Result<Vec<u8>, StoreError> {
		if size > self.config.max_model_bytes {
			return Err(StoreError::TooLarge { size, limit: self.config.max_model_bytes });
		}
		let path = self.path_of(&hash);
		if self.contains(&hash) {
			match fs::read(&path) {
				Ok(bytes) if bytes.len() as u64 == size && blake2_256(&bytes) == hash => {
					self.stats.hits.fetch_add(1, Ordering::Relaxed);
					self.touch(hash);
					return Ok(bytes);
				},
				_ => {
					tracing::warn!(artifact = %hex(&hash), "cached model is corrupt; deleting and fetching again");
					self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
					let _ = fs::remove_file(&path);
					self.index.lock().expect("store lock").remove(&hash);
				},
			}
		}
		if let Some((at, reason)) = self.failures.lock().expect("store lock").get(&hash) {
			let ago = at.elapsed();
			if ago < self.config.retry_after_failure {
				return Err(StoreError::RecentlyFailed {
					reason: reason.clone(),
					ago_s: ago.as_secs(),
					retry_in_s: (self.config.retry_after_failure - ago).as_secs(),
				});
			}
		}
		self.stats.misses.fetch_add(1, Ordering::Relaxed);
		let bytes = match self.fetch(hash, size, uri) {
			Ok(bytes) => {
				self.failures.lock().expect("store lock").remove(&hash);
				bytes
			},
			Err(e) => {
				// Local I/O errors are the worker's own: not held against the source.
				if !matches!(e, StoreError::Io(_)) {
					self.failures
						.lock()
						.expect("store lock")
						.insert(hash, (Instant::now(), e.to_string()));
				}
				return Err(e);
			},
		};
		self.evict(Some(hash))?;
		Ok(bytes)
	}

	/// The path of a verified artifact, fetched from `uri` if not cached: for models mapped
	/// from disk rather than read (GGUF). A cached file is hashed as it is streamed, without
	/// holding it in memory; nothing but the store writes in its directory.
	pub fn get_path(&self, hash: H256, size: u64, uri: &str) -> Result<PathBuf, StoreError> {
		let path = self.path_of(&hash);
		if self.contains(&hash) &&
			size <= self.config.max_model_bytes &&
			Self::file_is(&path, hash, size)
		{
			self.stats.hits.fetch_add(1, Ordering::Relaxed);
			self.touch(hash);
			return Ok(path);
		}
		// `get` deletes a corrupt copy (or refuses an oversized one) and fetches again.
		self.get(hash, size, uri).map(|_| path)
	}

	/// Whether the file at `path` has `size` bytes and hashes to `hash`.
	fn file_is(path: &Path, hash: H256, size: u64) -> bool {
		let Ok(mut file) = fs::File::open(path) else { return false };
		if file.metadata().map(|m| m.len()).ok() != Some(size) {
			return false;
		}
		let mut hasher = Blake2b256::new();
		let mut buf = vec![0u8; 1 << 20];
		loop {
			match file.read(&mut buf) {
				Ok(0) => break,
				Ok(n) => hasher.update(&buf[..n]),
				Err(_) => return false,
			}
		}
		H256(hasher.finalize().into()) == hash
	}

	fn touch(&self, hash: H256) {
		if let Some(e) = self.index.lock().expect("store lock").get_mut(&hash) {
			e.last_used = SystemTime::now();
		}
	}

	/// Streams `uri` into a temporary file, verifies it and moves it into place.
	fn fetch(&self, hash: H256, size: u64, uri: &str) -> Result<Vec<u8>, StoreError> {
		// Unique per download: jobs on the same model may fetch it at once, and each must
		// finish its own file before the (atomic) rename.
		static DOWNLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
		let n = DOWNLOADS.fetch_add(1, Ordering::Relaxed);
		let tmp =
			self.config
				.dir
				.join(format!(".partial-{}-{}-{n}", hex(&hash), std::process::id()));
		let result = self.download(uri, size, &tmp).and_then(|bytes| {
			let got = blake2_256(&bytes);
			if got != hash {
				self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
				return Err(StoreError::HashMismatch { uri: uri.into(), got, want: hash });
			}
			fs::rename(&tmp, self.path_of(&hash))?;
			Ok(bytes)
		});
		if result.is_err() {
			let _ = fs::remove_file(&tmp);
		} else {
			self.index
				.lock()
				.expect("store lock")
				.insert(hash, Entry { size, last_used: SystemTime::now() });
		}
		result
	}

	fn download(&self, uri: &str, size: u64, tmp: &Path) -> Result<Vec<u8>, StoreError> {
		let fetch_err = |reason: String| StoreError::Fetch { uri: uri.into(), reason };
		let started = Instant::now();
		let mut reader: Box<dyn Read> = if let Some(path) = uri.strip_prefix("file://") {
			Box::new(self.open_file(uri, path)?)
		} else if uri.starts_with("http://") ||
			uri.starts_with("https://") ||
			uri.starts_with("ipfs://")
		{
			let url = match uri.strip_prefix("ipfs://") {
				Some(cid) =>
					format!("{}/ipfs/{cid}", self.config.ipfs_gateway.trim_end_matches('/')),
				None => uri.to_string(),
			};
			let mut agent = ureq::AgentBuilder::new()
				.timeout_read(self.config.timeout)
				.timeout_connect(self.config.timeout)
				.timeout(self.config.download_deadline);
			if !self.config.allow_private_hosts {
				agent = agent.resolver(PublicHostsOnly);
			}
			let agent = agent.build();
			let response = agent.get(&url).call().map_err(|e| fetch_err(e.to_string()))?;
			Box::new(response.into_reader())
		} else {
			return Err(StoreError::UnsupportedUri(uri.into()));
		};

		let mut file = fs::File::create(tmp)?;
		let mut bytes = Vec::with_capacity(size.min(64 << 20) as usize);
		let mut buf = vec![0u8; 1 << 16];
		let mut next_report = 0u64;
		loop {
			if started.elapsed() > self.config.download_deadline {
				return Err(fetch_err(format!(
					"not done after {} s",
					self.config.download_deadline.as_secs()
				)));
			}
			let n = reader.read(&mut buf).map_err(|e| fetch_err(e.to_string()))?;
			if n == 0 {
				break;
			}
			// The cap is the declared size: a source that sends more is wrong, and is cut off
			// before it can fill the disk.
			if bytes.len() as u64 + n as u64 > size {
				return Err(StoreError::SizeMismatch {
					uri: uri.into(),
					got: bytes.len() as u64 + n as u64,
					want: size,
				});
			}
			bytes.extend_from_slice(&buf[..n]);
			file.write_all(&buf[..n])?;
			self.stats.downloaded_bytes.fetch_add(n as u64, Ordering::Relaxed);
			let done = bytes.len() as u64;
			if done >= next_report {
				tracing::info!(%uri, done, total = size, "fetching model {}%", done * 100 / size.max(1));
				next_report = done + size / 4 + 1;
			}
		}
		if bytes.len() as u64 != size {
			return Err(StoreError::SizeMismatch {
				uri: uri.into(),
				got: bytes.len() as u64,
				want: size,
			});
		}
		file.sync_all()?;
		Ok(bytes)
	}

	/// Opens a `file://` source: a regular file under the allowed directory, symbolic links
	/// resolved first (no `/dev/zero`, FIFO or `../` escape).
	fn open_file(&self, uri: &str, path: &str) -> Result<fs::File, StoreError> {
		let forbidden = |reason: String| StoreError::Forbidden { uri: uri.into(), reason };
		let Some(root) = &self.config.file_root else {
			return Err(forbidden("file:// sources are off (--allow-file-uri DIR)".into()));
		};
		let root = fs::canonicalize(root)
			.map_err(|e| forbidden(format!("allowed directory {}: {e}", root.display())))?;
		let real = fs::canonicalize(path)
			.map_err(|e| StoreError::Fetch { uri: uri.into(), reason: e.to_string() })?;
		if !real.starts_with(&root) {
			return Err(forbidden(format!("{} is outside {}", real.display(), root.display())));
		}
		// Non-blocking, so a FIFO cannot hang the open; then only a regular file is read.
		use std::os::unix::fs::OpenOptionsExt;
		let file = fs::OpenOptions::new()
			.read(true)
			.custom_flags(libc::O_NONBLOCK)
			.open(&real)
			.map_err(|e| StoreError::Fetch { uri: uri.into(), reason: e.to_string() })?;
		if !file.metadata()?.is_file() {
			return Err(forbidden(format!("{} is not a regular file", real.display())));
		}
		Ok(file)
	}

	/// Evicts least recently used models until the cache fits, never `keep`.
	fn evict(&self, keep: Option<H256>) -> Result<(), StoreError> {
		let mut index = self.index.lock().expect("store lock");
		let mut total: u64 = index.values().map(|e| e.size).sum();
		while total > self.config.max_cache_bytes {
			let Some(victim) = index
				.iter()
				.filter(|(h, _)| Some(**h) != keep)
				.min_by_key(|(_, e)| e.last_used)
				.map(|(h, _)| *h)
			else {
				break;
			};
			let entry = index.remove(&victim).expect("found above");
			total -= entry.size;
			let _ = fs::remove_file(self.path_of(&victim));
			self.stats.evictions.fetch_add(1, Ordering::Relaxed);
			tracing::info!(artifact = %hex(&victim), bytes = entry.size, "evicted model from cache");
		}
		Ok(())
	}
}
