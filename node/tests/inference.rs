//! The inference worker end to end on `opg-node --dev`, with the digits model of the
//! `development` preset (release 1):
//! - in the node (`--inference`): a paid job is answered with the model's reference output, and
//!   balances, total issuance and `TotalBurned` move by exactly the price, the fees and the burned
//!   verification fee; a malformed input is refused by the chain, and an input the model cannot
//!   take is rejected by the worker and refunded;
//! - standalone (`opg-worker --rpc`): jobs submitted while the worker is down are answered after
//!   its restart, it reconnects after a node restart, and no job is ever answered twice;
//! - TEE mode (`--tee-dev`, in the node and standalone): the worker attests a fresh enclave key
//!   with the chain's challenge through the runtime's Nitro verifier, and its signed results settle
//!   in the block that brings them;
//! - ZK mode (`--zk-keys`): a publisher registers the integer digits model's verifying key and a ZK
//!   release, the worker proves each answer with Groth16, and the runtime verifies the proofs from
//!   its queue in `on_idle`; the trust gap (blocks from result to settlement) is printed.

mod common;

use std::{
	path::{Path, PathBuf},
	process::{Child, Command, Stdio},
	time::Duration,
};

use codec::{Decode, Encode};
use common::{
	best, events, free_balance, number_of, rpc, runtime_call, storage, submit, value_key,
	wait_for_event, DevNode,
};
use opg_primitives::{ElemType, JobId, Tensor, VerificationMode};
use opg_runtime::{AccountId, Balance, Runtime, RuntimeCall, RuntimeEvent, UNIT};
use pallet_inference::{BurnTotals, Event as MarketEvent, JobStatus, RejectReason};
use polkadot_sdk::{
	sp_core::H256,
	sp_keyring::Sr25519Keyring::{Alice, Bob, Charlie},
	sp_runtime::{DispatchError, Permill},
	*,
};
use serde_json::json;

/// The digits model's release in the `development` preset.
const DIGITS: u32 = 1;
const TIMEOUT: Duration = Duration::from_secs(90);

