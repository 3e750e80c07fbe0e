#!/usr/bin/env node
// Submits an inference job to an OPG node with @polkadot/api, waits for the worker's answer and
// prints the decoded output tensors (and the predicted class of classifier outputs), or for a
// chat the answer, its token counts and where the money went.
//
//   node scripts/client/infer.mjs                       # digits model, first reference image
//   node scripts/client/infer.mjs --case 5              # another image of models/digits/reference.json
//   node scripts/client/infer.mjs --release 0 --values 5.1,3.5,1.4,0.2 --shape 1,4
//   node scripts/client/infer.mjs --chat "What is the capital of France?"   # the first LLM release
//   node scripts/client/infer.mjs --embed "The cat sits outside." --compare "A cat is sitting out of doors."
//     # the first sentence-embedding release: the texts' embeddings and their cosine similarity
//     # (tokenized here with BERT's WordPiece: --tokenizer FILE, default the one
//     # scripts/lib/encoder-model.sh caches)
//   chat options: --system TEXT ('Answer in one short sentence.')  --max-tokens 64
//                 --temperature 0 (greedy)  --seed 0  --stop TEXT
//   options: --ws URL (ws://127.0.0.1:9944)  --suri //Bob  --max-fee 1 (OPG)  --json
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { TYPES, UNIT, chatRequest } from './opg.mjs';
import { loadWordPiece } from './wordpiece.mjs';

const { values: opts } = parseArgs({
  options: {
    ws: { type: 'string', default: process.env.OPG_WS ?? 'ws://127.0.0.1:9944' },
    suri: { type: 'string', default: '//Bob' },
    release: { type: 'string' },
    chat: { type: 'string' },
    embed: { type: 'string' },
    compare: { type: 'string', multiple: true, default: [] },
    tokenizer: { type: 'string', default: `${process.env.HOME ?? ''}/.cache/opg/models/bert-base-uncased.tokenizer.json` },
    // SmolLM2-135M in Q4_1 answers "What is the capital of France?" with Paris when told to be
    // brief; `--system ''` sends the question alone.
    system: { type: 'string', default: 'Answer in one short sentence.' },
    'max-tokens': { type: 'string', default: '64' },
    temperature: { type: 'string', default: '0' },
    seed: { type: 'string', default: '0' },
    stop: { type: 'string', multiple: true, default: [] },
    case: { type: 'string', default: '0' },
    values: { type: 'string' },
    shape: { type: 'string' },
    'max-fee': { type: 'string', default: '1' },
    timeout: { type: 'string', default: '120' },
    json: { type: 'boolean', default: false },
  },
});

const formatOpg = (v) => `${v / UNIT}.${(v % UNIT).toString().padStart(18, '0').replace(/0+$/, '') || '0'} OPG`;

function input(release) {
  if (opts.values) {
    const values = opts.values.split(',').map(Number);
    const shape = (opts.shape ?? `1,${values.length}`).split(',').map(Number);
    return { shape, values, label: null };
  }
  const reference = JSON.parse(readFileSync(new URL('../../models/digits/reference.json', import.meta.url)));
  if (release.params.artifact.toHex() !== reference.blake2_256) {
    throw new Error(`release ${opts.release} is not the digits model: pass --values and --shape`);
  }
  const c = reference.cases[Number(opts.case)];
  if (!c) throw new Error(`--case must be 0..${reference.cases.length - 1}`);
  return { shape: [1, 1, 8, 8], values: c.pixels, label: c.label };
}

