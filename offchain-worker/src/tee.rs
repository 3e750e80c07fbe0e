//! TEE mode: the enclave key that signs results, and keeping it attested on chain.
//!
//! The worker holds an ed25519 key that never leaves its enclave (it is made at start and never
//! written down, so a restart means a new key). The chain accepts results signed by it once an
//! attestation document binds it to an allowed enclave image: the worker asks for a challenge
//! (`Tee::request_challenge`), has its enclave make a document with that challenge as `nonce`
//! and the key as `public_key`, and sends it (`Tee::attest`). It attests again before the key
//! expires, after a restart, and backs off when the chain keeps refusing.
//!
//! [`DevAttester`] makes documents with the **insecure** development CA and Nitro debug mode's
//! all-zero PCRs (`--tee-dev`): only the `development` chain trusts it. Inside an AWS Nitro
//! enclave, [`NsmAttester`] (`--tee-nitro`) asks the Nitro Security Module, which signs the
//! enclave's real measurements under AWS's certificate chain.

use opg_nitro::dev::{Claims, DevCa, DEV_SEED};
use opg_primitives::{payload_hash, tee_message, JobId};
use polkadot_sdk::sp_core::{ed25519, Pair, H256};

/// A worker's TEE standing as the runtime reports it (`TeeApi::worker_status`).
pub type WorkerTee = pallet_tee::runtime_api::WorkerTee<opg_runtime::BlockNumber>;

/// Makes attestation documents for the enclave the worker runs in.
pub trait Attester: Send + Sync + 'static {
	/// A document binding `public_key` to this enclave, with the chain's `nonce`, issued at
	/// `now_ms` (the chain's time, which the document's freshness is checked against).
	fn document(
		&self,
		nonce: &[u8; 32],
		public_key: &[u8; 32],
		now_ms: u64,
	) -> Result<Vec<u8>, String>;

	/// What makes the documents, for logs.
	fn describe(&self) -> &'static str;
}

/// **Insecure** documents from the development CA ([`opg_nitro::dev`]), claiming Nitro debug
/// mode's all-zero PCR0..2: what the `development` chain's policy allows, and nothing else does.
pub struct DevAttester;

/// Module id in development documents.
pub const DEV_MODULE_ID: &str = "opg-worker-tee-dev";

impl Attester for DevAttester {
	fn document(
		&self,
		nonce: &[u8; 32],
		public_key: &[u8; 32],
		now_ms: u64,
	) -> Result<Vec<u8>, String> {
		let ca = DevCa::new(DEV_SEED, now_ms / 1000);
		let claims = Claims {
			module_id: DEV_MODULE_ID.into(),
			pcrs: (0..3).map(|i| (i, vec![0; pallet_tee::PCR_LEN])).collect(),
			public_key: Some(public_key.to_vec()),
			user_data: None,
			nonce: Some(nonce.to_vec()),
		};
		Ok(ca.document(&claims, now_ms))
	}

	fn describe(&self) -> &'static str {
		"INSECURE development CA, zero PCRs"
	}
}

/// The Nitro Security Module's device inside an enclave.
pub const NSM_DEVICE: &str = "/dev/nsm";

/// Documents from the AWS Nitro Security Module: the enclave's PCRs, the chain's nonce and the
/// key, signed by the NSM under AWS's root, which the chain pins. The document's timestamp is
/// the NSM's clock; the chain checks it against its own time (at most 5 min old).
pub struct NsmAttester {
	fd: std::os::fd::RawFd,
}

impl NsmAttester {
	/// Opens [`NSM_DEVICE`]; fails outside a Nitro enclave.
	pub fn open() -> Result<Self, String> {
		use std::os::fd::IntoRawFd;
		let device =
			std::fs::OpenOptions::new()
				.read(true)
				.write(true)
				.open(NSM_DEVICE)
				.map_err(|e| {
					format!(
						"{NSM_DEVICE}: {e} (--tee-nitro works inside an AWS Nitro enclave only)"
					)
				})?;
		Ok(NsmAttester { fd: device.into_raw_fd() })
	}
}

impl Drop for NsmAttester {
	fn drop(&mut self) {
		// SAFETY: `fd` came from `into_raw_fd` and is closed only here.
		unsafe { libc::close(self.fd) };
	}
}

