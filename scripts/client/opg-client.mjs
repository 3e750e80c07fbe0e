// opg-client: the direct path for scripts and for unchanged OpenAI clients.
//
//   node opg-client.mjs proxy [--port 8088] [--worker ADDRESS] [--api URL]
//       An OpenAI-compatible endpoint on localhost (/v1/chat/completions, /v1/embeddings,
//       /v1/models): each request is paid by a voucher on a channel to the worker (opened on
//       first use with --deposit OPG), forwarded, and answered only once its receipt verifies;
//       texts for a text encoder are tokenized here (--tokenizer). `openai.OpenAI(base_url="http://127.0.0.1:8088/v1",
//       api_key="unused")` then runs against OPG; `model` is a release id.
//   node opg-client.mjs chat --model ID [--max-tokens N --temperature T --seed S --stream] TEXT
//   node opg-client.mjs embed --model ID TEXT [TEXT ...]   (a text-encoder release; texts are
//       tokenized here with --tokenizer FILE, BERT's WordPiece tokenizer.json by default)
//   node opg-client.mjs channel open|top-up|close|show --model ID [--worker ADDRESS --amount OPG]
//   node opg-client.mjs verify --receipt HEX --worker ADDRESS --request HEX --response HEX
//   node opg-client.mjs challenge --evidence FILE [--await 60]
//       challenges a receipt on chain (`inference.challengeReceipt`, a 1 OPG bond) with the
//       evidence --keep-evidence DIR kept of an answer (DIR/CHANNEL-SEQ.json: receipt, request,
//       response): the worker must open it, or it is slashed and the request repaid. With
//       --await, first waits until the worker has committed the receipt, then for the outcome.
//
// Common: --keep-evidence DIR (proxy, chat, embed) keeps every verified answer's evidence.
//
// Common: --ws ws://NODE:9944 --account SURI (//Bob) --state FILE --mode Vanilla|Tee. The worker is --worker, or
// the first active worker serving the release; its endpoint is --api, or the one it advertises
// on chain (inference.endpoints). The state file keeps each channel's position (sequence,
// cumulative amounts, what the answers earned) so a restarted client continues its vouchers.
//
// Pricing (docs/direct-path.md): a chat's voucher covers its most, the worker's price plus the
// token budget (prompt bound and max_tokens) at its token prices; once answered, only what it
// generated is owed, so the next voucher pays max(previous, owed + in flight + its own most).
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { hexToU8a, u8aToHex } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomInt } from 'node:crypto';
import { DIRECT_TYPES, UNIT, enclaveKey, ownVoucher, sendFinalized, signVoucher, verifyReceipt } from './opg.mjs';
import { loadWordPiece } from './wordpiece.mjs';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ws: { type: 'string', default: process.env.OPG_WS ?? 'ws://127.0.0.1:9944' },
    account: { type: 'string', default: '//Bob' },
    worker: { type: 'string' },
    api: { type: 'string' },
    port: { type: 'string', default: '8088' },
    deposit: { type: 'string', default: '10' },
    state: { type: 'string', default: join(homedir(), '.opg-client.json') },
    model: { type: 'string' },
    amount: { type: 'string' },
    'max-tokens': { type: 'string', default: '64' },
    temperature: { type: 'string', default: '0' },
    seed: { type: 'string' },
    stream: { type: 'boolean', default: false },
    receipt: { type: 'string' },
    request: { type: 'string' },
    response: { type: 'string' },
    'keep-evidence': { type: 'string' },
    evidence: { type: 'string' },
    await: { type: 'string' },
    json: { type: 'boolean', default: false },
    // Channels opened in this mode: Vanilla, or Tee (receipts signed by the attested enclave too).
    mode: { type: 'string', default: 'Vanilla' },
    tokenizer: { type: 'string', default: join(homedir(), '.cache/opg/models/bert-base-uncased.tokenizer.json') },
  },
});

// What the worker's parser takes (offchain-worker/src/openai.rs): its defaults, made explicit
// here so that both sides build the same canonical request.
const DEFAULT_MAX_TOKENS = 256;
const DEFAULT_REPEAT_LAST_N = 64;
const MAX_BODY = 1 << 20;
// Most inputs of one embeddings request (the worker's offchain-worker/src/embeddings.rs).
const MAX_EMBED_INPUTS = 256;

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const utf8Hex = (text) => `0x${Buffer.from(text, 'utf8').toString('hex')}`;

