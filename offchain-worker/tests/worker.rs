//! The job loop against a scripted chain: one answer per job across heads and restarts, a
//! second answer only after the first left the pool unincluded, and the rejections a job can
//! get (input the model cannot take, model file unavailable); in TEE mode, the enclave key's
//! attestation (challenge, development-CA document, renewal, back-off) and signed results; in
//! ZK mode, a proof of the integer model that verifies against the chain's statement; LLM jobs
//! of a GGUF release, checked against the release's spec.

use std::{
	collections::{HashMap, HashSet},
	sync::{Arc, Mutex},
	time::Duration,
};

use async_trait::async_trait;
use codec::Encode;
use opg_primitives::{
	chat::{
		check_chat_request, check_chat_response, ChatMessage, ChatRequest, LlmSpec, Prompt, Role,
		Sampling,
	},
	tee_message, ElemType, Evidence, JobId, ModeSet, ModelFormat, ReleaseId, Tensor, TensorSpec,
	VerificationMode,
};
use opg_runtime::{AccountId, Nonce, RuntimeCall, UncheckedExtrinsic};
use opg_worker::{
	chain::{
		extrinsic_hash, Chain, ChainError, Head, Job, Release, Signer, SigningContext, WorkerTee,
	},
	store::{blake2_256, ModelStore, StoreConfig},
	tee::Enclave,
	worker::{Worker, WorkerConfig},
};
use pallet_inference::{JobStatus, RejectReason};
use polkadot_sdk::{
	sp_core::{ed25519, sr25519, Pair, H256},
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
	/// The worker's TEE standing; attestation calls act on it as the pallet would.
	tee: Option<WorkerTee>,
	/// Whether the mock refuses documents (as a chain whose policy does not allow the enclave).
	refuse_documents: bool,
	/// Latest head fed to the worker.
	block: u32,
}

const DAY_MS: u64 = 24 * 3600 * 1000;

impl State {
	/// What `Tee::request_challenge` and `Tee::attest` do to the worker's standing.
	fn apply_tee(&mut self, call: &RuntimeCall) {
		let Some(tee) = self.tee.as_mut() else { return };
		match call {
			RuntimeCall::Tee(pallet_tee::Call::request_challenge {}) => {
				let nonce = [self.sent.len() as u8; 32];
				tee.challenge = Some(pallet_tee::Challenge { nonce, expires_at: self.block + 10 });
			},
			RuntimeCall::Tee(pallet_tee::Call::attest { document }) => {
				if self.refuse_documents {
					return;
				}
				let attestation =
					opg_nitro::verify(document, &[opg_nitro::INSECURE_DEV_ROOT], tee.now_ms)
						.expect("a development-CA document, fresh at chain time");
				let challenge = tee.challenge.take().expect("attested without a challenge");
				assert_eq!(attestation.nonce, Some(&challenge.nonce[..]));
				for i in 0..3 {
					assert_eq!(
						attestation.pcr(i),
						Some(&[0u8; 48][..]),
						"debug mode's zero PCR{i}"
					);
				}
				tee.key = Some(pallet_tee::EnclaveKey {
					public: attestation.public_key.unwrap().try_into().unwrap(),
					measurement: H256::zero(),
					expires_at_ms: tee.now_ms + DAY_MS,
					attested_at: self.block,
				});
				tee.key_usable = true;
			},
			_ => {},
		}
	}
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
		Ok(self
			.state
			.lock()
			.unwrap()
			.jobs
			.get(&id)
			.map(|(j, i)| (j.clone(), Some(i.clone()))))
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
		// Attestation steps take effect at once, as if in the next block: they leave the pool
		// (the worker sends none while its last one is still there).
		if !matches!(xt.function, RuntimeCall::Tee(_)) {
			state.pool.insert(hash);
		}
		state.apply_tee(&xt.function);
		state.sent.push(xt);
		Ok(hash)
	}
	async fn in_pool(&self, hash: H256) -> Result<bool, ChainError> {
		Ok(self.state.lock().unwrap().pool.contains(&hash))
	}
	async fn tee_status(&self, _: H256, _: &AccountId) -> Result<WorkerTee, ChainError> {
		let state = self.state.lock().unwrap();
		Ok(state.tee.clone().expect("TEE status read by a worker without an enclave"))
	}

	async fn worker(
		&self,
		_: H256,
		_: &AccountId,
	) -> Result<Option<opg_worker::chain::WorkerRecord>, ChainError> {
		unreachable!("a worker record read by the job loop")
	}

	async fn verification_fee(
		&self,
		_: H256,
		_: VerificationMode,
		_: u32,
	) -> Result<opg_runtime::Balance, ChainError> {
		unreachable!("a fee read by the job loop")
	}

	async fn open_disputes(
		&self,
		_: H256,
		_: &AccountId,
	) -> Result<Vec<(pallet_inference::DisputeKey, u64, u64)>, ChainError> {
		unreachable!("disputes read by the job loop, which redeems no channel")
	}

	async fn channel(
		&self,
		_: H256,
		_: opg_primitives::channel::ChannelId,
	) -> Result<Option<opg_worker::chain::ChannelRecord>, ChainError> {
		// The job loop reads no channel.
		unreachable!("a channel read by the job loop")
	}
	async fn endpoint(&self, _: H256, _: &AccountId) -> Result<Option<Vec<u8>>, ChainError> {
		unreachable!("an endpoint read by a worker that advertises none")
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
		params: pallet_model_hub::ReleaseParams {
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
			llm: None,
		},
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
		congestion_mark: 0,
		tokens: None,
	}
}