fn repo(path: &str) -> PathBuf {
	Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn reference() -> serde_json::Value {
	serde_json::from_str(&std::fs::read_to_string(repo("models/digits/reference.json")).unwrap())
		.unwrap()
}

/// A model cache holding both preset models and the ZK model, as an operator pre-seeds
/// `--model-dir` (the presets' source URIs point at the public repository, which tests must not
/// depend on).
fn seeded_model_dir(name: &str) -> PathBuf {
	let dir = std::env::temp_dir().join(format!("opg-models-{}-{name}", std::process::id()));
	let _ = std::fs::remove_dir_all(&dir);
	std::fs::create_dir_all(&dir).unwrap();
	for model in [
		"models/demo/mlp-classifier.onnx",
		"models/digits/digits-cnn.onnx",
		"models/digits-zk/digits-mlp-int8.onnx",
	] {
		let bytes = std::fs::read(repo(model)).unwrap();
		let hash = opg_worker::store::blake2_256(&bytes);
		let hex: String = hash.0.iter().map(|b| format!("{b:02x}")).collect();
		std::fs::write(dir.join(format!("{hex}.onnx")), bytes).unwrap();
	}
	dir
}

/// Canonical input of `n` images (or of a raw shape and data).
fn pixels_payload(shape: Vec<u32>, values: &[f32]) -> Vec<u8> {
	let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
	vec![Tensor { elem: ElemType::F32, shape, data }].encode()
}

fn cases_payload(cases: &[serde_json::Value]) -> Vec<u8> {
	let values: Vec<f32> = cases
		.iter()
		.flat_map(|c| c["pixels"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32))
		.collect();
	pixels_payload(vec![cases.len() as u32, 1, 8, 8], &values)
}

fn submit_job(input: Vec<u8>) -> RuntimeCall {
	submit_job_in(VerificationMode::Vanilla, input)
}

fn submit_job_in(mode: VerificationMode, input: Vec<u8>) -> RuntimeCall {
	RuntimeCall::Inference(pallet_inference::Call::submit_job {
		release: DIGITS,
		mode,
		input: input.try_into().expect("input fits MaxInputLen"),
		max_fee: UNIT,
		timeout: None,
	})
}

fn market(event: &RuntimeEvent) -> Option<&MarketEvent<Runtime>> {
	match event {
		RuntimeEvent::Inference(e) => Some(e),
		_ => None,
	}
}

type JobView = Option<(
	pallet_inference::JobOf<Runtime>,
	Option<Vec<u8>>,
	Option<pallet_inference::JobResultOf<Runtime>>,
)>;

fn job_view(port: u16, job: JobId, at: H256) -> JobView {
	runtime_call(port, "InferenceApi_job", job, at)
}

fn total_issuance(port: u16, at: H256) -> Balance {
	Balance::decode(&mut &storage(port, &value_key("Balances", "TotalIssuance"), at).unwrap()[..])
		.unwrap()
}

fn total_burned(port: u16, at: H256) -> Balance {
	runtime_call::<BurnTotals<Balance>>(port, "InferenceApi_burn_totals", (), at).total
}

/// Transaction fees `who` paid, and what the collators' pot paid `who` (block author rewards),
/// in blocks `(from, to]`.
fn fees_and_rewards(port: u16, from: H256, to: H256, who: &AccountId) -> (Balance, Balance) {
	let pot = pallet_collator_selection::Pallet::<Runtime>::account_id();
	let (mut fees, mut rewards) = (0, 0);
	for n in number_of(port, from) + 1..=number_of(port, to) {
		let hash = common::hash_of(&rpc(port, "chain_getBlockHash", json!([n])));
		for event in events(port, hash) {
			match event {
				RuntimeEvent::TransactionPayment(
					pallet_transaction_payment::Event::TransactionFeePaid {
						who: payer,
						actual_fee,
						tip,
					},
				) if payer == *who => fees += actual_fee + tip,
				RuntimeEvent::Balances(pallet_balances::Event::Transfer { from, to, amount })
					if from == pot && to == *who =>
					rewards += amount,
				_ => {},
			}
		}
	}
	(fees, rewards)
}

fn is_module_error(error: &DispatchError, expected: pallet_inference::Error<Runtime>) -> bool {
	match (error, DispatchError::from(expected)) {
		(DispatchError::Module(got), DispatchError::Module(want)) =>
			(got.index, got.error) == (want.index, want.error),
		_ => false,
	}
}

fn floats(tensor: &Tensor) -> Vec<f32> {
	tensor
		.data
		.chunks_exact(4)
		.map(|c| f32::from_le_bytes(c.try_into().unwrap()))
		.collect()
}

#[test]
fn in_process_worker_answers_a_paid_job_with_the_reference_output() {
	let models = seeded_model_dir("in-process");
	let mut node = DevNode::start(&[
		"--dev-block-time",
		"1000",
		"--inference",
		"--model-dir",
		models.to_str().unwrap(),
	]);
	let port = node.rpc_port;
	node.wait_for_finalized(1, TIMEOUT);
	let (alice, bob, charlie) =
		(Alice.to_account_id(), Bob.to_account_id(), Charlie.to_account_id());

	// A paid job on two test images.
	let reference = reference();
	let cases = &reference["cases"].as_array().unwrap()[..2];
	let input = cases_payload(cases);
	let h0 = best(port);
	let (bob0, alice0, charlie0) = (
		free_balance(port, &bob, h0),
		free_balance(port, &alice, h0),
		free_balance(port, &charlie, h0),
	);
	let (issuance0, burned0) = (total_issuance(port, h0), total_burned(port, h0));
	submit(port, Bob, submit_job(input.clone()));
	let (_, (job, price)) = wait_for_event(port, h0, TIMEOUT, |events| {
		events.iter().filter_map(market).find_map(|e| match e {
			MarketEvent::JobAssigned { job, worker, price, .. } if *worker == alice =>
				Some((*job, *price)),
			_ => None,
		})
	});
	let (h1, (payment, royalty, fee, refund)) = wait_for_event(port, h0, TIMEOUT, |events| {
		events.iter().filter_map(market).find_map(|e| match e {
			// A Vanilla job: the event says nothing but trust backs the output.
			MarketEvent::JobSettled {
				job: j,
				mode: VerificationMode::Vanilla,
				worker_payment,
				royalty,
				verification_fee,
				refund,
			} if *j == job => Some((*worker_payment, *royalty, *verification_fee, *refund)),
			_ => None,
		})
	});

	// The output is the model's: the reference probabilities, the right digits, and exactly the
	// bytes the worker's executor produces for this input.
	let (record, _, result) = job_view(port, job, h1).expect("job record");
	assert!(
		matches!(record.status, JobStatus::Settled { verification_fee } if verification_fee == fee)
	);
	let output = result.expect("result stored").output.into_inner();
	let tensors = Vec::<Tensor>::decode(&mut &output[..]).unwrap();
	assert_eq!(tensors[0].shape, vec![2, 10]);
	for (case, row) in cases.iter().zip(floats(&tensors[0]).chunks_exact(10)) {
		for (got, want) in row.iter().zip(case["probabilities"].as_array().unwrap()) {
			let want = want.as_f64().unwrap() as f32;
			assert!((got - want).abs() <= 1e-5 + 1e-3 * want.abs(), "got {got}, want {want}");
		}
		let digit = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
		assert_eq!(digit as u64, case["label"].as_u64().unwrap());
	}
	let engine = opg_worker::exec::Engine::load(
		&std::fs::read(repo("models/digits/digits-cnn.onnx")).unwrap(),
		opg_worker::exec::Device::Cpu,
	)
	.unwrap();
	let local = engine.run(&Vec::<Tensor>::decode(&mut &input[..]).unwrap()).unwrap();
	assert_eq!(local.encode(), output, "the chain holds exactly the executor's output");

	// Money: the price is split between worker and publisher, the verification fee is burned,
	// and nothing else is created or destroyed.
	assert!(fee > 0);
	assert_eq!(payment + royalty, price);
	assert_eq!(royalty, Permill::from_percent(5).mul_floor(price));
	let (bob_fees, _) = fees_and_rewards(port, h0, h1, &bob);
	let (alice_fees, alice_rewards) = fees_and_rewards(port, h0, h1, &alice);
	assert!(bob_fees > 0 && alice_fees > 0, "both sent one signed extrinsic");
	assert_eq!(
		bob0 - free_balance(port, &bob, h1),
		price + fee + bob_fees,
		"requester pays price + fee (+refund {refund} back)"
	);
	assert_eq!(
		free_balance(port, &alice, h1) + alice_fees,
		alice0 + payment + alice_rewards,
		"worker is paid its share"
	);
	assert_eq!(free_balance(port, &charlie, h1), charlie0 + royalty, "publisher gets the royalty");
	assert_eq!(issuance0 - total_issuance(port, h1), fee, "issuance falls by the burned fee only");
	assert_eq!(total_burned(port, h1) - burned0, fee, "TotalBurned counts the fee");

	// A malformed input (8×7 images) is refused by the chain with a typed error.
	let h2 = best(port);
	submit(port, Bob, submit_job(pixels_payload(vec![1, 1, 8, 7], &[0.5; 56])));
	wait_for_event(port, h2, TIMEOUT, |events| {
		events.iter().find_map(|e| match e {
			RuntimeEvent::System(frame_system::Event::ExtrinsicFailed {
				dispatch_error, ..
			}) => {
				assert!(
					is_module_error(dispatch_error, pallet_inference::Error::InvalidInput),
					"{dispatch_error:?}"
				);
				Some(())
			},
			_ => None,
		})
	});

	// An empty batch fits the release's spec ([0, 1, 8, 8]) but gives the model nothing to
	// compute: the worker rejects it and the requester gets everything back but the tx fee and
	// the data fee for the input the chain stored.
	let h3 = best(port);
	let bob3 = free_balance(port, &bob, h3);
	let empty = pixels_payload(vec![0, 1, 8, 8], &[]);
	submit(port, Bob, submit_job(empty.clone()));
	let (h4, (reason, data_fee)) = wait_for_event(port, h3, TIMEOUT, |events| {
		events.iter().filter_map(market).find_map(|e| match e {
			MarketEvent::JobRejected { reason, data_fee, .. } => Some((*reason, *data_fee)),
			_ => None,
		})
	});
	assert_eq!(reason, RejectReason::BadInput);
	// The per-byte fee (a runtime parameter, 10 µOPG by default) over the stored input.
	assert!(data_fee > 0 && data_fee % empty.len() as Balance == 0, "{data_fee}");
	let (bob_fees, _) = fees_and_rewards(port, h3, h4, &bob);
	assert_eq!(
		bob3 - free_balance(port, &bob, h4),
		bob_fees + data_fee,
		"a rejected job is refunded but for its data fee"
	);

	assert!(node.stop().success());
	let log = node.log();
	assert!(log.contains("inference worker started"), "worker did not start:\n{log}");
	let _ = std::fs::remove_dir_all(models);
}

/// `opg-worker` as a child process with its own base path.
struct StandaloneWorker {
	child: Option<Child>,
	args: Vec<String>,
	log: PathBuf,
}

impl StandaloneWorker {
	fn start(rpc_port: u16, base: &Path, models: &Path) -> Self {
		let args = vec![
			"--rpc".into(),
			format!("ws://127.0.0.1:{rpc_port}"),
			"--key".into(),
			"//Alice".into(),
			"--base-path".into(),
			base.display().to_string(),
			"--model-dir".into(),
			models.display().to_string(),
			"--no-prometheus".into(),
			"--tee-dev".into(),
		];
		let mut worker = StandaloneWorker { child: None, args, log: base.join("worker.log") };
		std::fs::create_dir_all(base).unwrap();
		worker.spawn();
		worker
	}

	fn spawn(&mut self) {
		// Built next to opg-node by `cargo test --workspace` (scripts/test.sh).
		let bin = Path::new(env!("CARGO_BIN_EXE_opg-node")).with_file_name("opg-worker");
		assert!(bin.exists(), "{} is not built: run the tests with --workspace", bin.display());
		let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
		let child = Command::new(bin)
			.args(&self.args)
			.env("RUST_LOG", "info")
			.stdout(Stdio::null())
			.stderr(log)
			.spawn()
			.expect("opg-worker starts");
		self.child = Some(child);
	}

	fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
		let mut child = self.child.take().expect("running");
		let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
		child.wait().unwrap()
	}

	fn log(&self) -> String {
		std::fs::read_to_string(&self.log).unwrap_or_default()
	}
}

