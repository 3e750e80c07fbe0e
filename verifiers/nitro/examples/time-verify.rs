//! Native timing of `verify` on a document: `cargo run --release -p opg-nitro --example
//! time-verify -- DOC NOW_MS` (scripts/bench/verifiers.sh prints it next to the wasm figure).
fn main() {
	let args: Vec<String> = std::env::args().skip(1).collect();
	let doc = std::fs::read(&args[0]).expect("document");
	let now: u64 = args[1].parse().expect("now in ms");
	opg_nitro::verify(&doc, &[opg_nitro::AWS_NITRO_ROOT_G1], now).expect("valid document");
	let runs = 100;
	let start = std::time::Instant::now();
	for _ in 0..runs {
		opg_nitro::verify(&doc, &[opg_nitro::AWS_NITRO_ROOT_G1], now).unwrap();
	}
	let ms = start.elapsed().as_secs_f64() * 1e3 / runs as f64;
	println!(
		"nitro: attestation document ({} B), native  mean {ms:.2} ms  ({runs} runs)",
		doc.len()
	);
}
