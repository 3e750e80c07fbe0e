//! Benchmarks of the inference market (frame-benchmarking v2), each in its worst case: full
//! release pools, the largest inputs and outputs, settlements that pay a distinct publisher.

use super::*;
use alloc::{vec, vec::Vec};
use opg_primitives::{
	channel::{batch_proof, batch_root, receipt_leaf, Receipt},
	ElemType, Tensor,
};
use polkadot_sdk::{
	frame_benchmarking::v2::*,
	frame_support::{
		traits::{
			fungible::{Inspect, Mutate},
			Hooks,
		},
		weights::WeightMeter,
	},
	frame_system::RawOrigin,
	sp_runtime::SaturatedConversion,
};

/// Bytes a one-tensor canonical payload spends besides its data (list length, element type,
/// rank, shape, data length: 11 bytes for data up to 16 KiB, 13 up to 1 GiB).
const PAYLOAD_OVERHEAD: u32 = 13;

/// A canonical payload (one dynamic `U8` tensor) of exactly `len` bytes.
fn payload(len: u32) -> Vec<u8> {
	let mut data_len = len.saturating_sub(PAYLOAD_OVERHEAD);
	loop {
		let encoded = vec![Tensor {
			elem: ElemType::U8,
			shape: vec![data_len],
			data: vec![7u8; data_len as usize],
		}]
		.encode();
		if encoded.len() as u32 >= len || data_len >= len {
			return encoded;
		}
		data_len += 1;
	}
}

fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
	let who: T::AccountId = account(name, index, 0);
	fund::<T>(&who);
	who
}

fn fund<T: Config>(who: &T::AccountId) {
	let amount = T::MinWorkerStake::get()
		.saturating_mul(1_000u32.into())
		.saturating_add(Pallet::<T>::max_verification_fee(
			VerificationMode::Zk,
			T::MaxInputLen::get(),
		))
		.saturating_add(T::Currency::minimum_balance().saturating_mul(1_000u32.into()))
		.saturating_add(channel_deposit::<T>());
	T::Currency::set_balance(who, amount);
}

/// The deposit of the benchmarks' channels.
fn channel_deposit<T: Config>() -> BalanceOf<T> {
	T::MinChannelDeposit::get()
		.saturating_add(T::Currency::minimum_balance())
		.saturating_mul(100u32.into())
}

/// A Vanilla channel from the benchmark signer to a new worker of a release with a distinct
/// publisher; returns (channel, requester, worker).
fn channel<T: Config>() -> (ChannelId, T::AccountId, T::AccountId) {
	let release = release::<T>();
	let worker = funded::<T>("worker", 0);
	register::<T>(&worker, &[release], T::Currency::minimum_balance());
	let requester = T::ChannelBenchmarkHelper::signer();
	fund::<T>(&requester);
	let id = Pallet::<T>::do_open_channel(
		requester.clone(),
		worker.clone(),
		release,
		VerificationMode::Vanilla,
		channel_deposit::<T>(),
	)
	.expect("a valid channel");
	(id, requester, worker)
}

/// A receipt that can be disputed, with what opening it takes.
struct Disputable<T: Config> {
	channel: ChannelId,
	receipt: Receipt,
	signature: T::ChannelSignature,
	request: Vec<u8>,
	response: Vec<u8>,
	proof: Vec<H256>,
}

/// Receipts in a benchmark batch: a proof of ten siblings.
const BATCH: usize = 1024;

