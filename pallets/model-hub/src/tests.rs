//! Unit tests of the model hub: every call's success and every error it can return.

use crate::{mock::*, *};
use opg_primitives::{ElemType, Tensor};
use polkadot_sdk::{
	frame_support::{assert_noop, assert_ok, traits::fungible::InspectHold},
	sp_runtime::{DispatchError, TokenError},
};

fn bounded<const N: u32>(s: &[u8]) -> BoundedVec<u8, ConstU32<N>> {
	s.to_vec().try_into().unwrap()
}

fn tensor(elem: ElemType, shape: &[u32]) -> TensorSpecOf<Test> {
	TensorSpec { name: bounded::<32>(b"t"), elem, shape: shape.to_vec().try_into().unwrap() }
}

fn params(version: &[u8]) -> Box<ReleaseParams<Test>> {
	Box::new(ReleaseParams {
		version: bounded::<16>(version),
		artifact: H256::repeat_byte(7),
		artifact_size: 1234,
		format: ModelFormat::Onnx,
		source_uri: bounded::<128>(b"https://models.example/mlp.onnx"),
		inputs: vec![tensor(ElemType::F32, &[1, 4])].try_into().unwrap(),
		outputs: vec![tensor(ElemType::F32, &[1, 2])].try_into().unwrap(),
		modes: ModeSet::of(&[VerificationMode::Vanilla]),
		zk_verifying_key: None,
		royalty: Permill::from_percent(5),
		llm: None,
	})
}

fn held(who: u64) -> u64 {
	Balances::balance_on_hold(&HoldReason::StorageDeposit.into(), &who)
}

fn create_repo(owner: u64) -> RepositoryId {
	let id = NextRepositoryId::<Test>::get();
	assert_ok!(ModelHub::create_repository(
		RuntimeOrigin::signed(owner),
		bounded::<32>(b"mlp"),
		bounded::<128>(b"ipfs://readme")
	));
	id
}

fn publish(owner: u64, repo: RepositoryId, version: &[u8]) -> ReleaseId {
	let id = NextReleaseId::<Test>::get();
	assert_ok!(ModelHub::publish_release(RuntimeOrigin::signed(owner), repo, params(version)));
	id
}

mod repositories {
	use super::*;

	#[test]
	fn create_holds_deposit_for_its_bytes() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			let record = Repositories::<Test>::get(repo).unwrap();
			assert_eq!(record.deposit, 100 + record.encoded_size() as u64);
			assert_eq!(held(ALICE), record.deposit);
			System::assert_last_event(
				Event::RepositoryCreated {
					repository: repo,
					owner: ALICE,
					deposit: record.deposit,
				}
				.into(),
			);
			assert_eq!(NextRepositoryId::<Test>::get(), repo + 1);
		});
	}

	#[test]
	fn create_rejects_empty_name_and_poor_owner() {
		new_test_ext(|| {
			assert_noop!(
				ModelHub::create_repository(
					RuntimeOrigin::signed(ALICE),
					bounded::<32>(b""),
					bounded::<128>(b"")
				),
				Error::<Test>::EmptyName
			);
			assert_noop!(
				ModelHub::create_repository(
					RuntimeOrigin::signed(POOR),
					bounded::<32>(b"x"),
					bounded::<128>(&[b'u'; 100])
				),
				TokenError::FundsUnavailable
			);
			assert_noop!(
				ModelHub::create_repository(
					RuntimeOrigin::none(),
					bounded::<32>(b"x"),
					bounded::<128>(b"")
				),
				DispatchError::BadOrigin
			);
		});
	}

	#[test]
	fn update_adjusts_deposit_both_ways() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			let before = held(ALICE);
			assert_ok!(ModelHub::update_repository(
				RuntimeOrigin::signed(ALICE),
				repo,
				bounded::<128>(&[b'x'; 60])
			));
			let grown = held(ALICE);
			assert!(grown > before);
			assert_ok!(ModelHub::update_repository(
				RuntimeOrigin::signed(ALICE),
				repo,
				bounded::<128>(b"")
			));
			assert!(held(ALICE) < before);
			assert_eq!(Repositories::<Test>::get(repo).unwrap().deposit, held(ALICE));
		});
	}

	#[test]
	fn update_and_remove_check_owner_and_existence() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			assert_noop!(
				ModelHub::update_repository(RuntimeOrigin::signed(BOB), repo, bounded::<128>(b"")),
				Error::<Test>::NotOwner
			);
			assert_noop!(
				ModelHub::update_repository(RuntimeOrigin::signed(ALICE), 99, bounded::<128>(b"")),
				Error::<Test>::UnknownRepository
			);
			assert_noop!(
				ModelHub::remove_repository(RuntimeOrigin::signed(BOB), repo),
				Error::<Test>::NotOwner
			);
			assert_noop!(
				ModelHub::remove_repository(RuntimeOrigin::signed(ALICE), 99),
				Error::<Test>::UnknownRepository
			);
		});
	}

	#[test]
	fn remove_needs_an_empty_repository_and_releases_deposit() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			let release = publish(ALICE, repo, b"1.0");
			assert_noop!(
				ModelHub::remove_repository(RuntimeOrigin::signed(ALICE), repo),
				Error::<Test>::RepositoryNotEmpty
			);
			assert_ok!(ModelHub::retire_release(RuntimeOrigin::signed(ALICE), release));
			assert_ok!(ModelHub::remove_repository(RuntimeOrigin::signed(ALICE), repo));
			assert_eq!(held(ALICE), 0);
			assert!(Repositories::<Test>::get(repo).is_none());
			System::assert_last_event(Event::RepositoryRemoved { repository: repo }.into());
		});
	}
}