/** OpenAI's message content as text: a string, or text parts joined. */
function contentText(content, at) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content) && content.every((p) => p?.type === 'text' && typeof p.text === 'string')) {
    return content.map((p) => p.text).join('');
  }
  throw new HttpError(400, 'unsupported_content', `messages[${at}]: only text content is supported`);
}

// A text-encoder release (offchain-worker/src/embeddings.rs): token-id inputs (`input_ids`,
// optionally `attention_mask` and `token_type_ids`, int64 or int32 [batch, tokens]) and one
// f32 [batch, dim] output.
const ID_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'];
// A release's input specs as plain values.
const inputSpecs = (params) => params.inputs.map((t) => ({ name: t.name.toUtf8(), elem: t.elem.toString(), rank: t.shape.length }));
function isEncoder(params) {
  const specs = inputSpecs(params);
  const { outputs } = params;
  return specs.some((s) => s.name === 'input_ids')
    && specs.every((s) => ID_INPUTS.includes(s.name) && ['I64', 'I32'].includes(s.elem) && s.rank === 2)
    && outputs.length === 1 && outputs[0].elem.toString() === 'F32' && outputs[0].shape.length === 2;
}

// The release's input tensors for `rows` of token ids, as the worker builds them: in the
// release's input order, shorter rows padded on the right with id 0 and mask 0.
function encoderTensors(rows, specs) {
  const width = Math.max(...rows.map((r) => r.length));
  if (rows.some((r) => r.length !== width) && !specs.some((s) => s.name === 'attention_mask')) {
    throw new HttpError(400, 'invalid_input', 'this release has no attention_mask to pad with: send inputs of one length');
  }
  return specs.map((spec) => {
    const values = rows.flatMap((row) => Array.from({ length: width }, (_, at) => {
      if (spec.name === 'input_ids') return at < row.length ? row[at] : 0;
      if (spec.name === 'attention_mask') return at < row.length ? 1 : 0;
      return 0;
    }));
    const data = spec.elem === 'I32' ? new Int32Array(values) : new BigInt64Array(values.map(BigInt));
    return { elem: spec.elem, shape: [rows.length, width], data: u8aToHex(new Uint8Array(data.buffer)) };
  });
}

// BERT's WordPiece, read once from --tokenizer, for texts sent to a text encoder.
let wordPiece;
const tokenizer = () => {
  wordPiece ??= loadWordPiece(opts.tokenizer);
  return wordPiece;
};

// Checks that an embeddings answer's vectors are the receipt's response: the SCALE output
// tensors, one f32 [rows, dim].
function checkEmbeddings(api, responseBytes, answer) {
  const [out] = api.createType('Vec<OpgTensor>', responseBytes);
  const raw = out.data.toU8a(true);
  const [rows, dim] = out.shape.map((d) => d.toNumber());
  const floats = new Float32Array(raw.slice().buffer);
  if (out.elem.toString() !== 'F32' || answer.data?.length !== rows) throw new Error('the answer is not the receipt\'s output');
  answer.data.forEach((item, i) => {
    const row = raw.subarray(i * dim * 4, (i + 1) * dim * 4);
    const same = typeof item.embedding === 'string'
      ? Buffer.from(item.embedding, 'base64').equals(Buffer.from(row))
      : item.embedding.length === dim && item.embedding.every((v, j) => Math.fround(v) === floats[i * dim + j]);
    if (!same) throw new Error(`embedding ${i} is not the receipt's output`);
  });
}

const ROLES = { system: 'System', developer: 'System', user: 'User', assistant: 'Assistant' };

/**
 * An OpenAI chat request made explicit: every sampling parameter, the seed and max_tokens
 * filled in. Returns the body to forward and the canonical SCALE request it stands for.
 */