fn images(n: u32) -> Vec<u8> {
	vec![Tensor { elem: ElemType::F32, shape: vec![n, 1, 8, 8], data: vec![0; 256 * n as usize] }]
		.encode()
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
	state.releases.insert(
		1,
		release(blake2_256(&model), model.len() as u64, &format!("file://{}", file.display())),
	);
	(dir, key, me, state)
}

struct Harness {
	chain: Arc<MockChain>,
	heads: mpsc::UnboundedSender<Head>,
	stop: Option<tokio::sync::oneshot::Sender<()>>,
	task: Option<tokio::task::JoinHandle<()>>,
}

fn start(chain_state: State, dir: &std::path::Path, key: &sr25519::Pair) -> Harness {
	start_with(chain_state, dir, key, None)
}

fn start_with(
	chain_state: State,
	dir: &std::path::Path,
	key: &sr25519::Pair,
	enclave: Option<Enclave>,
) -> Harness {
	start_full(chain_state, dir, key, enclave, None)
}

fn start_full(
	chain_state: State,
	dir: &std::path::Path,
	key: &sr25519::Pair,
	enclave: Option<Enclave>,
	zk_keys: Option<&std::path::Path>,
) -> Harness {
	let (heads, rx) = mpsc::unbounded_channel();
	let chain =
		Arc::new(MockChain { heads: tokio::sync::Mutex::new(rx), state: Mutex::new(chain_state) });
	let mut store_config = StoreConfig::new(dir.join("models"));
	// The tests' releases name their model files under `dir`.
	store_config.file_root = Some(dir.to_path_buf());
	let store = Arc::new(ModelStore::open(store_config).unwrap());
	let mut config = WorkerConfig::new(dir.join("state"));
	config.retry_after = 2;
	config.block_time = Duration::from_secs(1);
	let mut worker =
		Worker::new(chain.clone(), Arc::new(key.clone()) as Arc<dyn Signer>, store, None, config)
			.unwrap();
	if let Some(enclave) = enclave {
		worker = worker.with_enclave(enclave);
	}
	if let Some(keys) = zk_keys {
		worker = worker.with_provers(opg_worker::zk::Provers::new(keys));
	}
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
		self.chain.state.lock().unwrap().block = n;
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
		self.chain
			.state
			.lock()
			.unwrap()
			.sent
			.iter()
			.map(|xt| xt.function.clone())
			.collect()
	}

	async fn stop(mut self) -> State {
		let _ = self.stop.take().unwrap().send(());
		self.task.take().unwrap().await.unwrap();
		std::mem::take(&mut *self.chain.state.lock().unwrap())
	}
}

