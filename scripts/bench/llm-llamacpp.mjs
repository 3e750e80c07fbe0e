// llama.cpp's side of scripts/bench/llm.sh: one greedy generation through node-llama-cpp,
// timed the way opg-worker generate times itself (prefill: the prompt up to the first token;
// decode: the tokens after it), printed as JSON.
import {getLlama} from "node-llama-cpp";

const [modelPath, prompt, maxTokens, threads] = process.argv.slice(2);
const t0 = performance.now();
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const ctx = await model.createContext({contextSize: 2048, threads: Number(threads), batchSize: 512});
const load = performance.now() - t0;
const seq = ctx.getSequence();
// BOS first where the model asks for one, as opg-worker does (tokenize() never adds it).
const bos = model.tokens.shouldPrependBosToken && model.tokens.bos != null ? [model.tokens.bos] : [];
const ids = [...bos, ...model.tokenize(prompt, true)];
const out = [];
const start = performance.now();
let first = 0;
for await (const t of seq.evaluate(ids, {temperature: 0})) {
  if (out.length === 0) first = performance.now();
  out.push(t);
  if (out.length >= Number(maxTokens)) break;
}
const end = performance.now();
console.log(JSON.stringify({
  engine: "llama.cpp (node-llama-cpp 3.21.1)", prompt_tokens: ids.length, completion_tokens: out.length,
  token_ids: out, load_ms: load, prefill_tokens_per_s: ids.length / ((first - start) / 1e3),
  decode_tokens_per_s: (out.length - 1) / ((end - first) / 1e3),
}));
