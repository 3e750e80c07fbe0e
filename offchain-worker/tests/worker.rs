//! The job loop against a scripted chain: one answer per job across heads and restarts, a
//! second answer only after the first left the pool unincluded, and the rejections a job can
//! get (input the model cannot take, model file unavailable).

use std::{
	collections::{HashMap, HashSet},
	sync::{Arc, Mutex},
	time::Duration,
};

use async_trait::async_trait;
use codec::Encode;
use opg_primitives::{ElemType, JobId, ModeSet, ModelFormat, ReleaseId, Tensor, TensorSpec, VerificationMode};
use opg_runtime::{AccountId, Nonce, RuntimeCall, UncheckedExtrinsic};
use opg_worker::{
	chain::{extrinsic_hash, Chain, ChainError, Head, Job, Release, Signer, SigningContext},
	store::{blake2_256, ModelStore, StoreConfig},
	worker::{Worker, WorkerConfig},
};
use pallet_inference::{JobStatus, RejectReason};
use polkadot_sdk::{
	sp_core::{sr25519, Pair, H256},
	sp_runtime::Permill,
};
use tokio::sync::mpsc;

#[derive(Default)]
struct State {
	open: Vec<JobId>,
	jobs: HashMap<JobId, (Job, Vec<u8>)>,
	releases: HashMap<ReleaseId, Release>,
	sent: Vec<UncheckedExtrinsic>,
	pool: HashSet<H256>,
	/// Blocks the worker has read its open jobs at.
	queried: HashSet<H256>,
	/// What the pool says the next nonce is, when it lags behind what was sent.
	pool_nonce: Option<Nonce>,
}

/// The nonce a signed extrinsic carries (after the immortal era byte in the extension).
fn nonce_of(xt: &UncheckedExtrinsic) -> Nonce {
	let polkadot_sdk::sp_runtime::generic::Preamble::Signed(_, _, extension) = &xt.preamble else {
		panic!("unsigned answer")
	};
	let encoded = extension.encode();
	assert_eq!(encoded[0], 0, "immortal era");
	<codec::Compact<Nonce> as codec::Decode>::decode(&mut &encoded[1..]).unwrap().0
}

struct MockChain {
	heads: tokio::sync::Mutex<mpsc::UnboundedReceiver<Head>>,
	state: Mutex<State>,
}

#[async_trait]
impl Chain for MockChain {
	async fn next_head(&self) -> Result<Head, ChainError> {
		match self.heads.lock().await.recv().await {
			Some(head) => Ok(head),
			None => std::future::pending().await,
		}
	}
	async fn finalized(&self) -> Result<H256, ChainError> {
		Ok(H256::zero())
	}
	async fn open_jobs(&self, at: H256, _: &AccountId) -> Result<Vec<JobId>, ChainError> {
		let mut state = self.state.lock().unwrap();
		state.queried.insert(at);
		Ok(state.open.clone())
	}
	async fn job(&self, _: H256, id: JobId) -> Result<Option<(Job, Option<Vec<u8>>)>, ChainError> {
		Ok(self.state.lock().unwrap().jobs.get(&id).map(|(j, i)| (j.clone(), Some(i.clone()))))
	}
	async fn release(&self, _: H256, id: ReleaseId) -> Result<Option<Release>, ChainError> {
		Ok(self.state.lock().unwrap().releases.get(&id).cloned())
	}
	async fn signing_context(&self, _: H256) -> Result<SigningContext, ChainError> {
		Ok(SigningContext { genesis: H256::repeat_byte(1), spec_version: 1, tx_version: 1 })
	}
	async fn next_nonce(&self, _: &AccountId) -> Result<Nonce, ChainError> {
		let state = self.state.lock().unwrap();
		Ok(state.pool_nonce.unwrap_or(state.sent.len() as Nonce))
	}
	async fn submit(&self, xt: UncheckedExtrinsic) -> Result<H256, ChainError> {
		let mut state = self.state.lock().unwrap();
		let hash = extrinsic_hash(&xt);
		state.pool.insert(hash);
		state.sent.push(xt);
		Ok(hash)
	}
	async fn in_pool(&self, hash: H256) -> Result<bool, ChainError> {
		Ok(self.state.lock().unwrap().pool.contains(&hash))
	}
}