/// A channel to the benchmark signer as worker, its batches full and within their window, the
/// newest of `BATCH` receipts whose first (the worst to find) is disputable, for a request of
/// `r` bytes and a response of `s`.
fn disputable<T: Config>(r: u32, s: u32) -> Disputable<T> {
	let release = release::<T>();
	let worker = T::ChannelBenchmarkHelper::signer();
	fund::<T>(&worker);
	register::<T>(&worker, &[release], T::Currency::minimum_balance());
	let requester = funded::<T>("requester", 0);
	let id = Pallet::<T>::do_open_channel(
		requester,
		worker.clone(),
		release,
		VerificationMode::Vanilla,
		channel_deposit::<T>(),
	)
	.expect("a valid channel");
	fill_batches::<T>(id, T::MaxOpenBatches::get() - 1);
	let (request, response) = (payload(r), payload(s));
	let label = |b: u8| {
		vec![b; opg_primitives::channel::MAX_LABEL_LEN as usize]
			.try_into()
			.expect("the bound")
	};
	let seq = T::MaxOpenBatches::get() as u64;
	let receipt = Receipt {
		channel: id,
		seq,
		release,
		request_hash: opg_primitives::payload_hash(&request),
		response_hash: opg_primitives::payload_hash(&response),
		engine: label(b'e'),
		device_class: label(b'd'),
		unix_ms: u64::MAX,
	};
	let mut leaves: Vec<H256> = (0..BATCH as u64)
		.map(|i| opg_primitives::payload_hash(&i.to_le_bytes()))
		.collect();
	leaves[0] = receipt_leaf(&receipt);
	let batch = Batch {
		root: batch_root(&leaves),
		first_seq: seq,
		last_seq: seq + BATCH as u64 - 1,
		committed_at: frame_system::Pallet::<T>::block_number(),
	};
	Channels::<T>::mutate(id, |c| {
		let c = c.as_mut().expect("exists");
		c.batches.try_push(batch).expect("one short of full");
		c.last_seq = batch.last_seq;
	});
	let signature =
		T::ChannelBenchmarkHelper::sign(&worker, &Pallet::<T>::receipt_payload(&receipt));
	let proof = batch_proof(&leaves, 0).expect("a leaf of the batch");
	Disputable { channel: id, receipt, signature, request, response, proof }
}

/// Challenges `d`'s receipt from a funded account; returns the dispute's key.
fn challenged<T: Config>(d: &Disputable<T>) -> DisputeKey {
	let challenger = funded::<T>("challenger", 0);
	Pallet::<T>::do_challenge(
		challenger,
		d.receipt.clone(),
		d.signature.clone(),
		&d.request,
		&d.response,
	)
	.expect("a valid challenge");
	(d.channel, d.receipt.seq, receipt_leaf(&d.receipt))
}

/// Fills a channel's batches, all committed now, up to `n`; the last redeemed voucher is the
/// `n`th (nothing paid).
fn fill_batches<T: Config>(id: ChannelId, n: u32) {
	let now = frame_system::Pallet::<T>::block_number();
	Channels::<T>::mutate(id, |c| {
		let c = c.as_mut().expect("exists");
		for seq in 1..=n as u64 {
			let batch = Batch {
				root: H256::repeat_byte(1),
				first_seq: seq,
				last_seq: seq,
				committed_at: now,
			};
			c.batches.try_push(batch).expect("within MaxOpenBatches");
		}
		c.last_seq = n as u64;
	});
}

fn modes<T: Config>() -> ModeSet {
	let supported: Vec<_> = VerificationMode::ALL
		.into_iter()
		.filter(|m| T::Verifier::supports(*m))
		.collect();
	ModeSet::of(&supported)
}

fn release<T: Config>() -> ReleaseId {
	let publisher: T::AccountId = funded::<T>("publisher", 0);
	T::BenchmarkHelper::release(&publisher, modes::<T>())
}

fn register<T: Config>(who: &T::AccountId, releases: &[ReleaseId], price: BalanceOf<T>) {
	Pallet::<T>::register_worker(
		RawOrigin::Signed(who.clone()).into(),
		T::MinWorkerStake::get(),
		releases.to_vec().try_into().expect("within MaxServedReleases"),
		modes::<T>(),
		price,
		T::MaxWorkerCapacity::get(),
		Hardware::Gpu,
	)
	.expect("valid registration");
}

/// Fills `release`'s pool with `n` workers.
fn fill_pool<T: Config>(release: ReleaseId, n: u32) -> Vec<T::AccountId> {
	(0..n)
		.map(|i| {
			let w = funded::<T>("pool", i + release * 1_000);
			register::<T>(&w, &[release], T::Currency::minimum_balance());
			w
		})
		.collect()
}

/// The fee that every pool worker of the benchmarks (priced at the minimum balance) takes.
fn max_fee<T: Config>() -> BalanceOf<T> {
	T::Currency::minimum_balance()
}

/// A Vanilla job with the largest input, queued for its draw.
fn pending_job<T: Config>(release: ReleaseId) -> JobId {
	pending_job_with_fee::<T>(release, max_fee::<T>())
}

