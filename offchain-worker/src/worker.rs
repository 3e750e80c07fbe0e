//! The job loop: follow best blocks, execute the jobs assigned to this worker with bounded
//! concurrency and a per-job time budget below the on-chain deadline, answer each once.
//!
//! Jobs in TEE mode are answered only while the enclave key is attested ([`Attestation`]), and
//! carry its signature; the worker keeps the key attested from the same head loop.
//!
//! "Once" survives restarts: every answer sent is written to the [`Journal`] before the loop goes
//! on, and a job with an entry is answered again only when its first answer left the pool
//! without being included (the pallet itself refuses a second answer to a settled job).

use std::{
	collections::HashMap,
	future::Future,
	path::PathBuf,
	sync::{Arc, Mutex},
	time::{Duration, Instant},
};

use codec::Encode;
use opg_primitives::{
	channel::ChannelId, chat::check_chat_request, check_tensors, Evidence, JobId, ModelFormat,
	VerificationMode,
};
use opg_runtime::{Nonce, RuntimeCall};
use pallet_inference::{JobStatus, RejectReason};
use polkadot_sdk::sp_core::H256;
use tokio::sync::{mpsc, Semaphore};

use crate::{
	chain::{signed_extrinsic, Answer, Chain, ChainError, Head, Release, Signer},
	channels::Ledger,
	exec::{Device, Engine, ExecError},
	journal::{Journal, Sent},
	llm::{LlmEngine, LlmJobError},
	metrics::Metrics,
	store::ModelStore,
	tee::{Admitted, Attestation, Enclave, Step},
	zk::{Provers, ZkError},
};

/// Largest output the runtime accepts: its `MaxOutputLen`.
pub fn max_output_len() -> usize {
	<<opg_runtime::Runtime as pallet_inference::Config>::MaxOutputLen as polkadot_sdk::sp_core::Get<
		u32,
	>>::get() as usize
}

/// How the worker runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
	/// Backend the models run on.
	pub device: Device,
	/// Jobs executed at once.
	pub concurrency: usize,
	/// Longest a job may execute, whatever its deadline allows.
	pub max_execution: Duration,
	/// Block time assumed until blocks have been seen (the estimate then follows the chain).
	pub block_time: Duration,
	/// Blocks to wait before answering again a job whose answer is no longer in the pool.
	pub retry_after: u32,
	/// Models kept loaded on the device.
	pub loaded_models: usize,
	/// Threads an LLM's matrix products run on (0: one per core).
	pub llm_threads: usize,
	/// Most bytes one job's live tensors may take (`--max-job-memory-mib`); a job that needs
	/// more is rejected as input this worker cannot take.
	pub max_job_memory: usize,
	/// Where the journal lives.
	pub state_dir: PathBuf,
	/// How long a shutdown waits for running jobs to be answered.
	pub shutdown_grace: Duration,
}

impl WorkerConfig {
	/// Defaults for a worker keeping its state under `state_dir`.
	pub fn new(state_dir: impl Into<PathBuf>) -> WorkerConfig {
		WorkerConfig {
			device: Device::Cpu,
			concurrency: 2,
			max_execution: Duration::from_secs(120),
			block_time: Duration::from_secs(6),
			retry_after: 5,
			loaded_models: 8,
			llm_threads: 0,
			max_job_memory: crate::exec::DEFAULT_JOB_MEMORY,
			state_dir: state_dir.into(),
			shutdown_grace: Duration::from_secs(10),
		}
	}
}

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
	/// The journal could not be opened.
	#[error("worker journal in {0}: {1}")]
	Journal(PathBuf, std::io::Error),
}

/// A job's answer, ready to be signed.
struct Done {
	job: JobId,
	answer: Answer,
	seen: Instant,
	execution: Option<Duration>,
}

/// The inference worker.
pub struct Worker<C: Chain> {
	chain: Arc<C>,
	signer: Arc<dyn Signer>,
	store: Arc<ModelStore>,
	engines: Arc<EngineCache>,
	metrics: Option<Metrics>,
	config: WorkerConfig,
	journal: Journal,
	in_flight: HashMap<JobId, Instant>,
	best: Option<Head>,
	block_time: Duration,
	last_head_at: Option<Instant>,
	/// The nonce after our last accepted answer and the best block it was sent at. The pool's
	/// own count can lag a submission made a moment earlier, and two answers with one nonce
	/// replace each other; a hint only counts for [`NONCE_HINT_BLOCKS`], so a dropped
	/// transaction cannot leave a lasting gap.
	nonce_hint: Option<(Nonce, u32)>,
	/// The enclave key and its attestation, in TEE mode.
	tee: Option<Attestation>,
	/// Proving keys, in ZK mode.
	provers: Option<Arc<Provers>>,
	/// Execution slots, shared by jobs and the HTTP API's requests.
	slots: Arc<Semaphore>,
	/// The direct path's vouchers, redeemed from here.
	channels: Option<Redemptions>,
	/// The HTTP API's URL to advertise on chain, and the last `set_endpoint` sent for it.
	advertise: Option<Advertise>,
}

struct Advertise {
	url: Vec<u8>,
	/// Best block and pool hash of the last `set_endpoint` sent.
	sent: Option<(u32, H256)>,
	/// The chain holds it: nothing more to do.
	done: bool,
}

/// The vouchers the HTTP API accepted, and the redemptions sent for them.
struct Redemptions {
	ledger: Arc<Ledger>,
	/// Blocks between two redemptions of the same channel.
	every: u32,
	/// Per channel: the sequence number of the last redemption sent, the block it was sent at
	/// and its pool hash.
	sent: HashMap<ChannelId, (u64, u32, H256)>,
	/// Per disputed receipt: the block its opening was sent at and its pool hash.
	opened: HashMap<pallet_inference::DisputeKey, (u32, H256)>,
}

