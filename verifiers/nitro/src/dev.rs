//! An **insecure** development CA that issues Nitro-format attestation documents, for dev and
//! test chains and the worker's `--tee-dev` mode, where no AWS hardware exists. Its keys derive
//! from a public seed, so anyone can forge its documents: a chain must pin [`DevCa::root`]
//! only in development genesis. Documents it issues go through the very same [`crate::verify`]
//! path as real ones: root → one intermediate → leaf, ES384 everywhere, COSE_Sign1.

use crate::cbor;
use alloc::{string::String, vec::Vec};
use const_oid::db::rfc5912::{ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, SECP_384_R_1};
use core::{str::FromStr, time::Duration};
use der::{
	asn1::{BitString, UtcTime},
	Any, Encode,
};
use p384::ecdsa::{signature::Signer, DerSignature, Signature, SigningKey};
use sha2::{Digest, Sha384};
use x509_cert::{
	ext::{
		pkix::{BasicConstraints, KeyUsage, KeyUsages},
		AsExtension, Extension,
	},
	name::Name,
	serial_number::SerialNumber,
	spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned},
	time::{Time, Validity},
	Certificate, TbsCertificate, Version,
};

/// The seed of the shared development CA.
pub const DEV_SEED: &str = "OPG INSECURE development Nitro CA";

/// What an enclave puts in its document.
#[derive(Clone, Debug, Default)]
pub struct Claims {
	pub module_id: String,
	/// (index, value) pairs; values of 48 bytes (SHA-384) as Nitro uses.
	pub pcrs: Vec<(u8, Vec<u8>)>,
	pub public_key: Option<Vec<u8>>,
	pub user_data: Option<Vec<u8>>,
	pub nonce: Option<Vec<u8>>,
}

/// A development CA: root, intermediate and a leaf certificate valid for a day around the
/// time it was created for.
pub struct DevCa {
	root: Vec<u8>,
	intermediates: Vec<Vec<u8>>,
	leaf: Vec<u8>,
	leaf_key: SigningKey,
}

fn key(seed: &str, role: &str) -> SigningKey {
	let mut counter = 0u8;
	loop {
		let digest = Sha384::new()
			.chain_update(seed)
			.chain_update(role)
			.chain_update([counter])
			.finalize();
		// A digest at or above the group order is refused: try the next (probability ~2^-190).
		if let Ok(key) = SigningKey::from_slice(&digest) {
			return key;
		}
		counter += 1;
	}
}

fn spki(key: &SigningKey) -> SubjectPublicKeyInfoOwned {
	let point = key.verifying_key().to_encoded_point(false);
	SubjectPublicKeyInfoOwned {
		algorithm: AlgorithmIdentifierOwned {
			oid: ID_EC_PUBLIC_KEY,
			parameters: Some(Any::encode_from(&SECP_384_R_1).expect("an OID encodes")),
		},
		subject_public_key: BitString::from_bytes(point.as_bytes())
			.expect("a point fits a bit string"),
	}
}

fn time(secs: u64) -> Time {
	Time::UtcTime(
		UtcTime::from_unix_duration(Duration::from_secs(secs)).expect("dev validity before 2050"),
	)
}

fn certificate(
	serial: u8,
	subject: &str,
	issuer: &str,
	subject_key: &SigningKey,
	issuer_key: &SigningKey,
	validity: (u64, u64),
	path_len: Option<Option<u8>>,
) -> Vec<u8> {
	let subject = Name::from_str(subject).expect("a valid name");
	let issuer = Name::from_str(issuer).expect("a valid name");
	let algorithm = AlgorithmIdentifierOwned { oid: ECDSA_WITH_SHA_384, parameters: None };
	let (basic, usage) = match path_len {
		// A CA: may sign certificates, with an optional path length.
		Some(len) => (
			BasicConstraints { ca: true, path_len_constraint: len },
			KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature),
		),
		None => (
			BasicConstraints { ca: false, path_len_constraint: None },
			KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation),
		),
	};
	let extensions: Vec<Extension> = [
		basic.to_extension(&subject, &[]).expect("basic constraints encode"),
		usage.to_extension(&subject, &[]).expect("key usage encodes"),
	]
	.into();
	let tbs = TbsCertificate {
		version: Version::V3,
		serial_number: SerialNumber::new(&[serial]).expect("a small serial"),
		signature: algorithm.clone(),
		issuer,
		validity: Validity { not_before: time(validity.0), not_after: time(validity.1) },
		subject,
		subject_public_key_info: spki(subject_key),
		issuer_unique_id: None,
		subject_unique_id: None,
		extensions: Some(extensions),
	};
	let signature: DerSignature = issuer_key.sign(&tbs.to_der().expect("TBS encodes"));
	let cert = Certificate {
		tbs_certificate: tbs,
		signature_algorithm: algorithm,
		signature: BitString::from_bytes(signature.as_bytes()).expect("a signature fits"),
	};
	cert.to_der().expect("a certificate encodes")
}

