//! Native tests of the real runtime: genesis presets, integrity, and a signed transfer that
//! pays its fee, applied through `Executive` as a block author would.

use codec::Encode;
use opg_runtime::{
	genesis_config_presets, AccountId, AllPalletsWithSystem, Balances, Executive, Runtime,
	RuntimeCall, System, EXISTENTIAL_DEPOSIT, UNIT,
};
use polkadot_sdk::{
	frame_support::traits::{fungible::Inspect, IntegrityTest},
	sp_genesis_builder::{DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET},
	sp_keyring::Sr25519Keyring,
	sp_runtime::MultiAddress,
	*,
};

mod common;
use common::*;

#[test]
fn every_preset_builds_and_is_listed() {
	let names = genesis_config_presets::preset_names();
	assert_eq!(names.len(), 2);
	for preset in [DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET] {
		assert!(names.iter().any(|n| n.as_ref() as &str == preset), "{preset} listed");
		externalities(preset).execute_with(|| {
			let alice: AccountId = Sr25519Keyring::Alice.to_account_id();
			// Free plus held (the dev worker's stake).
			assert_eq!(Balances::total_balance(&alice), genesis_config_presets::ENDOWMENT);
			assert_eq!(
				opg_runtime::ParachainInfo::parachain_id(),
				genesis_config_presets::PARACHAIN_ID.into()
			);
			assert_eq!(pallet_sudo::Key::<Runtime>::get(), Some(alice));
			assert!(!pallet_aura::Authorities::<Runtime>::get().is_empty());
		});
	}
	assert!(genesis_config_presets::get_preset(&"no-such-preset".into()).is_none());
}

#[test]
fn local_testnet_has_two_collators() {
	externalities(LOCAL_TESTNET_RUNTIME_PRESET).execute_with(|| {
		assert_eq!(pallet_aura::Authorities::<Runtime>::get().len(), 2);
		assert_eq!(pallet_collator_selection::Invulnerables::<Runtime>::get().len(), 2);
	});
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		assert_eq!(pallet_aura::Authorities::<Runtime>::get().len(), 1);
	});
}

#[test]
fn pallets_pass_integrity_checks() {
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		<AllPalletsWithSystem as IntegrityTest>::integrity_test();
	});
}

#[test]
fn signed_transfer_pays_fee_to_collator_pot_and_keeps_issuance() {
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		let alice = Sr25519Keyring::Alice.to_account_id();
		let bob = Sr25519Keyring::Bob.to_account_id();
		let pot = pallet_collator_selection::Pallet::<Runtime>::account_id();
		let issuance = Balances::total_issuance();
		let (alice_before, bob_before, pot_before) =
			(Balances::balance(&alice), Balances::balance(&bob), Balances::balance(&pot));

		start_block(1);
		let amount = 5 * UNIT;
		let call = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
			dest: MultiAddress::Id(bob.clone()),
			value: amount,
		});
		let xt = signed(Sr25519Keyring::Alice, call, 0);
		let len = xt.encoded_size() as u32;
		// What wallets are quoted (payment_queryInfo): call and extension weight, length.
		let expected_fee = opg_runtime::TransactionPayment::query_info(xt.clone(), len).partial_fee;
		assert!(expected_fee > 0);

		Executive::apply_extrinsic(xt).expect("valid").expect("dispatch succeeds");

		assert_eq!(Balances::balance(&bob), bob_before + amount);
		let fee = alice_before - amount - Balances::balance(&alice);
		// The actual fee can only be lower than the estimate (unused weight is refunded).
		assert!(fee > 0 && fee <= expected_fee, "fee {fee} vs estimate {expected_fee}");
		assert_eq!(Balances::balance(&pot), pot_before + fee, "fee goes to the collator pot");
		assert_eq!(Balances::total_issuance(), issuance, "fees are not burned");
		assert_eq!(System::account_nonce(&alice), 1);

		// Replaying the same extrinsic is refused (stale nonce) and changes nothing.
		let replay = signed(
			Sr25519Keyring::Alice,
			RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
				dest: MultiAddress::Id(bob.clone()),
				value: amount,
			}),
			0,
		);
		assert!(Executive::apply_extrinsic(replay).is_err());
		assert_eq!(Balances::balance(&bob), bob_before + amount);
	});
}

#[test]
fn transfer_below_existential_deposit_to_new_account_fails() {
	externalities(DEV_RUNTIME_PRESET).execute_with(|| {
		start_block(1);
		let fresh: AccountId = [7u8; 32].into();
		let call = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
			dest: MultiAddress::Id(fresh.clone()),
			value: EXISTENTIAL_DEPOSIT - 1,
		});
		let result = Executive::apply_extrinsic(signed(Sr25519Keyring::Alice, call, 0))
			.expect("transaction is valid and pays its fee");
		assert!(result.is_err(), "dispatch fails below the existential deposit");
		assert_eq!(Balances::balance(&fresh), 0);
	});
}

#[test]
fn opg_has_eighteen_decimals() {
	assert_eq!(opg_runtime::TOKEN_DECIMALS, 18);
	assert_eq!(UNIT, 10u128.pow(18));
	assert_eq!(opg_runtime::TOKEN_SYMBOL, "OPG");
	assert_eq!(<Runtime as frame_system::Config>::SS58Prefix::get(), 42);
}