/// Blocks during which our own nonce count overrides a lower one from the pool.
const NONCE_HINT_BLOCKS: u32 = 2;

impl<C: Chain> Worker<C> {
	/// A worker answering for `signer`'s account.
	pub fn new(
		chain: Arc<C>,
		signer: Arc<dyn Signer>,
		store: Arc<ModelStore>,
		metrics: Option<Metrics>,
		config: WorkerConfig,
	) -> Result<Self, WorkerError> {
		let journal = Journal::open(&config.state_dir)
			.map_err(|e| WorkerError::Journal(config.state_dir.clone(), e))?;
		let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
		Ok(Worker {
			chain,
			signer,
			store,
			engines: Arc::new(EngineCache::new(
				config.device,
				config.loaded_models,
				config.max_job_memory,
				config.llm_threads,
			)),
			metrics,
			block_time: config.block_time,
			config,
			journal,
			in_flight: HashMap::new(),
			best: None,
			last_head_at: None,
			nonce_hint: None,
			tee: None,
			provers: None,
			slots,
			channels: None,
			advertise: None,
		})
	}

	/// Redeems the vouchers `ledger` holds (those the HTTP API accepted): each channel's latest,
	/// with the root of its batch of receipts, at most once every `every` blocks per channel,
	/// and at once when the requester closes the channel.
	pub fn with_channels(mut self, ledger: Arc<Ledger>, every: u32) -> Self {
		self.channels = Some(Redemptions {
			ledger,
			every: every.max(1),
			sent: HashMap::new(),
			opened: HashMap::new(),
		});
		self
	}

	/// The enclave, in TEE mode: the direct path's TEE receipts are signed by it too.
	pub fn enclave(&self) -> Option<Arc<Enclave>> {
		self.tee.as_ref().map(|t| t.enclave().clone())
	}

	/// A handle that runs release models with this worker's loaded models and execution
	/// slots: what the HTTP API answers with.
	pub fn runner(&self) -> Runner {
		Runner {
			store: self.store.clone(),
			engines: self.engines.clone(),
			slots: self.slots.clone(),
			device: self.config.device,
		}
	}

	/// Keeps `url` (the HTTP API's, as clients reach it) advertised as this worker's endpoint
	/// on chain (`Inference::set_endpoint`), so that clients find it.
	pub fn advertise(mut self, url: String) -> Self {
		self.advertise = Some(Advertise { url: url.into_bytes(), sent: None, done: false });
		self
	}

	/// Answers ZK-mode jobs too, proving them with the keys in `provers`.
	pub fn with_provers(mut self, provers: Provers) -> Self {
		self.provers = Some(Arc::new(provers));
		self
	}

	/// Answers TEE-mode jobs too, signed by `enclave`'s key once the chain has attested it.
	pub fn with_enclave(mut self, enclave: Enclave) -> Self {
		self.tee = Some(Attestation::new(Arc::new(enclave)));
		self
	}

