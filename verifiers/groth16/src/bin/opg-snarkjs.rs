//! Converts snarkjs Groth16 files to OPG's binary forms, printed as 0x-hex for polkadot.js apps
//! or `@polkadot/api`:
//!
//!   opg-snarkjs key verification_key.json     # for zk verifying-key registration
//!   opg-snarkjs proof proof.json              # 128-byte proof
//!   opg-snarkjs public public.json            # concatenated 32-byte big-endian inputs
//!   opg-snarkjs verify verification_key.json proof.json public.json
use opg_groth16::{encode_public_input, snarkjs, verify};
use std::process::ExitCode;

fn hex(bytes: &[u8]) -> String {
	let mut s = String::from("0x");
	for b in bytes {
		s.push_str(&format!("{b:02x}"));
	}
	s
}

fn run(args: &[String]) -> Result<String, String> {
	let read = |path: &String| std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"));
	let err = |e: snarkjs::Error| e.to_string();
	match args {
		[cmd, path] if cmd == "key" => {
			let key = snarkjs::verifying_key(&read(path)?).map_err(err)?;
			key.encode().map(|b| hex(&b)).map_err(|e| format!("{e:?}"))
		},
		[cmd, path] if cmd == "proof" =>
			Ok(hex(&snarkjs::proof(&read(path)?).map_err(err)?.encode())),
		[cmd, path] if cmd == "public" => {
			let inputs = snarkjs::public_inputs(&read(path)?).map_err(err)?;
			Ok(hex(&inputs.iter().flat_map(encode_public_input).collect::<Vec<_>>()))
		},
		[cmd, key, proof, public] if cmd == "verify" => {
			let key = snarkjs::verifying_key(&read(key)?).map_err(err)?;
			let proof = snarkjs::proof(&read(proof)?).map_err(err)?;
			let inputs = snarkjs::public_inputs(&read(public)?).map_err(err)?;
			verify(&key.prepare(), &proof, &inputs)
				.map(|()| "valid".into())
				.map_err(|e| format!("{e:?}"))
		},
		_ =>
			Err("usage: opg-snarkjs key|proof|public FILE, or opg-snarkjs verify KEY PROOF PUBLIC"
				.into()),
	}
}

fn main() -> ExitCode {
	let args: Vec<String> = std::env::args().skip(1).collect();
	match run(&args) {
		Ok(out) => {
			println!("{out}");
			ExitCode::SUCCESS
		},
		Err(e) => {
			eprintln!("error: {e}");
			ExitCode::FAILURE
		},
	}
}
