//! `--dev`: one process, no relay chain. Blocks are sealed on a timer (manual seal) with a
//! mocked relay chain parent, and finalized at once.

use std::{sync::Arc, time::Duration};

use codec::Encode;
use cumulus_client_parachain_inherent::MockValidationDataInherentDataProvider;
use cumulus_primitives_core::{CollectCollationInfo, GetParachainInfo, ParaId};
use opg_runtime::opaque::{Block, Hash};
use polkadot_primitives::UpgradeGoAhead;
use polkadot_sdk::*;
use sc_client_api::HeaderBackend;
use sc_consensus::LongestChain;
use sc_consensus_manual_seal::consensus::aura::AuraConsensusDataProvider;
use sc_network::{config::FullNetworkConfiguration, NotificationMetrics};
use sc_service::{Configuration, PartialComponents, TaskManager};
use sp_api::ProvideRuntimeApi;
use sp_runtime::traits::Header as HeaderT;

use crate::{cli::InferenceArgs, client::ParachainClient};

/// Relay chain slot duration the mocked relay chain pretends to have.
const RELAY_CHAIN_SLOT_DURATION_MILLIS: u64 = 6000;

/// Starts the dev node: a block every `block_time_ms`, finalized at once.
pub fn start_dev_node(
	mut config: Configuration,
	block_time_ms: u64,
	inference: InferenceArgs,
) -> sc_service::error::Result<TaskManager> {
	let PartialComponents {
		client,
		backend,
		mut task_manager,
		import_queue,
		keystore_container,
		select_chain: _,
		transaction_pool,
		other: (_, mut telemetry, _),
	} = crate::service::new_partial(&config)?;

	// A dev chain talks to nobody.
	config.network.default_peers_set.in_peers = 0;
	config.network.default_peers_set.out_peers = 0;
	let net_config = FullNetworkConfiguration::<_, _, sc_network::NetworkWorker<Block, Hash>>::new(
		&config.network,
		None,
	);

	let (network, system_rpc_tx, tx_handler_controller, sync_service, _bitswap) =
		sc_service::build_network(sc_service::BuildNetworkParams {
			config: &config,
			client: client.clone(),
			transaction_pool: transaction_pool.clone(),
			spawn_handle: task_manager.spawn_handle(),
			spawn_essential_handle: task_manager.spawn_essential_handle(),
			import_queue,
			net_config,
			block_announce_validator_builder: None,
			warp_sync_config: None,
			block_relay: None,
			metrics: NotificationMetrics::new(None),
			gap_sync_body_policy: None,
		})?;

	if config.offchain_worker.enabled {
		crate::service::spawn_offchain_workers(
			&task_manager,
			client.clone(),
			&backend,
			keystore_container.keystore(),
			transaction_pool.clone(),
			network.clone(),
			config.role.is_authority(),
		)?;
	}

	let proposer = sc_basic_authorship::ProposerFactory::new(
		task_manager.spawn_handle(),
		client.clone(),
		transaction_pool.clone(),
		config.prometheus_registry(),
		telemetry.as_ref().map(|t| t.handle()),
	);

	let slot_duration = sc_consensus_aura::slot_duration(&*client)?;
	// Pre-runtime digests matching the timestamps below, as Aura expects.
	let aura_digest_provider = AuraConsensusDataProvider::new_with_slot_duration(slot_duration);

	let best = client.info().best_hash;
	let para_id = client
		.runtime_api()
		.parachain_id(best)
		.map_err(|e| sc_service::Error::Application(Box::new(e)))?;
	let create_inherent_data_providers =
		dev_inherent_data_providers(client.clone(), para_id, slot_duration);

	let (mut seal_sink, seal_stream) = futures::channel::mpsc::channel(1024);
	task_manager
		.spawn_essential_handle()
		.spawn("dev-block-timer", None, async move {
			loop {
				futures_timer::Delay::new(Duration::from_millis(block_time_ms)).await;
				let command = sc_consensus_manual_seal::EngineCommand::SealNewBlock {
					create_empty: true,
					finalize: true,
					parent_hash: None,
					sender: None,
				};
				// A full channel means sealing lags behind the timer; skipping a tick is fine.
				if let Err(e) = seal_sink.try_send(command) {
					if e.is_disconnected() {
						break;
					}
				}
			}
		});

	let authorship =
		sc_consensus_manual_seal::run_manual_seal(sc_consensus_manual_seal::ManualSealParams {
			block_import: client.clone(),
			env: proposer,
			client: client.clone(),
			pool: transaction_pool.clone(),
			select_chain: LongestChain::new(backend.clone()),
			commands_stream: Box::pin(seal_stream),
			consensus_data_provider: Some(Box::new(aura_digest_provider)),
			create_inherent_data_providers,
		});
	task_manager
		.spawn_essential_handle()
		.spawn_blocking("manual-seal", None, authorship);

	let rpc_builder = crate::service::rpc_builder(client.clone(), transaction_pool.clone());

	let prometheus_registry = config.prometheus_registry().cloned();
	let base_path = config.base_path.path().to_path_buf();
	let dev_chain = config.chain_spec.chain_type() == sc_chain_spec::ChainType::Development;
	sc_service::spawn_tasks(sc_service::SpawnTasksParams {
		network,
		client: client.clone(),
		keystore: keystore_container.keystore(),
		task_manager: &mut task_manager,
		transaction_pool: transaction_pool.clone(),
		rpc_builder,
		backend,
		system_rpc_tx,
		tx_handler_controller,
		sync_service,
		config,
		telemetry: telemetry.as_mut(),
		tracing_execute_block: None,
	})?;

	crate::inference::start(
		&inference,
		crate::inference::NodeHandles {
			client,
			transaction_pool,
			keystore: keystore_container.keystore(),
			spawn_handle: task_manager.spawn_handle(),
			prometheus_registry,
			base_path,
			dev_chain,
		},
	)?;

	Ok(task_manager)
}