impl Drop for StandaloneWorker {
	fn drop(&mut self) {
		if let Some(mut child) = self.child.take() {
			let _ = child.kill();
			let _ = child.wait();
		}
	}
}

fn settled(port: u16, from: H256, job: JobId) -> H256 {
	wait_for_event(port, from, TIMEOUT, |events| {
		events
			.iter()
			.filter_map(market)
			.any(|e| matches!(e, MarketEvent::JobSettled { job: j, .. } if *j == job))
			.then_some(())
	})
	.0
}

fn submitted(port: u16, from: H256) -> JobId {
	wait_for_event(port, from, TIMEOUT, |events| {
		events.iter().filter_map(market).find_map(|e| match e {
			MarketEvent::JobAssigned { job, .. } => Some(*job),
			_ => None,
		})
	})
	.1
}

#[test]
fn standalone_worker_survives_its_own_and_the_nodes_restart_and_answers_once() {
	let models = seeded_model_dir("standalone");
	let mut node = DevNode::start(&["--dev-block-time", "1000"]);
	let port = node.rpc_port;
	node.wait_for_finalized(1, TIMEOUT);
	alice_offers(port, VerificationMode::Tee, None);
	let start = best(port);
	let worker_base = node.base.join("worker");
	let mut worker = StandaloneWorker::start(port, &worker_base, &models);
	let reference = reference();
	let one = &reference["cases"].as_array().unwrap()[..1];

	// Answered while running.
	let h = best(port);
	submit(port, Bob, submit_job(cases_payload(one)));
	let a = submitted(port, h);
	settled(port, h, a);

	// Crash (SIGKILL): jobs submitted meanwhile stay open, and are answered after the restart.
	worker.signal("-KILL");
	let h = best(port);
	submit(port, Bob, submit_job(cases_payload(one)));
	let b = submitted(port, h);
	let h = best(port);
	submit(port, Bob, submit_job(cases_payload(one)));
	let c = submitted(port, h);
	let open: Vec<JobId> =
		runtime_call(port, "InferenceApi_open_jobs", Alice.to_account_id(), best(port));
	assert!(open.contains(&b) && open.contains(&c), "jobs wait for the worker: {open:?}");
	let h = best(port);
	let respawned = h;
	worker.spawn();
	settled(port, h, b);
	settled(port, h, c);

	// The node restarts under the running worker, which reconnects.
	assert!(node.restart().success());
	let h = best(port);
	submit(port, Bob, submit_job(cases_payload(one)));
	let d = submitted(port, h);
	settled(port, h, d);

	// With `--tee-dev` it also attests its enclave key over RPC and answers TEE jobs.
	// The restarted process made a new key: the first one attested after its start.
	let (_, key) = attested(port, respawned);
	let (e, _) = tee_job_settles(port, key, cases_payload(one));

	// Each job got exactly one answer, and no answer failed (a second one would, NotAssigned).
	let end = best(port);
	let mut answers = std::collections::BTreeMap::<JobId, u32>::new();
	for n in number_of(port, start) + 1..=number_of(port, end) {
		let hash = common::hash_of(&rpc(port, "chain_getBlockHash", json!([n])));
		for event in events(port, hash) {
			match &event {
				RuntimeEvent::Inference(MarketEvent::ResultSubmitted { job, .. }) =>
					*answers.entry(*job).or_default() += 1,
				RuntimeEvent::System(frame_system::Event::ExtrinsicFailed {
					dispatch_error,
					..
				}) => {
					panic!(
						"an extrinsic failed in block #{n}: {dispatch_error:?}\nworker log:\n{}",
						worker.log()
					)
				},
				_ => {},
			}
		}
	}
	assert_eq!(answers, [(a, 1), (b, 1), (c, 1), (d, 1), (e, 1)].into_iter().collect());

	// SIGTERM stops it gracefully.
	assert!(worker.signal("-TERM").success());
	let log = worker.log();
	assert!(log.contains("reconnecting"), "no reconnection logged:\n{log}");
	assert!(log.contains("inference worker stopped"), "no graceful stop logged:\n{log}");
	assert!(node.stop().success());
	let _ = std::fs::remove_dir_all(models);
}

