//! Verification of AWS Nitro Enclaves attestation documents, `no_std`, for OPG's TEE mode.
//!
//! A document is a COSE_Sign1 (RFC 9052) signed with ES384 by a leaf certificate that chains
//! through the document's `cabundle` to a pinned root (the AWS Nitro root, or a dev root on dev
//! chains). [`verify`] checks, in order: sizes, the CBOR structure, the protected header, every
//! payload field, the certificate chain at the given time (ECDSA P-384/SHA-384 signatures, names,
//! validity, CA and path-length constraints, key usage, no unknown critical extension), the
//! COSE signature, and freshness. What it returns is only what the enclave signed; whether its
//! PCRs, nonce and key are acceptable is the caller's policy.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod cbor;
mod x509;

#[cfg(feature = "dev-ca")]
pub mod dev;

pub use x509::fingerprint;

use alloc::vec::Vec;
use cbor::Item;

/// The AWS Nitro Enclaves root certificate (G1, CN=aws.nitro-enclaves, valid 2019-10-28 to
/// 2049-10-28). SHA-256 fingerprint 641a0321…8f79bb5b, as AWS publishes it.
pub const AWS_NITRO_ROOT_G1: &[u8] = include_bytes!("aws-nitro-root-g1.der");
/// The root certificate (DER) of the **insecure** development CA (`dev::DevCa` with
/// `dev::DEV_SEED`, one intermediate): for the genesis of development chains only, since anyone
/// can issue documents under it.
pub const INSECURE_DEV_ROOT: &[u8] = include_bytes!("insecure-dev-root.der");

/// Largest document accepted (real ones are about 4.5 KiB).
pub const MAX_DOCUMENT_LEN: usize = 16 * 1024;
/// Most certificates in `cabundle` (AWS uses 4: root, regional, zonal, instance).
pub const MAX_CABUNDLE: usize = 8;
/// Largest certificate accepted.
pub const MAX_CERTIFICATE_LEN: usize = 2048;
/// Most PCRs in a document (Nitro has 16; the format allows 32).
pub const MAX_PCRS: usize = 32;
/// Largest `public_key` (Nitro's own limit).
pub const MAX_PUBLIC_KEY_LEN: usize = 1024;
/// Largest `user_data` and `nonce` (Nitro's own limit).
pub const MAX_USER_DATA_LEN: usize = 512;
/// Default freshness: a document may be this old …
pub const MAX_AGE_MS: u64 = 5 * 60 * 1000;
/// … and this far ahead of the verifier's clock.
pub const MAX_AHEAD_MS: u64 = 60 * 1000;

/// Why a document was refused. With the `codec` feature it is SCALE-encodable (one byte, the
/// variant's index: the order of the variants is an on-chain encoding) and has type information,
/// so a runtime can carry it in its errors, events and storage.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(
	feature = "codec",
	derive(
		codec::Encode,
		codec::Decode,
		codec::DecodeWithMemTracking,
		codec::MaxEncodedLen,
		scale_info::TypeInfo
	)
)]
pub enum Error {
	/// Larger than [`MAX_DOCUMENT_LEN`], or a field over its limit.
	TooLarge,
	/// Not well-formed CBOR of the accepted subset, or not a COSE_Sign1 structure.
	Cbor,
	/// The protected header is not exactly {alg: ES384}.
	UnsupportedAlgorithm,
	/// A payload field is missing, repeated, unknown or of the wrong type or size.
	Payload,
	/// A certificate does not parse, or uses a key or signature other than P-384/SHA-384.
	Certificate,
	/// `cabundle` does not start with a pinned root.
	UntrustedRoot,
	/// A certificate's issuer is not the previous certificate's subject.
	IssuerMismatch,
	/// An issuing certificate is not a CA, may not sign certificates, or its path length is
	/// exceeded; or the leaf is a CA.
	Constraints,
	/// A certificate carries a critical extension this verifier does not know.
	UnknownCriticalExtension,
	/// A certificate's signature does not verify.
	CertificateSignature,
	/// A certificate is not valid at the given time.
	Expired,
	/// The COSE signature does not verify.
	Signature,
	/// The document is older than allowed.
	Stale,
	/// The document's timestamp is ahead of the verifier's clock by more than allowed.
	FromTheFuture,
}

/// What a verified document attests. Borrows from the document bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation<'a> {
	/// The enclave's module id.
	pub module_id: &'a str,
	/// When the Nitro Security Module signed, in ms since the Unix epoch.
	pub timestamp_ms: u64,
	/// Platform configuration registers: (index, value).
	pub pcrs: Vec<(u8, &'a [u8])>,
	/// The key the enclave chose to publish.
	pub public_key: Option<&'a [u8]>,
	/// Free data the enclave included.
	pub user_data: Option<&'a [u8]>,
	/// The challenge the enclave was given.
	pub nonce: Option<&'a [u8]>,
	/// The earliest `notAfter` of the chain, in seconds since the Unix epoch: after this the
	/// document no longer verifies.
	pub valid_until: u64,
	/// ECDSA signatures verified, the document's own included: what the check cost.
	pub signatures: u32,
	/// Intermediate CAs verified on the way, as (SHA-256 of the DER, notAfter in seconds): a
	/// caller may remember them and pass them as known to later checks.
	pub verified_cas: Vec<([u8; 32], u64)>,
}

