//! Keys and proofs without a circuit, for benchmarks and tests of code that stores and checks
//! them. With the trapdoor known, a valid proof of any public inputs is one scalar equation, so
//! **anyone can prove anything against these keys**: never register one on a real chain.

use crate::{Proof, VerifyingKey};
use alloc::vec::Vec;
use ark_bn254::{Fr, G1Affine, G2Affine};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::Field;

/// The `i`-th fixed scalar of `seed`'s instance.
fn scalar(seed: u64, i: u64) -> Fr {
	Fr::from(seed.wrapping_mul(1_000_003).wrapping_add(i)) * Fr::from(0x9e37_79b9_7f4a_7c15u64)
}

/// A key with `n` public inputs, a valid proof and the inputs it proves. `seed` varies the key.
pub fn instance(n: usize, seed: u64) -> (VerifyingKey, Proof, Vec<Fr>) {
	let scalar = |i| scalar(seed, i);
	let inputs: Vec<Fr> = (0..n as u64).map(|i| -Fr::from(i + 1) * scalar(200 + i)).collect();
	let (key, proof) = instance_for(&inputs, seed);
	(key, proof, inputs)
}

/// A key with `inputs.len()` public inputs and a valid proof of exactly `inputs`.
pub fn instance_for(inputs: &[Fr], seed: u64) -> (VerifyingKey, Proof) {
	let scalar = |i| scalar(seed, i);
	let (g1, g2) = (G1Affine::generator(), G2Affine::generator());
	let (alpha, beta, gamma, delta) = (scalar(1), scalar(2), scalar(3), scalar(4));
	let ic: Vec<Fr> = (0..=inputs.len() as u64).map(|i| scalar(100 + i)).collect();
	// e(A, B) = e(α, β) · e(L, γ) · e(C, δ) with L = IC₀ + Σ xᵢ·ICᵢ, all as multiples of g1, g2.
	let l = ic[0] + inputs.iter().zip(&ic[1..]).map(|(x, p)| *x * p).sum::<Fr>();
	let (r, s) = (scalar(5), scalar(6));
	let delta_inv = delta.inverse().expect("a non-zero scalar");
	let c = (r * s - alpha * beta - l * gamma) * delta_inv;
	let key = VerifyingKey {
		alpha_g1: (g1 * alpha).into_affine(),
		beta_g2: (g2 * beta).into_affine(),
		gamma_g2: (g2 * gamma).into_affine(),
		delta_g2: (g2 * delta).into_affine(),
		ic: ic.iter().map(|k| (g1 * k).into_affine()).collect(),
	};
	let proof =
		Proof { a: (g1 * r).into_affine(), b: (g2 * s).into_affine(), c: (g1 * c).into_affine() };
	(key, proof)
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn synthetic_proofs_verify_and_fail_on_other_inputs() {
		for n in [0, 1, 4, crate::MAX_PUBLIC_INPUTS] {
			let (key, proof, inputs) = instance(n, n as u64);
			let bytes = key.encode().unwrap();
			let prepared = VerifyingKey::decode(&bytes).unwrap().prepare();
			assert_eq!(crate::verify(&prepared, &proof, &inputs), Ok(()), "n = {n}");
			if n > 0 {
				let mut other = inputs.clone();
				other[n - 1] += Fr::from(1u64);
				assert_eq!(
					crate::verify(&prepared, &proof, &other),
					Err(crate::Error::InvalidProof)
				);
			}
		}
		assert_ne!(instance(2, 1).0, instance(2, 2).0);
	}
}