// An IEEE binary16 value from its bits.
function half(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function decodeOutput(api, bytes) {
  return api.createType('Vec<OpgTensor>', bytes).map((t) => {
    const shape = t.shape.map((d) => d.toNumber());
    const raw = t.data.toU8a(true);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const elem = t.elem.toString();
    const size = { F32: 4, F64: 8, I8: 1, U8: 1, I32: 4, I64: 8, Bool: 1, F16: 2 }[elem];
    const read = {
      F32: (o) => view.getFloat32(o, true), F64: (o) => view.getFloat64(o, true), I8: (o) => view.getInt8(o),
      U8: (o) => view.getUint8(o), I32: (o) => view.getInt32(o, true), I64: (o) => Number(view.getBigInt64(o, true)),
      Bool: (o) => view.getUint8(o), F16: (o) => half(view.getUint16(o, true)),
    }[elem];
    const values = Array.from({ length: raw.length / size }, (_, i) => read(i * size));
    return { elem, shape, values };
  });
}

// A text encoder's position embeddings end at 512 tokens.
const MAX_TOKENS = 512;

// The texts as a padded batch of int64 `input_ids` and `attention_mask` tensors.
function tokenTensors(texts) {
  const tok = loadWordPiece(opts.tokenizer);
  const ids = texts.map((t) => tok.encode(t));
  const width = Math.max(...ids.map((r) => r.length));
  if (width > MAX_TOKENS) throw new Error(`a text of ${width} tokens: the encoder takes at most ${MAX_TOKENS}`);
  const pad = (r, v) => [...r, ...Array(width - r.length).fill(v)];
  const i64 = (rows) => u8aToHex(new Uint8Array(new BigInt64Array(rows.flat().map(BigInt)).buffer));
  const shape = [texts.length, width];
  return [
    { elem: 'I64', shape, data: i64(ids.map((r) => pad(r, 0))) },
    { elem: 'I64', shape, data: i64(ids.map((r) => pad(r.map(() => 1), 0))) },
  ];
}

const cosine = (a, b) => {
  const dot = (x, y) => x.reduce((s, v, i) => s + v * y[i], 0);
  return dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
};

// The first release (of the first 64 ids) whose output is a sentence embedding.
async function firstEncoderRelease(api) {
  for (let id = 0; id < 64; id++) {
    const r = await api.call.inferenceApi.release(id);
    const out = r.isSome ? r.unwrap().params.outputs : [];
    if (out.length === 1 && new TextDecoder().decode(out[0].name.toU8a(true)) === 'sentence_embedding') return id;
  }
  throw new Error('no sentence-embedding release found: pass --release');
}

// The first release (of the first 64 ids) that is an LLM's.
async function firstLlmRelease(api) {
  for (let id = 0; id < 64; id++) {
    const r = await api.call.inferenceApi.release(id);
    if (r.isSome && r.unwrap().params.llm.isSome) return id;
  }
  throw new Error('no LLM release found: pass --release');
}

async function main() {
  await cryptoWaitReady();
  const api = await ApiPromise.create({ provider: new WsProvider(opts.ws), throwOnConnect: true, noInitWarn: true, types: TYPES });
  try {
    const signer = new Keyring({ type: 'sr25519' }).addFromUri(opts.suri);
    const chat = opts.chat !== undefined;
    const embed = opts.embed !== undefined;
    const releaseId = opts.release !== undefined ? Number(opts.release)
      : chat ? await firstLlmRelease(api) : embed ? await firstEncoderRelease(api) : 1;
    const release = (await api.call.inferenceApi.release(releaseId)).unwrap();
    if (chat !== release.params.llm.isSome) {
      throw new Error(`release ${releaseId} is ${chat ? 'not an LLM: drop --chat' : 'an LLM: use --chat TEXT'}`);
    }
    let payload;
    let label = null;
    if (chat) {
      const messages = [...(opts.system ? [{ role: 'System', content: opts.system }] : []), { role: 'User', content: opts.chat }];
      payload = chatRequest(api, messages, {
        maxTokens: Number(opts['max-tokens']), temperature: Number(opts.temperature), seed: Number(opts.seed), stop: opts.stop,
      }).toU8a();
    } else if (embed) {
      payload = api.createType('Vec<OpgTensor>', tokenTensors([opts.embed, ...opts.compare])).toU8a();
    } else {
      const { shape, values, label: l } = input(release);
      label = l;
      const data = u8aToHex(new Uint8Array(new Float32Array(values).buffer));
      payload = api.createType('Vec<OpgTensor>', [{ elem: 'F32', shape, data }]).toU8a();
    }
    // The input's own quote: for a chat, the price of its whole token budget.
    const quote = await api.call.inferenceApi.inputQuote(releaseId, 'Vanilla', u8aToHex(payload));
    if (quote.isNone) throw new Error(`no worker serves release ${releaseId} (or the input does not fit it)`);
    const maxFee = BigInt(Math.round(Number(opts['max-fee']) * 1e6)) * (UNIT / 1_000_000n);
    const started = Date.now();

    // Submit, then follow events until this job ends.
    const job = await new Promise((resolve, reject) => {
      api.tx.inference.submitJob(releaseId, 'Vanilla', u8aToHex(payload), maxFee, null)
        .signAndSend(signer, ({ status, events, dispatchError }) => {
          if (dispatchError) {
            const e = dispatchError.isModule ? api.registry.findMetaError(dispatchError.asModule) : null;
            reject(new Error(e ? `${e.section}.${e.name}: ${e.docs.join(' ')}` : dispatchError.toString()));
          } else if (status.isInBlock || status.isFinalized) {
            const ev = events.map((r) => r.event).find((e) => api.events.inference.JobQueued.is(e));
            if (ev) resolve(ev.data.job.toBigInt());
          }
        }).catch(reject);
    });
    const outcome = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`job ${job} not answered within ${opts.timeout} s`)), Number(opts.timeout) * 1000);
      api.query.system.events((records) => {
        for (const { event } of records) {
          if (event.section !== 'inference' || event.data.job?.toBigInt?.() !== job) continue;
          if (['JobSettled', 'JobRejected', 'JobExpired', 'JobFailed', 'JobCancelled'].includes(event.method)) {
            clearTimeout(timer);
            resolve(event);
          }
        }
      });
    });
    const seconds = (Date.now() - started) / 1000;
    if (outcome.method === 'JobCancelled') {
      // Never drawn: no record; refunded in full.
      const report = { job: job.toString(), release: releaseId, outcome: outcome.method, seconds,
        reason: outcome.data.reason.toString(), refund: outcome.data.refund.toString() };
      console.log(opts.json ? JSON.stringify(report) : `job ${job}: cancelled (${report.reason}), refunded ${formatOpg(BigInt(report.refund))}`);
      return 1;
    }
    const [record, , result] = (await api.call.inferenceApi.job(job)).unwrap();
    const report = { job: job.toString(), release: releaseId, outcome: outcome.method, seconds, worker: record.worker.toString(), price: record.price.toString() };
    // What polkadot.js apps takes as submitJob's `input`.
    report.input = u8aToHex(payload);
    if (outcome.method === 'JobSettled') {
      // Vanilla: the output is the worker's word, not checked by the chain.
      report.verifiedBy = { Vanilla: 'nothing (trust in the worker)', Tee: 'attested enclave signature', Zk: 'Groth16 proof' }[outcome.data.mode.toString()];
      report.verificationFeeBurned = outcome.data.verificationFee.toString();
      report.outputHash = result.unwrap().outputHash.toHex();
      report.workerPayment = outcome.data.workerPayment.toString();
      report.royalty = outcome.data.royalty.toString();
      report.refund = outcome.data.refund.toString();
      if (chat) {
        const r = api.createType('OpgChatResponse', result.unwrap().output.toU8a(true));
        report.answer = new TextDecoder().decode(r.text.toU8a(true));
        report.finishReason = r.finishReason.toString();
        report.promptTokens = r.promptTokens.toNumber();
        report.completionTokens = r.completionTokens.toNumber();
        report.engine = new TextDecoder().decode(r.engine.toU8a(true));
        report.deviceClass = new TextDecoder().decode(r.deviceClass.toU8a(true));
      }
    }
    if (outcome.method === 'JobSettled' && !chat) {
      report.outputs = decodeOutput(api, result.unwrap().output.toU8a(true));
      const [first] = report.outputs;
      if (embed) {
        const width = first.shape[1];
        const rows = Array.from({ length: first.shape[0] }, (_, r) => first.values.slice(r * width, (r + 1) * width));
        report.texts = [opts.embed, ...opts.compare];
        report.embedding = rows[0];
        report.cosine = rows.slice(1).map((r) => cosine(rows[0], r));
        delete report.outputs;
      } else if (first?.elem === 'F32' && first.shape.length === 2) {
        const width = first.shape[1];
        report.predicted = Array.from({ length: first.shape[0] }, (_, r) => {
          const row = first.values.slice(r * width, (r + 1) * width);
          return row.indexOf(Math.max(...row));
        });
      }
      if (label !== null) report.label = label;
    } else if (outcome.method === 'JobRejected') {
      report.reason = outcome.data.reason.toString();
    }
    if (opts.json) {
      console.log(JSON.stringify(report));
    } else {
      console.log(`job ${report.job} on release ${releaseId}: ${report.outcome} after ${seconds.toFixed(1)} s (worker ${report.worker})`);
      if (report.answer !== undefined) {
        console.log(`  answer: ${report.answer}`);
        console.log(`  tokens: ${report.promptTokens} prompt + ${report.completionTokens} completion (finish: ${report.finishReason}; ${report.engine}, ${report.deviceClass})`);
      }
      if (report.workerPayment !== undefined) {
        console.log(`  paid: worker ${formatOpg(BigInt(report.workerPayment))}, publisher royalty ${formatOpg(BigInt(report.royalty))} (of at most ${formatOpg(BigInt(report.price))} held)`);
        console.log(`  burned: verification fee ${formatOpg(BigInt(report.verificationFeeBurned))}; refunded ${formatOpg(BigInt(report.refund))}`);
      } else {
        console.log(`  price ${formatOpg(BigInt(report.price))}`);
      }
      if (report.embedding) {
        console.log(`  embedding of "${report.texts[0]}" (${report.embedding.length} dims): ${report.embedding.slice(0, 6).map((v) => v.toFixed(4)).join(', ')}, …`);
        report.cosine.forEach((c, i) => console.log(`  cosine similarity to "${report.texts[i + 1]}": ${c.toFixed(4)}`));
      }
      for (const t of report.outputs ?? []) console.log(`  output ${t.elem} [${t.shape}]: ${t.values.map((v) => +v.toFixed(4)).join(', ')}`);
      if (report.predicted) console.log(`  predicted class: ${report.predicted.join(', ')}` + (label !== null ? ` (label ${label})` : ''));
      if (report.reason) console.log(`  reason: ${report.reason}`);
    }
    return outcome.method === 'JobSettled' ? 0 : 1;
  } finally {
    await api.disconnect();
  }
}

main().then((code) => process.exit(code), (e) => { console.error(`error: ${e.message}`); process.exit(2); });
