#!/usr/bin/env node
// Load test: keeps the workers of a release busy with digits jobs and reports jobs per minute and
// where a job's time goes (waiting for inclusion, the worker, the answer's inclusion).
//
//   node scripts/client/load.mjs --jobs 200                       # against ws://127.0.0.1:9944
//   node scripts/client/load.mjs --capacity 32 --concurrency 32   # raise //Alice's worker capacity first
//   options: --ws URL  --release 1  --batch 1 (images per job)  --metrics URL (the worker's Prometheus
//            endpoint, for execution figures)  --funder //Bob  --worker-suri //Alice  --json
// Every requester is its own account (derived from the funder, funded by one batch), so each
// has one transaction in flight and nonces never collide.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { TYPES, UNIT } from './opg.mjs';

const { values: opts } = parseArgs({
  options: {
    ws: { type: 'string', default: process.env.OPG_WS ?? 'ws://127.0.0.1:9944' },
    release: { type: 'string', default: '1' },
    jobs: { type: 'string', default: '120' },
    concurrency: { type: 'string' },
    capacity: { type: 'string' },
    batch: { type: 'string', default: '1' },
    metrics: { type: 'string' },
    funder: { type: 'string', default: '//Bob' },
    'worker-suri': { type: 'string', default: '//Alice' },
    timeout: { type: 'string', default: '300' },
    json: { type: 'boolean', default: false },
  },
});

const END_EVENTS = ['JobSettled', 'JobRejected', 'JobExpired', 'JobFailed', 'JobCancelled'];
const log = (...a) => { if (!opts.json) console.log(...a); };

// Signs, sends and resolves with the events of the block that included the extrinsic.
function send(api, tx, signer) {
  return new Promise((resolve, reject) => {
    tx.signAndSend(signer, ({ status, events, dispatchError }) => {
      if (dispatchError) {
        const e = dispatchError.isModule ? api.registry.findMetaError(dispatchError.asModule) : null;
        reject(new Error(e ? `${e.section}.${e.name}` : dispatchError.toString()));
      } else if (status.isInBlock || status.isFinalized) {
        // The dev chain's manual seal may report Finalized without InBlock.
        resolve({ events: events.map((r) => r.event), block: status.isInBlock ? status.asInBlock : status.asFinalized });
      } else if (status.isInvalid || status.isDropped || status.isUsurped) {
        reject(new Error(`transaction ${status.type}`));
      }
    }).catch(reject);
  });
}

