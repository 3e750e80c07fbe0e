// Writes llama.cpp's answers for the LLM engine's tests (llm/tests/fixtures/): token ids of a
// multilingual text set, and greedy continuations of several prompts, from node-llama-cpp
// (llama.cpp's prebuilt CPU binaries) on the same GGUF file. Run by scripts/regen/llamacpp-ref.sh.
import {getLlama} from "node-llama-cpp";
import {readFileSync, writeFileSync} from "node:fs";

const [modelPath, casesPath, outPath] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(casesPath, "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const tokenize = cases.tokenize.map((text) => ({text, ids: Array.from(model.tokenize(text, false))}));
const generate = [];
for (const prompt of cases.generate) {
  // A prompt starts with BOS where the model asks for one, as the engine's does (tokenize()
  // alone never adds it).
  const bos = model.tokens.shouldPrependBosToken && model.tokens.bos != null ? [model.tokens.bos] : [];
  const ids = [...bos, ...model.tokenize(prompt, true)];
  // Room for the prompt and the answer (prompts longer than a sliding window need more than 512).
  const ctx = await model.createContext({contextSize: Math.max(512, ids.length + cases.max_tokens), threads: 1});
  const seq = ctx.getSequence();
  const greedy = [];
  const top = [];
  // llama.cpp stops at the model's end-of-generation tokens; so does the engine. Each step
  // also records llama.cpp's five most probable tokens (softmax of its logits).
  for await (const out of seq.evaluateWithMetadata(ids, {probabilities: true}, {temperature: 0})) {
    greedy.push(out.token);
    top.push([...out.probabilities.entries()].slice(0, 5).map(([t, p]) => [t, Number(p.toFixed(6))]));
    if (greedy.length >= cases.max_tokens) break;
  }
  await ctx.dispose();
  generate.push({prompt, prompt_ids: ids, greedy, top5: top, text: model.detokenize(greedy)});
}
const out = {reference: "llama.cpp via node-llama-cpp 3.21.1, CPU, 1 thread, temperature 0, default context options (flash attention auto)", model: modelPath.split("/").pop(),
  max_tokens: cases.max_tokens, tokenize, generate};
writeFileSync(outPath, JSON.stringify(out, null, 1) + "\n");
console.log(`wrote ${outPath}: ${tokenize.length} texts, ${generate.length} prompts`);
