// Payment channels of the direct path through @polkadot/api: Bob opens a channel to the dev
// worker Alice, signs cumulative vouchers as a client does (sr25519 over the tag, the genesis
// hash and the SCALE voucher), and Alice redeems them in one batch: paid, fee burned.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady, blake2AsHex } from '@polkadot/util-crypto';
import { stringToU8a, u8aConcat } from '@polkadot/util';
import { send } from './lib.mjs';

const WS = process.env.OPG_WS ?? 'ws://127.0.0.1:9944';
const UNIT = 10n ** 18n;
const VOUCHER_TAG = stringToU8a('opg/voucher/v1');
let api;
let alice;
let bob;

before(async () => {
  await cryptoWaitReady();
  api = await ApiPromise.create({ provider: new WsProvider(WS), throwOnConnect: true, noInitWarn: true });
  const keyring = new Keyring({ type: 'sr25519' });
  alice = keyring.addFromUri('//Alice');
  bob = keyring.addFromUri('//Bob');
});

after(async () => {
  await api?.disconnect();
});

/** A voucher of `channel`, signed by `signer` as the chain checks it. */
function signedVoucher(channel, seq, pay, burn, signer) {
  const type = api.tx.inference.redeem.meta.args[1].type.toString();
  const voucher = api.createType(type, {
    channel, seq, cumulativePay: pay, cumulativeBurn: burn, requestHash: blake2AsHex(`request ${seq}`),
  });
  const payload = u8aConcat(VOUCHER_TAG, api.genesisHash.toU8a(), voucher.toU8a());
  return { voucher, signature: { Sr25519: signer.sign(payload) } };
}

test('a channel is opened, its vouchers redeemed in one batch, and closed', async () => {
  const deposit = 10n * UNIT;
  const { events: opened } = await send(api, api.tx.inference.openChannel(alice.address, 0, 'Vanilla', deposit), bob);
  const open = opened.find((e) => api.events.inference.ChannelOpened.is(e));
  assert.ok(open, 'ChannelOpened emitted');
  const channel = open.data.channel.toBigInt();
  const record = (await api.query.inference.channels(channel)).unwrap();
  assert.equal(record.deposit.toBigInt(), deposit);
  assert.equal(record.worker.toString(), alice.address);

  // Three requests at the worker's price, each burning a job's verification fee (the flat fee
  // and the per-byte fee of the largest output: at least the flat fee the chain requires).
  const price = (await api.call.inferenceApi.worker(alice.address)).unwrap().price.toBigInt();
  const fee = (await api.call.inferenceApi.feeQuote(0, 'Vanilla', 0)).unwrap().verificationFee.toBigInt();
  const pay = 3n * price;
  const burn = 3n * fee;
  const burnedBefore = (await api.call.inferenceApi.burnTotals()).total.toBigInt();
  const issuanceBefore = (await api.query.balances.totalIssuance()).toBigInt();

  // A voucher Alice signed herself is not Bob's.
  const forged = signedVoucher(channel, 3, pay, burn, alice);
  await assert.rejects(
    send(api, api.tx.inference.redeem(channel, forged.voucher, forged.signature, blake2AsHex('batch')), alice),
    /inference\.BadVoucher/,
  );
  const { voucher, signature } = signedVoucher(channel, 3, pay, burn, bob);
  // Only the channel's worker redeems.
  await assert.rejects(
    send(api, api.tx.inference.redeem(channel, voucher, signature, blake2AsHex('batch')), bob),
    /inference\.NotChannelWorker/,
  );
  const { events } = await send(api, api.tx.inference.redeem(channel, voucher, signature, blake2AsHex('batch')), alice);
  const redeemed = events.find((e) => api.events.inference.ChannelRedeemed.is(e));
  assert.ok(redeemed, 'ChannelRedeemed emitted');
  assert.equal(redeemed.data.firstSeq.toNumber(), 1);
  assert.equal(redeemed.data.lastSeq.toNumber(), 3);
  assert.equal(redeemed.data.burned.toBigInt(), burn);
  assert.equal(redeemed.data.workerPayment.toBigInt() + redeemed.data.royalty.toBigInt(), pay);
  const burnedAfter = (await api.call.inferenceApi.burnTotals()).total.toBigInt();
  assert.equal(burnedAfter - burnedBefore, burn, 'the burn counters grew by the voucher burn');
  const issuanceAfter = (await api.query.balances.totalIssuance()).toBigInt();
  assert.ok(issuanceBefore - issuanceAfter >= burn, 'issuance fell by at least the burn (fees too)');

  // The same voucher again is stale.
  await assert.rejects(
    send(api, api.tx.inference.redeem(channel, voucher, signature, blake2AsHex('batch')), alice),
    /inference\.StaleVoucher/,
  );
  // Bob closes; the rest comes back after the close and dispute windows, not now.
  const { events: closing } = await send(api, api.tx.inference.closeChannel(channel), bob);
  assert.ok(closing.some((e) => api.events.inference.ChannelClosing.is(e)));
  await assert.rejects(send(api, api.tx.inference.finishClose(channel), bob), /inference\.NotClosable/);
  await assert.rejects(send(api, api.tx.inference.topUpChannel(channel, UNIT), bob), /inference\.ChannelClosing/);
  const after = (await api.query.inference.channels(channel)).unwrap();
  assert.equal(after.deposit.toBigInt() - after.redeemedPay.toBigInt() - after.redeemedBurn.toBigInt(), deposit - pay - burn);
});