impl<'a> Attestation<'a> {
	/// PCR `index`, if the document has it.
	pub fn pcr(&self, index: u8) -> Option<&'a [u8]> {
		self.pcrs.iter().find(|(i, _)| *i == index).map(|(_, v)| *v)
	}
}

/// Freshness bounds relative to the verifier's clock.
#[derive(Clone, Copy, Debug)]
pub struct Freshness {
	pub max_age_ms: u64,
	pub max_ahead_ms: u64,
}

impl Default for Freshness {
	fn default() -> Self {
		Self { max_age_ms: MAX_AGE_MS, max_ahead_ms: MAX_AHEAD_MS }
	}
}

/// The parts of a COSE_Sign1 document, before any check of the signature.
struct Parts<'a> {
	protected: &'a [u8],
	payload: &'a [u8],
	signature: &'a [u8],
}

/// The payload fields, before any check of the certificates.
struct Payload<'a> {
	module_id: &'a str,
	timestamp_ms: u64,
	pcrs: Vec<(u8, &'a [u8])>,
	certificate: &'a [u8],
	cabundle: Vec<&'a [u8]>,
	public_key: Option<&'a [u8]>,
	user_data: Option<&'a [u8]>,
	nonce: Option<&'a [u8]>,
}

/// Verifies `document` against the pinned `roots` (DER certificates) at `now_ms` (ms since the
/// Unix epoch; a chain's `pallet-timestamp` time), with the default [`Freshness`].
pub fn verify<'a>(
	document: &'a [u8],
	roots: &[&[u8]],
	now_ms: u64,
) -> Result<Attestation<'a>, Error> {
	verify_with(document, roots, now_ms, Freshness::default())
}

/// [`verify`] with explicit freshness bounds.
pub fn verify_with<'a>(
	document: &'a [u8],
	roots: &[&[u8]],
	now_ms: u64,
	freshness: Freshness,
) -> Result<Attestation<'a>, Error> {
	verify_cached(document, roots, now_ms, freshness, &|_| false)
}

/// [`verify_with`] that skips re-checking signatures on the path to an intermediate CA the
/// caller verified before: `known` answers for a CA's SHA-256 fingerprint (one from
/// [`Attestation::verified_cas`] whose `notAfter` has not passed, under roots still pinned).
/// Nitro's regional and zonal CAs live for days to weeks, so a cache halves the signatures a
/// re-attestation costs. Everything else is checked as in [`verify`].
pub fn verify_cached<'a>(
	document: &'a [u8],
	roots: &[&[u8]],
	now_ms: u64,
	freshness: Freshness,
	known: &dyn Fn(&[u8; 32]) -> bool,
) -> Result<Attestation<'a>, Error> {
	if document.len() > MAX_DOCUMENT_LEN {
		return Err(Error::TooLarge);
	}
	let parts = cose_parts(document)?;
	check_protected_header(parts.protected)?;
	let payload = parse_payload(parts.payload)?;

	let root = payload.cabundle.first().ok_or(Error::Payload)?;
	if !roots.iter().any(|r| r == root) {
		return Err(Error::UntrustedRoot);
	}
	let now = now_ms / 1000;
	let chain: Vec<&[u8]> = payload.cabundle.iter().copied().chain([payload.certificate]).collect();
	let leaf = x509::verify_chain(&chain, now, known)?;

	let signed = sig_structure(parts.protected, parts.payload);
	x509::verify_raw_signature(&leaf.key, &signed, parts.signature)?;

	if payload.timestamp_ms > now_ms.saturating_add(freshness.max_ahead_ms) {
		return Err(Error::FromTheFuture);
	}
	if now_ms.saturating_sub(payload.timestamp_ms) > freshness.max_age_ms {
		return Err(Error::Stale);
	}
	Ok(Attestation {
		module_id: payload.module_id,
		timestamp_ms: payload.timestamp_ms,
		pcrs: payload.pcrs,
		public_key: payload.public_key,
		user_data: payload.user_data,
		nonce: payload.nonce,
		valid_until: leaf.valid_until,
		signatures: leaf.signatures + 1,
		verified_cas: leaf.verified_cas,
	})
}

/// What a COSE_Sign1 signature covers: ["Signature1", protected, external_aad = h'', payload].
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
	let mut signed = Vec::with_capacity(protected.len() + payload.len() + 24);
	signed.push(0x84);
	signed.push(0x6a);
	signed.extend_from_slice(b"Signature1");
	cbor::bytes_head(protected.len(), &mut signed);
	signed.extend_from_slice(protected);
	signed.push(0x40);
	cbor::bytes_head(payload.len(), &mut signed);
	signed.extend_from_slice(payload);
	signed
}