mod releases {
	use super::*;

	#[test]
	fn publish_stores_release_and_holds_deposit() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			let repo_deposit = held(ALICE);
			let id = publish(ALICE, repo, b"1.0");
			let rel = Releases::<Test>::get(id).unwrap();
			assert_eq!(rel.deposit, 100 + rel.encoded_size() as u64);
			assert_eq!(held(ALICE), repo_deposit + rel.deposit);
			assert_eq!(rel.status, ReleaseStatus::Active);
			assert_eq!(ReleaseByVersion::<Test>::get(repo, bounded::<16>(b"1.0")), Some(id));
			assert_eq!(Repositories::<Test>::get(repo).unwrap().releases, 1);
			System::assert_last_event(
				Event::ReleasePublished {
					release: id,
					repository: repo,
					artifact: rel.params.artifact,
					deposit: rel.deposit,
				}
				.into(),
			);
		});
	}

	#[test]
	fn publish_validates_every_field() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			let call = |p: Box<ReleaseParams<Test>>| {
				ModelHub::publish_release(RuntimeOrigin::signed(ALICE), repo, p)
			};
			let mut p = params(b"");
			assert_noop!(call(p.clone()), Error::<Test>::EmptyVersion);
			p = params(b"1");
			p.artifact_size = 0;
			assert_noop!(call(p), Error::<Test>::EmptyArtifact);
			p = params(b"1");
			p.source_uri = bounded::<128>(b"");
			assert_noop!(call(p), Error::<Test>::EmptySourceUri);
			p = params(b"1");
			p.inputs = Default::default();
			assert_noop!(call(p), Error::<Test>::NoTensors);
			p = params(b"1");
			p.outputs = Default::default();
			assert_noop!(call(p), Error::<Test>::NoTensors);
			p = params(b"1");
			p.modes = ModeSet(0);
			assert_noop!(call(p), Error::<Test>::InvalidModes);
			p = params(b"1");
			p.modes = ModeSet(0b1001);
			assert_noop!(call(p), Error::<Test>::InvalidModes);
			p = params(b"1");
			p.modes = ModeSet::of(&[VerificationMode::Zk]);
			assert_noop!(call(p), Error::<Test>::VerifyingKeyMismatch);
			p = params(b"1");
			p.zk_verifying_key = Some(H256::repeat_byte(0xAA));
			assert_noop!(call(p), Error::<Test>::VerifyingKeyMismatch);
			p = params(b"1");
			p.modes = ModeSet::of(&[VerificationMode::Zk]);
			p.zk_verifying_key = Some(H256::repeat_byte(0x01));
			assert_noop!(call(p), Error::<Test>::UnknownVerifyingKey);
			// A registered key, but made for another model's circuit.
			p = params(b"1");
			p.modes = ModeSet::of(&[VerificationMode::Zk]);
			p.zk_verifying_key = Some(H256::repeat_byte(0xAA));
			p.artifact = H256::repeat_byte(8);
			assert_noop!(call(p), Error::<Test>::VerifyingKeyOfAnotherModel);
			p = params(b"1");
			p.royalty = Permill::from_percent(21);
			assert_noop!(call(p), Error::<Test>::RoyaltyTooHigh);
			assert_noop!(
				ModelHub::publish_release(RuntimeOrigin::signed(BOB), repo, params(b"1")),
				Error::<Test>::NotOwner
			);
			assert_noop!(
				ModelHub::publish_release(RuntimeOrigin::signed(ALICE), 42, params(b"1")),
				Error::<Test>::UnknownRepository
			);
		});
	}

	#[test]
	fn zk_release_with_registered_key_and_max_royalty_is_accepted() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			let mut p = params(b"zk");
			p.modes = ModeSet::of(&[VerificationMode::Vanilla, VerificationMode::Zk]);
			p.zk_verifying_key = Some(H256::repeat_byte(0xAA));
			p.royalty = Permill::from_percent(20);
			assert_ok!(ModelHub::publish_release(RuntimeOrigin::signed(ALICE), repo, p));
		});
	}

	#[test]
	fn a_verifying_key_is_in_use_while_a_release_record_references_it() {
		new_test_ext(|| {
			let vk = H256::repeat_byte(0xAA);
			let repo = create_repo(ALICE);
			let zk = |version: &[u8]| {
				let mut p = params(version);
				p.modes = ModeSet::of(&[VerificationMode::Zk]);
				p.zk_verifying_key = Some(vk);
				p
			};
			assert!(!KeysInUse::<Test>::contains(&vk));
			assert_ok!(ModelHub::publish_release(RuntimeOrigin::signed(ALICE), repo, zk(b"1")));
			assert_ok!(ModelHub::publish_release(RuntimeOrigin::signed(ALICE), repo, zk(b"2")));
			assert_eq!(VerifyingKeyUsers::<Test>::get(vk), Some(2));
			assert_ok!(ModelHub::retire_release(RuntimeOrigin::signed(ALICE), 0));
			assert!(KeysInUse::<Test>::contains(&vk));
			assert_ok!(ModelHub::retire_release(RuntimeOrigin::signed(ALICE), 1));
			assert!(!KeysInUse::<Test>::contains(&vk));
			assert_eq!(VerifyingKeyUsers::<Test>::iter().count(), 0);
		});
	}

	#[test]
	fn versions_are_unique_and_releases_bounded_per_repository() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			publish(ALICE, repo, b"1");
			assert_noop!(
				ModelHub::publish_release(RuntimeOrigin::signed(ALICE), repo, params(b"1")),
				Error::<Test>::VersionTaken
			);
			// The same version is fine in another repository.
			let other = create_repo(ALICE);
			publish(ALICE, other, b"1");
			publish(ALICE, repo, b"2");
			publish(ALICE, repo, b"3");
			assert_noop!(
				ModelHub::publish_release(RuntimeOrigin::signed(ALICE), repo, params(b"4")),
				Error::<Test>::TooManyReleases
			);
		});
	}

	#[test]
	fn publish_fails_without_funds_for_deposit() {
		new_test_ext(|| {
			let repo = {
				assert_ok!(ModelHub::create_repository(
					RuntimeOrigin::signed(POOR),
					bounded::<32>(b"p"),
					bounded::<128>(b"")
				));
				0
			};
			assert_noop!(
				ModelHub::publish_release(RuntimeOrigin::signed(POOR), repo, params(b"1")),
				TokenError::FundsUnavailable
			);
		});
	}

	#[test]
	fn retire_without_jobs_removes_record_and_frees_version() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			let repo_deposit = held(ALICE);
			let id = publish(ALICE, repo, b"1");
			assert_ok!(ModelHub::retire_release(RuntimeOrigin::signed(ALICE), id));
			assert_eq!(held(ALICE), repo_deposit);
			assert!(Releases::<Test>::get(id).is_none());
			System::assert_has_event(Event::ReleaseRetired { release: id, open_jobs: 0 }.into());
			System::assert_last_event(Event::ReleaseRemoved { release: id }.into());
			// A new release may take the version; it gets a new id.
			let again = publish(ALICE, repo, b"1");
			assert_ne!(again, id);
		});
	}

	#[test]
	fn retired_release_with_open_jobs_finishes_them_then_goes() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			let id = publish(ALICE, repo, b"1");
			assert_ok!(<ModelHub as ModelRegistry<u64>>::job_opened(id));
			assert_ok!(<ModelHub as ModelRegistry<u64>>::job_opened(id));
			assert_ok!(ModelHub::retire_release(RuntimeOrigin::signed(ALICE), id));
			let rel = Releases::<Test>::get(id).unwrap();
			assert_eq!((rel.status, rel.open_jobs, rel.deposit), (ReleaseStatus::Retired, 2, 0));
			assert!(!ModelHub::release_info(id).unwrap().active);
			assert_noop!(
				<ModelHub as ModelRegistry<u64>>::job_opened(id),
				Error::<Test>::ReleaseRetired
			);
			assert_noop!(
				ModelHub::retire_release(RuntimeOrigin::signed(ALICE), id),
				Error::<Test>::ReleaseRetired
			);
			<ModelHub as ModelRegistry<u64>>::job_closed(id);
			assert!(Releases::<Test>::get(id).is_some());
			<ModelHub as ModelRegistry<u64>>::job_closed(id);
			assert!(Releases::<Test>::get(id).is_none());
			assert_eq!(Repositories::<Test>::get(repo).unwrap().releases, 0);
		});
	}

	#[test]
	fn retire_checks_owner_and_existence() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			let id = publish(ALICE, repo, b"1");
			assert_noop!(
				ModelHub::retire_release(RuntimeOrigin::signed(BOB), id),
				Error::<Test>::NotOwner
			);
			assert_noop!(
				ModelHub::retire_release(RuntimeOrigin::signed(ALICE), 77),
				Error::<Test>::UnknownRelease
			);
		});
	}
}