	/// Runs until `shutdown` resolves, then waits up to the grace period for running jobs
	/// and answers them.
	pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
		crate::tune_allocator();
		let account = self.signer.account();
		tracing::info!(
			target: "inference",
			%account,
			device = %self.config.device,
			concurrency = self.config.concurrency,
			pending_answers = self.journal.len(),
			tee = self.tee.as_ref().map(|t| t.enclave().attester()),
			zk_keys = self.provers.as_ref().map(|p| p.dir().display().to_string()),
			"🧠 inference worker started"
		);
		let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
		let (head_tx, mut head_rx) = mpsc::unbounded_channel::<Head>();
		let chain = self.chain.clone();
		let follower = tokio::spawn(async move {
			loop {
				match chain.next_head().await {
					Ok(head) =>
						if head_tx.send(head).is_err() {
							break;
						},
					Err(e) => {
						tracing::warn!(target: "inference", "following blocks: {e}");
						tokio::time::sleep(Duration::from_secs(1)).await;
					},
				}
			}
		});
		let slots = self.slots.clone();
		tokio::pin!(shutdown);
		loop {
			tokio::select! {
				_ = &mut shutdown => break,
				Some(mut head) = head_rx.recv() => {
					// Only the newest head matters when blocks came faster than we handled them.
					while let Ok(newer) = head_rx.try_recv() {
						head = newer;
					}
					self.on_head(head, &done_tx, &slots).await;
				},
				Some(done) = done_rx.recv() => self.answer(done).await,
			}
		}
		follower.abort();
		let grace = tokio::time::Instant::now() + self.config.shutdown_grace;
		if !self.in_flight.is_empty() {
			tracing::info!(target: "inference", running = self.in_flight.len(), "stopping: finishing running jobs");
		}
		while !self.in_flight.is_empty() {
			match tokio::time::timeout_at(grace, done_rx.recv()).await {
				Ok(Some(done)) => self.answer(done).await,
				_ => break,
			}
		}
		// A clean stop: what was still executing did not crash the worker.
		let unfinished: Vec<JobId> = self.in_flight.keys().copied().collect();
		if let Err(e) = self.journal.finish(&unfinished) {
			tracing::error!(target: "inference", "writing the journal: {e}");
		}
		tracing::info!(target: "inference", unanswered = self.in_flight.len(), "inference worker stopped");
	}

	async fn on_head(
		&mut self,
		head: Head,
		done_tx: &mpsc::UnboundedSender<Done>,
		slots: &Arc<Semaphore>,
	) {
		let now = Instant::now();
		if let Some(last) = self.last_head_at {
			let seen = now
				.duration_since(last)
				.clamp(Duration::from_millis(100), Duration::from_secs(60));
			self.block_time = (self.block_time * 4 + seen) / 5;
		}
		self.last_head_at = Some(now);
		self.best = Some(head);
		if let Some(m) = &self.metrics {
			m.best_block.set(head.number.into());
		}
		self.keep_attested(head).await;
		self.redeem(head).await;
		self.answer_disputes(head).await;
		self.advertise_endpoint(head).await;
		let account = self.signer.account();
		let open = match self.chain.open_jobs(head.hash, &account).await {
			Ok(open) => open,
			Err(e) => {
				tracing::warn!(target: "inference", block = head.number, "reading open jobs: {e}");
				return;
			},
		};
		self.prune_journal(&open, &account).await;
		for id in open {
			if self.in_flight.contains_key(&id) || !self.may_answer(id, head).await {
				continue;
			}
			self.start(id, head, done_tx, slots).await;
		}
		if let Some(m) = &self.metrics {
			m.queue_depth.set(self.in_flight.len() as u64);
		}
	}

	/// Redeems the channels whose latest voucher is due: refreshes each channel from the last
	/// finalized block (a channel gone from the chain is forgotten), then sends `redeem` for
	/// those with a voucher newer than the chain's whose last redemption is `every` blocks old
	/// (or that are closing), unless one is still in the pool.
	async fn redeem(&mut self, head: Head) {
		let Some(channels) = &self.channels else { return };
		let ledger = channels.ledger.clone();
		let Ok(at) = self.chain.finalized().await else { return };
		for id in ledger.channel_ids() {
			match self.chain.channel(at, id).await {
				Ok(Some(record)) => ledger.update(id, record),
				Ok(None) =>
					if let Err(e) = ledger.forget(id) {
						tracing::error!(target: "inference", channel = id, "forgetting a closed channel: {e}");
					},
				Err(e) => {
					tracing::warn!(target: "inference", channel = id, "reading the channel: {e}");
					return;
				},
			}
		}
		for (signed, root) in ledger.to_redeem() {
			let id = signed.voucher.channel;
			let seq = signed.voucher.seq;
			let channels = self.channels.as_ref().expect("checked above");
			if let Some((last_seq, block, tx)) = channels.sent.get(&id).copied() {
				// Not again within `every` blocks (each batch takes one of the channel's
				// `MaxOpenBatches` places for the dispute window) unless the requester is
				// closing, and then not the same voucher (included, but not finalized yet);
				// never while the last one is still in the pool.
				let waited = head.number >= block.saturating_add(channels.every);
				let closing = ledger.closing(id) && last_seq != seq;
				if !(waited || closing) || self.chain.in_pool(tx).await.unwrap_or(true) {
					continue;
				}
			}
			let call = RuntimeCall::Inference(pallet_inference::Call::redeem {
				channel: id,
				voucher: signed.voucher,
				signature: signed.signature,
				root,
			});
			match self.send(call, head).await {
				Ok((tx, _)) => {
					tracing::info!(target: "inference", channel = id, seq, ?tx, "voucher redeemed");
					if let Some(c) = self.channels.as_mut() {
						c.sent.insert(id, (seq, head.number, tx));
					}
				},
				Err(e) => tracing::warn!(target: "inference", channel = id, seq, "redeeming: {e}"),
			}
		}
	}

	/// Opens the receipts the chain asks this worker for (audits and challenges) from the
	/// kept answers: one `open_receipt` each, sent again only once the last one left the pool
	/// without closing the dispute and `retry_after` blocks passed. Then drops the kept
	/// answers that no batch can have disputed any more.
	async fn answer_disputes(&mut self, head: Head) {
		let Some(channels) = &self.channels else { return };
		let ledger = channels.ledger.clone();
		let disputes = match self.chain.open_disputes(head.hash, &self.signer.account()).await {
			Ok(disputes) => disputes,
			Err(e) => {
				tracing::warn!(target: "inference", block = head.number, "reading open disputes: {e}");
				return;
			},
		};
		let mut batches = HashMap::new();
		for &((channel, seq, leaf), first, last) in &disputes {
			let key = (channel, seq, leaf);
			let opened = self.channels.as_ref().and_then(|c| c.opened.get(&key).copied());
			if let Some((block, tx)) = opened {
				if head.number < block.saturating_add(self.config.retry_after) ||
					self.chain.in_pool(tx).await.unwrap_or(true)
				{
					continue;
				}
			}
			let kind = if leaf == H256::zero() { "audit" } else { "challenge" };
			let metrics = self.metrics.clone();
			let count = move |outcome: &str| {
				if let Some(m) = &metrics {
					m.disputes.with_label_values(&[kind, outcome]).inc();
				}
			};
			// Every audit of a batch proves against the same leaves: read them once.
			let leaves = batches.entry((channel, first, last)).or_insert_with(|| {
				ledger.receipts().leaves(channel, first, last).map_err(|e| e.to_string())
			});
			let opened = match leaves {
				Ok(leaves) => ledger
					.receipts()
					.opening_in(channel, seq, leaf, first, leaves)
					.map_err(|e| e.to_string()),
				Err(e) => Err(e.clone()),
			};
			let opening = match opened {
				Ok(opening) => opening,
				Err(e) => {
					tracing::error!(target: "inference", channel, seq, kind, "cannot open a disputed receipt: {e}");
					count("unopenable");
					continue;
				},
			};
			let answer = opening.answer;
			let (Ok(request), Ok(response), Ok(proof)) =
				(answer.request.try_into(), answer.response.try_into(), opening.proof.try_into())
			else {
				tracing::error!(target: "inference", channel, seq, "a disputed receipt's data is over the chain's limits");
				continue;
			};
			let call = RuntimeCall::Inference(pallet_inference::Call::open_receipt {
				receipt: answer.signed.receipt,
				signature: answer.signed.signature,
				enclave_signature: answer.signed.enclave_signature,
				request,
				response,
				proof,
			});
			match self.send(call, head).await {
				Ok((tx, _)) => {
					tracing::info!(target: "inference", channel, seq, kind, ?tx, "disputed receipt opened");
					count("opened");
					if let Some(c) = self.channels.as_mut() {
						c.opened.insert(key, (head.number, tx));
					}
				},
				Err(e) =>
					tracing::warn!(target: "inference", channel, seq, "opening a receipt: {e}"),
			}
		}
		if let Some(c) = self.channels.as_mut() {
			c.opened.retain(|key, _| disputes.iter().any(|(k, _, _)| k == key));
		}
		// With the list cut at its limit, some disputes are unseen: nothing is dropped.
		if disputes.len() >= pallet_inference::MAX_OPEN_DISPUTES {
			return;
		}
		let known = ledger.channel_ids();
		let Ok(kept) = ledger.receipts().channels() else { return };
		for channel in kept {
			let disputed =
				|seq: u64| disputes.iter().any(|((c, s, _), _, _)| *c == channel && *s == seq);
			let keep: Box<dyn Fn(u64) -> bool + '_> = match ledger.record(channel) {
				// Not committed yet, or in a batch that may still be disputed.
				Some(record) => Box::new(move |seq| {
					seq > record.last_seq ||
						record.batches.iter().any(|b| (b.first_seq..=b.last_seq).contains(&seq)) ||
						disputed(seq)
				}),
				// Kept on disk but not read from the chain yet: everything stays.
				None if known.contains(&channel) => continue,
				// The channel ended: its batches' windows had passed.
				None => Box::new(disputed),
			};
			if let Err(e) = ledger.receipts().drop_unless(channel, keep) {
				tracing::warn!(target: "inference", channel, "dropping old receipts: {e}");
			}
		}
	}

	/// Sends `set_endpoint` until the chain holds the URL this worker advertises: once the
	/// worker is registered, never while the last one is in the pool or younger than
	/// `retry_after` blocks.
	async fn advertise_endpoint(&mut self, head: Head) {
		let Some(advertise) = self.advertise.as_ref().filter(|a| !a.done) else { return };
		let me = self.signer.account();
		let held = match self.chain.endpoint(head.hash, &me).await {
			Ok(held) => held,
			Err(e) => {
				tracing::warn!(target: "inference", "reading the advertised endpoint: {e}");
				return;
			},
		};
		let url = advertise.url.clone();
		if held.as_deref() == Some(&url[..]) {
			tracing::info!(target: "inference", url = %String::from_utf8_lossy(&url), "endpoint advertised on chain");
			self.advertise.as_mut().expect("checked").done = true;
			return;
		}
		if let Some((at, tx)) = advertise.sent {
			if head.number < at.saturating_add(self.config.retry_after) ||
				self.chain.in_pool(tx).await.unwrap_or(true)
			{
				return;
			}
		}
		if !matches!(self.chain.worker(head.hash, &me).await, Ok(Some(_))) {
			return;
		}
		let Ok(endpoint) = url.clone().try_into() else {
			tracing::error!(target: "inference", "the endpoint URL is over the chain's limit: not advertised");
			self.advertise.as_mut().expect("checked").done = true;
			return;
		};
		let call = RuntimeCall::Inference(pallet_inference::Call::set_endpoint { endpoint });
		match self.send(call, head).await {
			Ok((tx, _)) => self.advertise.as_mut().expect("checked").sent = Some((head.number, tx)),
			Err(e) => tracing::warn!(target: "inference", "advertising the endpoint: {e}"),
		}
	}

	/// Takes the next step that keeps the enclave key attested, if any.
	async fn keep_attested(&mut self, head: Head) {
		let Some(tee) = self.tee.as_mut() else { return };
		let status = match self.chain.tee_status(head.hash, &self.signer.account()).await {
			Ok(status) => status,
			Err(e) => {
				tracing::warn!(target: "inference", block = head.number, "reading the TEE status: {e}");
				return;
			},
		};
		// Still in the pool (or unknown): the last step may yet land, so nothing new is sent.
		let in_pool = match tee.pending_tx() {
			Some(tx) => self.chain.in_pool(tx).await.unwrap_or(true),
			None => false,
		};
		let step = tee.on_status(head.number, &status, self.config.retry_after, in_pool);
		if let Some(m) = &self.metrics {
			let left = tee.usable_until_ms().map_or(0, |at| at.saturating_sub(status.now_ms));
			m.enclave_key_validity.set(left / 1000);
		}
		let (call, name) = match step {
			Step::Wait => return,
			Step::RequestChallenge => (pallet_tee::Call::request_challenge {}, "challenge"),
			Step::Attest(document) => match document.try_into() {
				Ok(document) => (pallet_tee::Call::attest { document }, "attest"),
				Err(document) => {
					let bytes = Vec::len(&document);
					tracing::error!(target: "inference", bytes, "attestation document over the chain's limit");
					return;
				},
			},
		};
		match self.send(RuntimeCall::Tee(call), head).await {
			Ok((tx, _)) => {
				tracing::info!(target: "inference", block = head.number, step = name, ?tx, "attesting the enclave key");
				if let Some(tee) = self.tee.as_mut() {
					tee.sent(tx);
				}
				if let Some(m) = &self.metrics {
					m.attestation_steps.with_label_values(&[name]).inc();
				}
			},
			Err(e) => {
				tracing::warn!(target: "inference", step = name, "attestation step not accepted: {e}")
			},
		}
	}

	/// Signs `call` with the next nonce and submits it.
	async fn send(&mut self, call: RuntimeCall, head: Head) -> Result<(H256, Nonce), ChainError> {
		let submitted = async {
			let context = self.chain.signing_context(head.hash).await?;
			let mut nonce = self.chain.next_nonce(&self.signer.account()).await?;
			if let Some((hint, at)) = self.nonce_hint {
				if head.number <= at.saturating_add(NONCE_HINT_BLOCKS) {
					nonce = nonce.max(hint);
				}
			}
			let xt = signed_extrinsic(call, nonce, &context, &*self.signer)?;
			self.chain.submit(xt).await.map(|tx| (tx, nonce))
		}
		.await;
		match &submitted {
			Ok((_, nonce)) => self.nonce_hint = Some((nonce.saturating_add(1), head.number)),
			Err(_) => self.nonce_hint = None,
		}
		submitted
	}

	/// Forgets answers to jobs that are open neither at the best nor at the finalized block.
	async fn prune_journal(&mut self, open: &[JobId], account: &opg_runtime::AccountId) {
		let tracked = self.journal.tracked();
		if tracked.is_empty() {
			return;
		}
		let finalized_open = match self.chain.finalized().await {
			Ok(finalized) => self.chain.open_jobs(finalized, account).await,
			Err(e) => Err(e),
		};
		let Ok(finalized_open) = finalized_open else { return };
		let ended: Vec<JobId> = tracked
			.into_iter()
			.filter(|j| !open.contains(j) && !finalized_open.contains(j))
			.collect();
		if let Err(e) = self.journal.remove(&ended) {
			tracing::error!(target: "inference", "writing the journal: {e}");
		}
	}

	/// Whether job `id` (open at `head`) may be answered now.
	async fn may_answer(&self, id: JobId, head: Head) -> bool {
		let Some(sent) = self.journal.get(id) else { return true };
		if head.number < sent.block.saturating_add(self.config.retry_after) {
			return false;
		}
		match sent.tx {
			// The pool refused it earlier: try again.
			None => true,
			Some(tx) => match self.chain.in_pool(tx).await {
				Ok(false) => {
					tracing::warn!(
						target: "inference",
						job = id, sent_at = sent.block, ?tx,
						"answer left the pool without being included; answering again"
					);
					if let Some(m) = &self.metrics {
						m.resubmissions.inc();
					}
					true
				},
				Ok(true) => false,
				Err(e) => {
					tracing::warn!(target: "inference", job = id, "checking the pool: {e}");
					false
				},
			},
		}
	}

	async fn start(
		&mut self,
		id: JobId,
		head: Head,
		done_tx: &mpsc::UnboundedSender<Done>,
		slots: &Arc<Semaphore>,
	) {
		let (job, input) = match self.chain.job(head.hash, id).await {
			Ok(Some((job, Some(input)))) => (job, input),
			Ok(_) => return,
			Err(e) => {
				tracing::warn!(target: "inference", job = id, "reading the job: {e}");
				return;
			},
		};
		if job.status != JobStatus::Assigned {
			return;
		}
		// The answer lands in a later block, and must land by the deadline.
		if head.number >= job.deadline {
			tracing::debug!(target: "inference", job = id, deadline = job.deadline, "too late to answer");
			return;
		}
		let blocks_left = job.deadline - head.number;
		let budget = (self.block_time * (blocks_left - 1))
			.max(self.block_time / 2)
			.min(self.config.max_execution);
		let seen = Instant::now();
		self.in_flight.insert(id, seen);
		let send = |answer| {
			let _ = done_tx.send(Done { job: id, answer, seen, execution: None });
		};
		if self.journal.crashed(id) {
			// Running it again could crash the worker again, and again.
			tracing::warn!(
				target: "inference",
				job = id,
				"the worker died while executing this job: rejecting it instead of running it again"
			);
			return send(Answer::Reject(RejectReason::ExecutionFailed));
		}
		let method = match job.mode {
			VerificationMode::Vanilla => Method::Plain,
			VerificationMode::Tee => match &self.tee {
				Some(tee) if tee.usable() => {
					let enclave = tee.enclave().clone();
					match enclave.admit(id, job.input_hash, &input) {
						Ok(admitted) => Method::Tee(enclave, admitted),
						Err(e) => {
							// Not answered: a signature is impossible, and a rejection would
							// report the real input as bad. The chain client is not to be trusted.
							self.in_flight.remove(&id);
							tracing::error!(target: "inference", job = id, "{e}");
							if let Some(m) = &self.metrics {
								m.failures.with_label_values(&["input_mismatch"]).inc();
							}
							return;
						},
					}
				},
				Some(_) => {
					// Answered once the key is attested, if the deadline still allows.
					self.in_flight.remove(&id);
					tracing::debug!(target: "inference", job = id, "waiting for the enclave key's attestation");
					return;
				},
				None => {
					tracing::warn!(target: "inference", job = id, "a TEE job, but this worker runs no enclave");
					return send(Answer::Reject(RejectReason::ExecutionFailed));
				},
			},
			VerificationMode::Zk => match &self.provers {
				Some(provers) => Method::Zk(provers.clone()),
				None => {
					tracing::warn!(target: "inference", job = id, "a ZK job, but this worker has no proving keys");
					return send(Answer::Reject(RejectReason::ExecutionFailed));
				},
			},
		};
		let release = match self.chain.release(head.hash, job.release).await {
			Ok(Some(release)) => release,
			Ok(None) => return send(Answer::Reject(RejectReason::ModelUnavailable)),
			Err(e) => {
				tracing::warn!(target: "inference", job = id, "reading release {}: {e}", job.release);
				self.in_flight.remove(&id);
				return;
			},
		};
		tracing::info!(
			target: "inference",
			job = id, release = job.release, mode = ?job.mode, input_bytes = input.len(), deadline = job.deadline,
			budget_ms = budget.as_millis() as u64,
			"executing"
		);
		if let Err(e) = self.journal.start(id) {
			tracing::error!(target: "inference", job = id, "writing the journal: {e}");
		}
		let (store, engines, done_tx, slots) =
			(self.store.clone(), self.engines.clone(), done_tx.clone(), slots.clone());
		tokio::spawn(async move {
			let work = async move {
				let slot = slots.acquire_owned().await.expect("the semaphore is never closed");
				let started = Instant::now();
				let answer = tokio::task::spawn_blocking(move || {
					// Held until execution really ends, even after the budget ran out.
					let _slot = slot;
					match method {
						Method::Plain =>
							execute(Some(id), &store, &engines, &release, &input, &mut |_| {}),
						Method::Tee(enclave, admitted) => {
							match execute(Some(id), &store, &engines, &release, &input, &mut |_| {})
							{
								Answer::Output { output, .. } => {
									let signature = enclave.sign_result(
										&admitted,
										release.params.artifact,
										&output,
									);
									let evidence = Evidence::TeeSignature(
										signature.to_vec().try_into().expect("64 bytes fit"),
									);
									Answer::Output { output, evidence }
								},
								answer => answer,
							}
						},
						Method::Zk(provers) => prove(id, &store, &provers, &release, &input),
					}
				})
				.await;
				(answer, started.elapsed())
			};
			let (answer, execution) = match tokio::time::timeout(budget, work).await {
				Ok((Ok(answer), took)) => (answer, Some(took)),
				Ok((Err(e), _)) => {
					tracing::error!(target: "inference", job = id, "executor task failed: {e}");
					(Answer::Reject(RejectReason::ExecutionFailed), None)
				},
				Err(_) => {
					tracing::warn!(target: "inference", job = id, budget_ms = budget.as_millis() as u64, "out of time");
					(Answer::Reject(RejectReason::ExecutionFailed), None)
				},
			};
			let _ = done_tx.send(Done { job: id, answer, seen, execution });
		});
	}

	/// Signs and submits an answer, and journals it.
	async fn answer(&mut self, done: Done) {
		self.in_flight.remove(&done.job);
		if let Err(e) = self.journal.finish(&[done.job]) {
			tracing::error!(target: "inference", job = done.job, "writing the journal: {e}");
		}
		if let Some(m) = &self.metrics {
			m.latency.observe(done.seen.elapsed().as_secs_f64());
			if let Some(execution) = done.execution {
				m.execution.observe(execution.as_secs_f64());
			}
			m.queue_depth.set(self.in_flight.len() as u64);
		}
		let Some(head) = self.best else { return };
		let (job, kind) = (done.job, done.answer.kind());
		let call = done.answer.call(job).unwrap_or_else(|| {
			Answer::Reject(RejectReason::ExecutionFailed)
				.call(job)
				.expect("a rejection always fits")
		});
		let submitted = self.send(call, head).await;
		let sent = match submitted {
			Ok((tx, _)) => {
				tracing::info!(
					target: "inference",
					job, kind, ?tx,
					execution_ms = done.execution.map(|d| d.as_millis() as u64),
					"answer submitted"
				);
				if let Some(m) = &self.metrics {
					m.answers.with_label_values(&[kind]).inc();
				}
				Sent { block: head.number, tx: Some(tx) }
			},
			Err(e) => {
				tracing::warn!(
					target: "inference",
					job, kind, "answer not accepted: {e}; trying again in {} blocks", self.config.retry_after
				);
				if let Some(m) = &self.metrics {
					m.failures.with_label_values(&["submit"]).inc();
				}
				Sent { block: head.number, tx: None }
			},
		};
		if let Err(e) = self.journal.insert(job, sent) {
			tracing::error!(target: "inference", job, "writing the journal: {e}");
		}
	}
}

