//! The node's client, backend and transaction pool types, shared by the service, the dev mode
//! and the in-process inference worker (which therefore does not depend on the service).

use cumulus_client_service::ParachainHostFunctions;
use opg_runtime::{apis::RuntimeApi, opaque::Block};
use polkadot_sdk::*;
use sc_executor::WasmExecutor;
use sc_service::{TFullBackend, TFullClient};

/// Wasm executor with the host functions cumulus runtimes need (storage proof size).
pub type ParachainExecutor = WasmExecutor<ParachainHostFunctions>;
/// Full client of OPG.
pub type ParachainClient = TFullClient<Block, RuntimeApi, ParachainExecutor>;
/// Database backend.
pub type ParachainBackend = TFullBackend<Block>;
/// Transaction pool.
pub type TransactionPool = sc_transaction_pool::TransactionPoolHandle<Block, ParachainClient>;
