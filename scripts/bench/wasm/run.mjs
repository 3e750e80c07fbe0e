// Times the verifiers compiled to wasm32v1-none in Node's wasm engine (V8).
//   node run.mjs WASM NITRO_DOC NOW_MS GROTH16_KEY_HEX PROOF_HEX INPUTS_HEX
import { readFileSync } from 'node:fs';

const [wasmPath, docPath, nowMs, keyHex, proofHex, inputsHex] = process.argv.slice(2);
const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), {});
const x = instance.exports;
const put = (bytes) => {
  const ptr = x.alloc(bytes.length);
  new Uint8Array(x.memory.buffer, ptr, bytes.length).set(bytes);
  return ptr;
};
const hex = (h) => Uint8Array.from(Buffer.from(h.replace(/^0x/, ''), 'hex'));

function time(name, runs, f) {
  for (let i = 0; i < 3; i++) if (f() !== 0) throw new Error(`${name}: not valid`);
  const t = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    f();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  const mean = t.reduce((a, b) => a + b, 0) / runs;
  console.log(`${name.padEnd(44)} mean ${mean.toFixed(2)} ms  p50 ${t[runs >> 1].toFixed(2)} ms  min ${t[0].toFixed(2)} ms  (${runs} runs)`);
}

const doc = readFileSync(docPath);
const docPtr = put(doc);
time(`nitro: attestation document (${doc.length} B), 5 signatures`, 30, () => x.nitro_verify(docPtr, doc.length, BigInt(nowMs)));
if (x.nitro_learn(docPtr, doc.length, BigInt(nowMs)) !== 0) throw new Error('nitro_learn');
time('nitro: same, CAs known (2 signatures)', 30, () => x.nitro_verify_cached(docPtr, doc.length, BigInt(nowMs)));

const key = hex(keyHex), proof = hex(proofHex), inputs = hex(inputsHex);
const keyPtr = put(key), proofPtr = put(proof), inputsPtr = put(inputs);
time(`groth16: key registration (${key.length} B)`, 30, () => x.groth16_register(keyPtr, key.length));
time(`groth16: verify, ${inputs.length / 32} public inputs`, 50, () => x.groth16_verify(proofPtr, proof.length, inputsPtr, inputs.length));