#[test]
#[cfg(not(feature = "cuda"))]
fn gpu_flag_without_the_cuda_feature_fails_at_start() {
	let out = Command::new(env!("CARGO_BIN_EXE_opg-node"))
		.args([
			"--dev",
			"--tmp",
			"--inference-gpu",
			"--no-hardware-benchmarks",
			"--no-telemetry",
			"--no-prometheus",
		])
		.args([
			"--rpc-port",
			&common::free_port().to_string(),
			"--port",
			&common::free_port().to_string(),
		])
		.output()
		.expect("runs");
	assert!(!out.status.success());
	let err = String::from_utf8_lossy(&out.stderr);
	assert!(err.contains("--inference-gpu needs opg-node built with `--features cuda`"), "{err}");
}

fn tee_status(port: u16, at: H256) -> pallet_tee::runtime_api::WorkerTee<u32> {
	runtime_call(port, "TeeApi_worker_status", Alice.to_account_id(), at)
}

/// Alice's dev worker (Vanilla only in the `development` preset) also answers in `mode`, and
/// serves `release` too if given.
fn alice_offers(port: u16, mode: VerificationMode, release: Option<u32>) {
	let worker: pallet_inference::WorkerOf<Runtime> =
		runtime_call::<Option<_>>(port, "InferenceApi_worker", Alice.to_account_id(), best(port))
			.unwrap();
	let mut releases = worker.releases.into_inner();
	releases.extend(release);
	let h = best(port);
	submit(
		port,
		Alice,
		RuntimeCall::Inference(pallet_inference::Call::update_worker {
			releases: releases.try_into().unwrap(),
			modes: opg_primitives::ModeSet::of(&[VerificationMode::Vanilla, mode]),
			price: worker.price,
			capacity: worker.capacity,
			hardware: worker.hardware,
		}),
	);
	wait_for_event(port, h, TIMEOUT, |events| {
		events
			.iter()
			.any(|e| matches!(e, RuntimeEvent::Inference(MarketEvent::WorkerUpdated { .. })))
			.then_some(())
	});
}

