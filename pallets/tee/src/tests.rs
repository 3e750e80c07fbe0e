//! The trust policy, the attestation flow with the real AWS document and development-CA
//! documents, result signatures, eviction and the CA cache.

use crate::{mock::*, *};
use opg_nitro::dev::{Claims, DevCa, DEV_SEED};
use polkadot_sdk::{
	frame_support::{assert_noop, assert_ok, dispatch::Pays},
	pallet_timestamp,
	sp_core::{ed25519, Pair},
	sp_io,
	sp_runtime::DispatchError,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../verifiers/nitro/tests/fixtures");
/// The real document's timestamp (2022-11-09T22:52:00.696Z), rounded down to the second.
const AWS_NOW_MS: u64 = 1_668_034_320_000;
const NOW_S: u64 = fixture::NOW_S;

fn aws_document() -> Vec<u8> {
	std::fs::read(format!("{FIXTURES}/valid-2022-11-09.cbor")).unwrap()
}

/// The real document's measurement allowed, the chain's time at its timestamp and its nonce
/// as W1's challenge (as if the chain had issued it): what it takes for the document to attest.
/// Returns the measurement and the nonce.
fn aws_chain() -> (MeasurementId, [u8; 32]) {
	let doc = aws_document();
	let parsed = opg_nitro::verify(&doc, &[opg_nitro::AWS_NITRO_ROOT_G1], AWS_NOW_MS).unwrap();
	let pcr = |i| -> [u8; 48] { parsed.pcr(i).unwrap().try_into().unwrap() };
	let id = allow([pcr(0), pcr(1), pcr(2)]);
	let nonce: [u8; 32] = parsed.nonce.unwrap().try_into().unwrap();
	Challenges::<Test>::insert(W1, Challenge { nonce, expires_at: 10 });
	set_time_ms(AWS_NOW_MS);
	(id, nonce)
}

fn bounded(doc: Vec<u8>) -> BoundedVec<u8, ConstU32<MAX_DOCUMENT_LEN>> {
	doc.try_into().unwrap()
}

fn label(s: &str) -> BoundedVec<u8, ConstU32<32>> {
	s.as_bytes().to_vec().try_into().unwrap()
}

fn set_time_ms(ms: u64) {
	pallet_timestamp::Now::<Test>::put(ms);
}

fn allow(pcrs: [[u8; 48]; 3]) -> MeasurementId {
	assert_ok!(Tee::add_measurement(
		RuntimeOrigin::root(),
		pcrs[0],
		pcrs[1],
		pcrs[2],
		label("opg-worker test")
	));
	measurement_id(&pcrs[0], &pcrs[1], &pcrs[2])
}

fn enclave_key(worker: u64) -> ed25519::Pair {
	ed25519::Pair::from_seed(&[worker as u8; 32])
}

/// The fixture's PCR0, PCR1, PCR2 as a document lists them.
fn fixture_pcrs() -> Vec<(u8, Vec<u8>)> {
	fixture::PCRS.iter().zip(0..).map(|(pcr, i)| (i, pcr.to_vec())).collect()
}

/// A development-CA document for `worker`'s enclave key with `nonce`, issued now.
fn dev_document(worker: u64, nonce: &[u8]) -> Vec<u8> {
	let ca = DevCa::new(DEV_SEED, NOW_S);
	let claims = Claims {
		module_id: "opg-worker-dev".into(),
		pcrs: fixture_pcrs(),
		public_key: Some(enclave_key(worker).public().0.to_vec()),
		user_data: None,
		nonce: Some(nonce.to_vec()),
	};
	ca.document(&claims, NOW_S * 1000)
}

fn dev_chain(test: impl FnOnce()) {
	new_test_ext(vec![DevCa::new(DEV_SEED, NOW_S).root().to_vec()], || {
		set_time_ms(NOW_S * 1000);
		test()
	})
}

fn challenge(worker: u64) -> [u8; 32] {
	assert_ok!(Tee::request_challenge(RuntimeOrigin::signed(worker)));
	Challenges::<Test>::get(worker).unwrap().nonce
}

/// Attests `worker` on a dev chain with a fresh challenge.
fn attest_dev(worker: u64) {
	let nonce = challenge(worker);
	assert_ok!(Tee::attest(RuntimeOrigin::signed(worker), bounded(dev_document(worker, &nonce))));
}

mod policy {
	use super::*;

	#[test]
	fn root_manages_the_allowlist_within_its_bound() {
		new_test_ext(vec![], || {
			let [a, b, c] = fixture::PCRS;
			assert_noop!(
				Tee::add_measurement(RuntimeOrigin::signed(W1), a, b, c, label("x")),
				DispatchError::BadOrigin
			);
			let id = allow(fixture::PCRS);
			System::assert_last_event(
				Event::MeasurementAdded { id, label: label("opg-worker test") }.into(),
			);
			assert_eq!(Measurements::<Test>::get(id).unwrap().pcr1, b);
			assert_noop!(
				Tee::add_measurement(RuntimeOrigin::root(), a, b, c, label("again")),
				Error::<Test>::MeasurementExists
			);
			for i in 0..3u8 {
				allow([[i + 10; 48], b, c]);
			}
			assert_noop!(
				Tee::add_measurement(RuntimeOrigin::root(), [99; 48], b, c, label("fifth")),
				Error::<Test>::TooManyMeasurements
			);
			assert_noop!(
				Tee::revoke_measurement(RuntimeOrigin::signed(W1), id),
				DispatchError::BadOrigin
			);
			assert_ok!(Tee::revoke_measurement(RuntimeOrigin::root(), id));
			System::assert_last_event(Event::MeasurementRevoked { id }.into());
			assert_noop!(
				Tee::revoke_measurement(RuntimeOrigin::root(), id),
				Error::<Test>::UnknownMeasurement
			);
			assert_eq!(MeasurementCount::<Test>::get(), 3);
			// Room again.
			allow([[99; 48], b, c]);
			// Nitro debug mode's zero PCRs (any of the three) never enter by extrinsic.
			for zero in 0..3 {
				let mut pcrs = [[99; 48], b, c];
				pcrs[zero] = [0; 48];
				assert_noop!(
					Tee::add_measurement(
						RuntimeOrigin::root(),
						pcrs[0],
						pcrs[1],
						pcrs[2],
						label("debug")
					),
					Error::<Test>::DebugModeMeasurement
				);
			}
		});
	}

	#[test]
	fn genesis_pins_dev_roots_and_measurements() {
		let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
		let root = DevCa::new(DEV_SEED, NOW_S).root().to_vec();
		crate::GenesisConfig::<Test> {
			measurements: vec![(vec![0; 48], vec![0; 48], vec![0; 48], b"debug enclave".to_vec())],
			insecure_dev_roots: vec![root.clone()],
			..Default::default()
		}
		.assimilate_storage(&mut storage)
		.unwrap();
		sp_io::TestExternalities::new(storage).execute_with(|| {
			assert_eq!(InsecureDevRoots::<Test>::get()[0].to_vec(), root);
			assert!(Measurements::<Test>::contains_key(measurement_id(
				&[0; 48], &[0; 48], &[0; 48]
			)));
			Tee::do_try_state().unwrap();
		});
	}

	#[test]
	#[should_panic(
		expected = "insecure development roots in the genesis of a runtime not built for development"
	)]
	fn a_runtime_not_built_for_development_refuses_development_roots_in_genesis() {
		InsecureDevTrust::set(false);
		let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
		let _ = crate::GenesisConfig::<Test> {
			insecure_dev_roots: vec![DevCa::new(DEV_SEED, NOW_S).root().to_vec()],
			..Default::default()
		}
		.assimilate_storage(&mut storage);
	}

	#[test]
	#[should_panic(expected = "Nitro debug mode's zero PCRs in the genesis of a runtime not built")]
	fn a_runtime_not_built_for_development_refuses_debug_mode_measurements_in_genesis() {
		InsecureDevTrust::set(false);
		let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
		let _ = crate::GenesisConfig::<Test> {
			measurements: vec![(vec![1; 48], vec![0; 48], vec![2; 48], b"debug".to_vec())],
			..Default::default()
		}
		.assimilate_storage(&mut storage);
	}

	#[test]
	fn a_runtime_not_built_for_development_builds_a_genesis_of_real_measurements() {
		InsecureDevTrust::set(false);
		let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
		crate::GenesisConfig::<Test> {
			measurements: vec![(vec![1; 48], vec![2; 48], vec![3; 48], b"release".to_vec())],
			..Default::default()
		}
		.assimilate_storage(&mut storage)
		.unwrap();
		sp_io::TestExternalities::new(storage).execute_with(|| Tee::do_try_state().unwrap());
	}

	use polkadot_sdk::sp_runtime::BuildStorage;
}