/// Runs a job's model on its input; every failure becomes the matching rejection. An LLM's
/// text goes to `on_text` as it is generated (see [`LlmEngine::run_streaming`]).
fn execute(
	job: Option<JobId>,
	store: &ModelStore,
	engines: &EngineCache,
	release: &Release,
	input: &[u8],
	on_text: &mut dyn FnMut(&str),
) -> Answer {
	if release.params.format == ModelFormat::Gguf {
		return execute_llm(job, store, engines, release, input, on_text);
	}
	let engine = match engines.get(&release.params.artifact) {
		Some(engine) => engine,
		None => {
			let uri = String::from_utf8_lossy(&release.params.source_uri);
			let loaded = store
				.get(release.params.artifact, release.params.artifact_size, &uri)
				.map_err(|e| e.to_string())
				.and_then(|bytes| {
					Engine::load(&bytes, engines.device)
						.map(|e| e.with_memory_limit(engines.memory_limit))
						.map_err(|e| e.to_string())
				});
			match loaded {
				Ok(engine) => engines.insert(release.params.artifact, engine),
				Err(e) => {
					tracing::warn!(target: "inference", job = ?job, artifact = ?release.params.artifact, "model unavailable: {e}");
					return Answer::Reject(RejectReason::ModelUnavailable);
				},
			}
		},
	};
	let inputs = match check_tensors(input, &release.params.inputs) {
		Ok(inputs) => inputs,
		Err(e) => {
			tracing::warn!(target: "inference", job = ?job, "input does not fit the release: {e:?}");
			return Answer::Reject(RejectReason::BadInput);
		},
	};
	// Zero-size dimensions are valid (an empty cache next to real tokens), but a job with no
	// element in any input gives the model nothing to compute: refunded, not run.
	if !inputs.is_empty() && inputs.iter().all(|t| t.elements() == Some(0)) {
		tracing::warn!(target: "inference", job = ?job, "every input is empty");
		return Answer::Reject(RejectReason::BadInput);
	}
	match engine.run(&inputs) {
		Ok(outputs) => {
			let payload = outputs.encode();
			if payload.len() > max_output_len() {
				tracing::warn!(target: "inference", job = ?job, bytes = payload.len(), "output over the chain's limit");
				return Answer::Reject(RejectReason::ExecutionFailed);
			}
			if let Err(e) = check_tensors(&payload, &release.params.outputs) {
				tracing::warn!(target: "inference", job = ?job, "output does not fit the release's spec: {e:?}");
				return Answer::Reject(RejectReason::ExecutionFailed);
			}
			tracing::debug!(target: "inference", job = ?job, output = ?opg_primitives::payload_hash(&payload), "executed");
			Answer::Output { output: payload, evidence: Evidence::None }
		},
		Err(
			e @ (ExecError::Input(_) | ExecError::Invalid { .. } | ExecError::OverMemory { .. }),
		) => {
			tracing::warn!(target: "inference", job = ?job, "the model cannot take this input: {e}");
			Answer::Reject(RejectReason::BadInput)
		},
		Err(e) => {
			tracing::warn!(target: "inference", job = ?job, "execution failed: {e}");
			Answer::Reject(RejectReason::ExecutionFailed)
		},
	}
}

