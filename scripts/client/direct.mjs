// The direct path from a client: opens a payment channel to a worker on chain (once), then
// sends requests straight to the worker's HTTP API, each paid by a signed voucher, and checks
// every answer's receipt (the worker's signature, both hashes) before using it. Prints the
// outputs and the round-trip times.
//
//   node direct.mjs --ws ws://127.0.0.1:9944 --api http://127.0.0.1:9955 [--requests 5] [--json]
//   node direct.mjs ... --clients 4 --requests 100
//       four requesters at once, each with its own channel, sending its requests one after
//       another: the worker's throughput under concurrent clients (requests per second over
//       the wall time) and the round trips. The requesters are fresh accounts funded by
//       --requester (also with --fresh for one client): a channel's position is the
//       client's to keep, and these keep none between runs.
//
//   node direct.mjs ... --await-redemption 60 --await-audits 60 [--challenge 1]
//       after the redemption, waits until the receipts the chain drew for audit from the
//       committed batches are opened by the worker (and with --challenge SEQ, challenges that
//       honest receipt as its requester: the worker opens it and the bond is burned).
//
// Release 0 is the dev chain's demo MLP (f32 [1, 4] in, [1, 3] out). The voucher's request
// hash is over the canonical request bytes (the SCALE tensors a job's input would be); its
// increments are the worker's price and `InferenceApi::verificationFee(mode, request bytes)`.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { u8aToHex } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { parseArgs } from 'node:util';
import { DIRECT_TYPES, UNIT, enclaveKey, sendFinalized, signVoucher, verifyReceipt } from './opg.mjs';

