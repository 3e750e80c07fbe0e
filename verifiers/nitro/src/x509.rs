//! The certificate path of an attestation document: root first, leaf last, every certificate
//! ECDSA P-384 with SHA-384 (the only algorithm Nitro uses; anything else is refused).

use crate::Error;
use alloc::vec::Vec;
use const_oid::{
	db::rfc5912::{ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, SECP_384_R_1},
	AssociatedOid, ObjectIdentifier,
};
use der::{Decode, Encode};
use p384::ecdsa::{signature::Verifier, Signature, VerifyingKey};
use sha2::Digest;
use x509_cert::{
	ext::pkix::{BasicConstraints, KeyUsage},
	Certificate,
};

/// The leaf's key, how long the whole path stays valid, and what was checked.
pub struct Leaf {
	pub key: VerifyingKey,
	pub valid_until: u64,
	/// Certificate signatures verified (the links skipped thanks to known CAs not counted).
	pub signatures: u32,
	/// Intermediate CAs whose signatures were verified here: (SHA-256 of the DER, notAfter).
	pub verified_cas: Vec<([u8; 32], u64)>,
}

/// SHA-256 of a certificate's DER: how known CAs are named.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
	sha2::Sha256::digest(der).into()
}

struct Parsed {
	cert: Certificate,
	key: VerifyingKey,
	/// basicConstraints (cA, pathLenConstraint), if present.
	basic: Option<BasicConstraints>,
	key_usage: Option<KeyUsage>,
}

fn parse(der: &[u8]) -> Result<Parsed, Error> {
	let cert = Certificate::from_der(der).map_err(|_| Error::Certificate)?;
	let tbs = &cert.tbs_certificate;
	// The outer and inner algorithm must agree (RFC 5280 4.1.1.2), and be ES384 without parameters.
	if cert.signature_algorithm.oid != ECDSA_WITH_SHA_384 ||
		cert.signature_algorithm.parameters.is_some() ||
		tbs.signature != cert.signature_algorithm
	{
		return Err(Error::Certificate);
	}
	let spki = &tbs.subject_public_key_info;
	if spki.algorithm.oid != ID_EC_PUBLIC_KEY ||
		spki.algorithm
			.parameters
			.as_ref()
			.and_then(|p| p.decode_as::<ObjectIdentifier>().ok()) !=
			Some(SECP_384_R_1)
	{
		return Err(Error::Certificate);
	}
	let key = spki
		.subject_public_key
		.as_bytes()
		.and_then(|b| VerifyingKey::from_sec1_bytes(b).ok())
		.ok_or(Error::Certificate)?;
	let (mut basic, mut key_usage) = (None, None);
	let mut seen = Vec::new();
	for ext in tbs.extensions.iter().flatten() {
		if seen.contains(&ext.extn_id) {
			return Err(Error::Certificate);
		}
		seen.push(ext.extn_id);
		let value = ext.extn_value.as_bytes();
		if ext.extn_id == BasicConstraints::OID {
			basic = Some(BasicConstraints::from_der(value).map_err(|_| Error::Certificate)?);
		} else if ext.extn_id == KeyUsage::OID {
			key_usage = Some(KeyUsage::from_der(value).map_err(|_| Error::Certificate)?);
		} else if ext.critical {
			return Err(Error::UnknownCriticalExtension);
		}
	}
	Ok(Parsed { cert, key, basic, key_usage })
}

/// Checks `chain` (root first) at `now` (seconds since the Unix epoch) and returns the leaf's
/// key. The root itself is trusted by the caller (pinned), but must still be a valid CA now.
///
/// `known` names intermediate CAs whose path to a pinned root was verified before: the
/// signatures on the path down to the deepest known CA are not checked again. Names,
/// validity and constraints are always checked.
pub fn verify_chain(
	chain: &[&[u8]],
	now: u64,
	known: &dyn Fn(&[u8; 32]) -> bool,
) -> Result<Leaf, Error> {
	let parsed = chain.iter().map(|der| parse(der)).collect::<Result<Vec<_>, _>>()?;
	let fingerprints: Vec<[u8; 32]> = chain.iter().map(|der| fingerprint(der)).collect();
	// Deepest known intermediate (never the root, already pinned, nor the leaf).
	let trusted_through = (1..parsed.len().saturating_sub(1))
		.rev()
		.find(|&i| known(&fingerprints[i]))
		.unwrap_or(0);
	let (mut signatures, mut verified_cas) = (0, Vec::new());
	let mut valid_until = u64::MAX;
	for (i, cert) in parsed.iter().enumerate() {
		let validity = &cert.cert.tbs_certificate.validity;
		let (from, to) = (
			validity.not_before.to_unix_duration().as_secs(),
			validity.not_after.to_unix_duration().as_secs(),
		);
		if now < from || now > to {
			return Err(Error::Expired);
		}
		valid_until = valid_until.min(to);
		let is_leaf = i + 1 == parsed.len();
		if is_leaf {
			// The leaf signs documents, not certificates.
			if cert.basic.as_ref().is_some_and(|b| b.ca) {
				return Err(Error::Constraints);
			}
		} else {
			// An issuer: a CA allowed to sign certificates, with room for the CAs below it.
			let basic = cert.basic.as_ref().filter(|b| b.ca).ok_or(Error::Constraints)?;
			let intermediates_below = parsed.len() - i - 2;
			if basic.path_len_constraint.is_some_and(|n| (n as usize) < intermediates_below) {
				return Err(Error::Constraints);
			}
			if cert.key_usage.as_ref().is_some_and(|k| !k.key_cert_sign()) {
				return Err(Error::Constraints);
			}
		}
		if i > 0 {
			let issuer = &parsed[i - 1];
			if cert.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
				return Err(Error::IssuerMismatch);
			}
			if i <= trusted_through {
				continue;
			}
			let tbs = cert.cert.tbs_certificate.to_der().map_err(|_| Error::Certificate)?;
			let signature = cert
				.cert
				.signature
				.as_bytes()
				.and_then(|b| Signature::from_der(b).ok())
				.ok_or(Error::CertificateSignature)?;
			issuer.key.verify(&tbs, &signature).map_err(|_| Error::CertificateSignature)?;
			signatures += 1;
			if !is_leaf {
				verified_cas.push((fingerprints[i], to));
			}
		}
	}
	let leaf = parsed.into_iter().last().ok_or(Error::Payload)?;
	Ok(Leaf { key: leaf.key, valid_until, signatures, verified_cas })
}

/// Checks a COSE signature: r ‖ s, 48 bytes each.
pub fn verify_raw_signature(
	key: &VerifyingKey,
	message: &[u8],
	signature: &[u8],
) -> Result<(), Error> {
	let signature = Signature::from_slice(signature).map_err(|_| Error::Signature)?;
	key.verify(message, &signature).map_err(|_| Error::Signature)
}