/// Runs an LLM job: the release's GGUF model (checked against its spec when loaded) on the
/// job's chat request.
fn execute_llm(
	job: Option<JobId>,
	store: &ModelStore,
	engines: &EngineCache,
	release: &Release,
	input: &[u8],
	on_text: &mut dyn FnMut(&str),
) -> Answer {
	let Some(spec) = &release.params.llm else {
		tracing::warn!(target: "inference", job = ?job, "a GGUF release without an LLM spec");
		return Answer::Reject(RejectReason::ModelUnavailable);
	};
	let engine = match engines.llm(&release.params.artifact) {
		Some(engine) => engine,
		None => {
			let uri = String::from_utf8_lossy(&release.params.source_uri);
			let started = Instant::now();
			// Mapped, not read: the weights stay in the page cache.
			let loaded = store
				.get_path(release.params.artifact, release.params.artifact_size, &uri)
				.map_err(|e| e.to_string())
				.and_then(|path| LlmEngine::open(&path, engines.llm_threads));
			match loaded {
				Ok(engine) => {
					tracing::info!(
						target: "inference",
						job = ?job, artifact = ?release.params.artifact,
						load_ms = started.elapsed().as_millis() as u64,
						"LLM loaded"
					);
					engines.insert_llm(release.params.artifact, engine)
				},
				Err(e) => {
					tracing::warn!(target: "inference", job = ?job, artifact = ?release.params.artifact, "model unavailable: {e}");
					return Answer::Reject(RejectReason::ModelUnavailable);
				},
			}
		},
	};
	// Per job, not per load: releases of one file may declare different specs.
	if let Err(e) = engine.check(spec) {
		tracing::warn!(target: "inference", job = ?job, release = ?release.params.version, "{e}");
		return Answer::Reject(RejectReason::ModelUnavailable);
	}
	// The chain checked it at submission; a worker trusts no chain client blindly.
	let request = match check_chat_request(input, spec) {
		Ok((request, _)) => request,
		Err(e) => {
			tracing::warn!(target: "inference", job = ?job, "not a chat request for the release: {e:?}");
			return Answer::Reject(RejectReason::BadInput);
		},
	};
	let started = Instant::now();
	match engine.run_streaming(&request, spec.context_length, on_text) {
		Ok(response) => {
			let payload = response.encode();
			if payload.len() > max_output_len() {
				tracing::warn!(target: "inference", job = ?job, bytes = payload.len(), "response over the chain's limit");
				return Answer::Reject(RejectReason::ExecutionFailed);
			}
			let took = started.elapsed().as_secs_f64();
			tracing::info!(
				target: "inference",
				job = ?job,
				prompt_tokens = response.prompt_tokens,
				completion_tokens = response.completion_tokens,
				finish = ?response.finish_reason,
				tokens_per_s = response.completion_tokens as f64 / took.max(1e-9),
				"generated"
			);
			Answer::Output { output: payload, evidence: Evidence::None }
		},
		Err(LlmJobError::BadInput(e)) => {
			tracing::warn!(target: "inference", job = ?job, "the model cannot take this request: {e}");
			Answer::Reject(RejectReason::BadInput)
		},
		Err(LlmJobError::Failed(e)) => {
			tracing::warn!(target: "inference", job = ?job, "generation failed: {e}");
			Answer::Reject(RejectReason::ExecutionFailed)
		},
	}
}