fn spec(
	name: &str,
	shape: &[u32],
) -> TensorSpec<polkadot_sdk::sp_core::ConstU32<64>, polkadot_sdk::sp_core::ConstU32<8>> {
	TensorSpec {
		name: name.as_bytes().to_vec().try_into().unwrap(),
		elem: ElemType::F32,
		shape: shape.to_vec().try_into().unwrap(),
	}
}

fn digits() -> Vec<u8> {
	std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/digits/digits-cnn.onnx")).unwrap()
}

fn release(artifact: H256, size: u64, uri: &str) -> Release {
	Release {
		repository: 0,
		version: b"1".to_vec().try_into().unwrap(),
		artifact,
		artifact_size: size,
		format: ModelFormat::Onnx,
		source_uri: uri.as_bytes().to_vec().try_into().unwrap(),
		inputs: vec![spec("pixels", &[0, 1, 8, 8])].try_into().unwrap(),
		outputs: vec![spec("probabilities", &[0, 10])].try_into().unwrap(),
		modes: ModeSet::of(&[VerificationMode::Vanilla]),
		zk_verifying_key: None,
		royalty: Permill::zero(),
		deposit: 0,
		status: pallet_model_hub::ReleaseStatus::Active,
		open_jobs: 1,
	}
}

fn job(worker: &AccountId, release: ReleaseId) -> Job {
	pallet_inference::Job {
		requester: AccountId::from([9u8; 32]),
		worker: worker.clone(),
		release,
		mode: VerificationMode::Vanilla,
		input_hash: H256::zero(),
		input_len: 0,
		price: 1,
		verification_hold: 1,
		deadline: 1_000,
		created: 1,
		status: JobStatus::Assigned,
		ended: None,
	}
}

fn images(n: u32) -> Vec<u8> {
	vec![Tensor { elem: ElemType::F32, shape: vec![n, 1, 8, 8], data: vec![0; 256 * n as usize] }].encode()
}

/// Alice as the worker, and release 1 serving the digits model from a file.
fn digits_on_release_1() -> (tempfile::TempDir, sr25519::Pair, AccountId, State) {
	let dir = tempfile::tempdir().unwrap();
	let key = sr25519::Pair::from_string("//Alice", None).unwrap();
	let me = Signer::account(&key);
	let model = digits();
	let file = dir.path().join("digits.onnx");
	std::fs::write(&file, &model).unwrap();
	let mut state = State::default();
	state.releases.insert(1, release(blake2_256(&model), model.len() as u64, &format!("file://{}", file.display())));
	(dir, key, me, state)
}

struct Harness {
	chain: Arc<MockChain>,
	heads: mpsc::UnboundedSender<Head>,
	stop: Option<tokio::sync::oneshot::Sender<()>>,
	task: Option<tokio::task::JoinHandle<()>>,
}

fn start(chain_state: State, dir: &std::path::Path, key: &sr25519::Pair) -> Harness {
	let (heads, rx) = mpsc::unbounded_channel();
	let chain = Arc::new(MockChain { heads: tokio::sync::Mutex::new(rx), state: Mutex::new(chain_state) });
	let store = Arc::new(ModelStore::open(StoreConfig::new(dir.join("models"))).unwrap());
	let mut config = WorkerConfig::new(dir.join("state"));
	config.retry_after = 2;
	config.block_time = Duration::from_secs(1);
	let worker = Worker::new(chain.clone(), Arc::new(key.clone()) as Arc<dyn Signer>, store, None, config).unwrap();
	let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
	let task = tokio::spawn(worker.run(async move {
		let _ = stopped.await;
	}));
	Harness { chain, heads, stop: Some(stop), task: Some(task) }
}

impl Harness {
	/// Feeds head `n` and waits until the worker has read it and sent `count` extrinsics in
	/// all (at most 10 s).
	async fn head(&self, n: u32, count: usize) {
		let hash = H256::repeat_byte(n as u8);
		self.heads.send(Head { number: n, hash }).unwrap();
		for _ in 0..400 {
			tokio::time::sleep(Duration::from_millis(25)).await;
			let state = self.chain.state.lock().unwrap();
			if state.queried.contains(&hash) && state.sent.len() >= count {
				break;
			}
		}
		// Time for a wrongly sent extra answer to show up.
		tokio::time::sleep(Duration::from_millis(100)).await;
	}

	fn calls(&self) -> Vec<RuntimeCall> {
		self.chain.state.lock().unwrap().sent.iter().map(|xt| xt.function.clone()).collect()
	}