mod attestation {
	use super::*;

	#[test]
	fn the_real_aws_document_verifies_but_binds_no_key_without_public_key() {
		new_test_ext(vec![], || {
			let (_, nonce) = aws_chain();
			let doc = aws_document();
			let parsed =
				opg_nitro::verify(&doc, &[opg_nitro::AWS_NITRO_ROOT_G1], AWS_NOW_MS).unwrap();
			// Chain, signatures, freshness, PCRs and nonce all pass; its 32 bytes of `user_data`
			// are application data, which anyone the enclave serves may have chosen: not a key.
			assert!(parsed.public_key.is_none() && parsed.user_data.is_some_and(|d| d.len() == 32));
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(W1), bounded(doc.clone())),
				Error::<Test>::BadEnclaveKey
			);

			// A year later the chain has expired.
			Challenges::<Test>::insert(W1, Challenge { nonce, expires_at: 10 });
			set_time_ms(AWS_NOW_MS + 365 * 86_400_000);
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(W1), bounded(doc.clone())),
				Error::<Test>::Document(DocumentError(opg_nitro::Error::Expired))
			);
			// Ten minutes later it is stale.
			set_time_ms(AWS_NOW_MS + 600_000);
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(W1), bounded(doc)),
				Error::<Test>::Document(DocumentError(opg_nitro::Error::Stale))
			);
		});
	}

	#[test]
	fn intermediate_cas_verified_once_are_remembered_and_refunded() {
		// The benchmark fixture's document under three intermediate CAs, as AWS's chains are.
		let fixture = fixture::load();
		let (root, doc) = fixture.documents[3].clone();
		new_test_ext(vec![root], || {
			set_time_ms(NOW_S * 1000);
			let id = allow(fixture::PCRS);
			Challenges::<Test>::insert(W1, Challenge { nonce: fixture::NONCE, expires_at: 10 });
			let info = Tee::attest(RuntimeOrigin::signed(W1), bounded(doc.clone())).unwrap();
			// Three intermediates, the leaf and the document.
			assert_eq!(info.actual_weight, Some(<() as WeightInfo>::attest(5)));
			assert_eq!(info.pays_fee, Pays::Yes);
			let key = EnclaveKeys::<Test>::get(W1).unwrap();
			assert_eq!((key.public, key.measurement), (fixture.public, id));
			System::assert_last_event(
				Event::EnclaveAttested {
					worker: W1,
					key: key.public,
					measurement: id,
					expires_at_ms: key.expires_at_ms,
				}
				.into(),
			);
			// The challenge is used up; the three intermediates are remembered.
			assert!(Challenges::<Test>::get(W1).is_none());
			assert_eq!(KnownCaCount::<Test>::get(), 3);
			// Re-attesting under the remembered CAs checks the leaf and the document only.
			Challenges::<Test>::insert(W1, Challenge { nonce: fixture::NONCE, expires_at: 10 });
			let info = Tee::attest(RuntimeOrigin::signed(W1), bounded(doc)).unwrap();
			assert_eq!(info.actual_weight, Some(<() as WeightInfo>::attest(2)));
		});
	}

	#[test]
	fn a_runtime_not_built_for_development_ignores_stored_development_roots() {
		dev_chain(|| {
			allow(fixture::PCRS);
			InsecureDevTrust::set(false);
			let nonce = challenge(W1);
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(W1), bounded(dev_document(W1, &nonce))),
				Error::<Test>::Document(DocumentError(opg_nitro::Error::UntrustedRoot))
			);
			InsecureDevTrust::set(true);
			assert_ok!(Tee::attest(RuntimeOrigin::signed(W1), bounded(dev_document(W1, &nonce))));
		});
	}

	#[test]
	fn the_tampered_document_and_an_unpinned_root_are_refused() {
		new_test_ext(vec![], || {
			set_time_ms(AWS_NOW_MS);
			let invalid = std::fs::read(format!("{FIXTURES}/invalid.cbor")).unwrap();
			Challenges::<Test>::insert(W1, Challenge { nonce: [0; 32], expires_at: 10 });
			let error = Tee::attest(RuntimeOrigin::signed(W1), bounded(invalid)).unwrap_err().error;
			assert!(matches!(error, DispatchError::Module(_)), "{error:?}");
			assert!(EnclaveKeys::<Test>::get(W1).is_none());
			// The dev CA is not trusted on a chain that did not pin it.
			set_time_ms(NOW_S * 1000);
			let nonce = challenge(W1);
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(W1), bounded(dev_document(W1, &nonce))),
				Error::<Test>::Document(DocumentError(opg_nitro::Error::UntrustedRoot))
			);
		});
	}

	#[test]
	fn a_dev_enclave_attests_with_the_chains_challenge() {
		dev_chain(|| {
			let id = allow(fixture::PCRS);
			let nonce = challenge(W1);
			System::assert_last_event(
				Event::ChallengeIssued { worker: W1, nonce, expires_at: 11 }.into(),
			);
			assert_ok!(Tee::attest(RuntimeOrigin::signed(W1), bounded(dev_document(W1, &nonce))));
			let key = EnclaveKeys::<Test>::get(W1).unwrap();
			assert_eq!(key.public, enclave_key(W1).public().0);
			assert_eq!(key.measurement, id);
			// The leaf lives a day, longer than the key lifetime.
			assert_eq!(key.expires_at_ms, NOW_S * 1000 + KEY_LIFETIME_MS);
		});
	}

	#[test]
	fn challenges_are_for_workers_fresh_and_used_once() {
		dev_chain(|| {
			allow(fixture::PCRS);
			assert_noop!(
				Tee::request_challenge(RuntimeOrigin::signed(NOBODY)),
				Error::<Test>::NotAWorker
			);
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(NOBODY), bounded(dev_document(NOBODY, &[0; 32]))),
				Error::<Test>::NotAWorker
			);
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(W1), bounded(dev_document(W1, &[0; 32]))),
				Error::<Test>::NoChallenge
			);
			// Each worker's challenge differs; a document for another's challenge is refused.
			let n1 = challenge(W1);
			let n2 = challenge(W2);
			assert_ne!(n1, n2);
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(W1), bounded(dev_document(W1, &n2))),
				Error::<Test>::NonceMismatch
			);
			// A new block gives a new challenge, replacing the old one.
			System::set_block_number(2);
			let n1_again = challenge(W1);
			assert_ne!(n1_again, n1);
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(W1), bounded(dev_document(W1, &n1))),
				Error::<Test>::NonceMismatch
			);
			let doc = dev_document(W1, &n1_again);
			// Usable through block 2 + 10.
			System::set_block_number(13);
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(W1), bounded(doc.clone())),
				Error::<Test>::ChallengeExpired
			);
			System::set_block_number(12);
			assert_ok!(Tee::attest(RuntimeOrigin::signed(W1), bounded(doc.clone())));
			// Replaying the document finds no challenge.
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(W1), bounded(doc)),
				Error::<Test>::NoChallenge
			);
		});
	}

	#[test]
	fn the_enclave_must_be_allowed_and_publish_a_key() {
		dev_chain(|| {
			let nonce = challenge(W1);
			let doc = dev_document(W1, &nonce);
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(W1), bounded(doc)),
				Error::<Test>::MeasurementNotAllowed
			);
			allow(fixture::PCRS);
			let ca = DevCa::new(DEV_SEED, NOW_S);
			let claims = |pcrs: Vec<(u8, Vec<u8>)>, key: Option<Vec<u8>>| Claims {
				module_id: "m".into(),
				pcrs,
				public_key: key,
				user_data: None,
				nonce: Some(nonce.to_vec()),
			};
			let key = || Some(vec![5u8; 32]);
			for (claims, error) in [
				(claims(fixture_pcrs()[..2].to_vec(), key()), Error::<Test>::MissingPcrs),
				(claims(fixture_pcrs(), None), Error::<Test>::BadEnclaveKey),
				(
					Claims { user_data: key(), ..claims(fixture_pcrs(), None) },
					Error::<Test>::BadEnclaveKey,
				),
				(claims(fixture_pcrs(), Some(vec![5u8; 33])), Error::<Test>::BadEnclaveKey),
				(claims(fixture_pcrs(), Some(vec![5u8; 31])), Error::<Test>::BadEnclaveKey),
			] {
				let doc = ca.document(&claims, NOW_S * 1000);
				assert_noop!(Tee::attest(RuntimeOrigin::signed(W1), bounded(doc)), error);
			}
			// Documents a minute ahead pass; further ahead they do not.
			let ahead = ca.document(&claims(fixture_pcrs(), key()), NOW_S * 1000 + 60_001);
			assert_noop!(
				Tee::attest(RuntimeOrigin::signed(W1), bounded(ahead)),
				Error::<Test>::Document(DocumentError(opg_nitro::Error::FromTheFuture))
			);
			assert_ok!(Tee::attest(
				RuntimeOrigin::signed(W1),
				bounded(ca.document(&claims(fixture_pcrs(), key()), NOW_S * 1000 + 60_000))
			));
		});
	}

	#[test]
	fn every_chain_depth_costs_its_signatures_and_the_cache_is_bounded() {
		for depth in 0..=7u8 {
			let ca = DevCa::with_intermediates(DEV_SEED, NOW_S, depth);
			new_test_ext(vec![ca.root().to_vec()], || {
				set_time_ms(NOW_S * 1000);
				MaxKnownCas::set(3);
				allow(fixture::PCRS);
				let nonce = challenge(W1);
				let claims = Claims {
					module_id: "m".into(),
					pcrs: fixture_pcrs(),
					public_key: Some(vec![5; 32]),
					user_data: None,
					nonce: Some(nonce.to_vec()),
				};
				let info = Tee::attest(
					RuntimeOrigin::signed(W1),
					bounded(ca.document(&claims, NOW_S * 1000)),
				)
				.unwrap();
				assert_eq!(info.actual_weight, Some(<() as WeightInfo>::attest(depth as u32 + 2)));
				assert_eq!(KnownCaCount::<Test>::get(), (depth as u32).min(3));
			});
		}
	}
}