/// The NSM driver's message (`struct nsm_raw` in Linux's `include/uapi/linux/nsm.h`): the CBOR
/// request, and a buffer for the CBOR response whose length the driver sets. Nitro enclaves are
/// 64-bit, where `iovec` has the layout of the kernel's `nsm_iovec` (two u64).
#[repr(C)]
struct NsmMessage {
	request: libc::iovec,
	response: libc::iovec,
}

/// The driver's request and response limits.
const NSM_REQUEST_MAX: usize = 0x1000;
const NSM_RESPONSE_MAX: usize = 0x3000;

/// `NSM_IOCTL_RAW`: `_IOWR(0x0A, 0, struct nsm_raw)`.
const NSM_IOCTL: libc::c_ulong =
	(3 << 30) | ((std::mem::size_of::<NsmMessage>() as libc::c_ulong) << 16) | (0x0A << 8);

impl NsmAttester {
	/// One request to the NSM and its decoded response.
	fn request(
		&self,
		request: &aws_nitro_enclaves_nsm_api::api::Request,
	) -> Result<aws_nitro_enclaves_nsm_api::api::Response, String> {
		let request = serde_cbor::to_vec(request).map_err(|e| format!("NSM request: {e}"))?;
		if request.len() > NSM_REQUEST_MAX {
			return Err(format!(
				"NSM request of {} bytes over the driver's {NSM_REQUEST_MAX}",
				request.len()
			));
		}
		let mut response = vec![0u8; NSM_RESPONSE_MAX];
		let mut message = NsmMessage {
			request: libc::iovec {
				iov_base: request.as_ptr() as *mut libc::c_void,
				iov_len: request.len(),
			},
			response: libc::iovec {
				iov_base: response.as_mut_ptr() as *mut libc::c_void,
				iov_len: response.len(),
			},
		};
		// SAFETY: both buffers outlive the call; the driver reads `request` and writes at most
		// `response.len()` bytes into `response`, then sets `message.response.iov_len`.
		if unsafe { libc::ioctl(self.fd, NSM_IOCTL as _, &mut message as *mut NsmMessage) } != 0 {
			return Err(format!("NSM ioctl: {}", std::io::Error::last_os_error()));
		}
		let len = message.response.iov_len.min(response.len());
		serde_cbor::from_slice(&response[..len]).map_err(|e| format!("NSM response: {e}"))
	}
}

impl Attester for NsmAttester {
	fn document(
		&self,
		nonce: &[u8; 32],
		public_key: &[u8; 32],
		_now_ms: u64,
	) -> Result<Vec<u8>, String> {
		use aws_nitro_enclaves_nsm_api::api::{Request, Response};
		let request = Request::Attestation {
			user_data: None,
			nonce: Some(serde_bytes::ByteBuf::from(nonce.to_vec())),
			public_key: Some(serde_bytes::ByteBuf::from(public_key.to_vec())),
		};
		match self.request(&request)? {
			Response::Attestation { document } => Ok(document),
			Response::Error(code) => Err(format!("the NSM refused to attest: {code:?}")),
			other => Err(format!("unexpected NSM response: {other:?}")),
		}
	}

	fn describe(&self) -> &'static str {
		"AWS Nitro Security Module"
	}
}

/// The enclave: its result-signing key and how it proves what it runs.
pub struct Enclave {
	key: ed25519::Pair,
	attester: Box<dyn Attester>,
	/// Attest again when the key has less than this left (ms of chain time).
	renew_before_ms: u64,
}

/// Default margin before a key's expiry at which the worker attests again.
pub const RENEW_BEFORE_MS: u64 = 60 * 60 * 1000;

impl Enclave {
	/// An enclave with a fresh random key.
	pub fn new(attester: impl Attester) -> Self {
		Enclave {
			key: ed25519::Pair::generate().0,
			attester: Box::new(attester),
			renew_before_ms: RENEW_BEFORE_MS,
		}
	}

	/// `--tee-dev`: a fresh key attested by the insecure development CA.
	pub fn dev() -> Self {
		Self::new(DevAttester)
	}

	/// Attest again when the key has less than `ms` of chain time left.
	pub fn renew_before(mut self, ms: u64) -> Self {
		self.renew_before_ms = ms;
		self
	}

	/// The result-signing key.
	pub fn public(&self) -> [u8; 32] {
		self.key.public().0
	}

