//! [`PrioritizeAnswers`]: the transaction extension that keeps a crowded chain from making an
//! honest worker miss its deadline (and be slashed) behind transactions anyone can send.
//!
//! Answers (`submit_result`, `reject_job`) are `Operational`: they may use the part of each
//! block that ordinary (`Normal`) transactions cannot fill. That room is only worth something if
//! nobody else can take it, so this extension lets an answer into the pool, and into a block,
//! only while the call would accept it: sent by the job's assigned worker, the job waiting for
//! its answer, the deadline not passed. Such an answer gets the highest pool priority and
//! leaves the pool when its deadline passes. (On this 18-decimal token, the fee extension's
//! priority already saturates at a tip of 1 OPG, so priority alone would not set answers
//! apart; the reserved room does.)

use crate::{pallet::*, types::JobStatus, JobOf};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use core::marker::PhantomData;
use polkadot_sdk::{
	frame_support::{pallet_prelude::*, traits::IsSubType, DefaultNoBound},
	frame_system,
	sp_runtime::{
		impl_tx_ext_default,
		traits::{
			AsSystemOriginSigner, DispatchInfoOf, Dispatchable, SaturatedConversion, Saturating,
			TransactionExtension,
		},
		transaction_validity::{InvalidTransaction, TransactionPriority, ValidTransaction},
	},
};
use scale_info::TypeInfo;

/// Priority of an answer the chain will accept: the highest there is.
pub const ANSWER_PRIORITY: TransactionPriority = TransactionPriority::MAX;

/// Why an answer is not a valid transaction (`InvalidTransaction::Custom`).
pub mod invalid_answer {
	/// No job with this id.
	pub const UNKNOWN_JOB: u8 = 1;
	/// The signer is not the job's assigned worker.
	pub const NOT_ASSIGNED_WORKER: u8 = 2;
	/// The job is not waiting for an answer (answered or ended).
	pub const NOT_WAITING: u8 = 3;
	/// The job's deadline has passed.
	pub const DEADLINE_PASSED: u8 = 4;
}

/// Admits `submit_result` and `reject_job` only from a job's assigned worker while the job
/// waits for its answer, with the highest priority until the deadline. Other transactions pass
/// unchanged. Encodes to nothing.
#[derive(Encode, Decode, DecodeWithMemTracking, DefaultNoBound, Clone, Eq, PartialEq, TypeInfo)]
#[scale_info(skip_type_params(T))]
pub struct PrioritizeAnswers<T>(PhantomData<T>);

impl<T> PrioritizeAnswers<T> {
	/// The extension (it has no parameters).
	pub fn new() -> Self {
		Self(PhantomData)
	}
}

impl<T> core::fmt::Debug for PrioritizeAnswers<T> {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		write!(f, "PrioritizeAnswers")
	}
}

impl<T: Config> PrioritizeAnswers<T>
where
	<T as frame_system::Config>::RuntimeCall: IsSubType<Call<T>>,
{
	/// The job an answer is for, if `call` is an answer.
	fn answered_job(call: &<T as frame_system::Config>::RuntimeCall) -> Option<u64> {
		match call.is_sub_type()? {
			Call::submit_result { job, .. } | Call::reject_job { job, .. } => Some(*job),
			_ => None,
		}
	}
}

impl<T: Config + Send + Sync> TransactionExtension<<T as frame_system::Config>::RuntimeCall>
	for PrioritizeAnswers<T>
where
	<T as frame_system::Config>::RuntimeCall: IsSubType<Call<T>>
		+ Dispatchable<RuntimeOrigin = <T as frame_system::Config>::RuntimeOrigin>,
	<T as frame_system::Config>::RuntimeOrigin: AsSystemOriginSigner<T::AccountId> + Clone,
{
	const IDENTIFIER: &'static str = "PrioritizeAnswers";
	type Implicit = ();
	type Val = ();
	type Pre = ();

	fn weight(&self, call: &<T as frame_system::Config>::RuntimeCall) -> Weight {
		match Self::answered_job(call) {
			// One read of the job record (key: twox64 hash and the id).
			Some(_) => T::DbWeight::get()
				.reads(1)
				.saturating_add(Weight::from_parts(0, 16 + JobOf::<T>::max_encoded_len() as u64)),
			None => Weight::zero(),
		}
	}

	fn validate(
		&self,
		origin: <T as frame_system::Config>::RuntimeOrigin,
		call: &<T as frame_system::Config>::RuntimeCall,
		_info: &DispatchInfoOf<<T as frame_system::Config>::RuntimeCall>,
		_len: usize,
		_self_implicit: Self::Implicit,
		_inherited_implication: &impl Encode,
		_source: TransactionSource,
	) -> polkadot_sdk::sp_runtime::traits::ValidateResult<
		Self::Val,
		<T as frame_system::Config>::RuntimeCall,
	> {
		let Some(job) = Self::answered_job(call) else {
			return Ok((ValidTransaction::default(), (), origin));
		};
		// Unsigned or other origins fail in the call itself (`ensure_signed`).
		let Some(who) = origin.as_system_origin_signer() else {
			return Ok((ValidTransaction::default(), (), origin));
		};
		let refuse = |code| Err(InvalidTransaction::Custom(code).into());
		let Some(record) = Jobs::<T>::get(job) else {
			return refuse(invalid_answer::UNKNOWN_JOB);
		};
		if record.worker != *who {
			return refuse(invalid_answer::NOT_ASSIGNED_WORKER);
		}
		if record.status != JobStatus::Assigned {
			return refuse(invalid_answer::NOT_WAITING);
		}
		let now = frame_system::Pallet::<T>::block_number();
		if now > record.deadline {
			return refuse(invalid_answer::DEADLINE_PASSED);
		}
		let left: u64 = record.deadline.saturating_sub(now).saturated_into();
		let valid = ValidTransaction {
			priority: ANSWER_PRIORITY,
			// Useless once the deadline has passed: the pool drops it then.
			longevity: left.saturating_add(1),
			..Default::default()
		};
		Ok((valid, (), origin))
	}

	impl_tx_ext_default!(<T as frame_system::Config>::RuntimeCall; prepare);
}
