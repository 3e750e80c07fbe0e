//! Import of snarkjs' Groth16 files (`verification_key.json`, `proof.json`, `public.json`, curve
//! `bn128`), so circuits built with circom/snarkjs verify on OPG.
//!
//! snarkjs writes field elements as decimal strings and points as projective coordinates with
//! z = 1 (or the point at infinity with z = 0); G2 coordinates are `[c0, c1]` pairs.

use crate::{Error as VerifyError, Proof, VerifyingKey, MAX_PUBLIC_INPUTS};
use alloc::{string::String, vec::Vec};
use ark_bn254::{Fq, Fq2, Fr, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, Field, PrimeField, Zero};
use num_bigint::BigUint;
use serde_json::Value;

/// Why a snarkjs file was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
	/// Not JSON.
	Json(String),
	/// A field is missing or has the wrong type.
	Field(&'static str),
	/// `protocol` is not `groth16` or `curve` not `bn128`.
	Unsupported(String),
	/// A number is not a canonical decimal below the field modulus.
	Number(String),
	/// A point is not on the curve or not in the prime-order subgroup.
	Point(&'static str),
	/// The key or inputs break a limit of the binary form.
	Limits(VerifyError),
}

impl core::fmt::Display for Error {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		match self {
			Error::Json(e) => write!(f, "not JSON: {e}"),
			Error::Field(name) => write!(f, "missing or malformed field `{name}`"),
			Error::Unsupported(what) => write!(f, "unsupported {what} (groth16 on bn128 only)"),
			Error::Number(n) => write!(f, "not a field element: {n}"),
			Error::Point(name) => write!(f, "`{name}` is not a valid curve point"),
			Error::Limits(e) => write!(f, "{e:?}"),
		}
	}
}

impl std::error::Error for Error {}

fn parse(json: &str) -> Result<Value, Error> {
	serde_json::from_str(json).map_err(|e| Error::Json(e.to_string()))
}

fn check_header(v: &Value) -> Result<(), Error> {
	for (field, expected) in [("protocol", "groth16"), ("curve", "bn128")] {
		match v.get(field).and_then(Value::as_str) {
			Some(s) if s == expected => {},
			Some(s) => return Err(Error::Unsupported(alloc::format!("{field} {s}"))),
			None => return Err(Error::Field(field)),
		}
	}
	Ok(())
}

fn number<F: PrimeField>(v: &Value, name: &'static str) -> Result<F, Error> {
	let s = v.as_str().ok_or(Error::Field(name))?;
	let n = (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
		.then(|| s.parse::<BigUint>().ok())
		.flatten()
		.ok_or_else(|| Error::Number(s.into()))?;
	if n >= BigUint::from_bytes_le(&F::MODULUS.to_bytes_le()) {
		return Err(Error::Number(s.into()));
	}
	Ok(F::from(n))
}

fn items<'a>(v: &'a Value, name: &'static str, len: usize) -> Result<&'a [Value], Error> {
	v.as_array()
		.map(Vec::as_slice)
		.filter(|a| a.len() == len)
		.ok_or(Error::Field(name))
}

fn g1(v: &Value, name: &'static str) -> Result<G1Affine, Error> {
	let [x, y, z] = items(v, name, 3)? else { unreachable!("length checked") };
	let z: Fq = number(z, name)?;
	if z.is_zero() {
		return Ok(G1Affine::zero());
	}
	let (x, y): (Fq, Fq) = (number(x, name)?, number(y, name)?);
	// Projective (x, y, z) with snarkjs' z = 1 in practice; divide anyway.
	let z_inv = z.inverse().ok_or(Error::Point(name))?;
	let p = G1Affine::new_unchecked(x * z_inv, y * z_inv);
	(p.is_on_curve() && p.is_in_correct_subgroup_assuming_on_curve())
		.then_some(p)
		.ok_or(Error::Point(name))
}

fn fq2(v: &Value, name: &'static str) -> Result<Fq2, Error> {
	let [c0, c1] = items(v, name, 2)? else { unreachable!("length checked") };
	Ok(Fq2::new(number(c0, name)?, number(c1, name)?))
}

fn g2(v: &Value, name: &'static str) -> Result<G2Affine, Error> {
	let [x, y, z] = items(v, name, 3)? else { unreachable!("length checked") };
	let z = fq2(z, name)?;
	if z.is_zero() {
		return Ok(G2Affine::zero());
	}
	let z_inv = z.inverse().ok_or(Error::Point(name))?;
	let p = G2Affine::new_unchecked(fq2(x, name)? * z_inv, fq2(y, name)? * z_inv);
	(p.is_on_curve() && p.is_in_correct_subgroup_assuming_on_curve())
		.then_some(p)
		.ok_or(Error::Point(name))
}

/// Reads `verification_key.json`.
pub fn verifying_key(json: &str) -> Result<VerifyingKey, Error> {
	let v = parse(json)?;
	check_header(&v)?;
	let ic = v.get("IC").and_then(Value::as_array).ok_or(Error::Field("IC"))?;
	if ic.is_empty() || ic.len() > MAX_PUBLIC_INPUTS + 1 {
		return Err(Error::Limits(VerifyError::TooManyPublicInputs));
	}
	if let Some(n) = v.get("nPublic") {
		if n.as_u64() != Some(ic.len() as u64 - 1) {
			return Err(Error::Field("nPublic"));
		}
	}
	let field = |name: &'static str| v.get(name).ok_or(Error::Field(name));
	Ok(VerifyingKey {
		alpha_g1: g1(field("vk_alpha_1")?, "vk_alpha_1")?,
		beta_g2: g2(field("vk_beta_2")?, "vk_beta_2")?,
		gamma_g2: g2(field("vk_gamma_2")?, "vk_gamma_2")?,
		delta_g2: g2(field("vk_delta_2")?, "vk_delta_2")?,
		ic: ic.iter().map(|p| g1(p, "IC")).collect::<Result<_, _>>()?,
	})
}

/// Reads `proof.json`.
pub fn proof(json: &str) -> Result<Proof, Error> {
	let v = parse(json)?;
	check_header(&v)?;
	let field = |name: &'static str| v.get(name).ok_or(Error::Field(name));
	Ok(Proof {
		a: g1(field("pi_a")?, "pi_a")?,
		b: g2(field("pi_b")?, "pi_b")?,
		c: g1(field("pi_c")?, "pi_c")?,
	})
}

/// Reads `public.json` (an array of decimal strings).
pub fn public_inputs(json: &str) -> Result<Vec<Fr>, Error> {
	let v = parse(json)?;
	let list = v.as_array().ok_or(Error::Field("public inputs"))?;
	if list.len() > MAX_PUBLIC_INPUTS {
		return Err(Error::Limits(VerifyError::TooManyPublicInputs));
	}
	list.iter().map(|x| number(x, "public inputs")).collect()
}