// Sums of the worker's Prometheus series whose names end with the given suffixes (the node
// prefixes them with `substrate_`).
async function scrape(url) {
  if (!url) return null;
  const text = await (await fetch(url)).text();
  const pick = (suffix) => text.split('\n')
    .filter((l) => !l.startsWith('#') && l.split(/[ {]/)[0].endsWith(suffix))
    .reduce((sum, l) => sum + Number(l.trim().split(/\s+/).pop()), 0);
  return {
    execSum: pick('opg_worker_execution_seconds_sum'), execCount: pick('opg_worker_execution_seconds_count'),
    latencySum: pick('opg_worker_job_latency_seconds_sum'), latencyCount: pick('opg_worker_job_latency_seconds_count'),
    resubmissions: pick('opg_worker_resubmissions_total'),
  };
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function main() {
  await cryptoWaitReady();
  const api = await ApiPromise.create({ provider: new WsProvider(opts.ws), throwOnConnect: true, noInitWarn: true, types: TYPES });
  try {
    const keyring = new Keyring({ type: 'sr25519' });
    const releaseId = Number(opts.release);
    const total = Number(opts.jobs);

    if (opts.capacity) {
      const worker = keyring.addFromUri(opts['worker-suri']);
      const w = (await api.query.inference.workers(worker.address)).unwrap();
      await send(api, api.tx.inference.updateWorker(w.releases, w.modes, w.price, Number(opts.capacity), w.hardware), worker);
      log(`worker ${worker.address}: capacity set to ${opts.capacity}`);
    }
    const pool = await api.query.inference.releaseWorkers(releaseId);
    const workers = (await Promise.all(pool.map((w) => api.query.inference.workers(w)))).map((w) => w.unwrap())
      .filter((w) => w.status.isActive && w.modes.toNumber() & 1);
    const capacity = workers.reduce((a, w) => a + w.capacity.toNumber(), 0);
    if (capacity === 0) throw new Error(`no active Vanilla worker serves release ${releaseId}`);
    const concurrency = Number(opts.concurrency ?? capacity);

    // One input for every job: `--batch` reference images.
    const reference = JSON.parse(readFileSync(new URL('../../models/digits/reference.json', import.meta.url)));
    const batch = Number(opts.batch);
    const pixels = Array.from({ length: batch }, (_, i) => reference.cases[i % reference.cases.length].pixels).flat();
    const data = u8aToHex(new Uint8Array(new Float32Array(pixels).buffer));
    const payload = u8aToHex(api.createType('Vec<OpgTensor>', [{ elem: 'F32', shape: [batch, 1, 8, 8], data }]).toU8a());

    // Requesters: one funding batch from the funder.
    const funder = keyring.addFromUri(opts.funder);
    const requesters = Array.from({ length: concurrency }, (_, i) => keyring.addFromUri(`${opts.funder}//load//${i}`));
    await send(api, api.tx.utility.batchAll(requesters.map((r) => api.tx.balances.transferKeepAlive(r.address, 100n * UNIT))), funder);

    // Block times and the end of each job, from every new block's events.
    const blockTimes = new Map();
    const ended = new Map();
    const waiters = new Map();
    const unsub = await api.rpc.chain.subscribeNewHeads(async (header) => {
      const at = Date.now();
      const number = header.number.toNumber();
      blockTimes.set(number, at);
      const events = await (await api.at(header.hash)).query.system.events();
      for (const { event } of events) {
        if (event.section !== 'inference') continue;
        const job = event.data.job?.toBigInt?.();
        if (job === undefined) continue;
        if (END_EVENTS.includes(event.method)) {
          const end = { method: event.method, block: number, at };
          const waiter = waiters.get(job);
          if (waiter) waiter(end); else ended.set(job, end);
        }
      }
    });

    const done = [];
    const failures = [];
    let next = 0;
    const metricsBefore = await scrape(opts.metrics);
    const started = Date.now();
    log(`${total} jobs (${batch} image(s) each) on release ${releaseId}, ${concurrency} in flight, worker capacity ${capacity}`);

    async function requester(account) {
      while (next < total) {
        next += 1;
        const t0 = Date.now();
        try {
          const tx = api.tx.inference.submitJob(releaseId, 'Vanilla', payload, UNIT, null);
          const { events, block } = await send(api, tx, account);
          const tIncluded = Date.now();
          const submitted = events.find((e) => api.events.inference.JobQueued.is(e));
          const job = submitted.data.job.toBigInt();
          const includedAt = (await api.rpc.chain.getHeader(block)).number.toNumber();
          const end = ended.get(job) ?? await new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`job ${job} did not end in ${opts.timeout} s`)), Number(opts.timeout) * 1000);
            waiters.set(job, (e) => { clearTimeout(timer); resolve(e); });
          });
          waiters.delete(job);
          if (end.method !== 'JobSettled') throw new Error(`job ${job}: ${end.method}`);
          done.push({ job, t0, tIncluded, tEnd: end.at, includedAt, endedAt: end.block });
        } catch (e) {
          failures.push(e.message);
        }
      }
    }
    await Promise.all(requesters.map(requester));
    const wall = (Date.now() - started) / 1000;
    const metricsAfter = await scrape(opts.metrics);
    unsub();

    // Observed block interval over the run.
    const numbers = [...blockTimes.keys()].sort((a, b) => a - b);
    const blockInterval = numbers.length > 1
      ? (blockTimes.get(numbers.at(-1)) - blockTimes.get(numbers[0])) / (numbers.at(-1) - numbers[0]) / 1000 : NaN;
    const seconds = (f) => done.map(f).map((ms) => ms / 1000);
    const latency = seconds((d) => d.tEnd - d.t0);
    const report = {
      jobs: done.length, failed: failures.length, failures: failures.slice(0, 5), concurrency, capacity, batch,
      wallSeconds: wall, jobsPerMinute: (done.length / wall) * 60,
      blockIntervalSeconds: blockInterval,
      latencySeconds: { mean: mean(latency), p50: quantile(latency, 0.5), p95: quantile(latency, 0.95), max: Math.max(...latency) },
      submitToIncludedSeconds: mean(seconds((d) => d.tIncluded - d.t0)),
      includedToSettledSeconds: mean(seconds((d) => d.tEnd - d.tIncluded)),
      blocksIncludedToSettled: mean(done.map((d) => d.endedAt - d.includedAt)),
    };
    if (metricsBefore && metricsAfter) {
      const n = metricsAfter.execCount - metricsBefore.execCount;
      report.worker = {
        executions: n,
        executionMeanMs: ((metricsAfter.execSum - metricsBefore.execSum) / n) * 1000,
        seenToAnswerMeanMs: ((metricsAfter.latencySum - metricsBefore.latencySum) / (metricsAfter.latencyCount - metricsBefore.latencyCount)) * 1000,
        resubmissions: metricsAfter.resubmissions - metricsBefore.resubmissions,
      };
    }
    if (opts.json) {
      console.log(JSON.stringify(report));
    } else {
      const f = (x, d = 2) => Number(x).toFixed(d);
      console.log(`settled ${report.jobs} jobs in ${f(wall, 1)} s: ${f(report.jobsPerMinute, 1)} jobs/min (${report.failed} failed)`);
      console.log(`  block interval ${f(blockInterval)} s; latency mean ${f(report.latencySeconds.mean)} s, p50 ${f(report.latencySeconds.p50)} s, p95 ${f(report.latencySeconds.p95)} s`);
      console.log(`  submit → job in a block:      ${f(report.submitToIncludedSeconds)} s (chain)`);
      console.log(`  job in a block → settled:     ${f(report.includedToSettledSeconds)} s = ${f(report.blocksIncludedToSettled)} blocks`);
      if (report.worker) {
        console.log(`  of which worker, block seen → answer signed: ${f(report.worker.seenToAnswerMeanMs)} ms (model execution ${f(report.worker.executionMeanMs, 3)} ms); ${report.worker.resubmissions} answers sent again`);
      }
      for (const m of report.failures) console.log(`  failure: ${m}`);
    }
    return failures.length === 0 ? 0 : 1;
  } finally {
    await api.disconnect();
  }
}

main().then((code) => process.exit(code), (e) => { console.error(`error: ${e.message}`); process.exit(2); });