const { values: opts } = parseArgs({
  options: {
    ws: { type: 'string', default: process.env.OPG_WS ?? 'ws://127.0.0.1:9944' },
    api: { type: 'string', default: 'http://127.0.0.1:9955' },
    release: { type: 'string', default: '0' },
    requester: { type: 'string', default: '//Bob' },
    worker: { type: 'string', default: '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY' },
    deposit: { type: 'string', default: '10' },
    requests: { type: 'string', default: '5' },
    clients: { type: 'string', default: '1' },
    fresh: { type: 'boolean', default: false },
    // Tee: the channel's receipts must carry the worker's attested enclave key's signature too.
    mode: { type: 'string', default: 'Vanilla' },
    // Development chains: the worker's own key, to make it offer --mode first (the dev
    // preset's worker offers Vanilla only).
    'dev-worker-suri': { type: 'string' },
    // Then wait (at most this many seconds) until the worker has redeemed the last voucher.
    'await-redemption': { type: 'string' },
    // Then wait (at most this many seconds) until every receipt drawn for audit is opened.
    'await-audits': { type: 'string' },
    // Challenge the receipt of this sequence number (of the first channel) once redeemed.
    challenge: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

/** The channel from `requester` to `worker` for `release`, opened if there is none. */
async function channelOf(api, requester, worker, release) {
  const existing = await api.query.inference.channelIndex(requester.address, worker, release);
  if (existing.isSome) return existing.unwrap().toBigInt();
  const deposit = BigInt(opts.deposit) * UNIT;
  // Finalized: the worker reads channels at its last finalized block.
  const events = await sendFinalized(api, api.tx.inference.openChannel(worker, release, opts.mode, deposit), requester);
  const opened = events.find((e) => api.events.inference.ChannelOpened.is(e));
  return opened.data.channel.toBigInt();
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Has `worker` (its key) offer --mode too, unless it does. The worker's own process signs with
 * the same key: a transaction that meets one of its own in the pool is sent again.
 */
async function offerMode(api, worker) {
  const mask = { Vanilla: 1, Tee: 2 }[opts.mode];
  for (let tries = 1; ; tries += 1) {
    const w = (await api.query.inference.workers(worker.address)).unwrap();
    if ((w.modes.toNumber() & mask) !== 0) return;
    try {
      await sendFinalized(api, api.tx.inference.updateWorker(w.releases, w.modes.toNumber() | mask, w.price, w.capacity, w.hardware), worker);
    } catch (e) {
      if (tries >= 5) throw e;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/** One requester's requests, one after another on its channel; each receipt checked. */
async function client(api, { requester, channel }, release, price, enclave) {
  const record = (await api.query.inference.channels(channel)).unwrap();
  // A fresh channel, or one whose every voucher was redeemed: the chain knows the position.
  let seq = record.lastSeq.toBigInt();
  let pay = record.redeemedPay.toBigInt();
  let burn = record.redeemedBurn.toBigInt();
  const results = [];
  const fees = new Map();
  for (let i = 0; i < Number(opts.requests); i += 1) {
    const values = [5.1, 3.5, 1.4 + i / 10, 0.2];
    const data = u8aToHex(new Uint8Array(new Float32Array(values).buffer));
    const request = api.createType('Vec<OpgTensor>', [{ elem: 'F32', shape: [1, 4], data }]).toU8a();
    // The fee depends on the bytes only: read once per size (off the clock of the requests).
    if (!fees.has(request.length)) fees.set(request.length, (await api.call.inferenceApi.verificationFee(opts.mode, request.length)).toBigInt());
    const fee = fees.get(request.length);
    seq += 1n;
    pay += price;
    burn += fee;
    const signed = signVoucher(api, requester, { channel, seq, pay, burn }, request);

    const started = performance.now();
    const response = await fetch(`${opts.api}/v1/infer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'OPG-Voucher': signed },
      body: JSON.stringify({ model: String(release), inputs: [{ elem: 'F32', shape: [1, 4], values }] }),
    });
    const body = await response.json();
    const ms = performance.now() - started;
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${JSON.stringify(body)}`);

    // Checked before the answer is used: the worker signed this request and this answer.
    const outputs = body.outputs.map((t) => ({
      elem: t.elem, shape: t.shape, data: u8aToHex(new Uint8Array(new Float32Array(t.values).buffer)),
    }));
    const responseBytes = api.createType('Vec<OpgTensor>', outputs).toU8a();
    const receipt = verifyReceipt(api, response.headers.get('OPG-Receipt'), {
      worker: opts.worker, channel, seq, request, response: responseBytes, enclave,
    });
    results.push({
      seq: Number(seq), ms, outputs: body.outputs[0].values, engine: receipt.engine.toUtf8(), device: receipt.deviceClass.toUtf8(),
      signed: response.headers.get('OPG-Receipt'), request, response: responseBytes,
    });
  }
  return { channel, seq, pay, burn, results };
}

async function main() {
  await cryptoWaitReady();
  const api = await ApiPromise.create({
    provider: new WsProvider(opts.ws), throwOnConnect: true, noInitWarn: true, types: DIRECT_TYPES,
  });
  // The market's dispute events, as blocks come (deduplicated: a block may be seen twice).
  const disputes = new Map();
  const unsubscribe = await api.query.system.events((records) => {
    for (const { event } of records) {
      if (event.section !== 'inference') continue;
      if (!['AuditDrawn', 'ReceiptChallenged', 'ReceiptOpened', 'ChallengeFailed', 'DisputeLost'].includes(event.method)) continue;
      const e = { method: event.method, channel: event.data.channel.toString(), seq: Number(event.data.seq) };
      disputes.set(`${e.method}/${e.channel}/${e.seq}`, e);
    }
  });
  try {
    const release = Number(opts.release);
    const clients = Number(opts.clients);
    if (!Number.isInteger(clients) || clients < 1 || clients > 64) throw new Error('--clients is 1..=64');
    const keyring = new Keyring({ type: 'sr25519' });
    const funder = keyring.addFromUri(opts.requester);
    let requesters = [funder];
    if (clients > 1 || opts.fresh) {
      const run = `${opts.requester}//direct-${Date.now()}`;
      requesters = Array.from({ length: clients }, (_, i) => keyring.addFromUri(`${run}-${i}`));
      const each = (BigInt(opts.deposit) + 1n) * UNIT;
      const transfers = requesters.map((r) => api.tx.balances.transferKeepAlive(r.address, each));
      await sendFinalized(api, api.tx.utility.batchAll(transfers), funder);
    }
    const price = (await api.call.inferenceApi.worker(opts.worker)).unwrap().price.toBigInt();
    if (!['Vanilla', 'Tee'].includes(opts.mode)) throw new Error('--mode is Vanilla or Tee');
    if (opts['dev-worker-suri']) await offerMode(api, keyring.addFromUri(opts['dev-worker-suri']));
    // A TEE channel's client checks receipts against the key the chain attested (the worker
    // attests it on start: wait up to a minute).
    let enclave = null;
    for (let tries = 0; opts.mode === 'Tee' && !enclave; tries += 1) {
      enclave = await enclaveKey(api, opts.worker);
      if (!enclave && tries >= 60) throw new Error(`worker ${opts.worker} has no attested enclave key`);
      if (!enclave) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    // Channels first, then every client at once.
    const channels = await Promise.all(requesters.map((r) => channelOf(api, r, opts.worker, release)));
    const runs = requesters.map((requester, i) => ({ requester, channel: channels[i] }));
    const started = performance.now();
    const done = await Promise.all(runs.map((run) => client(api, run, release, price, enclave)));
    const wallSeconds = (performance.now() - started) / 1000;
    const results = done.flatMap((d) => d.results);
    const { channel, seq, pay, burn } = done[0];
    let redeemed = null;
    if (opts['await-redemption']) {
      const deadline = Date.now() + Number(opts['await-redemption']) * 1000;
      for (;;) {
        const now = (await api.query.inference.channels(channel)).unwrap();
        if (now.lastSeq.toBigInt() === seq) {
          redeemed = { seq: Number(seq), pay: now.redeemedPay.toString(), burn: now.redeemedBurn.toString(), batches: now.batches.length };
          break;
        }
        if (Date.now() > deadline) throw new Error(`voucher ${seq} not redeemed within ${opts['await-redemption']} s`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    let challenge = null;
    if (opts.challenge) {
      if (!redeemed) throw new Error('--challenge needs --await-redemption');
      const r = done[0].results.find((x) => x.seq === Number(opts.challenge));
      if (!r) throw new Error(`no answer of seq ${opts.challenge} on channel ${channel}`);
      const [receipt, signature] = api.createType('OpgSignedReceipt', r.signed);
      // `Bytes` arguments as hex: a Uint8Array would be read as already length-prefixed.
      const tx = api.tx.inference.challengeReceipt(receipt.toU8a(), signature, u8aToHex(r.request), u8aToHex(r.response));
      await sendFinalized(api, tx, runs[0].requester);
      challenge = { seq: r.seq, outcome: null };
    }
    let audits = null;
    if (opts['await-audits']) {
      const deadline = Date.now() + Number(opts['await-audits']) * 1000;
      const ours = (method) => [...disputes.values()].filter((e) => e.method === method && e.channel === channel.toString()).map((e) => e.seq);
      for (;;) {
        const drawn = ours('AuditDrawn');
        const ended = new Set([...ours('ReceiptOpened'), ...ours('DisputeLost')]);
        if (challenge) {
          if (ours('ChallengeFailed').includes(challenge.seq)) challenge.outcome = 'failed: the worker opened the receipt, the bond was burned';
          if (ours('DisputeLost').includes(challenge.seq)) challenge.outcome = 'won: the worker was slashed';
        }
        audits = { drawn: drawn.sort((a, b) => a - b), opened: ours('ReceiptOpened').sort((a, b) => a - b), lost: ours('DisputeLost') };
        if (drawn.length > 0 && drawn.every((s) => ended.has(s)) && (!challenge || challenge.outcome)) break;
        if (Date.now() > deadline) throw new Error(`audits not all opened within ${opts['await-audits']} s: ${JSON.stringify({ audits, challenge })}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    const times = results.map((r) => r.ms).sort((a, b) => a - b);
    const summary = {
      channel: channel.toString(),
      clients,
      mode: opts.mode,
      enclaveSigned: enclave !== null,
      requests: results.length,
      wallSeconds,
      requestsPerSecond: results.length / wallSeconds,
      receiptsVerified: results.length,
      paid: pay.toString(),
      burned: burn.toString(),
      latencyMs: { min: times[0], p50: quantile(times, 0.5), p95: quantile(times, 0.95), max: times[times.length - 1] },
      engine: results[0]?.engine,
      deviceClass: results[0]?.device,
      outputs: results.map((r) => r.outputs),
      redeemed,
      audits,
      challenge,
    };
    if (opts.json) {
      console.log(JSON.stringify(summary));
    } else {
      console.log(`${clients} client(s), channel ${summary.channel} first: ${summary.requests} answers, every receipt verified, ${summary.requestsPerSecond.toFixed(0)} requests/s`);
      console.log(`  round trip: min ${times[0].toFixed(1)} ms, p50 ${summary.latencyMs.p50.toFixed(1)} ms, max ${summary.latencyMs.max.toFixed(1)} ms`);
      console.log(`  vouchers: ${summary.paid} paid, ${summary.burned} to burn`);
      if (redeemed) console.log(`  redeemed on chain by the worker: up to seq ${redeemed.seq} (${redeemed.batches} batch(es) in their dispute window)`);
      if (audits) console.log(`  audits: receipts ${audits.drawn.join(', ')} drawn, ${audits.opened.length} opened by the worker, ${audits.lost.length} lost`);
      if (challenge) console.log(`  challenge of receipt ${challenge.seq}: ${challenge.outcome}`);
    }
  } finally {
    unsubscribe();
    await api.disconnect();
  }
}

main().catch((e) => {
  console.error(e.message ?? e);
  process.exit(1);
});