mod registry {
	use super::*;
	use codec::Encode;

	#[test]
	fn input_and_output_are_checked_against_the_spec() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			let id = publish(ALICE, repo, b"1");
			let good =
				vec![Tensor { elem: ElemType::F32, shape: vec![1, 4], data: vec![0; 16] }].encode();
			assert_eq!(ModelHub::check_input(id, &good), Ok(None));
			assert_eq!(
				ModelHub::check_output(id, &good),
				Err(InputError::Tensor(TensorError::Shape))
			);
			assert_eq!(
				ModelHub::check_input(id, b"junk"),
				Err(InputError::Tensor(TensorError::Malformed))
			);
			assert_eq!(ModelHub::check_input(9, &good), Err(InputError::UnknownRelease));
			let info = ModelHub::release_info(id).unwrap();
			assert_eq!(
				(info.publisher, info.royalty, info.active),
				(ALICE, Permill::from_percent(5), true)
			);
			assert!(ModelHub::release_info(9).is_none());
		});
	}

	#[test]
	fn job_counters_of_unknown_release() {
		new_test_ext(|| {
			assert_noop!(
				<ModelHub as ModelRegistry<u64>>::job_opened(5),
				Error::<Test>::UnknownRelease
			);
			// Closing an unknown release is a no-op, not a panic.
			<ModelHub as ModelRegistry<u64>>::job_closed(5);
		});
	}
}