/// What the dev block authoring's inherent data providers produce for each block.
type DevInherentData = futures::future::Ready<
	Result<
		(sp_timestamp::InherentDataProvider, MockValidationDataInherentDataProvider<()>),
		Box<dyn std::error::Error + Send + Sync>,
	>,
>;

/// Timestamp and mocked relay-chain validation data for each dev block. Every parachain block
/// gets its own relay slot so that Aura's slot checks and the consensus hook are satisfied.
fn dev_inherent_data_providers(
	client: Arc<ParachainClient>,
	para_id: ParaId,
	slot_duration: sp_consensus_aura::SlotDuration,
) -> impl Fn(Hash, ()) -> DevInherentData + Send + Sync {
	let relay_blocks_per_para_block =
		(slot_duration.as_millis() / RELAY_CHAIN_SLOT_DURATION_MILLIS).max(1) as u32;
	// Start the mocked relay chain in the past so that timestamps never run ahead of the
	// wall clock, whatever the dev block time.
	let now_ms = std::time::SystemTime::now()
		.duration_since(std::time::UNIX_EPOCH)
		.expect("the clock is after 1970")
		.as_millis() as u64;
	let initial_relay_slot =
		now_ms.saturating_sub(2 * 60 * 60 * 1000) / RELAY_CHAIN_SLOT_DURATION_MILLIS;

	move |parent: Hash, ()| {
		let result = (|| {
			let parent_header = client
				.header(parent)?
				.ok_or_else(|| format!("parent header {parent:?} not found"))?;
			// A pending runtime upgrade is enacted by the relay chain's go-ahead signal.
			let pending_upgrade = client
				.runtime_api()
				.collect_collation_info(parent, &parent_header)
				.map(|info| info.new_validation_code.is_some())
				.unwrap_or_default();
			let block_number = *parent_header.number() + 1;
			let target_relay_slot = initial_relay_slot +
				u64::from(block_number) * u64::from(relay_blocks_per_para_block);
			let relay_offset = (target_relay_slot as u32)
				.saturating_sub(relay_blocks_per_para_block * block_number);

			let validation_data = MockValidationDataInherentDataProvider::<()> {
				current_para_block: block_number,
				para_id,
				current_para_block_head: Some(polkadot_primitives::HeadData(
					parent_header.encode(),
				)),
				relay_blocks_per_para_block,
				relay_offset,
				para_blocks_per_relay_epoch: 10,
				upgrade_go_ahead: pending_upgrade.then_some(UpgradeGoAhead::GoAhead),
				// The relay parent's BABE randomness, which the inference market draws workers
				// with. A real relay's is its block author's VRF output; the mocked relay's
				// follows from the parent block, unknown before it is built.
				additional_key_values: Some(vec![(
					polkadot_primitives::well_known_keys::CURRENT_BLOCK_RANDOMNESS.to_vec(),
					Some(sp_crypto_hashing::blake2_256(
						&(b"opg/dev-relay-randomness", parent, block_number).encode(),
					))
					.encode(),
				)]),
				..Default::default()
			};
			let timestamp = sp_timestamp::InherentDataProvider::new(
				(target_relay_slot * RELAY_CHAIN_SLOT_DURATION_MILLIS).into(),
			);
			Ok::<_, Box<dyn std::error::Error + Send + Sync>>((timestamp, validation_data))
		})();
		futures::future::ready(result)
	}
}