/// A Vanilla job with the largest input and `max_fee`, queued for its draw.
fn pending_job_with_fee<T: Config>(release: ReleaseId, max_fee: BalanceOf<T>) -> JobId {
	let requester = funded::<T>("requester", 0);
	let input = payload(T::MaxInputLen::get()).try_into().expect("fits MaxInputLen");
	Pallet::<T>::do_submit_job(requester, release, VerificationMode::Vanilla, input, max_fee, None)
		.expect("an eligible worker")
}

/// A new randomness round, as the next block's relay parent brings.
fn new_round<T: Config>() {
	let (round, _) = Randomness::<T>::get();
	Pallet::<T>::note_randomness(round + 1, [round as u8; 32]);
}

/// A Vanilla job with the largest input, assigned to a worker; returns (job, worker).
fn open_job<T: Config>(release: ReleaseId) -> (JobId, T::AccountId) {
	let job = pending_job::<T>(release);
	new_round::<T>();
	Pallet::<T>::assign_pending(frame_system::Pallet::<T>::block_number(), &mut WeightMeter::new());
	(job, Jobs::<T>::get(job).expect("just drawn").worker)
}

/// An open job with a stored result of the largest size, waiting for verification.
fn submitted_job<T: Config>(release: ReleaseId) -> JobId {
	let (job, _) = open_job::<T>(release);
	let output: BoundedVec<u8, T::MaxOutputLen> =
		payload(T::MaxOutputLen::get()).try_into().expect("fits MaxOutputLen");
	let evidence =
		Evidence::ZkProof(vec![1u8; T::MaxEvidenceLen::get() as usize].try_into().expect("bound"));
	JobResults::<T>::insert(
		job,
		JobResult {
			output_hash: opg_primitives::payload_hash(&output),
			output,
			evidence,
			submitted_at: frame_system::Pallet::<T>::block_number(),
		},
	);
	Jobs::<T>::mutate(job, |j| {
		let j = j.as_mut().expect("exists");
		j.status = JobStatus::Submitted;
		j.mode = VerificationMode::Zk;
	});
	job
}

#[benchmarks]
mod benchmarks {
	use super::*;

	/// `r` releases, each with a pool one short of full.
	#[benchmark]
	fn register_worker(r: Linear<1, { T::MaxServedReleases::get() }>) {
		let releases: Vec<_> = (0..r).map(|_| release::<T>()).collect();
		for release in &releases {
			fill_pool::<T>(*release, T::MaxWorkersPerRelease::get() - 1);
		}
		let who = funded::<T>("worker", 0);

		#[extrinsic_call]
		_(
			RawOrigin::Signed(who.clone()),
			T::MinWorkerStake::get(),
			releases.clone().try_into().unwrap(),
			modes::<T>(),
			T::Currency::minimum_balance(),
			T::MaxWorkerCapacity::get(),
			Hardware::Gpu,
		);

		assert!(Workers::<T>::contains_key(&who));
	}

	/// Leaves `o` full pools and joins `n` pools one short of full.
	#[benchmark]
	fn update_worker(
		o: Linear<1, { T::MaxServedReleases::get() }>,
		n: Linear<1, { T::MaxServedReleases::get() }>,
	) {
		let old: Vec<_> = (0..o).map(|_| release::<T>()).collect();
		let new: Vec<_> = (0..n).map(|_| release::<T>()).collect();
		for release in &old {
			fill_pool::<T>(*release, T::MaxWorkersPerRelease::get() - 1);
		}
		for release in &new {
			fill_pool::<T>(*release, T::MaxWorkersPerRelease::get() - 1);
		}
		let who = funded::<T>("worker", 0);
		register::<T>(&who, &old, T::Currency::minimum_balance());

		#[extrinsic_call]
		_(
			RawOrigin::Signed(who.clone()),
			new.clone().try_into().unwrap(),
			modes::<T>(),
			T::Currency::minimum_balance(),
			1,
			Hardware::Cpu,
		);

		assert_eq!(Workers::<T>::get(&who).unwrap().releases.into_inner(), new);
	}

