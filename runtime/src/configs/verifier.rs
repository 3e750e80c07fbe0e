//! How the market checks TEE and ZK evidence: the enclave signature through `pallet_tee`, the
//! Groth16 proof through `pallet_zk` with public inputs recomputed from the job.

use super::*;
use crate::{Tee, Zk};
use opg_primitives::{tee_message, zk_public_inputs, Evidence, VerificationMode, ZK_PUBLIC_INPUTS};
use pallet_inference::{ResultVerifier, VerificationContext, VerifyError};
use pallet_tee::{SignatureError, WeightInfo as _};
use pallet_zk::{ProofError, WeightInfo as _};

/// TEE results: the worker's attested enclave key signed `tee_message(job, artifact, input
/// hash, output hash)`. ZK results: a proof of `zk_public_inputs(input, output)` against the
/// release's verifying key.
pub struct ResultVerifiers;

impl ResultVerifier<AccountId> for ResultVerifiers {
	fn supports(_: VerificationMode) -> bool {
		true
	}

	fn verify<M: Get<u32>>(
		context: &VerificationContext<AccountId>,
		evidence: &Evidence<M>,
	) -> Result<(), VerifyError> {
		match evidence {
			Evidence::None => Err(VerifyError::UnsupportedMode),
			Evidence::TeeSignature(signature) => {
				let message = tee_message(
					context.job,
					context.artifact,
					context.input_hash,
					context.output_hash,
				);
				Tee::check_result_signature(context.worker, &message, signature).map_err(
					|e| match e {
						SignatureError::NoEnclaveKey |
						SignatureError::KeyExpired |
						SignatureError::MeasurementRevoked => VerifyError::MissingKey,
						SignatureError::Malformed => VerifyError::Malformed,
						SignatureError::Invalid => VerifyError::Invalid,
					},
				)
			},
			Evidence::ZkProof(proof) => {
				let key = context.zk_verifying_key.ok_or(VerifyError::MissingKey)?;
				let input = context.input.ok_or(VerifyError::Malformed)?;
				let inputs = zk_public_inputs(input, context.output);
				Zk::verify(key, proof, &inputs).map_err(|e| match e {
					ProofError::UnknownKey => VerifyError::MissingKey,
					ProofError::MalformedProof | ProofError::PublicInputOutOfRange =>
						VerifyError::Malformed,
					ProofError::PublicInputCount | ProofError::InvalidProof => VerifyError::Invalid,
				})
			},
		}
	}

	fn can_answer(worker: &AccountId, mode: VerificationMode) -> bool {
		// A TEE job for a worker without a usable key would expire and slash it.
		mode != VerificationMode::Tee || Tee::has_usable_key(worker)
	}

	fn check_enclave_signature(worker: &AccountId, payload: &[u8], signature: &[u8; 64]) -> bool {
		Tee::check_result_signature(worker, payload, signature).is_ok()
	}

	fn can_answer_weight(mode: VerificationMode) -> Weight {
		match mode {
			// The key and its measurement.
			VerificationMode::Tee => <Runtime as frame_system::Config>::DbWeight::get().reads(2),
			_ => Weight::zero(),
		}
	}

	fn weight(
		mode: VerificationMode,
		input_len: u32,
		output_len: u32,
		_evidence_len: u32,
	) -> Weight {
		type TeeWeights = pallet_tee::weights::SubstrateWeight<Runtime>;
		type ZkWeights = pallet_zk::weights::SubstrateWeight<Runtime>;
		match mode {
			VerificationMode::Vanilla => Weight::zero(),
			VerificationMode::Tee => TeeWeights::check_result_signature(),
			// Releases may only reference keys of exactly this many inputs (`VerifyingKeys`).
			VerificationMode::Zk => ZkWeights::verify_proof(ZK_PUBLIC_INPUTS as u32)
				.saturating_add(ZkWeights::inference_statement(
					input_len.saturating_add(output_len),
				)),
		}
	}
}