	/// What makes the documents.
	pub fn attester(&self) -> &'static str {
		self.attester.describe()
	}

	/// Admits job `job`'s input into the enclave: hashes the bytes the enclave will run and
	/// refuses them unless they are the job's (`input_hash`, from the job record). Under
	/// `--tee-nitro` the host relays the chain RPC, and it is the party TEE mode distrusts: were
	/// the enclave to sign the hash the host reports, the host could pair the real job with an
	/// input of its choosing and get a valid signature over an output of that other input.
	pub fn admit(
		&self,
		job: JobId,
		input_hash: H256,
		input: &[u8],
	) -> Result<Admitted, InputMismatch> {
		let computed = payload_hash(input);
		if computed != input_hash {
			return Err(InputMismatch { job, expected: input_hash, computed });
		}
		Ok(Admitted { job, input_hash: computed })
	}

	/// The enclave's signature over a direct-path receipt (the payload the worker key signs),
	/// given the request and response bytes it covers: the enclave hashes them itself and signs
	/// only a receipt that names those hashes, so the host cannot get a signed receipt for an
	/// answer the enclave did not make from that request.
	pub fn sign_receipt(
		&self,
		genesis: H256,
		receipt: &opg_primitives::channel::Receipt,
		request: &[u8],
		response: &[u8],
	) -> Option<[u8; 64]> {
		use opg_primitives::channel::{signing_payload, RECEIPT_TAG};
		if payload_hash(request) != receipt.request_hash ||
			payload_hash(response) != receipt.response_hash
		{
			return None;
		}
		Some(self.key.sign(&signing_payload(RECEIPT_TAG, &genesis, receipt)).0)
	}

	/// Evidence for a result: the signature over [`tee_message`] of the admitted job, the
	/// release's artifact, the input hash the enclave computed and the output's hash.
	pub fn sign_result(&self, admitted: &Admitted, artifact: H256, output: &[u8]) -> [u8; 64] {
		let message =
			tee_message(admitted.job, artifact, admitted.input_hash, payload_hash(output));
		self.key.sign(&message).0
	}
}

/// A job whose input the enclave hashed itself ([`Enclave::admit`]): the only way to get a
/// result signed, so the signed input hash is always one the enclave computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
	job: JobId,
	input_hash: H256,
}

/// Input bytes that are not the job's: the chain client lied, or the record changed under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputMismatch {
	/// The job.
	pub job: JobId,
	/// The input hash in the job record.
	pub expected: H256,
	/// The hash of the bytes the enclave was given.
	pub computed: H256,
}

impl std::fmt::Display for InputMismatch {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		write!(
			f,
			"job {}: the input bytes hash to {:?}, the job record says {:?}; the enclave signs \
			 nothing for it",
			self.job, self.computed, self.expected
		)
	}
}

impl std::error::Error for InputMismatch {}

/// What the worker sends next to keep its key attested.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
	/// Nothing: the key is good, or an earlier step is still on its way.
	Wait,
	/// `Tee::request_challenge`.
	RequestChallenge,
	/// `Tee::attest` with this document.
	Attest(Vec<u8>),
}

/// The last step sent: when, and under which pool hash once the pool took it.
#[derive(Clone, Copy, Debug)]
struct Pending {
	step: Sent,
	at: u32,
	tx: Option<H256>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
	Challenge,
	Attest { nonce: [u8; 32] },
}

/// Keeps the enclave's key attested: decides, at each best block, what to send.
pub struct Attestation {
	enclave: std::sync::Arc<Enclave>,
	/// Expiry (chain time, ms) of our key while the chain accepts results signed by it.
	usable_until_ms: Option<u64>,
	pending: Option<Pending>,
	/// Attempts in a row that did not attest the key (each doubles the wait, up to 32×).
	failures: u32,
	warned_not_worker: bool,
}

impl Attestation {
	/// Starts with nothing known about the chain.
	pub fn new(enclave: std::sync::Arc<Enclave>) -> Self {
		Attestation {
			enclave,
			usable_until_ms: None,
			pending: None,
			failures: 0,
			warned_not_worker: false,
		}
	}

	/// The enclave.
	pub fn enclave(&self) -> &std::sync::Arc<Enclave> {
		&self.enclave
	}

	/// Whether the chain accepts results signed by our key at the last block seen.
	pub fn usable(&self) -> bool {
		self.usable_until_ms.is_some()
	}

	/// When our key expires (chain time, ms), while the chain accepts it.
	pub fn usable_until_ms(&self) -> Option<u64> {
		self.usable_until_ms
	}