mod llm {
	use super::*;
	use codec::Encode;
	use opg_primitives::chat::*;

	fn llm_params(version: &[u8]) -> Box<ReleaseParams<Test>> {
		Box::new(ReleaseParams {
			format: ModelFormat::Gguf,
			source_uri: bounded::<128>(b"https://models.example/smollm2.Q4_1.gguf"),
			inputs: Default::default(),
			outputs: Default::default(),
			modes: ModeSet::of(&[VerificationMode::Vanilla, VerificationMode::Tee]),
			llm: Some(LlmSpec {
				architecture: bounded::<32>(b"llama"),
				context_length: 8192,
				vocab_size: 49152,
				template_hash: H256::repeat_byte(5),
				prompt_overhead: 30,
				message_overhead: 6,
			}),
			..*params(version)
		})
	}

	fn refused(p: Box<ReleaseParams<Test>>, error: Error<Test>) {
		let repo = NextRepositoryId::<Test>::get().saturating_sub(1);
		assert_noop!(ModelHub::publish_release(RuntimeOrigin::signed(ALICE), repo, p), error);
	}

	#[test]
	fn a_gguf_release_declares_an_llm_spec_and_no_tensors() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			assert_ok!(ModelHub::publish_release(
				RuntimeOrigin::signed(ALICE),
				repo,
				llm_params(b"1")
			));
			assert!(ModelHub::release_info(0).unwrap().llm);
			let onnx = publish(ALICE, repo, b"onnx");
			assert!(!ModelHub::release_info(onnx).unwrap().llm);

			let mut p = llm_params(b"2");
			p.llm = None;
			refused(p, Error::<Test>::FormatMismatch);
			let mut p = llm_params(b"2");
			p.inputs = vec![tensor(ElemType::F32, &[1])].try_into().unwrap();
			refused(p, Error::<Test>::FormatMismatch);
			let mut p = params(b"2");
			p.llm = llm_params(b"2").llm;
			refused(p, Error::<Test>::FormatMismatch);

