//! Pallets benchmarked against this runtime (`scripts/regen/benchmarks.sh`). The system pallets use
//! the figures their crates ship; the OPG pallets' `weights.rs` are generated from these.

polkadot_sdk::frame_benchmarking::define_benchmarks!(
	[pallet_model_hub, ModelHub]
	[pallet_inference, Inference]
	[pallet_tee, Tee]
	[pallet_zk, Zk]
);