const ROOT_NAME: &str = "CN=OPG INSECURE dev root,O=OPG development";
const INTERMEDIATE_NAME: &str = "CN=OPG INSECURE dev intermediate,O=OPG development";

impl DevCa {
	/// The CA of `seed` ([`DEV_SEED`] for the shared one), with a leaf valid from an hour before
	/// `now` (seconds since the Unix epoch) to a day after; root and intermediate from 2020 to
	/// 2049.
	pub fn new(seed: &str, now: u64) -> DevCa {
		Self::with_intermediates(seed, now, 1)
	}

	/// [`DevCa::new`] with `depth` intermediate CAs between root and leaf (0 ..= 7, the most a
	/// bundle holds): documents whose check costs `depth + 2` signatures, for benchmarks.
	pub fn with_intermediates(seed: &str, now: u64, depth: u8) -> DevCa {
		assert!(
			(depth as usize) < crate::MAX_CABUNDLE,
			"a cabundle holds the root and at most 7 CAs"
		);
		let long = (1_577_836_800, 2_524_607_999); // 2020-01-01 .. 2049-12-31
		let name = |i: u8| match i {
			0 => String::from(ROOT_NAME),
			1 => String::from(INTERMEDIATE_NAME),
			i => alloc::format!("CN=OPG INSECURE dev intermediate {i},O=OPG development"),
		};
		let role = |i: u8| match i {
			0 => String::from("root"),
			1 => String::from("intermediate"),
			i => alloc::format!("intermediate {i}"),
		};
		// CA `i` (the root is 0) may be followed by the `depth - i` CAs below it.
		let root_key = key(seed, &role(0));
		let root =
			certificate(1, &name(0), &name(0), &root_key, &root_key, long, Some(Some(depth)));
		let mut issuer_key = root_key;
		let mut intermediates = Vec::new();
		for i in 1..=depth {
			let subject_key = key(seed, &role(i));
			intermediates.push(certificate(
				i + 1,
				&name(i),
				&name(i - 1),
				&subject_key,
				&issuer_key,
				long,
				Some(Some(depth - i)),
			));
			issuer_key = subject_key;
		}
		let leaf_key = key(seed, &alloc::format!("leaf {now}"));
		let leaf_name = "CN=OPG INSECURE dev enclave,O=OPG development";
		let leaf_validity = (now.saturating_sub(3_600), now + 86_400);
		let leaf = certificate(
			depth + 2,
			leaf_name,
			&name(depth),
			&leaf_key,
			&issuer_key,
			leaf_validity,
			None,
		);
		DevCa { root, intermediates, leaf, leaf_key }
	}

	/// The root certificate (DER) to pin in a development chain's genesis.
	pub fn root(&self) -> &[u8] {
		&self.root
	}

	/// A COSE_Sign1 attestation document with `claims`, timestamped `timestamp_ms`.
	pub fn document(&self, claims: &Claims, timestamp_ms: u64) -> Vec<u8> {
		let mut payload = Vec::new();
		let fields = 6 + 3;
		cbor::head(5, fields, &mut payload);
		let text = |s: &str, out: &mut Vec<u8>| {
			cbor::head(3, s.len() as u64, out);
			out.extend_from_slice(s.as_bytes());
		};
		let bytes = |b: &[u8], out: &mut Vec<u8>| {
			cbor::head(2, b.len() as u64, out);
			out.extend_from_slice(b);
		};
		let optional = |b: &Option<Vec<u8>>, out: &mut Vec<u8>| match b {
			Some(b) => bytes(b, out),
			None => out.push(0xf6),
		};
		text("module_id", &mut payload);
		text(&claims.module_id, &mut payload);
		text("digest", &mut payload);
		text("SHA384", &mut payload);
		text("timestamp", &mut payload);
		cbor::head(0, timestamp_ms, &mut payload);
		text("pcrs", &mut payload);
		cbor::head(5, claims.pcrs.len() as u64, &mut payload);
		for (index, value) in &claims.pcrs {
			cbor::head(0, *index as u64, &mut payload);
			bytes(value, &mut payload);
		}
		text("certificate", &mut payload);
		bytes(&self.leaf, &mut payload);
		text("cabundle", &mut payload);
		cbor::head(4, 1 + self.intermediates.len() as u64, &mut payload);
		bytes(&self.root, &mut payload);
		for ca in &self.intermediates {
			bytes(ca, &mut payload);
		}
		text("public_key", &mut payload);
		optional(&claims.public_key, &mut payload);
		text("user_data", &mut payload);
		optional(&claims.user_data, &mut payload);
		text("nonce", &mut payload);
		optional(&claims.nonce, &mut payload);

		let protected = [0xa1, 0x01, 0x38, 0x22];
		let signature: Signature = self.leaf_key.sign(&crate::sig_structure(&protected, &payload));
		let mut document = alloc::vec![0x84];
		bytes(&protected, &mut document);
		document.push(0xa0);
		bytes(&payload, &mut document);
		bytes(&signature.to_bytes(), &mut document);
		document
	}
}