			for spoil in [
				|s: &mut LlmSpecOf<Test>| s.architecture = Default::default(),
				|s: &mut LlmSpecOf<Test>| s.context_length = 0,
				|s: &mut LlmSpecOf<Test>| s.context_length = 128 * 1024 + 1,
				|s: &mut LlmSpecOf<Test>| s.vocab_size = 0,
			] {
				let mut p = llm_params(b"2");
				spoil(p.llm.as_mut().unwrap());
				refused(p, Error::<Test>::InvalidLlmSpec);
			}
			let mut p = llm_params(b"2");
			p.modes = ModeSet::of(&[VerificationMode::Zk]);
			p.zk_verifying_key = Some(H256::repeat_byte(0xAA));
			refused(p, Error::<Test>::ZkModeNotForLlm);

			// At the edge: the longest context.
			let mut p = llm_params(b"2");
			p.llm.as_mut().unwrap().context_length = 128 * 1024;
			assert_ok!(ModelHub::publish_release(RuntimeOrigin::signed(ALICE), repo, p));
		});
	}

	#[test]
	fn chat_jobs_are_checked_against_the_llm_spec() {
		new_test_ext(|| {
			let repo = create_repo(ALICE);
			assert_ok!(ModelHub::publish_release(
				RuntimeOrigin::signed(ALICE),
				repo,
				llm_params(b"1")
			));
			let request = ChatRequest {
				prompt: Prompt::Chat(vec![
					ChatMessage { role: Role::System, content: b"Be brief.".to_vec() },
					ChatMessage { role: Role::User, content: b"Capital of France?".to_vec() },
				]),
				max_tokens: 16,
				sampling: Sampling::default(),
				stop: vec![b"\n\n".to_vec()],
			};
			assert_eq!(
				ModelHub::check_input(0, &request.encode()),
				Ok(Some(TokenBudget { prompt: 30 + 9 + 6 + 18 + 6, completion: 16 }))
			);
			let tensors =
				vec![Tensor { elem: ElemType::F32, shape: vec![1, 4], data: vec![0; 16] }].encode();
			assert_eq!(
				ModelHub::check_input(0, &tensors),
				Err(InputError::Chat(ChatError::Malformed))
			);
			let response = ChatResponse {
				text: b"Paris.".to_vec(),
				token_ids: vec![4, 49151],
				finish_reason: FinishReason::Stop,
				prompt_tokens: 40,
				completion_tokens: 2,
				engine: b"opg-llm/0.1.0+cpu-1".to_vec(),
				device_class: b"cpu-x86_64".to_vec(),
				logits_digest: 0,
			};
			assert_eq!(
				ModelHub::check_output(0, &response.encode()),
				Ok(Some(TokenUsage { prompt: 40, completion: 2 }))
			);
			let outside = ChatResponse { token_ids: vec![4, 49152], ..response };
			assert_eq!(
				ModelHub::check_output(0, &outside.encode()),
				Err(InputError::Chat(ChatError::Inconsistent))
			);
		});
	}
}

mod genesis {
	use super::*;
	use polkadot_sdk::{sp_io, sp_runtime::BuildStorage};

	#[test]
	fn genesis_creates_repositories_and_releases_with_deposits() {
		let mut storage = storage_with(vec![(ALICE, 1_000_000)]);
		crate::GenesisConfig::<Test> {
			repositories: vec![(
				ALICE,
				b"mlp".to_vec(),
				b"ipfs://readme".to_vec(),
				vec![*params(b"1"), *params(b"2")],
			)],
		}
		.assimilate_storage(&mut storage)
		.unwrap();
		sp_io::TestExternalities::new(storage).execute_with(|| {
			let repo = Repositories::<Test>::get(0).expect("created at genesis");
			assert_eq!((repo.owner, repo.releases), (ALICE, 2));
			assert_eq!(ReleaseByVersion::<Test>::get(0, bounded::<16>(b"2")), Some(1));
			let releases = Releases::<Test>::get(0).unwrap().deposit +
				Releases::<Test>::get(1).unwrap().deposit;
			assert_eq!(held(ALICE), repo.deposit + releases);
			ModelHub::do_try_state().expect("invariants hold");
		});
	}

	#[test]
	#[should_panic(expected = "genesis release is valid")]
	fn invalid_genesis_release_is_refused() {
		let mut storage = storage_with(vec![(ALICE, 1_000_000)]);
		// The same version twice.
		crate::GenesisConfig::<Test> {
			repositories: vec![(
				ALICE,
				b"mlp".to_vec(),
				vec![],
				vec![*params(b"1"), *params(b"1")],
			)],
		}
		.assimilate_storage(&mut storage)
		.unwrap();
	}
}
