//! Any bytes as a verifying key: decoding is checked, and a key that decodes survives prepare →
//! bytes → trusted read, and re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opg_groth16::{PreparedVerifyingKey, VerifyingKey};

fuzz_target!(|data: &[u8]| {
	if let Ok(key) = VerifyingKey::decode(data) {
		assert_eq!(key.encode().expect("a decoded key encodes"), data);
		let prepared = key.prepare();
		let bytes = prepared.to_bytes();
		assert_eq!(PreparedVerifyingKey::from_trusted_bytes(&bytes), Ok(prepared));
	}
	// What the chain reads back is only ever written by `prepare`, but its reader must not
	// panic on anything either.
	let _ = PreparedVerifyingKey::from_trusted_bytes(data);
});
