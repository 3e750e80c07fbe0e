// @polkadot/api against a running `opg-node --dev` (OPG_WS, started by scripts/lib/js-test.sh):
// what polkadot.js apps and dApps see.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { send } from './lib.mjs';

const WS = process.env.OPG_WS ?? 'ws://127.0.0.1:9944';
let api;

before(async () => {
  await cryptoWaitReady();
  api = await ApiPromise.create({ provider: new WsProvider(WS), throwOnConnect: true, noInitWarn: true });
});

after(async () => {
  await api?.disconnect();
});

test('system_properties: OPG with 18 decimals and the runtime SS58 prefix', async () => {
  // As plain JSON, the way the RPC returns it.
  const props = JSON.parse(JSON.stringify((await api.rpc.system.properties()).toJSON()));
  // system_properties lists one symbol and decimals per token; OPG has one token.
  assert.deepEqual(props.tokenSymbol, ['OPG']);
  assert.deepEqual(props.tokenDecimals, [18]);
  const runtimePrefix = api.consts.system.ss58Prefix.toNumber();
  assert.equal(props.ss58Format, runtimePrefix);
  assert.equal(api.registry.chainDecimals[0], 18);
  assert.equal(api.registry.chainTokens[0], 'OPG');
});

test('runtime version and metadata decode', async () => {
  const version = api.runtimeVersion;
  assert.equal(version.specName.toString(), 'opg');
  assert.ok(api.tx.balances.transferKeepAlive, 'balances pallet in metadata');
  assert.ok(api.query.parameters.parameters, 'parameters pallet in metadata');
  // Standard runtime APIs reachable through api.call.
  const nonce = await api.call.accountNonceApi.accountNonce('5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY');
  assert.ok(nonce.toNumber() >= 0);
  const presets = await api.call.genesisBuilder.presetNames();
  assert.deepEqual(presets.map((p) => p.toString()).sort(), ['development', 'local_testnet']);
});

test('blocks are produced and finalized', async () => {
  const start = (await api.rpc.chain.getHeader()).number.toNumber();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no finalized block within 60 s')), 60_000);
    let unsub;
    api.rpc.chain.subscribeFinalizedHeads((head) => {
      if (head.number.toNumber() > start) {
        clearTimeout(timer);
        unsub?.();
        resolve();
      }
    }).then((u) => { unsub = u; });
  });
});

test('a signed transfer is included and pays a fee', async () => {
  const keyring = new Keyring({ type: 'sr25519' });
  const alice = keyring.addFromUri('//Alice');
  const dest = keyring.addFromUri('//OpgJsTest').address;
  const amount = 2n * 10n ** 18n;
  const before = (await api.query.system.account(alice.address)).data.free.toBigInt();

  const tx = api.tx.balances.transferKeepAlive(dest, amount);
  const fee = (await tx.paymentInfo(alice)).partialFee.toBigInt();
  assert.ok(fee > 0n, 'fee is quoted');

  const { blockHash } = await send(api, tx, alice);
  const atBlock = await api.at(blockHash);
  assert.equal((await atBlock.query.system.account(dest)).data.free.toBigInt(), amount);
  const after = (await atBlock.query.system.account(alice.address)).data.free.toBigInt();
  assert.ok(before - after >= amount, 'amount and fee left Alice');
});

test('the development chain pins the insecure dev TEE policy; the ZK key registry is open', async () => {
  const roots = await api.query.tee.insecureDevRoots();
  assert.equal(roots.length, 1, 'the development CA root, and only on this chain');
  const measurements = await api.query.tee.measurements.entries();
  assert.equal(measurements.length, 1);
  const [, m] = measurements[0];
  const zero = `0x${'00'.repeat(48)}`;
  assert.deepEqual([m.unwrap().pcr0.toHex(), m.unwrap().pcr1.toHex(), m.unwrap().pcr2.toHex()], [zero, zero, zero]);
  assert.match(m.unwrap().label.toUtf8(), /^INSECURE dev/);
  assert.equal((await api.query.tee.measurementCount()).toNumber(), 1);
  for (const call of ['addMeasurement', 'revokeMeasurement', 'requestChallenge', 'attest', 'evict', 'forgetCa']) {
    assert.ok(api.tx.tee[call], `tee.${call}`);
  }
  assert.ok(api.tx.zk.registerVerifyingKey && api.tx.zk.unregisterVerifyingKey);
  assert.equal((await api.query.zk.verifyingKeys.entries()).length, 0);
  // What a worker reads to keep its enclave key attested (this node runs no worker).
  const status = await api.call.teeApi.workerStatus('5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY');
  assert.equal(status.isWorker.isTrue, true, 'Alice is the preset worker');
  assert.ok(status.key.isNone && status.challenge.isNone && status.keyUsable.isFalse);
  // --dev's mocked relay chain starts two hours back, so that blocks never run ahead of the clock.
  const behind = Date.now() - status.nowMs.toNumber();
  assert.ok(behind >= 0 && behind <= 3 * 3600_000, `chain time ${behind} ms behind the clock`);
});
