// Everything the project's pallets expose, decoded by @polkadot/api from the live metadata the
// way polkadot.js apps decodes it: every storage item (stored values re-encode to exactly the
// stored bytes), every event and error, and every project runtime API call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';

const WS = process.env.OPG_WS ?? 'ws://127.0.0.1:9944';
const PALLETS = ['modelHub', 'inference', 'tee', 'zk'];
const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
let api;
let provider;

before(async () => {
  await cryptoWaitReady();
  provider = new WsProvider(WS);
  api = await ApiPromise.create({ provider, throwOnConnect: true, noInitWarn: true });
});

after(async () => {
  await api?.disconnect();
});

/** A default value of metadata type `id`, encoded and decoded again: the type resolves. */
function roundTrip(id) {
  const type = api.registry.createLookupType(id);
  const value = api.createType(type);
  assert.equal(u8aToHex(api.createType(type, value.toU8a()).toU8a()), u8aToHex(value.toU8a()), type);
}

test('every storage item of the project pallets decodes to exactly its stored bytes', async (t) => {
  const at = await api.rpc.chain.getFinalizedHead();
  const apiAt = await api.at(at);
  let items = 0;
  let values = 0;
  for (const pallet of PALLETS) {
    const names = Object.keys(apiAt.query[pallet]);
    assert.ok(names.length > 0, `${pallet} has storage`);
    for (const name of names) {
      const query = apiAt.query[pallet][name];
      const meta = query.creator.meta;
      items += 1;
      roundTrip(meta.type.isPlain ? meta.type.asPlain : meta.type.asMap.value);
      const optional = meta.modifier.isOptional;
      const entries = meta.type.isPlain ? [[query.key(), await query()]] : await query.entries();
      for (const [key, value] of entries) {
        const raw = await provider.send('state_getStorage', [typeof key === 'string' ? key : key.toHex(), at.toHex()]);
        if (raw === null) continue; // an absent value: its default
        const decoded = optional ? value.unwrap() : value;
        assert.equal(u8aToHex(decoded.toU8a()), raw, `${pallet}.${name}: decoded value re-encodes to the stored bytes`);
        values += 1;
      }
    }
  }
  t.diagnostic(`${items} storage items, ${values} stored values`);
  // The development preset stores repositories, releases, a worker and the TEE policy.
  assert.ok(items >= 30 && values >= 10, `${items} items, ${values} values`);
});

test('every event of the project pallets has types polkadot.js resolves', (t) => {
  let events = 0;
  for (const pallet of PALLETS) {
    for (const [name, event] of Object.entries(api.events[pallet])) {
      assert.ok(event.meta.docs.length > 0, `${pallet}.${name} is documented`);
      for (const field of event.meta.fields) roundTrip(field.type);
      events += 1;
    }
  }
  t.diagnostic(`${events} events`);
  assert.ok(events >= 30, `${events} events`);
});

test('every error of the project pallets is documented and found from its module index', (t) => {
  const pallets = api.runtimeMetadata.asLatest.pallets;
  let errors = 0;
  for (const pallet of PALLETS) {
    const index = pallets.find((p) => p.name.toString().replace(/^./, (c) => c.toLowerCase()) === pallet).index;
    for (const [name, error] of Object.entries(api.errors[pallet])) {
      assert.ok(error.meta.docs.join(' ').length > 0, `${pallet}.${name} is documented`);
      const module = api.createType('SpRuntimeModuleError', { index, error: [error.meta.index.toNumber(), 0, 0, 0] });
      const found = api.registry.findMetaError(module);
      assert.equal(`${found.section}.${found.name}`, `${pallet}.${name}`);
      assert.ok(error.is(module));
      errors += 1;
    }
  }
  t.diagnostic(`${errors} errors`);
  assert.ok(errors >= 40, `${errors} errors`);
});

test('every project runtime API answers through api.call', async () => {
  const calls = {
    inferenceApi: {
      feeQuote: [0, 'Vanilla', 16],
      inputQuote: [0, 'Vanilla', '0x'],
      job: [0],
      openJobs: [ALICE],
      worker: [ALICE],
      release: [1],
      repositoryReleases: [1],
      burnTotals: [],
      verificationFee: ['Vanilla', 100],
      openDisputes: [ALICE],
    },
    teeApi: { workerStatus: [ALICE] },
  };
  for (const [section, methods] of Object.entries(calls)) {
    // A method added to the runtime without a line here fails this test.
    assert.deepEqual(Object.keys(api.call[section]).sort(), Object.keys(methods).sort(), section);
    for (const [method, args] of Object.entries(methods)) {
      const result = await api.call[section][method](...args);
      assert.ok(result.toU8a().length > 0, `${section}.${method}`);
    }
  }
  assert.ok((await api.call.inferenceApi.feeQuote(0, 'Vanilla', 16)).isSome, 'Alice serves release 0');
  assert.equal((await api.call.inferenceApi.worker(ALICE)).unwrap().releases.length, 4);
  // An LLM release: quoted per request, not per input size.
  assert.ok((await api.call.inferenceApi.release(2)).unwrap().params.llm.isSome);
  assert.ok((await api.call.inferenceApi.feeQuote(2, 'Vanilla', 16)).isNone);
  assert.equal((await api.call.inferenceApi.repositoryReleases(1))[0][0].toNumber(), 1);
  assert.ok((await api.call.teeApi.workerStatus(ALICE)).isWorker.isTrue);
});
