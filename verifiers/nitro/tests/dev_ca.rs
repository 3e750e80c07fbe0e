//! Documents from the insecure development CA go through the same verification as real ones,
//! and only under its own pinned root.
use opg_nitro::{
	dev::{Claims, DevCa, DEV_SEED},
	verify, Error, AWS_NITRO_ROOT_G1,
};

const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn claims() -> Claims {
	Claims {
		module_id: "opg-worker-dev".into(),
		pcrs: (0..3).map(|i| (i, vec![i + 1; 48])).collect(),
		public_key: Some(vec![7; 32]),
		user_data: None,
		nonce: Some(vec![9; 32]),
	}
}

#[test]
fn dev_documents_verify_under_the_dev_root_only() {
	let ca = DevCa::new(DEV_SEED, NOW);
	let doc = ca.document(&claims(), NOW * 1000 - 1_000);
	let a = verify(&doc, &[ca.root()], NOW * 1000).expect("dev document verifies");
	assert_eq!(a.module_id, "opg-worker-dev");
	assert_eq!(a.pcr(1), Some(&[2u8; 48][..]));
	assert_eq!(a.public_key, Some(&[7u8; 32][..]));
	assert_eq!((a.user_data, a.nonce), (None, Some(&[9u8; 32][..])));
	// Intermediate, leaf and the document; the leaf lives a day.
	assert_eq!(a.signatures, 3);
	assert_eq!(a.valid_until, NOW + 86_400);

	assert_eq!(verify(&doc, &[AWS_NITRO_ROOT_G1], NOW * 1000), Err(Error::UntrustedRoot));
	let other = DevCa::new("another seed", NOW);
	assert_eq!(verify(&doc, &[other.root()], NOW * 1000), Err(Error::UntrustedRoot));
	// The root does not depend on the time the CA was made for: one genesis root serves.
	assert_eq!(DevCa::new(DEV_SEED, NOW + 1_000_000).root(), ca.root());
}

#[test]
fn dev_documents_are_checked_like_real_ones() {
	let ca = DevCa::new(DEV_SEED, NOW);
	let doc = ca.document(&claims(), NOW * 1000);
	assert_eq!(verify(&doc, &[ca.root()], NOW * 1000 + 5 * 60_000 + 1), Err(Error::Stale));
	assert_eq!(verify(&doc, &[ca.root()], (NOW + 2 * 86_400) * 1000), Err(Error::Expired));
	// A changed PCR byte breaks the signature.
	let pcr = doc.windows(48).position(|w| w == [2u8; 48]).unwrap();
	let mut bad = doc.clone();
	bad[pcr] ^= 1;
	assert_eq!(verify(&bad, &[ca.root()], NOW * 1000), Err(Error::Signature));
}

#[test]
fn every_chain_depth_verifies_and_costs_one_signature_per_certificate() {
	for depth in 0..=7u8 {
		let ca = DevCa::with_intermediates(DEV_SEED, NOW, depth);
		let doc = ca.document(&claims(), NOW * 1000);
		let a = verify(&doc, &[ca.root()], NOW * 1000)
			.unwrap_or_else(|e| panic!("depth {depth}: {e:?}"));
		assert_eq!(a.signatures, depth as u32 + 2, "depth {depth}");
		assert!(doc.len() <= opg_nitro::MAX_DOCUMENT_LEN, "depth {depth}: {} bytes", doc.len());
	}
	// The chain of depth 1 is `DevCa::new`'s.
	assert_eq!(
		DevCa::with_intermediates(DEV_SEED, NOW, 1).root(),
		DevCa::new(DEV_SEED, NOW).root()
	);
}

/// The root a development genesis pins is the one the development CA issues under.
#[test]
fn the_published_dev_root_is_the_dev_cas() {
	if std::env::var_os("OPG_BLESS").is_some() {
		let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/insecure-dev-root.der");
		std::fs::write(path, DevCa::new(DEV_SEED, NOW).root()).unwrap();
	}
	assert_eq!(
		DevCa::new(DEV_SEED, NOW).root(),
		opg_nitro::INSECURE_DEV_ROOT,
		"rerun with OPG_BLESS=1"
	);
}