mod results {
	use super::*;

	#[test]
	fn a_result_signed_by_the_attested_key_is_accepted() {
		dev_chain(|| {
			allow(fixture::PCRS);
			attest_dev(W1);
			let message = opg_primitives_message();
			let signature = enclave_key(W1).sign(&message).0;
			assert_eq!(Tee::check_result_signature(&W1, &message, &signature), Ok(()));
			let mut other = message;
			other[0] ^= 1;
			assert_eq!(
				Tee::check_result_signature(&W1, &other, &signature),
				Err(SignatureError::Invalid)
			);
			assert_eq!(
				Tee::check_result_signature(&W1, &message, &signature[..63]),
				Err(SignatureError::Malformed)
			);
			// Another worker's key does not speak for W1, and W2 has none.
			let forged = enclave_key(W2).sign(&message).0;
			assert_eq!(
				Tee::check_result_signature(&W1, &message, &forged),
				Err(SignatureError::Invalid)
			);
			assert_eq!(
				Tee::check_result_signature(&W2, &message, &forged),
				Err(SignatureError::NoEnclaveKey)
			);
		});
	}

	#[test]
	fn expiry_and_revocation_end_a_key() {
		dev_chain(|| {
			let id = allow(fixture::PCRS);
			attest_dev(W1);
			let message = opg_primitives_message();
			let signature = enclave_key(W1).sign(&message).0;
			let expires = EnclaveKeys::<Test>::get(W1).unwrap().expires_at_ms;
			set_time_ms(expires - 1);
			assert_eq!(Tee::check_result_signature(&W1, &message, &signature), Ok(()));
			set_time_ms(expires);
			assert_eq!(
				Tee::check_result_signature(&W1, &message, &signature),
				Err(SignatureError::KeyExpired)
			);
			set_time_ms(NOW_S * 1000);
			assert_ok!(Tee::revoke_measurement(RuntimeOrigin::root(), id));
			assert_eq!(
				Tee::check_result_signature(&W1, &message, &signature),
				Err(SignatureError::MeasurementRevoked)
			);
		});
	}