/// Runs release models outside the job loop (the HTTP API's requests), with the worker's
/// loaded models and within its execution slots.
#[derive(Clone)]
pub struct Runner {
	store: Arc<ModelStore>,
	engines: Arc<EngineCache>,
	slots: Arc<Semaphore>,
	device: Device,
}

impl Runner {
	/// Runs `release`'s model on `input` (canonical tensors, or a SCALE chat request for a
	/// GGUF release) within `budget`; a failure is the rejection a job would get.
	pub async fn run(&self, release: Release, input: Vec<u8>, budget: Duration) -> Answer {
		self.run_streaming(release, input, budget, None).await
	}

	/// Runs like [`Self::run`]; an LLM's text is also sent to `text` as it is generated (a
	/// receiver gone stops nothing: the answer is still made, and paid for).
	pub async fn run_streaming(
		&self,
		release: Release,
		input: Vec<u8>,
		budget: Duration,
		text: Option<tokio::sync::mpsc::UnboundedSender<String>>,
	) -> Answer {
		let (store, engines, slots) =
			(self.store.clone(), self.engines.clone(), self.slots.clone());
		let work = async move {
			let slot = slots.acquire_owned().await.expect("the semaphore is never closed");
			tokio::task::spawn_blocking(move || {
				let _slot = slot;
				let mut on_text = |piece: &str| {
					if let Some(tx) = &text {
						let _ = tx.send(piece.to_owned());
					}
				};
				execute(None, &store, &engines, &release, &input, &mut on_text)
			})
			.await
		};
		match tokio::time::timeout(budget, work).await {
			Ok(Ok(answer)) => answer,
			Ok(Err(e)) => {
				tracing::error!(target: "inference", "executor task failed: {e}");
				Answer::Reject(RejectReason::ExecutionFailed)
			},
			Err(_) => Answer::Reject(RejectReason::ExecutionFailed),
		}
	}