/// Waits for Alice's enclave key to be attested; returns it and the block of the attestation.
fn attested(port: u16, from: H256) -> (H256, [u8; 32]) {
	let (at, key) = wait_for_event(port, from, TIMEOUT, |events| {
		events.iter().find_map(|e| match e {
			RuntimeEvent::Tee(pallet_tee::Event::EnclaveAttested {
				worker,
				key,
				measurement,
				..
			}) if *worker == Alice.to_account_id() => {
				assert_eq!(*measurement, pallet_tee::measurement_id(&[0; 48], &[0; 48], &[0; 48]));
				Some(*key)
			},
			_ => None,
		})
	});
	let status = tee_status(port, at);
	assert!(status.key_usable && status.challenge.is_none(), "{status:?}");
	(at, key)
}

/// Submits a TEE job on `input` as Bob and checks that it settles in the block of its result,
/// with the enclave's signature over exactly that result; returns the job and its output.
fn tee_job_settles(port: u16, enclave_key: [u8; 32], input: Vec<u8>) -> (JobId, Vec<u8>) {
	use polkadot_sdk::sp_core::{ed25519, Pair};
	let h = best(port);
	submit(port, Bob, submit_job_in(VerificationMode::Tee, input.clone()));
	let job = submitted(port, h);
	let (at, submitted_in_block) = wait_for_event(port, h, TIMEOUT, |events| {
		let settled = events
			.iter()
			.filter_map(market)
			.any(|e| matches!(e, MarketEvent::JobSettled { job: j, .. } if *j == job));
		let result = events
			.iter()
			.filter_map(market)
			.any(|e| matches!(e, MarketEvent::ResultSubmitted { job: j, .. } if *j == job));
		(settled || result).then_some(settled && result)
	});
	assert!(submitted_in_block, "a TEE result settles in the block that brings it");
	let (record, _, result) = job_view(port, job, at).unwrap();
	assert!(matches!(record.status, JobStatus::Settled { .. }), "{:?}", record.status);
	let result = result.unwrap();
	let opg_primitives::Evidence::TeeSignature(signature) = &result.evidence else {
		panic!("no TEE evidence: {:?}", result.evidence)
	};
	let release: opg_worker::chain::Release =
		runtime_call::<Option<_>>(port, "InferenceApi_release", DIGITS, at).unwrap();
	let message = opg_primitives::tee_message(
		job,
		release.params.artifact,
		opg_primitives::payload_hash(&input),
		opg_primitives::payload_hash(&result.output),
	);
	let signature = ed25519::Signature::from_raw(signature.to_vec().try_into().unwrap());
	assert!(ed25519::Pair::verify(&signature, message, &ed25519::Public::from_raw(enclave_key)));
	(job, result.output.into_inner())
}