	#[test]
	fn worker_status_follows_challenge_key_expiry_and_revocation() {
		dev_chain(|| {
			let id = allow(fixture::PCRS);
			let status = Tee::worker_status(&W1);
			assert_eq!(
				status,
				runtime_api::WorkerTee {
					now_ms: NOW_S * 1000,
					key: None,
					key_usable: false,
					challenge: None,
					is_worker: true
				}
			);
			assert!(!Tee::worker_status(&NOBODY).is_worker);
			let nonce = challenge(W1);
			assert_eq!(Tee::worker_status(&W1).challenge.map(|c| c.nonce), Some(nonce));
			assert_ok!(Tee::attest(RuntimeOrigin::signed(W1), bounded(dev_document(W1, &nonce))));
			let status = Tee::worker_status(&W1);
			assert_eq!(status.challenge, None, "a challenge is used once");
			assert_eq!(status.key.as_ref().map(|k| k.public), Some(enclave_key(W1).public().0));
			assert!(status.key_usable);
			let expires = status.key.unwrap().expires_at_ms;
			set_time_ms(expires);
			assert!(!Tee::worker_status(&W1).key_usable, "expired");
			set_time_ms(NOW_S * 1000);
			assert_ok!(Tee::revoke_measurement(RuntimeOrigin::root(), id));
			let status = Tee::worker_status(&W1);
			assert!(status.key.is_some() && !status.key_usable, "revoked");
		});
	}

