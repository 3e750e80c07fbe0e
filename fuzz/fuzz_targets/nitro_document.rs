//! Any bytes as a Nitro attestation document: parsed and checked under the AWS and the dev
//! roots, at the real document's time and at the dev fixtures' time, with and without every CA
//! taken as known (the cache path skips signatures, so it reaches deeper with mutated chains).
#![no_main]

use libfuzzer_sys::fuzz_target;
use opg_nitro::{verify, verify_cached, AWS_NITRO_ROOT_G1, INSECURE_DEV_ROOT};

const ROOTS: [&[u8]; 2] = [AWS_NITRO_ROOT_G1, INSECURE_DEV_ROOT];
/// The real document's time, and 2026-01-01 (the dev fixtures').
const TIMES_MS: [u64; 2] = [1_668_034_320_000, 1_767_225_600_000];

fuzz_target!(|data: &[u8]| {
	for now in TIMES_MS {
		let full = verify(data, &ROOTS, now);
		let cached = verify_cached(data, &ROOTS, now, Default::default(), &|_| true);
		// Knowing CAs skips signatures; it never makes a document that failed for another
		// reason pass.
		if let Ok(a) = &full {
			assert!(a.signatures >= 2);
			assert!(cached.is_ok());
		}
	}
});