#[test]
fn tee_dev_worker_attests_its_enclave_key_and_its_signed_results_settle() {
	let models = seeded_model_dir("tee");
	let mut node = DevNode::start(&[
		"--dev-block-time",
		"1000",
		"--inference",
		"--tee-dev",
		"--model-dir",
		models.to_str().unwrap(),
	]);
	let port = node.rpc_port;
	node.wait_for_finalized(1, TIMEOUT);
	let genesis = common::hash_of(&rpc(port, "chain_getBlockHash", json!([0])));
	alice_offers(port, VerificationMode::Tee, None);
	let (_, key) = attested(port, genesis);

	let reference = reference();
	let cases = &reference["cases"].as_array().unwrap()[..2];
	let (_, output) = tee_job_settles(port, key, cases_payload(cases));
	let tensors = Vec::<Tensor>::decode(&mut &output[..]).unwrap();
	for (case, row) in cases.iter().zip(floats(&tensors[0]).chunks_exact(10)) {
		let digit = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
		assert_eq!(digit as u64, case["label"].as_u64().unwrap());
	}

	// The key lives in the worker's memory only: after a restart it attests a new one.
	assert!(node.restart().success());
	let h = best(port);
	let (_, second) = attested(port, h);
	assert_ne!(second, key, "a restarted enclave has a new key");
	tee_job_settles(port, second, cases_payload(&cases[..1]));

	assert!(node.stop().success());
	let log = node.log();
	assert!(log.contains("enclave key attested"), "no attestation logged:\n{log}");
	let _ = std::fs::remove_dir_all(models);
}