	/// A `tee_message` as the market computes it.
	fn opg_primitives_message() -> [u8; 32] {
		polkadot_sdk::sp_crypto_hashing::blake2_256(b"job 7, artifact, input hash, output hash")
	}
}

mod eviction {
	use super::*;

	#[test]
	fn only_expired_revoked_or_orphaned_keys_are_evicted() {
		dev_chain(|| {
			let id = allow(fixture::PCRS);
			assert_noop!(
				Tee::evict(RuntimeOrigin::signed(NOBODY), W1),
				Error::<Test>::NoEnclaveKey
			);
			attest_dev(W1);
			attest_dev(W2);
			assert_noop!(
				Tee::evict(RuntimeOrigin::signed(NOBODY), W1),
				Error::<Test>::KeyStillValid
			);

			WORKERS.with(|w| w.borrow_mut().remove(&W2));
			assert_ok!(Tee::evict(RuntimeOrigin::signed(NOBODY), W2));
			System::assert_last_event(
				Event::EnclaveKeyEvicted { worker: W2, reason: EvictionReason::NotAWorker }.into(),
			);

			set_time_ms(EnclaveKeys::<Test>::get(W1).unwrap().expires_at_ms);
			assert_ok!(Tee::evict(RuntimeOrigin::signed(NOBODY), W1));
			System::assert_last_event(
				Event::EnclaveKeyEvicted { worker: W1, reason: EvictionReason::Expired }.into(),
			);

			set_time_ms(NOW_S * 1000);
			attest_dev(W1);
			assert_ok!(Tee::revoke_measurement(RuntimeOrigin::root(), id));
			assert_ok!(Tee::evict(RuntimeOrigin::signed(NOBODY), W1));
			System::assert_last_event(
				Event::EnclaveKeyEvicted { worker: W1, reason: EvictionReason::Revoked }.into(),
			);
			assert!(EnclaveKeys::<Test>::get(W1).is_none());
		});
	}

