//! Times the executor on one model: `bench <model.onnx> <input_0.pb> [input_1.pb …] [--runs N]
//! [--device cpu|cuda:N] [--out outputs_dir]`. Prints one JSON line of figures; the inputs are
//! ONNX TensorProto files, so `scripts/bench/executor.py` can feed onnxruntime the same ones.

use opg_worker::{
	exec::{Device, Engine},
	onnx::{proto, tensor_from_proto},
};
use prost::Message;
use std::time::Instant;

fn main() {
	// As the worker does when it starts.
	opg_worker::tune_allocator();
	let mut args = std::env::args().skip(1);
	let model = args
		.next()
		.expect("usage: bench <model.onnx> <inputs…> [--runs N] [--device D]");
	let (mut inputs, mut runs, mut device, mut out) = (Vec::new(), 50usize, Device::Cpu, None);
	while let Some(a) = args.next() {
		match a.as_str() {
			"--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
			"--device" =>
				device = match args.next().as_deref() {
					Some("cpu") => Device::Cpu,
					Some(d) => Device::Cuda(
						d.trim_start_matches("cuda:").parse().expect("--device cuda:N"),
					),
					None => panic!("--device cpu|cuda:N"),
				},
			"--out" => out = args.next(),
			path => {
				let bytes = std::fs::read(path).expect("input file");
				inputs.push(
					tensor_from_proto(
						&proto::TensorProto::decode(&bytes[..]).expect("TensorProto"),
					)
					.unwrap(),
				);
			},
		}
	}
	let bytes = std::fs::read(&model).expect("model file");
	let t = Instant::now();
	let engine = Engine::load(&bytes, device).unwrap_or_else(|e| panic!("{model}: {e}"));
	let load_ms = t.elapsed().as_secs_f64() * 1e3;
	let t = Instant::now();
	let first = engine.run(&inputs).unwrap_or_else(|e| panic!("{model}: {e}"));
	let first_ms = t.elapsed().as_secs_f64() * 1e3;
	let mut times = Vec::with_capacity(runs);
	for _ in 0..runs {
		let t = Instant::now();
		std::hint::black_box(engine.run(&inputs).unwrap());
		times.push(t.elapsed().as_secs_f64() * 1e3);
	}
	times.sort_by(|a, b| a.partial_cmp(b).unwrap());
	let mean = times.iter().sum::<f64>() / runs as f64;
	let pct = |p: f64| times[((runs as f64 - 1.0) * p).round() as usize];
	if let Some(dir) = out {
		std::fs::create_dir_all(&dir).unwrap();
		for (i, t) in first.iter().enumerate() {
			// Raw little-endian data; the script knows the shapes from onnxruntime.
			std::fs::write(format!("{dir}/output_{i}.bin"), &t.data).unwrap();
		}
	}
	// Peak resident memory of the process (model, weights, the runs' tensors), from Linux.
	let peak_mib = std::fs::read_to_string("/proc/self/status")
		.ok()
		.and_then(|s| {
			let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
			line.split_whitespace().nth(1)?.parse::<f64>().ok()
		})
		.map_or(-1.0, |kib| kib / 1024.0);
	println!(
		"{{\"model\":\"{model}\",\"device\":\"{device}\",\"runs\":{runs},\"load_ms\":{load_ms:.3},\"first_ms\":{first_ms:.3},\"mean_ms\":{mean:.4},\"p50_ms\":{:.4},\"p90_ms\":{:.4},\"min_ms\":{:.4},\"peak_mib\":{peak_mib:.1}}}",
		pct(0.5),
		pct(0.9),
		times[0]
	);
}