function normalize(api, body) {
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw new HttpError(400, 'invalid_messages', '`messages` is a non-empty array');
  }
  const messages = body.messages.map((m, at) => {
    const role = ROLES[m?.role];
    if (!role) throw new HttpError(400, 'unsupported_role', `messages[${at}]: role ${JSON.stringify(m?.role)} is not supported`);
    return { role: m.role === 'developer' ? 'system' : m.role, scale: role, content: contentText(m.content, at) };
  });
  const num = (key, fallback) => {
    const v = body[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new HttpError(400, 'invalid_parameter', `\`${key}\` is a number`);
    return v;
  };
  let seed = body.seed ?? randomInt(0, 2 ** 48 - 1);
  if (!Number.isSafeInteger(seed)) throw new HttpError(400, 'invalid_parameter', '`seed` must be an integer within ±2^53 through this proxy');
  if (seed < 0) seed = BigInt.asUintN(64, BigInt(seed));
  const fixed = {
    maxTokens: num('max_completion_tokens', num('max_tokens', DEFAULT_MAX_TOKENS)),
    temperature: Math.round(num('temperature', 1) * 1000),
    topK: num('top_k', 0),
    topP: Math.round(num('top_p', 1) * 1e6),
    minP: Math.round(num('min_p', 0) * 1e6),
    repeatPenalty: Math.round(num('repeat_penalty', num('repetition_penalty', 1)) * 1000),
    repeatLastN: num('repeat_last_n', DEFAULT_REPEAT_LAST_N),
  };
  const stop = body.stop === undefined || body.stop === null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string')) {
    throw new HttpError(400, 'invalid_parameter', '`stop` is a string or an array of strings');
  }
  const request = api.createType('OpgChatRequest', {
    prompt: { Chat: messages.map((m) => ({ role: m.scale, content: utf8Hex(m.content) })) },
    maxTokens: fixed.maxTokens,
    sampling: { ...fixed, seed },
    stop: stop.map(utf8Hex),
  });
  // The same values, exactly representable after the worker's scaling and rounding.
  const forward = {
    ...body,
    messages: messages.map((m) => ({ role: m.role, content: m.content })),
    max_tokens: fixed.maxTokens,
    max_completion_tokens: undefined,
    temperature: fixed.temperature / 1000,
    top_k: fixed.topK,
    top_p: fixed.topP / 1e6,
    min_p: fixed.minP / 1e6,
    repeat_penalty: fixed.repeatPenalty / 1000,
    repetition_penalty: undefined,
    repeat_last_n: fixed.repeatLastN,
    seed: typeof seed === 'bigint' ? body.seed : seed,
    stop,
  };
  return { forward, request, messages, maxTokens: fixed.maxTokens };
}

/** The client's side of the channels: positions, kept in the state file. */
class Client {
  constructor(api, account) {
    this.api = api;
    this.account = account;
    this.positions = existsSync(opts.state) ? JSON.parse(readFileSync(opts.state, 'utf8')).channels ?? {} : {};
    this.routes = new Map(); // release -> { worker, endpoint, channel }
    this.locks = new Map(); // channel -> promise chain
  }

  save() {
    const tmp = `${opts.state}.tmp`;
    writeFileSync(tmp, JSON.stringify({ channels: this.positions }, null, 1));
    renameSync(tmp, opts.state);
  }

  /** The worker serving `release`: --worker, or the first active one that serves it (and,
   * without --api, advertises an endpoint). */
  async workerFor(release) {
    if (opts.worker) return opts.worker;
    for (const [key, w] of await this.api.query.inference.workers.entries()) {
      const record = w.unwrap();
      const address = key.args[0].toString();
      if (!record.status.isActive || !record.releases.some((r) => r.toNumber() === release)) continue;
      if (opts.api || (await this.api.query.inference.endpoints(address)).isSome) return address;
    }
    throw new HttpError(404, 'model_not_found', `no active worker with an endpoint serves release ${release}`);
  }

  async endpointOf(worker) {
    if (opts.api) return opts.api.replace(/\/$/, '');
    const advertised = await this.api.query.inference.endpoints(worker);
    if (advertised.isNone) throw new HttpError(503, 'no_endpoint', `worker ${worker} advertises no endpoint: pass --api`);
    return advertised.unwrap().toUtf8().replace(/\/$/, '');
  }