/// Charlie publishes the integer digits model (`models/digits-zk`) as a ZK release under the
/// verifying key `vk`, in a repository of its own; returns the release.
fn publish_zk_release(port: u16, vk: Vec<u8>, key_hash: H256, model: &[u8]) -> u32 {
	let h = best(port);
	submit(
		port,
		Charlie,
		RuntimeCall::Zk(pallet_zk::Call::register_verifying_key {
			key: vk.try_into().expect("vk fits"),
			model: opg_worker::store::blake2_256(model),
		}),
	);
	submit(
		port,
		Charlie,
		RuntimeCall::ModelHub(pallet_model_hub::Call::create_repository {
			name: b"opg/digits-mlp-int8".to_vec().try_into().unwrap(),
			description_uri: b"https://github.com/opg-network/opg/tree/main/models/digits-zk"
				.to_vec()
				.try_into()
				.unwrap(),
		}),
	);
	let (_, repository) = wait_for_event(port, h, TIMEOUT, |events| {
		events.iter().find_map(|e| match e {
			RuntimeEvent::ModelHub(pallet_model_hub::Event::RepositoryCreated {
				repository,
				..
			}) => Some(*repository),
			_ => None,
		})
	});
	let spec = |name: &[u8], elem, shape: &[u32]| opg_primitives::TensorSpec {
		name: name.to_vec().try_into().unwrap(),
		elem,
		shape: shape.to_vec().try_into().unwrap(),
	};
	let params = pallet_model_hub::ReleaseParams::<Runtime> {
		version: b"1.0.0".to_vec().try_into().unwrap(),
		artifact: opg_worker::store::blake2_256(model),
		artifact_size: model.len() as u64,
		format: opg_primitives::ModelFormat::Onnx,
		source_uri: b"https://raw.githubusercontent.com/opg-network/opg/main/models/digits-zk/digits-mlp-int8.onnx"
			.to_vec()
			.try_into()
			.unwrap(),
		inputs: vec![spec(b"pixels", ElemType::I8, &[1, 64])].try_into().unwrap(),
		outputs: vec![spec(b"logits", ElemType::I32, &[1, 10])].try_into().unwrap(),
		modes: opg_primitives::ModeSet::of(&[VerificationMode::Zk]),
		zk_verifying_key: Some(key_hash),
		royalty: Permill::zero(),
		llm: None,
	};
	let h = best(port);
	submit(
		port,
		Charlie,
		RuntimeCall::ModelHub(pallet_model_hub::Call::publish_release {
			repository,
			params: Box::new(params),
		}),
	);
	wait_for_event(port, h, TIMEOUT, |events| {
		events.iter().find_map(|e| match e {
			RuntimeEvent::ModelHub(pallet_model_hub::Event::ReleasePublished {
				release, ..
			}) => Some(*release),
			_ => None,
		})
	})
	.1
}

