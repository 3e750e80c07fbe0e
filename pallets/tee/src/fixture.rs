//! Documents for the benchmarks, which run in wasm where no CA can issue them: made by the
//! insecure development CA for chains of 0 to 7 intermediates and stored in
//! `benchmark-fixture.scale`. The test `benchmark_fixture_is_current` rebuilds them (and
//! rewrites the file with `OPG_BLESS=1`).

use alloc::vec::Vec;
use codec::{Decode, Encode};

/// Chain time of the documents (2026-01-01T00:00:00Z), seconds.
pub const NOW_S: u64 = 1_767_225_600;
/// The documents' nonce.
pub const NONCE: [u8; 32] = [0x42; 32];
/// The documents' PCR0, PCR1, PCR2 (byte `i + 1` repeated).
pub const PCRS: [[u8; 48]; 3] = [[1; 48], [2; 48], [3; 48]];
/// Seed of the ed25519 key the documents attest.
pub const KEY_SEED: [u8; 32] = [7; 32];

/// What the benchmarks need.
#[derive(Encode, Decode, PartialEq, Eq, Debug)]
pub struct Fixture {
	/// `(root, document)` for 0 ..= 7 intermediate CAs: `depth + 2` signatures.
	pub documents: Vec<(Vec<u8>, Vec<u8>)>,
	/// The attested ed25519 key.
	pub public: [u8; 32],
	/// A message and the key's signature over it.
	pub message: [u8; 32],
	pub signature: [u8; 64],
}

/// The stored fixture.
pub fn load() -> Fixture {
	Fixture::decode(&mut &include_bytes!("benchmark-fixture.scale")[..])
		.expect("the fixture decodes")
}