  /** The route to `release`: its worker, endpoint and channel (opened if there is none). */
  async route(release, { open = true } = {}) {
    if (this.routes.has(release)) return this.routes.get(release);
    const worker = await this.workerFor(release);
    const endpoint = await this.endpointOf(worker);
    let channel;
    const existing = await this.api.query.inference.channelIndex(this.account.address, worker, release);
    if (existing.isSome) {
      channel = existing.unwrap().toBigInt();
    } else {
      if (!open) throw new HttpError(404, 'unknown_channel', `no channel to ${worker} for release ${release}`);
      const deposit = BigInt(Math.round(Number(opts.deposit) * 1000)) * (UNIT / 1000n);
      const events = await sendFinalized(this.api, this.api.tx.inference.openChannel(worker, release, opts.mode, deposit), this.account);
      channel = events.find((e) => this.api.events.inference.ChannelOpened.is(e)).data.channel.toBigInt();
      console.error(`[opg-client] opened channel ${channel} to ${worker} for release ${release}`);
    }
    const record = (await this.api.query.inference.channels(channel)).unwrap();
    if (record.mode.toString() !== opts.mode) {
      throw new HttpError(409, 'channel_mode', `channel ${channel} is ${record.mode}, not ${opts.mode}: close it or pass --mode ${record.mode}`);
    }
    const kept = this.positions[channel];
    if (!kept || BigInt(kept.seq) < record.lastSeq.toBigInt()) {
      // Nothing kept, or an older position: what the chain redeemed is what was earned.
      this.positions[channel] = {
        seq: record.lastSeq.toString(), pay: record.redeemedPay.toString(),
        burn: record.redeemedBurn.toString(), owed: record.redeemedPay.toString(), reserved: '0',
      };
    }
    this.positions[channel].reserved = '0';
    const route = { worker, endpoint, channel };
    this.routes.set(release, route);
    return route;
  }

  /**
   * Continues a channel from the latest voucher the worker holds (`GET /v1/channels/{id}`),
   * after it refused ours as out of order: this client lost its place, e.g. it stopped between
   * sending a voucher and keeping the answer. The voucher must be this account's own signature
   * for this channel and newer than what was kept. The lost answer counts as earned in full:
   * the requester loses at most that one request's most.
   */
  async resync(route) {
    const reply = await fetch(`${route.endpoint}/v1/channels/${route.channel}`);
    const position = await reply.json().catch(() => ({}));
    if (!reply.ok || !position.voucher) throw new HttpError(502, 'resync_failed', `the worker gave no voucher of channel ${route.channel} (HTTP ${reply.status})`);
    const voucher = ownVoucher(this.api, position.voucher, this.account.address);
    const p = this.positions[route.channel];
    if (voucher.channel.toBigInt() !== BigInt(route.channel) || voucher.seq.toBigInt() <= BigInt(p.seq)) {
      throw new HttpError(502, 'resync_failed', `the worker's voucher (channel ${voucher.channel}, seq ${voucher.seq}) does not continue channel ${route.channel} past seq ${p.seq}`);
    }
    console.error(`[opg-client] channel ${route.channel}: continuing from the worker's voucher ${voucher.seq} (kept: ${p.seq})`);
    Object.assign(p, {
      seq: voucher.seq.toString(), pay: voucher.cumulativePay.toString(), burn: voucher.cumulativeBurn.toString(),
      owed: voucher.cumulativePay.toString(), reserved: '0',
    });
    this.save();
  }

  /** Runs `f` alone for `channel`: vouchers reach the worker in sequence. */
  async exclusive(channel, f) {
    const previous = this.locks.get(channel) ?? Promise.resolve();
    let release;
    const mine = new Promise((resolve) => { release = resolve; });
    this.locks.set(channel, previous.then(() => mine));
    await previous;
    try {
      return await f();
    } finally {
      release();
    }
  }

  /**
   * Sends one chat completion: builds the canonical request, signs the voucher, forwards. Returns
   * { response (fetch), settle(chatResponseBytes | null, text) } once the worker has taken it;
   * `settle` checks the receipt and books what the answer earned.
   */
  async chat(body) {
    const release = Number(body.model);
    if (!Number.isInteger(release) || release < 0) throw new HttpError(400, 'invalid_model', '`model` is a release id, e.g. "2"');
    const info = await this.api.call.inferenceApi.release(release);
    if (info.isNone || info.unwrap().params.llm.isNone) throw new HttpError(404, 'model_not_found', `release ${release} is not an LLM release`);
    const spec = info.unwrap().params.llm.unwrap();
    const { forward, request, messages, maxTokens } = normalize(this.api, body);
    const route = await this.route(release);
    const record = (await this.api.call.inferenceApi.worker(route.worker)).unwrap();
    const price = record.price.toBigInt();
    const prices = { prompt: record.tokenPrices.promptPer1k.toBigInt(), completion: record.tokenPrices.completionPer1k.toBigInt() };
    // The token budget as the chain bounds it (opg_primitives::chat::check_chat_request).
    const promptBound = messages.reduce(
      (n, m) => n + BigInt(Buffer.byteLength(m.content, 'utf8')) + spec.messageOverhead.toBigInt(),
      spec.promptOverhead.toBigInt(),
    );
    const cost = (prompt, completion) => price + (prices.prompt * prompt + prices.completion * completion) / 1000n;
    const most = cost(promptBound, BigInt(maxTokens));
    const bytes = request.toU8a();
    const { response, settle } = await this.send(route, '/v1/chat/completions', forward, bytes, { most, failed: price });
    if (!settle) return { response, settle };
    return {
      response,
      settle: (receiptHex, responseHex, text) => settle(receiptHex, responseHex, (responseBytes) => {
        const chat = this.api.createType('OpgChatResponse', responseBytes);
        if (text !== undefined && chat.text.toUtf8() !== text) throw new Error('the text is not the receipt\'s response');
        const min = (a, b) => (a < b ? a : b);
        return cost(min(chat.promptTokens.toBigInt(), promptBound), min(chat.completionTokens.toBigInt(), BigInt(maxTokens)));
      }),
    };
  }