	/// The device models run on.
	pub fn device(&self) -> Device {
		self.device
	}
}

/// How a job's result is made and what evidence it carries.
enum Method {
	/// Executed, no evidence (Vanilla).
	Plain,
	/// Executed and signed by the attested enclave key, over the input it admitted.
	Tee(Arc<Enclave>, Admitted),
	/// Evaluated by the circuit's integer semantics and proved.
	Zk(Arc<Provers>),
}

/// Evaluates and proves a ZK job; every failure becomes the matching rejection.
fn prove(
	job: JobId,
	store: &ModelStore,
	provers: &Provers,
	release: &Release,
	input: &[u8],
) -> Answer {
	let Some(key) = release.params.zk_verifying_key else {
		tracing::warn!(target: "inference", job, "the release has no verifying key");
		return Answer::Reject(RejectReason::ModelUnavailable);
	};
	let uri = String::from_utf8_lossy(&release.params.source_uri);
	// The store checks the file against `artifact`.
	let model = || {
		store
			.get(release.params.artifact, release.params.artifact_size, &uri)
			.map_err(|e| e.to_string())
	};
	let started = Instant::now();
	match provers.prove(key, release.params.artifact, model, input) {
		Ok(proved) => {
			if proved.output.len() > max_output_len() ||
				check_tensors(&proved.output, &release.params.outputs).is_err()
			{
				tracing::warn!(target: "inference", job, "the proved output does not fit the release's spec");
				return Answer::Reject(RejectReason::ExecutionFailed);
			}
			tracing::info!(
				target: "inference",
				job, proof_bytes = proved.proof.len(), proving_ms = started.elapsed().as_millis() as u64,
				"proved"
			);
			match proved.proof.try_into() {
				Ok(proof) =>
					Answer::Output { output: proved.output, evidence: Evidence::ZkProof(proof) },
				Err(_) => Answer::Reject(RejectReason::ExecutionFailed),
			}
		},
		Err(ZkError::ModelUnavailable(e)) => {
			tracing::warn!(target: "inference", job, artifact = ?release.params.artifact, "model unavailable: {e}");
			Answer::Reject(RejectReason::ModelUnavailable)
		},
		Err(e @ ZkError::SelfCheck(_)) => {
			tracing::error!(target: "inference", job, key = ?key, "{e}");
			Answer::Reject(RejectReason::ExecutionFailed)
		},
		Err(ZkError::Prove(opg_zkml::Error::Input(e))) => {
			tracing::warn!(target: "inference", job, "the model cannot take this input: {e}");
			Answer::Reject(RejectReason::BadInput)
		},
		Err(e) => {
			tracing::warn!(target: "inference", job, "cannot prove: {e}");
			Answer::Reject(RejectReason::ExecutionFailed)
		},
	}
}