fn cose_parts(document: &[u8]) -> Result<Parts<'_>, Error> {
	let item = match cbor::decode(document)? {
		// COSE_Sign1_Tagged, or the untagged form Nitro emits.
		Item::Tag(18, inner) => *inner,
		item => item,
	};
	let Item::Array(items) = item else { return Err(Error::Cbor) };
	match items.as_slice() {
		[Item::Bytes(protected), Item::Map(_), Item::Bytes(payload), Item::Bytes(signature)] =>
			Ok(Parts { protected, payload, signature }),
		_ => Err(Error::Cbor),
	}
}

fn check_protected_header(protected: &[u8]) -> Result<(), Error> {
	// {1 (alg): -35 (ES384)} and nothing else.
	match cbor::decode(protected)? {
		Item::Map(entries) if entries == [(Item::Uint(1), Item::Negative(34))] => Ok(()),
		_ => Err(Error::UnsupportedAlgorithm),
	}
}

fn bytes_within<'a>(item: &Item<'a>, min: usize, max: usize) -> Result<&'a [u8], Error> {
	match item {
		Item::Bytes(b) if b.len() > max => Err(Error::TooLarge),
		Item::Bytes(b) if b.len() >= min => Ok(b),
		_ => Err(Error::Payload),
	}
}

fn required_field<'i, 'a>(item: Option<&'i Item<'a>>) -> Result<&'i Item<'a>, Error> {
	item.ok_or(Error::Payload)
}

/// An optional field: absent or null is `None`.
fn optional_bytes<'a>(item: Option<&Item<'a>>, max: usize) -> Result<Option<&'a [u8]>, Error> {
	match item {
		None | Some(Item::Null) => Ok(None),
		Some(item) => bytes_within(item, 0, max).map(Some),
	}
}

fn parse_payload<'a>(payload: &'a [u8]) -> Result<Payload<'a>, Error> {
	let Item::Map(entries) = cbor::decode(payload)? else { return Err(Error::Payload) };
	let mut fields: [Option<&Item>; 9] = Default::default();
	const NAMES: [&str; 9] = [
		"module_id",
		"digest",
		"timestamp",
		"pcrs",
		"certificate",
		"cabundle",
		"public_key",
		"user_data",
		"nonce",
	];
	for (key, value) in &entries {
		let Item::Text(name) = key else { return Err(Error::Payload) };
		let slot = NAMES.iter().position(|n| n == name).ok_or(Error::Payload)?;
		if fields[slot].replace(value).is_some() {
			return Err(Error::Payload);
		}
	}
	let [module_id, digest, timestamp, pcrs, certificate, cabundle, public_key, user_data, nonce] =
		fields;

	let module_id = match required_field(module_id)? {
		Item::Text(s) if !s.is_empty() => *s,
		_ => return Err(Error::Payload),
	};
	if required_field(digest)? != &Item::Text("SHA384") {
		return Err(Error::Payload);
	}
	let timestamp_ms = match required_field(timestamp)? {
		Item::Uint(t) if *t > 0 => *t,
		_ => return Err(Error::Payload),
	};
	let Item::Map(pcr_entries) = required_field(pcrs)? else { return Err(Error::Payload) };
	if pcr_entries.is_empty() || pcr_entries.len() > MAX_PCRS {
		return Err(Error::Payload);
	}
	let mut pcrs = Vec::with_capacity(pcr_entries.len());
	for (index, value) in pcr_entries {
		let index = match index {
			Item::Uint(i) if (*i as usize) < MAX_PCRS => *i as u8,
			_ => return Err(Error::Payload),
		};
		let value = bytes_within(value, 32, 64)?;
		if ![32, 48, 64].contains(&value.len()) || pcrs.iter().any(|(i, _)| *i == index) {
			return Err(Error::Payload);
		}
		pcrs.push((index, value));
	}
	let certificate = bytes_within(required_field(certificate)?, 1, MAX_CERTIFICATE_LEN)?;
	let Item::Array(bundle) = required_field(cabundle)? else { return Err(Error::Payload) };
	if bundle.is_empty() {
		return Err(Error::Payload);
	}
	if bundle.len() > MAX_CABUNDLE {
		return Err(Error::TooLarge);
	}
	let cabundle = bundle
		.iter()
		.map(|c| bytes_within(c, 1, MAX_CERTIFICATE_LEN))
		.collect::<Result<_, _>>()?;
	Ok(Payload {
		module_id,
		timestamp_ms,
		pcrs,
		certificate,
		cabundle,
		public_key: optional_bytes(public_key, MAX_PUBLIC_KEY_LEN)?,
		user_data: optional_bytes(user_data, MAX_USER_DATA_LEN)?,
		nonce: optional_bytes(nonce, MAX_USER_DATA_LEN)?,
	})
}
