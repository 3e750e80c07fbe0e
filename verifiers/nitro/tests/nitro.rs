//! The real Nitro document verifies at its time and fails when stale, expired, tampered, or
//! anchored elsewhere; every single-byte change is a typed error, never a panic.
use opg_nitro::{verify, verify_with, Error, Freshness, AWS_NITRO_ROOT_G1};
use sha2::{Digest, Sha256};

const VALID: &[u8] = include_bytes!("fixtures/valid-2022-11-09.cbor");
const INVALID: &[u8] = include_bytes!("fixtures/invalid.cbor");
/// The chain time the document was made for (seconds), in ms.
const NOW_MS: u64 = 1_668_034_320_000;
const ROOTS: &[&[u8]] = &[AWS_NITRO_ROOT_G1];

fn hex(s: &str) -> Vec<u8> {
	(0..s.len())
		.step_by(2)
		.map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
		.collect()
}

#[test]
fn pinned_root_is_the_published_aws_root() {
	// The fingerprint AWS publishes for its Nitro Enclaves root certificate.
	assert_eq!(
		Sha256::digest(AWS_NITRO_ROOT_G1).as_slice(),
		hex("641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b")
	);
}

#[test]
fn real_document_verifies_at_its_time() {
	let a = verify(VALID, ROOTS, NOW_MS).expect("valid document");
	assert_eq!(a.module_id, "i-04fd167167daacf3b-enc01845e97d0b3eb4e");
	assert_eq!(a.timestamp_ms, 1_668_034_320_696);
	assert_eq!(a.pcrs.len(), 16);
	assert_eq!(
		a.pcr(0).unwrap(),
		hex("22f9e1c949208da55eb01b9b9fc88f87454f77ba133f0d82320b509621c92482152a99d0a12335b97178c02d6f977d01")
	);
	assert_eq!(a.pcr(16), None);
	assert_eq!(a.public_key, None);
	assert_eq!(
		a.user_data.unwrap(),
		hex("7c37108079b3e8a36d8a7970de1d6d4ff1461e0e35d9557c4d789df5e0576620")
	);
	assert_eq!(
		a.nonce.unwrap(),
		hex("c678c86135de539d183acff58886d98dfb9823041af9f934bf909ac0f8d96245")
	);
	// The leaf's notAfter, 2022-11-10T01:52:00Z, bounds the whole path.
	assert_eq!(a.valid_until, 1_668_045_120);
}

#[test]
fn time_bounds() {
	// Ten minutes later the chain is still valid but the document is stale.
	assert_eq!(verify(VALID, ROOTS, NOW_MS + 10 * 60_000), Err(Error::Stale));
	// Five minutes after its timestamp it is still fresh; one millisecond more is not.
	let ts = 1_668_034_320_696;
	assert!(verify(VALID, ROOTS, ts + 5 * 60_000).is_ok());
	assert_eq!(verify(VALID, ROOTS, ts + 5 * 60_000 + 1), Err(Error::Stale));
	// A day and a year later the leaf has expired; before the leaf existed it is not yet valid.
	assert_eq!(verify(VALID, ROOTS, NOW_MS + 86_400_000), Err(Error::Expired));
	assert_eq!(verify(VALID, ROOTS, NOW_MS + 365 * 86_400_000), Err(Error::Expired));
	assert_eq!(verify(VALID, ROOTS, 1_668_034_316_000), Err(Error::Expired));
	// Ahead of the clock: accepted within the bound, refused past it.
	let strict = Freshness { max_age_ms: 300_000, max_ahead_ms: 0 };
	assert_eq!(verify_with(VALID, ROOTS, NOW_MS, strict), Err(Error::FromTheFuture));
	assert!(verify_with(VALID, ROOTS, NOW_MS, Freshness { max_ahead_ms: 696, ..strict }).is_ok());
}

#[test]
fn tampered_document_fails() {
	assert_eq!(verify(INVALID, ROOTS, NOW_MS), Err(Error::Signature));
}