/// Models loaded on the device (ONNX graphs and LLMs), least recently used dropped first.
struct EngineCache {
	device: Device,
	memory_limit: usize,
	llm_threads: usize,
	onnx: Lru<Engine>,
	llm: Lru<LlmEngine>,
}

impl EngineCache {
	fn new(device: Device, capacity: usize, memory_limit: usize, llm_threads: usize) -> Self {
		EngineCache {
			device,
			memory_limit,
			llm_threads,
			onnx: Lru::new(capacity),
			// Each holds its whole file in memory: fewer of them.
			llm: Lru::new(capacity.min(2)),
		}
	}

	fn get(&self, artifact: &H256) -> Option<Arc<Engine>> {
		self.onnx.get(artifact)
	}

	fn insert(&self, artifact: H256, engine: Engine) -> Arc<Engine> {
		self.onnx.insert(artifact, engine)
	}

	fn llm(&self, artifact: &H256) -> Option<Arc<LlmEngine>> {
		self.llm.get(artifact)
	}

	fn insert_llm(&self, artifact: H256, engine: LlmEngine) -> Arc<LlmEngine> {
		self.llm.insert(artifact, engine)
	}
}

/// Values by artifact hash, least recently used dropped first.
struct Lru<E> {
	capacity: usize,
	entries: Mutex<Vec<(H256, Arc<E>)>>,
}

impl<E> Lru<E> {
	fn new(capacity: usize) -> Self {
		Lru { capacity: capacity.max(1), entries: Mutex::new(Vec::new()) }
	}

	fn get(&self, artifact: &H256) -> Option<Arc<E>> {
		let mut entries = self.entries.lock().expect("engine cache lock");
		let at = entries.iter().position(|(h, _)| h == artifact)?;
		let entry = entries.remove(at);
		let value = entry.1.clone();
		entries.push(entry);
		Some(value)
	}

	fn insert(&self, artifact: H256, value: E) -> Arc<E> {
		let value = Arc::new(value);
		let mut entries = self.entries.lock().expect("engine cache lock");
		entries.retain(|(h, _)| *h != artifact);
		if entries.len() >= self.capacity {
			entries.remove(0);
		}
		entries.push((artifact, value.clone()));
		value
	}
}