  /**
   * Sends one embeddings request to a text-encoder release: texts are tokenized here (the
   * voucher signs the padded id tensors, built as the worker builds them), token ids pass.
   * Returns { response, settle(receiptHex, responseHex, answer) } like `chat`.
   */
  async embed(body) {
    const release = Number(body.model);
    if (!Number.isInteger(release) || release < 0) throw new HttpError(400, 'invalid_model', '`model` is a release id, e.g. "3"');
    const info = await this.api.call.inferenceApi.release(release);
    if (info.isNone || !isEncoder(info.unwrap().params)) throw new HttpError(404, 'model_not_found', `release ${release} is not a text-encoder release`);
    const specs = inputSpecs(info.unwrap().params);
    const input = body.input;
    const items = typeof input === 'string' || (Array.isArray(input) && typeof input[0] === 'number') ? [input] : input;
    if (!Array.isArray(items) || items.length === 0 || items.length > MAX_EMBED_INPUTS) {
      throw new HttpError(400, 'invalid_input', `\`input\` is a text, token ids, or an array of 1..=${MAX_EMBED_INPUTS} of them`);
    }
    const rows = items.map((item, at) => {
      if (typeof item === 'string') return tokenizer().encode(item);
      if (Array.isArray(item) && item.length > 0 && item.every((id) => Number.isSafeInteger(id) && id >= 0)) return item;
      throw new HttpError(400, 'invalid_input', `input[${at}] is a text or a non-empty array of token ids`);
    });
    const request = this.api.createType('Vec<OpgTensor>', encoderTensors(rows, specs));
    const bytes = request.toU8a();
    const route = await this.route(release);
    const price = (await this.api.call.inferenceApi.worker(route.worker)).unwrap().price.toBigInt();
    const forward = { ...body, input: rows };
    const { response, settle } = await this.send(route, '/v1/embeddings', forward, bytes, { most: price, failed: price });
    if (!settle) return { response, settle };
    return {
      response,
      settle: (receiptHex, responseHex, answer) => settle(receiptHex, responseHex, (responseBytes) => {
        if (answer) checkEmbeddings(this.api, responseBytes, answer);
        return price;
      }),
    };
  }