fn answer(call: &RuntimeCall) -> (JobId, Result<Vec<u8>, RejectReason>) {
	match call {
		RuntimeCall::Inference(pallet_inference::Call::submit_result { job, output, .. }) =>
			(*job, Ok(output.to_vec())),
		RuntimeCall::Inference(pallet_inference::Call::reject_job { job, reason }) =>
			(*job, Err(*reason)),
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
async fn a_job_that_was_executing_when_the_worker_died_is_rejected_not_run_again() {
	let (dir, key, me, mut state) = digits_on_release_1();
	state.jobs.insert(7, (job(&me, 1), images(1)));
	state.jobs.insert(8, (job(&me, 1), images(1)));
	state.open = vec![7, 8];
	// What a worker killed while executing job 7 leaves behind.
	std::fs::create_dir_all(dir.path().join("state")).unwrap();
	std::fs::write(dir.path().join("state/started"), "7\n").unwrap();

	let h = start(state, dir.path(), &key);
	h.head(1, 2).await;
	let mut answers: Vec<_> = h.calls().iter().map(answer).collect();
	answers.sort_by_key(|a| a.0);
	assert_eq!(answers[0], (7, Err(RejectReason::ExecutionFailed)));
	assert!(answers[1].1.is_ok(), "job 8 runs as usual");
	h.stop().await;
	// A clean stop leaves only the crashed job's marker, until it ends on chain.
	assert_eq!(std::fs::read_to_string(dir.path().join("state/started")).unwrap(), "7\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_the_model_cannot_take_and_missing_models_are_rejected_with_their_reason() {
	let (dir, key, me, mut state) = digits_on_release_1();
	// The file at this URI does not hash to the release's artifact.
	let mut wrong = state.releases[&1].clone();
	wrong.params.artifact = H256::repeat_byte(3);
	state.releases.insert(2, wrong);
	state.jobs.insert(1, (job(&me, 1), images(0)));
	state.jobs.insert(2, (job(&me, 2), images(1)));
	state.open = vec![1, 2];

	let h = start(state, dir.path(), &key);
	h.head(1, 2).await;
	let mut answers: Vec<_> = h.calls().iter().map(answer).collect();
	answers.sort_by_key(|a| a.0);
	assert_eq!(
		answers,
		vec![(1, Err(RejectReason::BadInput)), (2, Err(RejectReason::ModelUnavailable))]
	);
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

/// Alice serving release 1, with job 3 on one image open in TEE mode; returns its input too.
fn one_tee_job() -> (tempfile::TempDir, sr25519::Pair, State, Vec<u8>) {
	let (dir, key, me, mut state) = digits_on_release_1();
	let input = images(1);
	let mut job = job(&me, 1);
	job.mode = VerificationMode::Tee;
	job.input_hash = blake2_256(&input);
	job.input_len = input.len() as u32;
	state.jobs.insert(3, (job, input.clone()));
	state.open = vec![3];
	(dir, key, state, input)
}

/// A chain on which the worker is registered but has no key, at a fixed time.
fn unattested() -> WorkerTee {
	WorkerTee {
		now_ms: 1_767_225_600_000,
		key: None,
		key_usable: false,
		challenge: None,
		is_worker: true,
	}
}

fn tee_calls(calls: &[RuntimeCall]) -> Vec<&'static str> {
	calls
		.iter()
		.filter_map(|c| match c {
			RuntimeCall::Tee(pallet_tee::Call::request_challenge {}) => Some("challenge"),
			RuntimeCall::Tee(pallet_tee::Call::attest { .. }) => Some("attest"),
			_ => None,
		})
		.collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tee_jobs_wait_for_the_attested_key_and_carry_its_signature() {
	let (dir, key, mut state, input) = one_tee_job();
	state.tee = Some(unattested());
	let enclave = Enclave::dev();
	let public = enclave.public();

	let h = start_with(state, dir.path(), &key, Some(enclave));
	// No key yet: a challenge, and the job waits.
	h.head(1, 1).await;
	assert_eq!(tee_calls(&h.calls()), ["challenge"]);
	// The challenge is out: a development-CA document with its nonce and our key (the mock
	// verifies it as the pallet does); the job still waits for the key to be on chain.
	h.head(2, 2).await;
	assert_eq!(tee_calls(&h.calls()), ["challenge", "attest"]);
	assert_eq!(h.calls().len(), 2);
	let attested = h.chain.state.lock().unwrap().tee.clone().unwrap().key.expect("key attested");
	assert_eq!(attested.public, public);

	// Attested: the job is answered with the enclave's signature over the result.
	h.head(3, 3).await;
	let calls = h.calls();
	assert_eq!(calls.len(), 3);
	let RuntimeCall::Inference(pallet_inference::Call::submit_result { job, output, evidence }) =
		&calls[2]
	else {
		panic!("not a result: {:?}", calls[2])
	};
	assert_eq!(*job, 3);
	let Evidence::TeeSignature(signature) = evidence else {
		panic!("no TEE evidence: {evidence:?}")
	};
	let artifact = h.chain.state.lock().unwrap().releases[&1].params.artifact;
	let message = tee_message(3, artifact, blake2_256(&input), blake2_256(output));
	let signature = ed25519::Signature::from_raw(signature.to_vec().try_into().unwrap());
	assert!(ed25519::Pair::verify(&signature, message, &ed25519::Public::from_raw(public)));
	assert!(!ed25519::Pair::verify(
		&signature,
		tee_message(4, artifact, blake2_256(&input), blake2_256(output)),
		&ed25519::Public::from_raw(public)
	));

	// Nothing more while the key has time left.
	h.head(4, 3).await;
	assert_eq!(h.calls().len(), 3);
	// Under an hour left: the same key is attested again.
	h.chain.state.lock().unwrap().tee.as_mut().unwrap().now_ms =
		attested.expires_at_ms - 30 * 60 * 1000;
	h.head(5, 4).await;
	h.head(6, 5).await;
	assert_eq!(tee_calls(&h.calls()), ["challenge", "attest", "challenge", "attest"]);
	let renewed = h.chain.state.lock().unwrap().tee.clone().unwrap().key.unwrap();
	assert_eq!(renewed.public, public);
	assert!(renewed.expires_at_ms > attested.expires_at_ms);
	h.head(7, 5).await;
	assert_eq!(h.calls().len(), 5);
	h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enclave_signs_nothing_for_input_bytes_that_are_not_the_jobs() {
	// A lying chain client (under --tee-nitro the host relays the RPC): the real job record,
	// whose input hash is that of one image, served with two images of the host's choosing.
	let (dir, key, mut state, input) = one_tee_job();
	let forged = images(2);
	assert_ne!(blake2_256(&forged), blake2_256(&input));
	state.jobs.get_mut(&3).unwrap().1 = forged;
	state.tee = Some(unattested());

	let h = start_with(state, dir.path(), &key, Some(Enclave::dev()));
	for n in 1..=6 {
		let before = h.calls().len();
		h.head(n, before).await;
	}
	assert_eq!(tee_calls(&h.calls()), ["challenge", "attest"]);
	assert!(
		h.calls().iter().all(|c| matches!(c, RuntimeCall::Tee(_))),
		"answered a job whose input bytes do not hash to its record: {:?}",
		h.calls()
	);
	// The true bytes arrive: answered, signed over the hash the enclave computed.
	h.chain.state.lock().unwrap().jobs.get_mut(&3).unwrap().1 = input.clone();
	h.head(7, 3).await;
	let calls = h.calls();
	assert_eq!(calls.len(), 3);
	assert_eq!(answer(&calls[2]).0, 3);
	h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_attestation_is_retried_with_back_off_and_tee_jobs_are_not_answered() {
	let (dir, key, mut state, _) = one_tee_job();
	state.tee = Some(unattested());
	state.refuse_documents = true;

	let h = start_with(state, dir.path(), &key, Some(Enclave::dev()));
	// retry_after = 2: attest at 2, then again after 2, 4 and 8 blocks (a new challenge each
	// time, as the document for the old one was refused).
	let mut sent_at = Vec::new();
	for n in 1..=24 {
		let before = h.calls().len();
		h.head(n, before).await;
		for call in tee_calls(&h.calls()[before..]) {
			sent_at.push((n, call));
		}
	}
	assert_eq!(
		sent_at,
		[
			(1, "challenge"),
			(2, "attest"),
			(4, "challenge"),
			(5, "attest"),
			(9, "challenge"),
			(10, "attest"),
			(18, "challenge"),
			(19, "attest")
		]
	);
	assert!(
		h.calls().iter().all(|c| matches!(c, RuntimeCall::Tee(_))),
		"a TEE job answered without an attested key"
	);
	h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_an_enclave_rejects_tee_jobs() {
	let (dir, key, state, _) = one_tee_job();
	let h = start(state, dir.path(), &key);
	h.head(1, 1).await;
	assert_eq!(answer(&h.calls()[0]), (3, Err(RejectReason::ExecutionFailed)));
	h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_jobs_are_proved_against_the_chains_statement() {
	let dir = tempfile::tempdir().unwrap();
	let model = std::fs::read(concat!(
		env!("CARGO_MANIFEST_DIR"),
		"/../models/digits-zk/digits-mlp-int8.onnx"
	))
	.unwrap();
	let file = dir.path().join("digits-zk.onnx");
	std::fs::write(&file, &model).unwrap();
	let keys = dir.path().join("zk-keys");
	let setup = opg_worker::zk::setup(&model, &keys).unwrap();
	let vk =
		opg_groth16::VerifyingKey::decode(&std::fs::read(&setup.verifying_key).unwrap()).unwrap();
	assert_eq!(
		blake2_256(&vk.encode().unwrap()),
		setup.key_hash,
		"the file is named by its key's hash"
	);

	let key = sr25519::Pair::from_string("//Alice", None).unwrap();
	let me = Signer::account(&key);
	let mut release =
		release(blake2_256(&model), model.len() as u64, &format!("file://{}", file.display()));
	release.params.inputs = vec![TensorSpec { elem: ElemType::I8, ..spec("pixels", &[1, 64]) }]
		.try_into()
		.unwrap();
	release.params.outputs = vec![TensorSpec { elem: ElemType::I32, ..spec("logits", &[1, 10]) }]
		.try_into()
		.unwrap();
	release.params.modes = ModeSet::of(&[VerificationMode::Zk]);
	release.params.zk_verifying_key = Some(setup.key_hash);
	let mut without_key = release.clone();
	without_key.params.zk_verifying_key = Some(H256::repeat_byte(9));
	let mut state = State::default();
	state.releases.insert(1, release);
	state.releases.insert(2, without_key);
	let pixels: Vec<u8> = (0..64).map(|i| (i % 17) as u8).collect();
	let input = vec![Tensor { elem: ElemType::I8, shape: vec![1, 64], data: pixels }].encode();
	for (id, release) in [(5, 1), (6, 2)] {
		let mut job = job(&me, release);
		job.mode = VerificationMode::Zk;
		job.input_hash = blake2_256(&input);
		state.jobs.insert(id, (job, input.clone()));
	}
	state.open = vec![5, 6];

	let h = start_full(state, dir.path(), &key, None, Some(&keys));
	h.head(1, 2).await;
	let calls = h.calls();
	let proved = calls
		.iter()
		.find_map(|c| match c {
			RuntimeCall::Inference(pallet_inference::Call::submit_result {
				job: 5,
				output,
				evidence,
			}) => Some((output.to_vec(), evidence.clone())),
			_ => None,
		})
		.expect("job 5 answered with a result");
	let Evidence::ZkProof(proof) = proved.1 else { panic!("no proof: {:?}", proved.1) };
	// What the chain checks: the release's key, and public inputs it derives from the job's
	// input and the submitted output.
	let statement = opg_groth16::decode_public_inputs(
		&opg_primitives::zk_public_inputs(&input, &proved.0).concat(),
	)
	.unwrap();
	let proof = opg_groth16::Proof::decode(&proof).unwrap();
	opg_groth16::verify(&vk.prepare(), &proof, &statement).expect("the proof verifies");
	let logits: Vec<Tensor> = codec::Decode::decode(&mut &proved.0[..]).unwrap();
	assert_eq!((logits[0].elem, logits[0].shape.clone()), (ElemType::I32, vec![1, 10]));
	// No proving key for release 2's verifying key: rejected, not guessed.
	assert!(calls.iter().any(|c| answer(c) == (6, Err(RejectReason::ExecutionFailed))));
	h.stop().await;
}

/// The LLM test model (`scripts/lib/llm-model.sh` fetches it; `scripts/setup.sh` runs it).
fn smollm2() -> std::path::PathBuf {
	let path = std::path::Path::new(&std::env::var("HOME").unwrap())
		.join(".cache/opg/models/SmolLM2-135M-Instruct.Q4_1.gguf");
	assert!(
		path.exists(),
		"{} is missing: scripts/lib/llm-model.sh fetches it (scripts/setup.sh runs it)",
		path.display()
	);
	path
}

/// Release 3: SmolLM2 from a file under `dir`, with the spec the file measures (context
/// `context`), and Alice as its worker.
fn smollm2_on_release_3(
	context: u32,
) -> (tempfile::TempDir, sr25519::Pair, AccountId, State, opg_worker::llm::Measured) {
	let dir = tempfile::tempdir().unwrap();
	let key = sr25519::Pair::from_string("//Alice", None).unwrap();
	let me = Signer::account(&key);
	let file = dir.path().join("smollm2.gguf");
	std::fs::hard_link(smollm2(), &file)
		.or_else(|_| std::fs::copy(smollm2(), &file).map(|_| ()))
		.unwrap();
	let bytes = std::fs::read(&file).unwrap();
	let (artifact, size) = (blake2_256(&bytes), bytes.len() as u64);
	let measured = opg_worker::llm::LlmEngine::load(bytes, 1).unwrap().measured().clone();
	let mut release = release(artifact, size, &format!("file://{}", file.display()));
	release.params.format = ModelFormat::Gguf;
	release.params.inputs = Default::default();
	release.params.outputs = Default::default();
	release.params.llm = Some(LlmSpec {
		architecture: measured.architecture.as_bytes().to_vec().try_into().unwrap(),
		context_length: context,
		vocab_size: measured.vocab_size,
		template_hash: measured.template_hash,
		prompt_overhead: measured.prompt_overhead,
		message_overhead: measured.message_overhead,
	});
	let mut state = State::default();
	state.releases.insert(3, release);
	(dir, key, me, state, measured)
}

fn france(max_tokens: u32) -> Vec<u8> {
	ChatRequest {
		// Told to be brief, SmolLM2-135M (Q4_1) names Paris; asked alone, it rambles in French.
		prompt: Prompt::Chat(vec![
			ChatMessage { role: Role::System, content: b"Answer in one short sentence.".to_vec() },
			ChatMessage { role: Role::User, content: b"What is the capital of France?".to_vec() },
		]),
		max_tokens,
		sampling: Sampling::default(),
		stop: vec![],
	}
	.encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_jobs_are_answered_with_a_chat_response_the_chain_accepts_and_the_same_bits_again() {
	let (dir, key, me, mut state, measured) = smollm2_on_release_3(8192);
	assert_eq!(
		(measured.architecture.as_str(), measured.vocab_size, measured.context_length),
		("llama", 49152, 8192)
	);
	state.jobs.insert(1, (job(&me, 3), france(12)));
	state.jobs.insert(2, (job(&me, 3), france(12)));
	state.open = vec![1, 2];

	let h = start(state, dir.path(), &key);
	h.head(1, 2).await;
	let mut answers: Vec<_> = h.calls().iter().map(answer).collect();
	answers.sort_by_key(|a| a.0);
	assert_eq!(answers.len(), 2);
	let output = answers[0].1.clone().expect("answered");
	assert_eq!(answers[1].1.as_ref().unwrap(), &output, "the same request, other bits");
	let response = check_chat_response(&output, measured.vocab_size).expect("the chain's check");
	let text = String::from_utf8(response.text.clone()).unwrap();
	assert!(text.contains("Paris"), "{text:?}");
	assert!(response.completion_tokens >= 1 && response.completion_tokens <= 12);
	assert_eq!(response.engine, opg_worker::llm::engine_version().into_bytes());
	// Within the budget the chain escrowed for it.
	let spec = h.chain.state.lock().unwrap().releases[&3].params.llm.clone().unwrap();
	let (_, budget) = check_chat_request(&france(12), &spec).unwrap();
	assert!(
		response.prompt_tokens > 5 && response.prompt_tokens <= budget.prompt,
		"{response:?} {budget:?}"
	);
	h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_jobs_the_file_or_the_context_cannot_take_are_rejected_with_their_reason() {
	// A context of 32 tokens: the rendered chat (27 tokens) and 12 more do not fit.
	let (dir, key, me, mut state, _) = smollm2_on_release_3(32);
	// Release 4: the same file, declared with another vocabulary.
	let mut wrong = state.releases[&3].clone();
	wrong.params.llm.as_mut().unwrap().vocab_size = 32000;
	state.releases.insert(4, wrong);
	// Release 5: overheads below what the template adds.
	let mut low = state.releases[&3].clone();
	low.params.llm.as_mut().unwrap().message_overhead = 0;
	state.releases.insert(5, low);
	state.jobs.insert(1, (job(&me, 3), france(12)));
	state.jobs.insert(2, (job(&me, 4), france(2)));
	state.jobs.insert(3, (job(&me, 5), france(2)));
	state.jobs.insert(4, (job(&me, 3), b"not a chat request".to_vec()));
	state.open = vec![1, 2, 3, 4];

	let h = start(state, dir.path(), &key);
	h.head(1, 4).await;
	let mut answers: Vec<_> = h.calls().iter().map(answer).collect();
	answers.sort_by_key(|a| a.0);
	assert_eq!(
		answers,
		vec![
			(1, Err(RejectReason::BadInput)),
			(2, Err(RejectReason::ModelUnavailable)),
			(3, Err(RejectReason::ModelUnavailable)),
			(4, Err(RejectReason::BadInput)),
		]
	);
	h.stop().await;
}