	async fn stop(mut self) -> State {
		let _ = self.stop.take().unwrap().send(());
		self.task.take().unwrap().await.unwrap();
		std::mem::take(&mut *self.chain.state.lock().unwrap())
	}
}

fn answer(call: &RuntimeCall) -> (JobId, Result<Vec<u8>, RejectReason>) {
	match call {
		RuntimeCall::Inference(pallet_inference::Call::submit_result { job, output, .. }) => {
			(*job, Ok(output.to_vec()))
		},
		RuntimeCall::Inference(pallet_inference::Call::reject_job { job, reason }) => (*job, Err(*reason)),
		other => panic!("unexpected call {other:?}"),
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_once_retries_only_after_the_pool_dropped_it_and_remembers_across_restarts() {
	let (dir, key, me, mut state) = digits_on_release_1();
	state.jobs.insert(7, (job(&me, 1), images(2)));
	state.open = vec![7];

	let h = start(state, dir.path(), &key);
	h.head(1, 1).await;
	let calls = h.calls();
	assert_eq!(calls.len(), 1);
	let (job_id, output) = answer(&calls[0]);
	assert_eq!(job_id, 7);
	let tensors: Vec<Tensor> = codec::Decode::decode(&mut &output.unwrap()[..]).unwrap();
	assert_eq!(tensors[0].shape, vec![2, 10]);

	// Still open (not yet included) and in the pool: never answered again.
	for n in 2..6 {
		h.head(n, 1).await;
	}
	assert_eq!(h.calls().len(), 1, "answered twice while the first answer was in the pool");

	// A restart remembers the answer in flight.
	let state = h.stop().await;
	let h = start(state, dir.path(), &key);
	h.head(6, 1).await;
	assert_eq!(h.calls().len(), 1, "answered again after a restart");

	// The pool dropped it (e.g. the node restarted): answered again, once.
	h.chain.state.lock().unwrap().pool.clear();
	h.head(7, 2).await;
	h.head(8, 2).await;
	let calls = h.calls();
	assert_eq!(calls.len(), 2);
	assert_eq!(answer(&calls[1]).0, 7);

	// Settled: forgotten by the journal.
	h.chain.state.lock().unwrap().open.clear();
	h.head(9, 2).await;
	h.stop().await;
	let journal = opg_worker::journal::Journal::open(&dir.path().join("state")).unwrap();
	assert!(journal.is_empty(), "ended jobs stay in the journal: {:?}", journal.jobs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_the_model_cannot_take_and_missing_models_are_rejected_with_their_reason() {
	let (dir, key, me, mut state) = digits_on_release_1();
	// The file at this URI does not hash to the release's artifact.
	let mut wrong = state.releases[&1].clone();
	wrong.artifact = H256::repeat_byte(3);
	state.releases.insert(2, wrong);
	state.jobs.insert(1, (job(&me, 1), images(0)));
	state.jobs.insert(2, (job(&me, 2), images(1)));
	state.open = vec![1, 2];

	let h = start(state, dir.path(), &key);
	h.head(1, 2).await;
	let mut answers: Vec<_> = h.calls().iter().map(answer).collect();
	answers.sort_by_key(|a| a.0);
	assert_eq!(answers, vec![(1, Err(RejectReason::BadInput)), (2, Err(RejectReason::ModelUnavailable))]);
	h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_sent_together_get_distinct_nonces_when_the_pool_count_lags() {
	let (dir, key, me, mut state) = digits_on_release_1();
	for id in 1..=3 {
		state.jobs.insert(id, (job(&me, 1), images(1)));
	}
	state.open = vec![1, 2, 3];
	// The pool has not counted any of them yet (seen on a dev node: two answers with one nonce,
	// one replacing the other).
	state.pool_nonce = Some(5);

	let h = start(state, dir.path(), &key);
	h.head(1, 3).await;
	let mut nonces: Vec<Nonce> = h.chain.state.lock().unwrap().sent.iter().map(nonce_of).collect();
	nonces.sort();
	assert_eq!(nonces, vec![5, 6, 7]);

	// A hint is short-lived: once blocks pass, the pool's count is trusted again (a dropped
	// answer must not leave a gap that stalls every later one).
	{
		let mut state = h.chain.state.lock().unwrap();
		state.jobs.insert(4, (job(&me, 1), images(1)));
		state.open = vec![4];
	}
	h.head(4, 4).await;
	let state = h.stop().await;
	assert_eq!(nonce_of(&state.sent[3]), 5);
}