#[test]
fn zk_worker_proves_its_results_and_the_runtime_settles_them_from_its_queue() {
	let models = seeded_model_dir("zk");
	let keys = models.join("zk-keys");
	let model = std::fs::read(repo("models/digits-zk/digits-mlp-int8.onnx")).unwrap();
	// What the model's publisher runs once (`opg-worker zk-setup`), and gives the worker the key.
	let setup = opg_worker::zk::setup(&model, &keys).unwrap();
	let mut node = DevNode::start(&[
		"--dev-block-time",
		"1000",
		"--inference",
		"--model-dir",
		models.to_str().unwrap(),
		"--zk-keys",
		keys.to_str().unwrap(),
	]);
	let port = node.rpc_port;
	node.wait_for_finalized(1, TIMEOUT);
	let release = publish_zk_release(
		port,
		std::fs::read(&setup.verifying_key).unwrap(),
		setup.key_hash,
		&model,
	);
	alice_offers(port, VerificationMode::Zk, Some(release));

	let reference: serde_json::Value = serde_json::from_str(
		&std::fs::read_to_string(repo("models/digits-zk/reference.json")).unwrap(),
	)
	.unwrap();
	let cases = &reference["cases"].as_array().unwrap()[..3];
	let start = best(port);
	let burned_before =
		runtime_call::<BurnTotals<Balance>>(port, "InferenceApi_burn_totals", (), start);
	// Three jobs at once, as a dApp would send them: the worker proves them one by one.
	for case in cases {
		let pixels: Vec<u8> = case["pixels"]
			.as_array()
			.unwrap()
			.iter()
			.map(|v| v.as_i64().unwrap() as i8 as u8)
			.collect();
		let input = vec![Tensor { elem: ElemType::I8, shape: vec![1, 64], data: pixels }].encode();
		submit(
			port,
			Bob,
			RuntimeCall::Inference(pallet_inference::Call::submit_job {
				release,
				mode: VerificationMode::Zk,
				input: input.try_into().unwrap(),
				max_fee: UNIT,
				timeout: None,
			}),
		);
	}
	// Block numbers of each job's submission, result and settlement.
	let mut seen = std::collections::BTreeMap::<JobId, [Option<u32>; 3]>::new();
	let mut fees = 0;
	let mut from = start;
	while seen.len() < cases.len() || seen.values().any(|s| s[2].is_none()) {
		let (at, events) = wait_for_event(port, from, TIMEOUT, |events| Some(events.to_vec()));
		let n = number_of(port, at);
		for e in events.iter().filter_map(market) {
			match e {
				MarketEvent::JobAssigned { job, mode, .. } => {
					assert_eq!(*mode, VerificationMode::Zk);
					seen.entry(*job).or_default()[0] = Some(n);
				},
				MarketEvent::ResultSubmitted { job, .. } =>
					seen.get_mut(job).expect("submitted first")[1] = Some(n),
				MarketEvent::JobSettled { job, verification_fee, .. } => {
					seen.get_mut(job).expect("submitted first")[2] = Some(n);
					fees += verification_fee;
				},
				MarketEvent::JobFailed { job, .. } | MarketEvent::JobRejected { job, .. } => {
					panic!("job {job} did not settle: {e:?}\n{}", node.log_tail(40))
				},
				_ => {},
			}
		}
		from = at;
	}
	assert_eq!(seen.len(), cases.len());
	let end = best(port);
	for ((job, blocks), case) in seen.iter().zip(cases) {
		let [Some(submitted), Some(result), Some(settled)] = *blocks else { unreachable!() };
		// Nobody called `verify_result`: the proof was checked in `on_idle`, which has room for
		// it in the block that brings the result when the block is not full.
		println!(
			"zk job {job}: submitted #{submitted}, result #{result} (+{} blocks: proving), settled #{settled} \
			 (trust gap {} blocks)",
			result - submitted,
			settled - result
		);
		assert_eq!(settled, result, "verified in the on_idle of the block that brought the result");
		let (record, _, stored) = job_view(port, *job, end).unwrap();
		assert!(matches!(record.status, JobStatus::Settled { .. }), "{:?}", record.status);
		let Some(opg_primitives::Evidence::ZkProof(proof)) = stored.as_ref().map(|r| &r.evidence)
		else {
			panic!("no proof: {stored:?}")
		};
		assert_eq!(proof.len(), 128, "compact Groth16 proof");
		let output = Vec::<Tensor>::decode(&mut &stored.unwrap().output[..]).unwrap();
		let logits: Vec<i64> = output[0]
			.data
			.chunks_exact(4)
			.map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
			.collect();
		let expected: Vec<i64> =
			case["logits"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
		assert_eq!(logits, expected, "the model's exact integer logits");
	}
	let burned = runtime_call::<BurnTotals<Balance>>(port, "InferenceApi_burn_totals", (), end);
	assert!(fees > 0);
	assert_eq!(burned.verification_fees - burned_before.verification_fees, fees);
	assert_eq!(burned.slashes, burned_before.slashes, "nobody was slashed");

	assert!(node.stop().success());
	let _ = std::fs::remove_dir_all(models);
}
