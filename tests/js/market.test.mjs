// The inference market through @polkadot/api, as a dApp sees it on `opg-node --dev`: the demo
// model in storage, `InferenceApi` runtime calls, and a paid Vanilla job (Bob requests, the
// dev worker Alice answers) whose verification fee is burned.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady, blake2AsHex } from '@polkadot/util-crypto';
import { readFileSync } from 'node:fs';
import { u8aToHex } from '@polkadot/util';
import { drawn, send } from './lib.mjs';

const WS = process.env.OPG_WS ?? 'ws://127.0.0.1:9944';
const UNIT = 10n ** 18n;
let api;
let keyring;

// Canonical tensors are not call parameters (inputs travel as bytes), so a dApp registers them.
// Bytes parameters are passed as hex: a Uint8Array would be read as length-prefixed SCALE.
const TENSOR_TYPES = {
  OpgElemType: { _enum: ['F32', 'F64', 'I8', 'U8', 'I32', 'I64', 'Bool', 'F16'] },
  OpgTensor: { elem: 'OpgElemType', shape: 'Vec<u32>', data: 'Bytes' },
};

function f32Tensor(shape, values) {
  // A hex string is taken as raw bytes (a Uint8Array would be read as length-prefixed SCALE).
  const data = u8aToHex(new Uint8Array(new Float32Array(values).buffer));
  return api.createType('Vec<OpgTensor>', [{ elem: 'F32', shape, data }]).toU8a();
}

before(async () => {
  await cryptoWaitReady();
  api = await ApiPromise.create({
    provider: new WsProvider(WS), throwOnConnect: true, noInitWarn: true, types: TENSOR_TYPES,
  });
  keyring = new Keyring({ type: 'sr25519' });
});

after(async () => {
  await api?.disconnect();
});

test('the demo model is published and matches the committed file', async () => {
  // What was published is the release's `params` (the rest is the hub's bookkeeping).
  const release = (await api.query.modelHub.releases(0)).unwrap().params;
  const file = readFileSync(new URL('../../models/demo/mlp-classifier.onnx', import.meta.url));
  assert.equal(release.artifact.toHex(), blake2AsHex(file, 256));
  assert.equal(release.artifactSize.toNumber(), file.length);
  assert.equal(release.inputs[0].name.toUtf8(), 'features');
  assert.deepEqual(release.outputs[0].shape.map((d) => d.toNumber()), [1, 3]);
  const viaApi = await api.call.inferenceApi.repositoryReleases(0);
  assert.equal(viaApi.length, 1);
  assert.equal(viaApi[0][1].params.artifact.toHex(), release.artifact.toHex());
});

test('a Vanilla job is assigned, answered, settled, and its verification fee burned', async () => {
  const alice = keyring.addFromUri('//Alice');
  const bob = keyring.addFromUri('//Bob');
  const input = f32Tensor([1, 4], [5.1, 3.5, 1.4, 0.2]);

  const quote = (await api.call.inferenceApi.feeQuote(0, 'Vanilla', input.length)).unwrap();
  const worker = (await api.call.inferenceApi.worker(alice.address)).unwrap();
  assert.equal(quote.price.toBigInt(), worker.price.toBigInt(), 'the dev worker is the cheapest');
  const burnedBefore = (await api.call.inferenceApi.burnTotals()).total.toBigInt();

  const { events: submitted } = await send(api, api.tx.inference.submitJob(0, 'Vanilla', u8aToHex(input), UNIT, null), bob);
  const queued = submitted.find((e) => api.events.inference.JobQueued.is(e));
  assert.ok(queued, 'JobQueued emitted');
  const job = queued.data.job.toBigInt();
  // The worker is drawn in a later block, with randomness that did not exist at submission.
  const drawnRecord = await drawn(api, job);
  assert.equal(drawnRecord.worker.toString(), alice.address);
  const open = await api.call.inferenceApi.openJobs(alice.address);
  assert.ok(open.some((id) => id.toBigInt() === job), 'the worker sees its open job');

  const output = f32Tensor([1, 3], [0.7, 0.2, 0.1]);
  const { events: settled } = await send(api, api.tx.inference.submitResult(job, u8aToHex(output), 'None'), alice);
  const settle = settled.find((e) => api.events.inference.JobSettled.is(e));
  assert.ok(settle, 'Vanilla results settle on submission');
  assert.ok(settle.data.mode.isVanilla, 'the event says the output is unverified');
  const fee = settle.data.verificationFee.toBigInt();
  assert.ok(fee > 0n);
  assert.ok(settled.some((e) => api.events.inference.Burned.is(e) && e.data.amount.toBigInt() === fee));

  const [record, , result] = (await api.call.inferenceApi.job(job)).unwrap();
  assert.ok(record.status.isSettled);
  assert.equal(result.unwrap().output.toHex(), u8aToHex(output));
  const burnedAfter = (await api.call.inferenceApi.burnTotals()).total.toBigInt();
  assert.ok(burnedAfter - burnedBefore >= fee, 'burn totals count the fee');
});

test('a job nobody can serve is refused with a typed error', async () => {
  const bob = keyring.addFromUri('//Bob');
  const input = f32Tensor([1, 4], [0, 0, 0, 0]);
  // Max fee below the dev worker's price: no eligible worker.
  await assert.rejects(send(api, api.tx.inference.submitJob(0, 'Vanilla', u8aToHex(input), 1n, null), bob), /inference\.NoEligibleWorker/);
  // A wrongly shaped input is refused against the release's IO spec.
  const bad = f32Tensor([1, 3], [0, 0, 0]);
  await assert.rejects(send(api, api.tx.inference.submitJob(0, 'Vanilla', u8aToHex(bad), UNIT, null), bob), /inference\.InvalidInput/);
});