	/// The pool hash of the last step sent, while it may still be on its way.
	pub fn pending_tx(&self) -> Option<H256> {
		self.pending.and_then(|p| p.tx)
	}

	/// Records the pool hash of the step [`Self::on_status`] just returned.
	pub fn sent(&mut self, tx: H256) {
		if let Some(pending) = self.pending.as_mut() {
			pending.tx = Some(tx);
		}
	}

	/// The next step at best block `block`, whose TEE standing is `status`; `in_pool` says
	/// whether the pool still holds the last step sent. Something sent is given `retry_after`
	/// blocks (doubled for each failure in a row) to show up on chain, and nothing new is sent
	/// while it is still in the pool: a new challenge landing before the answer to the previous
	/// one would fail that answer (`NonceMismatch`), and an answer landing after a newer
	/// challenge likewise.
	pub fn on_status(
		&mut self,
		block: u32,
		status: &WorkerTee,
		retry_after: u32,
		in_pool: bool,
	) -> Step {
		let public = self.enclave.public();
		let usable = status.key.as_ref().filter(|k| k.public == public && status.key_usable);
		self.usable_until_ms = usable.map(|k| k.expires_at_ms);
		if let Some(key) = usable {
			if key.expires_at_ms > status.now_ms.saturating_add(self.enclave.renew_before_ms) {
				if self.pending.take().is_some() || self.failures > 0 {
					tracing::info!(
						target: "inference",
						block,
						expires_in_s = (key.expires_at_ms - status.now_ms) / 1000,
						"🔐 enclave key attested"
					);
				}
				self.failures = 0;
				return Step::Wait;
			}
		}
		if !status.is_worker {
			if !self.warned_not_worker {
				tracing::warn!(target: "inference", "not a registered worker: cannot attest the enclave key");
				self.warned_not_worker = true;
			}
			return Step::Wait;
		}
		self.warned_not_worker = false;
		if in_pool && self.pending.is_some() {
			return Step::Wait;
		}
		let patience = retry_after.max(1) << self.failures.min(5);
		let open_challenge = status.challenge.as_ref().filter(|c| c.expires_at > block);
		let sent_at = match self.pending {
			// The challenge is out: answer it below.
			Some(Pending { step: Sent::Challenge, .. }) if open_challenge.is_some() => None,
			Some(Pending { at, .. }) => Some(at),
			None => None,
		};
		if let Some(at) = sent_at {
			if block < at.saturating_add(patience) {
				return Step::Wait;
			}
			self.failures += 1;
			tracing::warn!(
				target: "inference",
				block,
				failures = self.failures,
				step = ?self.pending,
				attester = self.enclave.attester(),
				"enclave key not attested yet: the chain refused or dropped the last step \
				 (does its TEE policy trust this attester?); trying again"
			);
		}
		// A challenge still accepted in the next block, not already answered.
		if let Some(challenge) = open_challenge {
			let answered = matches!(
				self.pending,
				Some(Pending { step: Sent::Attest { nonce }, .. }) if nonce == challenge.nonce
			);
			if !answered {
				// A failure to make the document waits like a refused one.
				let step = Sent::Attest { nonce: challenge.nonce };
				self.pending = Some(Pending { step, at: block, tx: None });
				return match self.enclave.attester.document(
					&challenge.nonce,
					&public,
					status.now_ms,
				) {
					Ok(document) => Step::Attest(document),
					Err(e) => {
						tracing::error!(target: "inference", "the enclave made no attestation document: {e}");
						Step::Wait
					},
				};
			}
		}
		self.pending = Some(Pending { step: Sent::Challenge, at: block, tx: None });
		Step::RequestChallenge
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn the_enclave_signs_only_the_input_hash_it_computed() {
		let enclave = Enclave::dev();
		let (input, other, output) = (b"real input".as_slice(), b"host's input".as_slice(), b"out");
		let artifact = H256::repeat_byte(5);
		// The host pairs the real job record with other bytes: refused before anything runs.
		let refused = enclave.admit(7, payload_hash(input), other).unwrap_err();
		assert_eq!(refused.computed, payload_hash(other));
		// The real bytes: the signature covers the hash of what was admitted.
		let admitted = enclave.admit(7, payload_hash(input), input).unwrap();
		let signature =
			ed25519::Signature::from_raw(enclave.sign_result(&admitted, artifact, output));
		let public = ed25519::Public::from_raw(enclave.public());
		let message =
			|input: &[u8]| tee_message(7, artifact, payload_hash(input), payload_hash(output));
		assert!(ed25519::Pair::verify(&signature, message(input), &public));
		assert!(!ed25519::Pair::verify(&signature, message(other), &public));
	}

	#[test]
	fn the_nsm_ioctl_is_the_kernels() {
		// `_IOWR(0x0A, 0, struct nsm_raw)` with a 32-byte `nsm_raw`, as Linux defines it.
		assert_eq!(std::mem::size_of::<NsmMessage>(), 32);
		assert_eq!(NSM_IOCTL, 0xC020_0A00);
	}

	#[test]
	fn attestation_requests_carry_the_nonce_and_key_as_byte_strings() {
		use aws_nitro_enclaves_nsm_api::api::Request;
		let request = Request::Attestation {
			user_data: None,
			nonce: Some(serde_bytes::ByteBuf::from(vec![7; 32])),
			public_key: Some(serde_bytes::ByteBuf::from(vec![9; 32])),
		};
		let cbor = serde_cbor::to_vec(&request).unwrap();
		// CBOR byte strings of 32 bytes (0x58 0x20 …), not arrays of integers.
		let has = |byte: u8| {
			cbor.windows(34)
				.any(|w| w[..2] == [0x58, 0x20] && w[2..].iter().all(|b| *b == byte))
		};
		assert!(has(7) && has(9), "{cbor:02x?}");
		assert!(cbor.len() < NSM_REQUEST_MAX);
	}

	fn status(challenge: Option<[u8; 32]>, key: Option<[u8; 32]>) -> WorkerTee {
		WorkerTee {
			now_ms: 1_000_000,
			key: key.map(|public| pallet_tee::EnclaveKey {
				public,
				measurement: H256::zero(),
				expires_at_ms: 1_000_000 + 2 * RENEW_BEFORE_MS,
				attested_at: 1,
			}),
			key_usable: key.is_some(),
			challenge: challenge.map(|nonce| pallet_tee::Challenge { nonce, expires_at: 100 }),
			is_worker: true,
		}
	}

	#[test]
	fn attestation_requests_a_challenge_answers_it_once_and_rests_when_attested() {
		let mut a = Attestation::new(std::sync::Arc::new(Enclave::dev()));
		assert_eq!(a.on_status(10, &status(None, None), 5, false), Step::RequestChallenge);
		a.sent(H256::repeat_byte(1));
		// Not included yet.
		assert_eq!(a.on_status(11, &status(None, None), 5, true), Step::Wait);
		let Step::Attest(document) = a.on_status(12, &status(Some([7; 32]), None), 5, false) else {
			panic!("the open challenge is answered")
		};
		assert!(!document.is_empty());
		a.sent(H256::repeat_byte(2));
		assert_eq!(a.on_status(13, &status(Some([7; 32]), None), 5, false), Step::Wait);
		let public = a.enclave().public();
		assert_eq!(a.on_status(14, &status(None, Some(public)), 5, false), Step::Wait);
		assert!(a.usable());
	}

	#[test]
	fn attestation_sends_nothing_new_while_its_last_step_is_in_the_pool() {
		let mut a = Attestation::new(std::sync::Arc::new(Enclave::dev()));
		assert_eq!(a.on_status(10, &status(None, None), 5, false), Step::RequestChallenge);
		a.sent(H256::repeat_byte(1));
		// Long past the patience, but the request may still land: a second one could replace
		// the challenge after it was answered.
		assert_eq!(a.on_status(40, &status(None, None), 5, true), Step::Wait);
		// It left the pool without landing: ask again.
		assert_eq!(a.on_status(41, &status(None, None), 5, false), Step::RequestChallenge);
		a.sent(H256::repeat_byte(3));
		let Step::Attest(_) = a.on_status(42, &status(Some([7; 32]), None), 5, false) else {
			panic!("the open challenge is answered")
		};
		a.sent(H256::repeat_byte(4));
		// The answer is still in the pool after the patience: no new challenge under it.
		assert_eq!(a.on_status(60, &status(Some([7; 32]), None), 5, true), Step::Wait);
		// Dropped: the same challenge is not answered twice; a new one is asked for.
		assert_eq!(a.on_status(61, &status(Some([7; 32]), None), 5, false), Step::RequestChallenge);
	}
}