#[test]
fn only_pinned_roots_anchor_the_chain() {
	assert_eq!(verify(VALID, &[], NOW_MS), Err(Error::UntrustedRoot));
	let mut other = AWS_NITRO_ROOT_G1.to_vec();
	*other.last_mut().unwrap() ^= 1;
	assert_eq!(verify(VALID, &[&other], NOW_MS), Err(Error::UntrustedRoot));
}

#[test]
fn size_limit() {
	let mut big = VALID.to_vec();
	big.resize(opg_nitro::MAX_DOCUMENT_LEN + 1, 0);
	assert_eq!(verify(&big, ROOTS, NOW_MS), Err(Error::TooLarge));
	assert_eq!(verify(&[], ROOTS, NOW_MS), Err(Error::Cbor));
	assert_eq!(verify(&VALID[..VALID.len() - 1], ROOTS, NOW_MS), Err(Error::Cbor));
}

#[test]
fn every_single_byte_change_is_refused() {
	let mut errors = std::collections::BTreeMap::new();
	for i in 0..VALID.len() {
		for x in [0x01u8, 0xff] {
			let mut bad = VALID.to_vec();
			bad[i] ^= x;
			match verify(&bad, ROOTS, NOW_MS) {
				Ok(_) => panic!("byte {i} ^ {x:#04x} still verifies"),
				Err(e) => *errors.entry(format!("{e:?}")).or_insert(0) += 1,
			}
		}
	}
	println!("{} corruptions: {errors:?}", VALID.len() * 2);
	// The signature and the certificates are reached, not only the parser.
	for e in ["Signature", "CertificateSignature", "Certificate", "Payload", "Cbor"] {
		assert!(errors.contains_key(e), "no corruption gave {e}: {errors:?}");
	}
}

#[test]
fn known_intermediates_skip_their_signatures_only() {
	let full = verify(VALID, ROOTS, NOW_MS).unwrap();
	// Regional, zonal and instance CAs and the leaf certificate, plus the document.
	assert_eq!(full.signatures, 5);
	assert_eq!(full.verified_cas.len(), 3);
	let instance_ca = full.verified_cas[2];
	assert_eq!(instance_ca.1, 1_668_112_823, "instance CA notAfter 2022-11-10T20:40:23Z");

	// With the deepest CA known, only the leaf certificate and the document are checked.
	let known = |f: &[u8; 32]| full.verified_cas.iter().any(|(k, _)| k == f);
	let cached =
		opg_nitro::verify_cached(VALID, ROOTS, NOW_MS, Freshness::default(), &known).unwrap();
	assert_eq!((cached.signatures, cached.verified_cas.len()), (2, 0));
	assert_eq!(cached.nonce, full.nonce);

	// A cache does not excuse a bad leaf, document, root or time.
	assert_eq!(
		opg_nitro::verify_cached(INVALID, ROOTS, NOW_MS, Freshness::default(), &known),
		Err(Error::Signature)
	);
	assert_eq!(
		opg_nitro::verify_cached(VALID, &[], NOW_MS, Freshness::default(), &known),
		Err(Error::UntrustedRoot)
	);
	let later = NOW_MS + 365 * 86_400_000;
	assert_eq!(
		opg_nitro::verify_cached(VALID, ROOTS, later, Freshness::default(), &known),
		Err(Error::Expired)
	);
	let mut bad_leaf = VALID.to_vec();
	// A byte inside the leaf certificate's signature (the certificate ends right before the
	// "cabundle" key).
	let at = VALID.windows(8).position(|w| w == b"cabundle").unwrap() - 4;
	bad_leaf[at] ^= 1;
	let r = opg_nitro::verify_cached(&bad_leaf, ROOTS, NOW_MS, Freshness::default(), &known);
	assert!(matches!(r, Err(Error::CertificateSignature | Error::Certificate)), "{r:?}");
}