	#[test]
	fn expired_cas_are_forgotten_by_anyone() {
		// A document under three intermediate CAs (the benchmark fixture's).
		let (root, doc) = fixture::load().documents[3].clone();
		new_test_ext(vec![root.clone()], || {
			set_time_ms(NOW_S * 1000);
			allow(fixture::PCRS);
			Challenges::<Test>::insert(W1, Challenge { nonce: fixture::NONCE, expires_at: 10 });
			let parsed = opg_nitro::verify(&doc, &[&root[..]], NOW_S * 1000).unwrap();
			assert_ok!(Tee::attest(RuntimeOrigin::signed(W1), bounded(doc.clone())));
			let (fingerprint, not_after) = parsed.verified_cas[0];
			assert_eq!(KnownCas::<Test>::get(fingerprint), Some(not_after));
			assert_noop!(
				Tee::forget_ca(RuntimeOrigin::signed(NOBODY), [0; 32]),
				Error::<Test>::UnknownCa
			);
			set_time_ms(not_after * 1000);
			assert_noop!(
				Tee::forget_ca(RuntimeOrigin::signed(NOBODY), fingerprint),
				Error::<Test>::CaStillValid
			);
			set_time_ms((not_after + 1) * 1000);
			assert_ok!(Tee::forget_ca(RuntimeOrigin::signed(NOBODY), fingerprint));
			assert_eq!(KnownCaCount::<Test>::get(), 2);
		});
	}
}

/// The benchmarks' documents are what the development CA issues today.
#[test]
fn benchmark_fixture_is_current() {
	let key = ed25519::Pair::from_seed(&fixture::KEY_SEED);
	let documents = (0..=7u8)
		.map(|depth| {
			let ca = DevCa::with_intermediates(DEV_SEED, fixture::NOW_S, depth);
			let claims = Claims {
				module_id: "opg-worker-benchmark".into(),
				pcrs: fixture_pcrs(),
				public_key: Some(key.public().0.to_vec()),
				user_data: None,
				nonce: Some(fixture::NONCE.to_vec()),
			};
			(ca.root().to_vec(), ca.document(&claims, fixture::NOW_S * 1000))
		})
		.collect();
	let message = [0x11; 32];
	let expected = fixture::Fixture {
		documents,
		public: key.public().0,
		message,
		signature: key.sign(&message).0,
	};
	let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/benchmark-fixture.scale");
	if std::env::var_os("OPG_BLESS").is_some() {
		std::fs::write(path, expected.encode()).unwrap();
	}
	assert_eq!(fixture::load(), expected, "stale fixture: rerun with OPG_BLESS=1");
}
