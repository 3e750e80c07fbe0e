//! Prometheus metrics of the worker, registered in the node's registry (in-process) or served
//! on the worker's own port (standalone).

use std::sync::{atomic::Ordering, Arc};

use prometheus_endpoint::{
	exponential_buckets, register, Counter, CounterVec, Gauge, Histogram, HistogramOpts,
	MetricSource, Opts, PrometheusError, Registry, SourcedCounter, SourcedGauge, U64,
};

use crate::store::ModelStore;

/// The worker's metrics.
#[derive(Clone)]
pub struct Metrics {
	/// Answers accepted by the pool, by kind (`result`, `rejection`).
	pub answers: CounterVec<U64>,
	/// Jobs that ended without an answer in the pool, by cause.
	pub failures: CounterVec<U64>,
	/// Time from a job being seen to its answer being ready.
	pub latency: Histogram,
	/// Model execution time alone.
	pub execution: Histogram,
	/// Jobs waiting for an executor slot or executing.
	pub queue_depth: Gauge<U64>,
	/// Latest best block seen.
	pub best_block: Gauge<U64>,
	/// Answers re-sent because the first left the pool without being included.
	pub resubmissions: Counter<U64>,
	/// Seconds of chain time the attested enclave key has left (0: TEE jobs cannot be answered).
	pub enclave_key_validity: Gauge<U64>,
	/// Attestation extrinsics sent, by step (`challenge`, `attest`).
	pub attestation_steps: CounterVec<U64>,
	/// Disputed receipts (direct path), by kind (`audit`, `challenge`) and what the worker did
	/// (`opened`: `openReceipt` sent; `unopenable`: not kept, or not the receipt it committed).
	pub disputes: CounterVec<U64>,
}

impl Metrics {
	/// Registers the worker's metrics, including the model cache's counters read from `store`.
	pub fn register(
		registry: &Registry,
		store: Arc<ModelStore>,
	) -> Result<Metrics, PrometheusError> {
		let seconds = |name: &str, help: &str| {
			// 1 ms .. ~65 s.
			Histogram::with_opts(
				HistogramOpts::new(name, help).buckets(exponential_buckets(0.001, 2.0, 17)?),
			)
		};
		let metrics = Metrics {
			answers: register(
				CounterVec::new(
					Opts::new(
						"opg_worker_answers_total",
						"Answers accepted by the transaction pool",
					),
					&["kind"],
				)?,
				registry,
			)?,
			failures: register(
				CounterVec::new(
					Opts::new(
						"opg_worker_failures_total",
						"Jobs whose answer did not reach the pool",
					),
					&["cause"],
				)?,
				registry,
			)?,
			latency: register(
				seconds(
					"opg_worker_job_latency_seconds",
					"From a job seen in a best block to its answer ready",
				)?,
				registry,
			)?,
			execution: register(
				seconds("opg_worker_execution_seconds", "Model execution time")?,
				registry,
			)?,
			queue_depth: register(
				Gauge::new(
					"opg_worker_queue_depth",
					"Jobs waiting for an executor slot or executing",
				)?,
				registry,
			)?,
			best_block: register(
				Gauge::new("opg_worker_best_block", "Latest best block seen")?,
				registry,
			)?,
			resubmissions: register(
				Counter::new(
					"opg_worker_resubmissions_total",
					"Answers sent again after leaving the pool unincluded",
				)?,
				registry,
			)?,
			enclave_key_validity: register(
				Gauge::new(
					"opg_worker_enclave_key_validity_seconds",
					"Chain time the attested enclave key has left (TEE mode; 0 when not attested)",
				)?,
				registry,
			)?,
			attestation_steps: register(
				CounterVec::new(
					Opts::new(
						"opg_worker_attestation_steps_total",
						"Attestation extrinsics sent, by step",
					),
					&["step"],
				)?,
				registry,
			)?,
			disputes: register(
				CounterVec::new(
					Opts::new(
						"opg_worker_disputes_total",
						"Receipts the chain asked this worker to open, by kind and outcome",
					),
					&["kind", "outcome"],
				)?,
				registry,
			)?,
		};
		let cache = CacheSource(store);
		register(
			SourcedCounter::new(
				&Opts::new("opg_worker_model_cache_total", "Model cache events")
					.variable_label("event"),
				cache.clone(),
			)?,
			registry,
		)?;
		register(
			SourcedCounter::new(
				&Opts::new(
					"opg_worker_model_downloaded_bytes_total",
					"Bytes of model files downloaded",
				),
				CacheBytes(cache.0.clone(), false),
			)?,
			registry,
		)?;
		register(
			SourcedGauge::new(
				&Opts::new("opg_worker_model_cache_bytes", "Bytes of model files in the cache"),
				CacheBytes(cache.0, true),
			)?,
			registry,
		)?;
		Ok(metrics)
	}
}

#[derive(Clone)]
struct CacheSource(Arc<ModelStore>);

impl MetricSource for CacheSource {
	type N = u64;

	fn collect(&self, mut set: impl FnMut(&[&str], u64)) {
		let stats = &self.0.stats;
		set(&["hit"], stats.hits.load(Ordering::Relaxed));
		set(&["miss"], stats.misses.load(Ordering::Relaxed));
		set(&["corrupt"], stats.corrupt.load(Ordering::Relaxed));
		set(&["eviction"], stats.evictions.load(Ordering::Relaxed));
	}
}

/// Downloaded bytes (`false`) or bytes held now (`true`).
#[derive(Clone)]
struct CacheBytes(Arc<ModelStore>, bool);

impl MetricSource for CacheBytes {
	type N = u64;

	fn collect(&self, mut set: impl FnMut(&[&str], u64)) {
		set(
			&[],
			if self.1 {
				self.0.cached_bytes()
			} else {
				self.0.stats.downloaded_bytes.load(Ordering::Relaxed)
			},
		);
	}
}