	#[benchmark]
	fn bond_extra() {
		let who = funded::<T>("worker", 0);
		register::<T>(&who, &[release::<T>()], T::Currency::minimum_balance());

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), T::MinWorkerStake::get());

		assert!(Workers::<T>::get(&who).unwrap().stake > T::MinWorkerStake::get());
	}

	#[benchmark]
	fn pause_worker() {
		let who = funded::<T>("worker", 0);
		register::<T>(&who, &[release::<T>()], T::Currency::minimum_balance());

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));

		assert_eq!(Workers::<T>::get(&who).unwrap().status, WorkerStatus::Paused);
	}

	#[benchmark]
	fn resume_worker() {
		let who = funded::<T>("worker", 0);
		register::<T>(&who, &[release::<T>()], T::Currency::minimum_balance());
		Pallet::<T>::pause_worker(RawOrigin::Signed(who.clone()).into()).unwrap();

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));

		assert_eq!(Workers::<T>::get(&who).unwrap().status, WorkerStatus::Active);
	}

	/// Leaves `r` full pools.
	#[benchmark]
	fn unregister_worker(r: Linear<1, { T::MaxServedReleases::get() }>) {
		let releases: Vec<_> = (0..r).map(|_| release::<T>()).collect();
		for release in &releases {
			fill_pool::<T>(*release, T::MaxWorkersPerRelease::get() - 1);
		}
		let who = funded::<T>("worker", 0);
		register::<T>(&who, &releases, T::Currency::minimum_balance());

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));

		assert!(Workers::<T>::get(&who).unwrap().is_unbonding());
	}

	#[benchmark]
	fn withdraw_stake() {
		let who = funded::<T>("worker", 0);
		register::<T>(&who, &[release::<T>()], T::Currency::minimum_balance());
		Pallet::<T>::unregister_worker(RawOrigin::Signed(who.clone()).into()).unwrap();
		let unlock = frame_system::Pallet::<T>::block_number() + T::UnbondingPeriod::get();
		frame_system::Pallet::<T>::set_block_number(unlock);

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));

		assert!(!Workers::<T>::contains_key(&who));
	}

	/// An input of `i` bytes; `w` eligible workers to draw from.
	#[benchmark]
	fn submit_job(
		i: Linear<64, { T::MaxInputLen::get() }>,
		w: Linear<1, { T::MaxWorkersPerRelease::get() }>,
	) {
		let release = release::<T>();
		fill_pool::<T>(release, w);
		let requester = funded::<T>("requester", 0);
		let input: BoundedVec<u8, T::MaxInputLen> = payload(i).try_into().unwrap();
		let job = NextJobId::<T>::get();

		#[extrinsic_call]
		_(
			RawOrigin::Signed(requester),
			release,
			VerificationMode::Vanilla,
			input,
			max_fee::<T>(),
			None,
		);

		assert!(PendingJobs::<T>::contains_key(job));
	}

	/// `on_poll` with nothing to draw.
	#[benchmark]
	fn on_poll_base() {
		let now = frame_system::Pallet::<T>::block_number();
		#[block]
		{
			Pallet::<T>::assign_pending(now, &mut WeightMeter::new());
		}
	}

	/// One draw from a pool of `w` workers, all of which can take the job (each read and
	/// checked), for a job with the largest input.
	#[benchmark]
	fn assign_job(w: Linear<1, { T::MaxWorkersPerRelease::get() }>) {
		let release = release::<T>();
		fill_pool::<T>(release, w);
		// A max fee above the price: the draw releases the difference.
		let job = pending_job_with_fee::<T>(release, max_fee::<T>().saturating_mul(2u32.into()));
		new_round::<T>();
		let now = frame_system::Pallet::<T>::block_number();
		#[block]
		{
			Pallet::<T>::assign_pending(now, &mut WeightMeter::new());
		}
		assert!(Jobs::<T>::contains_key(job));
	}

	/// A pending job no worker can take at its draw: cancelled and refunded.
	#[benchmark]
	fn cancel_job() {
		let release = release::<T>();
		let workers = fill_pool::<T>(release, 1);
		let job = pending_job::<T>(release);
		Pallet::<T>::pause_worker(RawOrigin::Signed(workers[0].clone()).into())
			.expect("active worker");
		new_round::<T>();
		let now = frame_system::Pallet::<T>::block_number();
		#[block]
		{
			Pallet::<T>::assign_pending(now, &mut WeightMeter::new());
		}
		assert!(!PendingJobs::<T>::contains_key(job) && !Jobs::<T>::contains_key(job));
	}

	/// Stores an output of `o` bytes and evidence of `e` bytes and queues it (ZK path).
	/// Settlement and verification are weighed separately.
	#[benchmark]
	fn submit_result(
		o: Linear<16, { T::MaxOutputLen::get() }>,
		e: Linear<0, { T::MaxEvidenceLen::get() }>,
	) {
		let release = release::<T>();
		fill_pool::<T>(release, 1);
		let (job, worker) = open_job::<T>(release);
		Jobs::<T>::mutate(job, |j| j.as_mut().unwrap().mode = VerificationMode::Zk);
		// Fill the queue up to one below its bound.
		for n in 0..T::MaxQueueLen::get().saturating_sub(1) {
			Pallet::<T>::enqueue(u64::MAX - n as u64);
		}
		let output: BoundedVec<u8, T::MaxOutputLen> = payload(o).try_into().unwrap();
		let evidence = Evidence::ZkProof(vec![1u8; e as usize].try_into().unwrap());

		#[extrinsic_call]
		_(RawOrigin::Signed(worker), job, output, evidence);

		assert_eq!(Jobs::<T>::get(job).unwrap().status, JobStatus::Submitted);
	}

	#[benchmark]
	fn reject_job() {
		let release = release::<T>();
		fill_pool::<T>(release, 1);
		let (job, worker) = open_job::<T>(release);

		#[extrinsic_call]
		_(RawOrigin::Signed(worker), job, RejectReason::BadInput);

		assert!(Jobs::<T>::get(job).unwrap().ended.is_some());
	}

	/// Reading the largest result and input for verification; verifier and settlement are
	/// separate.
	#[benchmark]
	fn verify_result() {
		let release = release::<T>();
		fill_pool::<T>(release, 1);
		let job = submitted_job::<T>(release);
		let record = Jobs::<T>::get(job).unwrap();

		#[block]
		{
			let result = JobResults::<T>::get(job).unwrap();
			let input = JobInputs::<T>::get(job).unwrap();
			let info = T::Models::release_info(record.release).unwrap();
			core::hint::black_box((result, input, info));
		}
	}

	/// The costlier of settling (payments to worker and a distinct publisher, burn, refund)
	/// and failing (refund, slash) a job.
	#[benchmark]
	fn settle() {
		let release = release::<T>();
		fill_pool::<T>(release, 1);
		let job = submitted_job::<T>(release);
		let record = Jobs::<T>::get(job).unwrap();
		let now = frame_system::Pallet::<T>::block_number();

		#[block]
		{
			Pallet::<T>::settle(job, record, now);
		}

		assert!(matches!(Jobs::<T>::get(job).unwrap().status, JobStatus::Settled { .. }));
	}

	/// Visiting one agenda block.
	#[benchmark]
	fn on_initialize_base() {
		AgendaCursor::<T>::put(frame_system::Pallet::<T>::block_number());
		let now = frame_system::Pallet::<T>::block_number();

		#[block]
		{
			Pallet::<T>::service_agenda(
				now,
				&mut WeightMeter::with_limit(T::WeightInfo::on_initialize_base()),
			);
		}

		assert_eq!(AgendaCursor::<T>::get(), now + One::one());
	}

	/// One expiry: refund and slash.
	#[benchmark]
	fn on_initialize_expire() {
		let release = release::<T>();
		fill_pool::<T>(release, 1);
		let (job, _) = open_job::<T>(release);
		let record = Jobs::<T>::get(job).unwrap();
		frame_system::Pallet::<T>::set_block_number(record.deadline);

		#[block]
		{
			Pallet::<T>::process_expiry(job, record.deadline);
		}

		assert_eq!(Jobs::<T>::get(job).unwrap().status, JobStatus::Expired);
	}

	/// One pruning of an ended job with the largest result.
	#[benchmark]
	fn on_initialize_prune() {
		let release = release::<T>();
		fill_pool::<T>(release, 1);
		let job = submitted_job::<T>(release);
		let record = Jobs::<T>::get(job).unwrap();
		Pallet::<T>::settle(job, record, frame_system::Pallet::<T>::block_number());

		#[block]
		{
			Pallet::<T>::prune(job);
		}

		assert!(!Jobs::<T>::contains_key(job));
	}

	/// `on_idle` with an empty queue.
	#[benchmark]
	fn on_idle_base() {
		let now = frame_system::Pallet::<T>::block_number();

		#[block]
		{
			Pallet::<T>::on_idle(now, Weight::MAX);
		}
	}

	/// Popping one queue entry whose job was already verified (the per-entry cost besides
	/// verification and settlement).
	#[benchmark]
	fn on_idle_verify() {
		let release = release::<T>();
		fill_pool::<T>(release, 1);
		let job = submitted_job::<T>(release);
		Pallet::<T>::enqueue(job);
		Jobs::<T>::mutate(job, |j| j.as_mut().unwrap().status = JobStatus::Failed);
		let mut meter = WeightMeter::new();

		#[block]
		{
			Pallet::<T>::service_queue(&mut meter);
		}

		assert_eq!(QueueHead::<T>::get(), QueueTail::<T>::get());
	}

	/// Anyone's pruning of an ended job with the largest result, its agenda entry removed.
	#[benchmark]
	fn prune_job() {
		let release = release::<T>();
		fill_pool::<T>(release, 1);
		let job = submitted_job::<T>(release);
		let record = Jobs::<T>::get(job).unwrap();
		let now = frame_system::Pallet::<T>::block_number();
		Pallet::<T>::settle(job, record, now);
		frame_system::Pallet::<T>::set_block_number(now + T::RetentionPeriod::get());
		let caller = funded::<T>("caller", 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), job);

		assert!(!Jobs::<T>::contains_key(job));
	}

	#[benchmark]
	fn set_min_timeouts() {
		let who = funded::<T>("worker", 0);
		register::<T>(&who, &[release::<T>()], T::Currency::minimum_balance());
		let max = T::MaxJobTimeout::get();
		let min_timeouts = MinTimeouts { vanilla: max, tee: max, zk: max };

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), min_timeouts);

		assert_eq!(Workers::<T>::get(&who).unwrap().min_timeouts, min_timeouts);
	}

	#[benchmark]
	fn set_token_prices() {
		let who = funded::<T>("worker", 0);
		register::<T>(&who, &[release::<T>()], T::Currency::minimum_balance());
		let prices = TokenPrices {
			prompt_per_1k: T::Currency::minimum_balance(),
			completion_per_1k: T::Currency::minimum_balance(),
		};

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), prices);

		assert_eq!(Workers::<T>::get(&who).unwrap().token_prices, prices);
	}

	/// A new channel: the index and the hold written.
	#[benchmark]
	fn open_channel() {
		let release = release::<T>();
		let worker = funded::<T>("worker", 0);
		register::<T>(&worker, &[release], T::Currency::minimum_balance());
		let requester = funded::<T>("requester", 0);
		let deposit = channel_deposit::<T>();

		#[extrinsic_call]
		_(
			RawOrigin::Signed(requester.clone()),
			worker.clone(),
			release,
			VerificationMode::Vanilla,
			deposit,
		);

		assert!(ChannelIndex::<T>::contains_key((&requester, &worker, release)));
	}

	#[benchmark]
	fn top_up_channel() {
		let (id, requester, _) = channel::<T>();
		let amount = T::Currency::minimum_balance();

		#[extrinsic_call]
		_(RawOrigin::Signed(requester), id, amount);

		assert_eq!(Channels::<T>::get(id).unwrap().deposit, channel_deposit::<T>() + amount);
	}

	/// A voucher redeemed with a royalty to a distinct publisher, one signature checked, and
	/// the channel's batches one short of full, all within their window.
	#[benchmark]
	fn redeem() {
		let (id, requester, worker) = channel::<T>();
		let open = T::MaxOpenBatches::get() - 1;
		fill_batches::<T>(id, open);
		let seq = open as u64 + 1;
		let flat = T::VerificationFees::get().flat.of(VerificationMode::Vanilla);
		let voucher = opg_primitives::channel::Voucher {
			channel: id,
			seq,
			cumulative_pay: T::Currency::minimum_balance().saturating_mul(20u32.into()),
			cumulative_burn: flat.saturating_mul(seq.saturated_into()),
			request_hash: H256::repeat_byte(3),
		};
		let signature =
			T::ChannelBenchmarkHelper::sign(&requester, &Pallet::<T>::voucher_payload(&voucher));

		#[extrinsic_call]
		_(RawOrigin::Signed(worker), id, voucher, signature, H256::repeat_byte(4));

		assert_eq!(Channels::<T>::get(id).unwrap().last_seq, seq);
	}

	#[benchmark]
	fn close_channel() {
		let (id, requester, _) = channel::<T>();

		#[extrinsic_call]
		_(RawOrigin::Signed(requester), id);

		assert!(Channels::<T>::get(id).unwrap().closing_at.is_some());
	}

	/// A closed channel with a full list of batches, all out of their window.
	#[benchmark]
	fn finish_close() {
		let (id, requester, _) = channel::<T>();
		fill_batches::<T>(id, T::MaxOpenBatches::get());
		Pallet::<T>::do_close(requester, id).expect("the requester closes");
		let at = Pallet::<T>::channel_closable_at(&Channels::<T>::get(id).unwrap()).unwrap();
		frame_system::Pallet::<T>::set_block_number(at);
		let caller = funded::<T>("caller", 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), id);

		assert!(!Channels::<T>::contains_key(id));
	}

	/// A challenge of the last receipt of a channel's newest batch (the others full), with the
	/// largest labels, a request and response of `r` and `s` bytes, and the price read back.
	#[benchmark]
	fn challenge_receipt(
		r: Linear<1, { T::MaxInputLen::get() }>,
		s: Linear<1, { T::MaxOutputLen::get() }>,
	) {
		let d = disputable::<T>(r, s);
		let challenger = funded::<T>("challenger", 0);
		let key = (d.channel, d.receipt.seq, receipt_leaf(&d.receipt));

		#[extrinsic_call]
		_(
			RawOrigin::Signed(challenger),
			d.receipt.clone(),
			d.signature.clone(),
			d.request.try_into().expect("within the bound"),
			d.response.try_into().expect("within the bound"),
		);

		assert!(Disputes::<T>::contains_key(key));
	}

	/// An opening that closes both an audit and a challenge of the receipt (burning the bond),
	/// with the longest proof of a benchmark batch. The enclave check of a TEE channel is
	/// charged on top (`ResultVerifier::weight`).
	#[benchmark]
	fn open_receipt(
		r: Linear<1, { T::MaxInputLen::get() }>,
		s: Linear<1, { T::MaxOutputLen::get() }>,
	) {
		let d = disputable::<T>(r, s);
		let key = challenged::<T>(&d);
		let mut audit = Disputes::<T>::get(key).expect("just opened");
		audit.kind = DisputeKind::Audit;
		Pallet::<T>::open_dispute((d.channel, d.receipt.seq, H256::zero()), audit);
		let caller = funded::<T>("caller", 0);

		#[extrinsic_call]
		_(
			RawOrigin::Signed(caller),
			d.receipt.clone(),
			d.signature.clone(),
			None,
			d.request.try_into().expect("within the bound"),
			d.response.try_into().expect("within the bound"),
			d.proof.try_into().expect("within the bound"),
		);

		assert!(Disputes::<T>::iter().next().is_none());
	}

	/// Drawing `a` audits from a queued batch of `a` receipts.
	#[benchmark]
	fn draw_audits(a: Linear<1, { T::AuditsPerBatch::get().max(1) }>) {
		let d = disputable::<T>(1, 1);
		let batch = Batch {
			root: H256::repeat_byte(5),
			first_seq: 1,
			last_seq: a as u64,
			committed_at: frame_system::Pallet::<T>::block_number(),
		};
		Pallet::<T>::queue_audit(d.channel, batch);
		new_round::<T>();

		#[block]
		{
			Pallet::<T>::draw_audits(&mut WeightMeter::new());
		}

		assert_eq!(Disputes::<T>::iter().count() as u32, a.min(T::AuditsPerBatch::get()));
	}

	/// A challenge unanswered at its deadline: the bond released, the requester repaid from
	/// the slash, the rest burned, the worker paused below the minimum stake.
	#[benchmark]
	fn on_initialize_dispute() {
		let d = disputable::<T>(1, 1);
		let key = challenged::<T>(&d);

		#[block]
		{
			Pallet::<T>::process_dispute_deadline(key);
		}

		assert!(!Disputes::<T>::contains_key(key));
	}

	/// The longest endpoint.
	#[benchmark]
	fn set_endpoint() {
		let who = funded::<T>("worker", 0);
		register::<T>(&who, &[release::<T>()], T::Currency::minimum_balance());
		let mut url = b"https://".to_vec();
		url.resize(T::MaxEndpointLen::get() as usize, b'w');
		let url: BoundedVec<u8, T::MaxEndpointLen> = url.try_into().expect("the bound");

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), url);

		assert!(Endpoints::<T>::contains_key(&who));
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_bench_ext(), crate::mock::Test);
}