  /**
   * Sends `forward` to the worker's `path` with the next voucher of the route's channel, for
   * the request `bytes` (canonical), paying up to `most` (`failed` for an error answer). Returns { response (fetch),
   * settle(receiptHex, responseHex, check) } once the worker has taken it, where `check(bytes)`
   * reads the canonical response and returns what the answer earned (or throws); `settle`
   * checks the receipt and books it. Refused before it ran: { response, settle: null }.
   */
  async send(route, path, forward, bytes, { most, failed }) {
    const fee = (await this.api.call.inferenceApi.verificationFee(opts.mode, bytes.length)).toBigInt();
    const { channel } = route;
    // A TEE channel's receipts must carry the enclave key the chain holds for the worker now.
    const enclave = opts.mode === 'Tee' ? await enclaveKey(this.api, route.worker) : null;
    if (opts.mode === 'Tee' && !enclave) throw new HttpError(503, 'enclave_not_attested', `worker ${route.worker} has no usable attested enclave key`);
    return this.exclusive(channel, async () => {
      const p = this.positions[channel];
      const attempt = async () => {
        const seq = BigInt(p.seq) + 1n;
        const owedNow = BigInt(p.owed) + BigInt(p.reserved);
        const pay = BigInt(p.pay) > owedNow + most ? BigInt(p.pay) : owedNow + most;
        const burn = BigInt(p.burn) + fee;
        const voucher = signVoucher(this.api, this.account, { channel, seq, pay, burn }, bytes);
        const response = await fetch(`${route.endpoint}${path}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'OPG-Voucher': voucher },
          body: JSON.stringify(forward),
        });
        return { response, seq, pay, burn };
      };
      let { response, seq, pay, burn } = await attempt();
      if (response.status === 409) {
        // The worker holds a newer voucher of ours than we kept (we lost our place): continue
        // from it, once, then send again.
        const refusal = await response.clone().json().catch(() => null);
        if (refusal?.error?.code === 'voucher_out_of_order') {
          await this.resync(route);
          ({ response, seq, pay, burn } = await attempt());
        }
      }
      // Refused before it ran (no receipt): nothing changes. Taken: the position moves on.
      const taken = response.ok || response.headers.get('OPG-Receipt') !== null;
      if (!taken) return { response, settle: null };
      Object.assign(p, { seq: seq.toString(), pay: pay.toString(), burn: burn.toString(), reserved: (BigInt(p.reserved) + most).toString() });
      this.save();
      const settle = (receiptHex, responseHex, check) => {
        p.reserved = (BigInt(p.reserved) - most).toString();
        let earned = failed;
        try {
          const responseBytes = responseHex ? hexToU8a(responseHex) : null;
          verifyReceipt(this.api, receiptHex, { worker: route.worker, channel, seq, request: bytes, response: responseBytes, enclave });
          if (responseBytes) earned = check(responseBytes);
          if (opts['keep-evidence'] && responseHex) {
            // What a challenge of this answer takes, should the worker leave it out of its batch.
            mkdirSync(opts['keep-evidence'], { recursive: true });
            const evidence = { receipt: receiptHex, request: u8aToHex(bytes), response: u8aToHex(responseBytes) };
            writeFileSync(join(opts['keep-evidence'], `${channel}-${seq}.json`), JSON.stringify(evidence));
          }
        } finally {
          // Owed either way: the voucher was signed; a bad receipt is evidence against the worker.
          p.owed = (BigInt(p.owed) + (earned < most ? earned : most)).toString();
          this.save();
        }
        return earned;
      };
      return { response, settle };
    });
  }
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function sendError(res, e) {
  const status = e instanceof HttpError ? e.status : 502;
  const code = e instanceof HttpError ? e.code : 'upstream_error';
  sendJson(res, status, { error: { message: e.message ?? String(e), type: status >= 500 ? 'server_error' : 'invalid_request_error', code } });
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'request_too_large', `the body is over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new HttpError(400, 'invalid_json', e.message);
  }
}

/** Relays the worker's server-sent events; the last chunk goes out only once its receipt verifies. */
async function relayStream(res, upstream, settle) {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  const decoder = new TextDecoder();
  let buffered = '';
  let text = '';
  let verified = false;
  for await (const chunk of upstream.body) {
    buffered += decoder.decode(chunk, { stream: true });
    let cut;
    while ((cut = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, cut);
      buffered = buffered.slice(cut + 2);
      const data = event.startsWith('data: ') ? event.slice(6) : event;
      if (data === '[DONE]') {
        if (verified) res.write('data: [DONE]\n\n');
        continue;
      }
      const parsed = JSON.parse(data);
      if (parsed.opg?.receipt) {
        try {
          settle(parsed.opg.receipt, parsed.opg.response, parsed.error ? undefined : text);
          verified = !parsed.error;
        } catch (e) {
          res.write(`data: ${JSON.stringify({ error: { message: `the worker's receipt did not verify: ${e.message}`, type: 'server_error', code: 'receipt_invalid' } })}\n\n`);
          continue;
        }
      }
      text += parsed.choices?.[0]?.delta?.content ?? '';
      res.write(`data: ${data}\n\n`);
    }
  }
  res.end();
}

async function proxy(client) {
  const server = createServer(async (req, res) => {
    try {
      const path = new URL(req.url, 'http://localhost').pathname;
      if (req.method === 'GET' && path === '/v1/models') {
        const models = [];
        for (let id = 0; id < 64; id++) {
          const r = await client.api.call.inferenceApi.release(id);
          if (r.isNone) continue;
          const { params } = r.unwrap();
          if (params.llm.isSome || isEncoder(params)) models.push({ id: String(id), object: 'model', owned_by: 'opg' });
        }
        return sendJson(res, 200, { object: 'list', data: models });
      }
      if (req.method === 'POST' && path === '/v1/embeddings') {
        const body = await readBody(req);
        const { response, settle } = await client.embed(body);
        const answer = await response.json();
        if (!settle) return sendJson(res, response.status, answer);
        try {
          settle(response.headers.get('OPG-Receipt'), answer.opg?.response, response.ok ? answer : undefined);
        } catch (e) {
          throw new HttpError(502, 'receipt_invalid', `the worker's receipt did not verify: ${e.message}`);
        }
        return sendJson(res, response.status, answer);
      }
      if (req.method !== 'POST' || path !== '/v1/chat/completions') {
        throw new HttpError(404, 'not_found', `no endpoint ${req.method} ${path} (this proxy serves /v1/chat/completions, /v1/embeddings and /v1/models)`);
      }
      const body = await readBody(req);
      const { response, settle } = await client.chat(body);
      if (!settle) {
        res.writeHead(response.status, { 'Content-Type': 'application/json' });
        return res.end(await response.text());
      }
      if (body.stream && response.ok) return await relayStream(res, response, settle);
      const answer = await response.json();
      try {
        settle(response.headers.get('OPG-Receipt'), answer.opg?.response, answer.choices?.[0]?.message?.content);
      } catch (e) {
        throw new HttpError(502, 'receipt_invalid', `the worker's receipt did not verify: ${e.message}`);
      }
      return sendJson(res, response.status, answer);
    } catch (e) {
      if (!res.headersSent) sendError(res, e);
      else res.end();
    }
  });
  await new Promise((resolve) => server.listen(Number(opts.port), '127.0.0.1', resolve));
  console.error(`[opg-client] OpenAI-compatible proxy on http://127.0.0.1:${server.address().port}/v1`);
  await new Promise((resolve) => {
    process.on('SIGTERM', resolve);
    process.on('SIGINT', resolve);
  });
  server.close();
}

async function chat(client) {
  const text = positionals.slice(1).join(' ');
  if (!text || opts.model === undefined) throw new Error('usage: opg-client chat --model ID TEXT');
  const body = {
    model: opts.model, messages: [{ role: 'user', content: text }],
    max_tokens: Number(opts['max-tokens']), temperature: Number(opts.temperature),
    ...(opts.seed !== undefined ? { seed: Number(opts.seed) } : {}),
  };
  const { response, settle } = await client.chat(body);
  const answer = await response.json();
  if (!settle) throw new Error(`HTTP ${response.status}: ${JSON.stringify(answer.error ?? answer)}`);
  const earned = settle(response.headers.get('OPG-Receipt'), answer.opg?.response, answer.choices?.[0]?.message?.content);
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${JSON.stringify(answer.error)}`);
  const out = { answer: answer.choices[0].message.content, usage: answer.usage, charged: earned.toString(), receiptVerified: true };
  console.log(opts.json ? JSON.stringify(out) : `${out.answer}\n[${out.usage.prompt_tokens} + ${out.usage.completion_tokens} tokens, charged ${out.charged}, receipt verified]`);
}

async function embed(client) {
  const texts = positionals.slice(1);
  if (texts.length === 0 || opts.model === undefined) throw new Error('usage: opg-client embed --model ID TEXT [TEXT ...]');
  const { response, settle } = await client.embed({ model: opts.model, input: texts });
  const answer = await response.json();
  if (!settle) throw new Error(`HTTP ${response.status}: ${JSON.stringify(answer.error ?? answer)}`);
  const earned = settle(response.headers.get('OPG-Receipt'), answer.opg?.response, response.ok ? answer : undefined);
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${JSON.stringify(answer.error)}`);
  const vectors = answer.data.map((d) => d.embedding);
  const dot = (x, y) => x.reduce((sum, v, i) => sum + v * y[i], 0);
  const cosine = vectors.slice(1).map((v) => dot(vectors[0], v) / Math.sqrt(dot(vectors[0], vectors[0]) * dot(v, v)));
  const out = { dimensions: vectors[0].length, usage: answer.usage, charged: earned.toString(), receiptVerified: true, cosineToFirst: cosine };
  if (opts.json) out.embeddings = vectors;
  console.log(opts.json ? JSON.stringify(out) : `${texts.length} embeddings of ${out.dimensions}; cosine to the first: ${cosine.map((c) => c.toFixed(4)).join(', ') || '-'}\n[${out.usage.prompt_tokens} tokens, charged ${out.charged}, receipt verified]`);
}

async function channel(client) {
  const action = positionals[1];
  const release = Number(opts.model);
  if (!['open', 'top-up', 'close', 'show'].includes(action) || !Number.isInteger(release)) {
    throw new Error('usage: opg-client channel open|top-up|close|show --model ID [--amount OPG]');
  }
  const { api } = client;
  const { channel: id } = await client.route(release, { open: action === 'open' });
  const amount = BigInt(Math.round(Number(opts.amount ?? opts.deposit) * 1000)) * (UNIT / 1000n);
  if (action === 'top-up') await sendFinalized(api, api.tx.inference.topUpChannel(id, amount), client.account);
  if (action === 'close') await sendFinalized(api, api.tx.inference.closeChannel(id), client.account);
  const record = (await api.query.inference.channels(id)).unwrap();
  console.log(JSON.stringify({ channel: id.toString(), ...record.toHuman(), kept: client.positions[id] ?? null }));
}

function verify(api) {
  for (const key of ['receipt', 'worker', 'request', 'response']) {
    if (opts[key] === undefined) throw new Error(`usage: opg-client verify --receipt HEX --worker ADDRESS --request HEX --response HEX (missing --${key})`);
  }
  const [receipt] = api.createType('OpgSignedReceipt', opts.receipt);
  verifyReceipt(api, opts.receipt, {
    worker: opts.worker, channel: receipt.channel.toBigInt(), seq: receipt.seq.toBigInt(),
    request: hexToU8a(opts.request), response: hexToU8a(opts.response),
  });
  console.log(JSON.stringify({ valid: true, ...receipt.toHuman() }));
}

async function challenge(client) {
  if (!opts.evidence) throw new Error('usage: opg-client challenge --evidence FILE [--await SECONDS]');
  const { api } = client;
  const evidence = JSON.parse(readFileSync(opts.evidence, 'utf8'));
  const [receipt, signature] = api.createType('OpgSignedReceipt', evidence.receipt);
  const [channel, seq] = [receipt.channel.toString(), receipt.seq.toNumber()];
  const ours = (event) => event.data.channel.toString() === channel && event.data.seq.toNumber() === seq;
  const outcomes = { ChallengeFailed: 'failed: the worker opened the receipt, the bond was burned', DisputeLost: 'won: the worker was slashed, the request repaid' };
  let outcome = null;
  const unsubscribe = await api.query.system.events((records) => {
    for (const { event } of records) {
      if (event.section === 'inference' && outcomes[event.method] && ours(event)) outcome = outcomes[event.method];
    }
  });
  const until = Date.now() + Number(opts.await ?? 0) * 1000;
  try {
    // Only a committed receipt can be challenged: with --await, wait for the worker to redeem.
    for (;;) {
      const record = await api.query.inference.channels(channel);
      if (record.isSome && record.unwrap().lastSeq.toNumber() >= seq) break;
      if (Date.now() >= until) throw new Error(`receipt ${channel}/${seq} is not in a committed batch (not redeemed yet)`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    // `Bytes` arguments as hex: a Uint8Array would be read as already length-prefixed.
    const events = await sendFinalized(api, api.tx.inference.challengeReceipt(receipt.toU8a(), signature, evidence.request, evidence.response), client.account);
    const opened = events.find((e) => e.section === 'inference' && e.method === 'ReceiptChallenged');
    const deadline = opened.data.deadline.toNumber();
    const result = { channel, seq, deadline, outcome: null };
    if (opts.await) {
      while (!outcome && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 500));
      if (!outcome) throw new Error(`no outcome for the challenge of ${channel}/${seq} within ${opts.await} s`);
      result.outcome = outcome;
    }
    console.log(JSON.stringify(result));
  } finally {
    unsubscribe();
  }
}

async function main() {
  await cryptoWaitReady();
  const api = await ApiPromise.create({ provider: new WsProvider(opts.ws), throwOnConnect: true, noInitWarn: true, types: DIRECT_TYPES });
  try {
    const client = new Client(api, new Keyring({ type: 'sr25519' }).addFromUri(opts.account));
    const command = positionals[0];
    if (command === 'proxy') await proxy(client);
    else if (command === 'chat') await chat(client);
    else if (command === 'embed') await embed(client);
    else if (command === 'channel') await channel(client);
    else if (command === 'verify') verify(api);
    else if (command === 'challenge') await challenge(client);
    else throw new Error('usage: opg-client proxy | chat | embed | channel | verify | challenge (see the head of opg-client.mjs)');
  } finally {
    await api.disconnect();
  }
}

main().catch((e) => {
  console.error(e.message ?? e);
  process.exit(1);
});
