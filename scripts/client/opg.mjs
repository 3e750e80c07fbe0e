// What the client scripts share: the layouts of job inputs and outputs (they travel as SCALE
// bytes, so the client registers their layout to build and read them: canonical tensors, and
// the chat request and response of LLM releases, `opg_primitives::chat`), the direct path's
// voucher and receipt (`opg_primitives::channel`), and the OPG unit.
import { u8aConcat, u8aToHex, stringToU8a } from '@polkadot/util';
import { blake2AsU8a, signatureVerify } from '@polkadot/util-crypto';

export const TYPES = {
  OpgElemType: { _enum: ['F32', 'F64', 'I8', 'U8', 'I32', 'I64', 'Bool', 'F16'] },
  OpgTensor: { elem: 'OpgElemType', shape: 'Vec<u32>', data: 'Bytes' },
  OpgRole: { _enum: ['System', 'User', 'Assistant'] },
  OpgChatMessage: { role: 'OpgRole', content: 'Bytes' },
  OpgPrompt: { _enum: { Chat: 'Vec<OpgChatMessage>', Raw: 'Bytes' } },
  // Fixed point: temperature and repeatPenalty in thousandths, topP and minP in millionths.
  OpgSampling: {
    temperature: 'u32', topK: 'u32', topP: 'u32', minP: 'u32', repeatPenalty: 'u32', repeatLastN: 'u32', seed: 'u64',
  },
  OpgChatRequest: { prompt: 'OpgPrompt', maxTokens: 'u32', sampling: 'OpgSampling', stop: 'Vec<Bytes>' },
  OpgFinishReason: { _enum: ['Stop', 'Length'] },
  OpgChatResponse: {
    text: 'Bytes', tokenIds: 'Vec<u32>', finishReason: 'OpgFinishReason', promptTokens: 'u32',
    completionTokens: 'u32', engine: 'Bytes', deviceClass: 'Bytes', logitsDigest: 'u64',
  },
};

// A chat request: `messages` as [{ role: 'User', content: 'text' }, ...]; greedy unless a
// temperature (a number, e.g. 0.7) is given.
export function chatRequest(api, messages, { maxTokens = 64, temperature = 0, seed = 0, stop = [] } = {}) {
  // As hex: polkadot.js reads a Uint8Array given for `Bytes` as already length-prefixed, and a
  // string that starts with 0x as hex.
  const utf8 = (text) => `0x${Buffer.from(text, 'utf8').toString('hex')}`;
  return api.createType('OpgChatRequest', {
    prompt: { Chat: messages.map((m) => ({ role: m.role, content: utf8(m.content) })) },
    maxTokens,
    sampling: {
      temperature: Math.round(temperature * 1000), topK: 40, topP: 950_000, minP: 50_000,
      repeatPenalty: 1000, repeatLastN: 64, seed,
    },
    stop: stop.map(utf8),
  });
}
// 1 OPG in plancks (18 decimals).
export const UNIT = 10n ** 18n;

// The direct path's messages.
export const DIRECT_TYPES = {
  ...TYPES,
  OpgVoucher: { channel: 'u64', seq: 'u64', cumulativePay: 'u128', cumulativeBurn: 'u128', requestHash: 'H256' },
  OpgSignedVoucher: '(OpgVoucher, MultiSignature)',
  OpgReceipt: {
    channel: 'u64', seq: 'u64', release: 'u32', requestHash: 'H256', responseHash: 'H256',
    engine: 'Bytes', deviceClass: 'Bytes', unixMs: 'u64',
  },
  // The worker's signature, and on a TEE channel the attested enclave key's (ed25519).
  OpgSignedReceipt: '(OpgReceipt, MultiSignature, Option<[u8; 64]>)',
};

export const hash = (bytes) => blake2AsU8a(bytes, 256);

/** The hex of a signed voucher for `request` (its canonical bytes), for the OPG-Voucher header. */
export function signVoucher(api, requester, { channel, seq, pay, burn }, request) {
  const voucher = api.createType('OpgVoucher', {
    channel, seq, cumulativePay: pay, cumulativeBurn: burn, requestHash: hash(request),
  });
  const payload = u8aConcat(stringToU8a('opg/voucher/v1'), api.genesisHash.toU8a(), voucher.toU8a());
  return api.createType('OpgSignedVoucher', [voucher, { Sr25519: requester.sign(payload) }]).toHex();
}

/**
 * The voucher in `hex` (a SCALE signed voucher, as the worker's `GET /v1/channels/{id}` gives
 * it) if `address` signed it for this chain; throws otherwise.
 */
export function ownVoucher(api, hex, address) {
  const [voucher, signature] = api.createType('OpgSignedVoucher', hex);
  const payload = u8aConcat(stringToU8a('opg/voucher/v1'), api.genesisHash.toU8a(), voucher.toU8a());
  if (!signature.isSr25519 || !signatureVerify(payload, signature.asSr25519, address).isValid) {
    throw new Error('the voucher is not signed by this account for this chain');
  }
  return voucher;
}

/**
 * Checks a receipt (hex of the SCALE signed receipt) before its answer is used: signed by
 * `worker` for this chain, for this channel and sequence, over `request` and `response` (the
 * canonical bytes; null for an error answer), and on a TEE channel by `enclave`, the worker's
 * attested enclave key (`enclaveKey`). Returns the receipt; throws what failed.
 */
export function verifyReceipt(api, hex, { worker, channel, seq, request, response, enclave }) {
  const [receipt, signature, enclaveSignature] = api.createType('OpgSignedReceipt', hex);
  const payload = u8aConcat(stringToU8a('opg/receipt/v1'), api.genesisHash.toU8a(), receipt.toU8a());
  if (!signature.isSr25519 || !signatureVerify(payload, signature.asSr25519, worker).isValid) {
    throw new Error('the receipt is not signed by the worker');
  }
  if (enclave) {
    if (enclaveSignature.isNone) throw new Error('a TEE receipt without the enclave\'s signature');
    const { isValid, crypto } = signatureVerify(payload, enclaveSignature.unwrap(), enclave.public);
    if (!isValid || crypto !== 'ed25519') throw new Error('the receipt is not signed by the worker\'s attested enclave key');
    if (receipt.unixMs.toBigInt() >= enclave.expiresAtMs) throw new Error('the enclave key had expired when the receipt was made');
  }
  if (receipt.channel.toBigInt() !== BigInt(channel) || receipt.seq.toBigInt() !== BigInt(seq)) {
    throw new Error('the receipt is for another voucher');
  }
  if (u8aToHex(receipt.requestHash) !== u8aToHex(hash(request))) throw new Error('the receipt names another request');
  // No response: an error answer, whose bytes name the worker's reason (not checked here).
  if (response !== null && u8aToHex(receipt.responseHash) !== u8aToHex(hash(response))) {
    throw new Error('the receipt names another answer');
  }
  return receipt;
}

/**
 * `worker`'s attested enclave key as the chain holds it now (`TeeApi::worker_status`), for
 * [verifyReceipt]: { public, expiresAtMs }, or null while none is usable.
 */
export async function enclaveKey(api, worker) {
  const status = await api.call.teeApi.workerStatus(worker);
  if (!status.keyUsable.isTrue || status.key.isNone) return null;
  const key = status.key.unwrap();
  return { public: key.public.toU8a(), expiresAtMs: key.expiresAtMs.toBigInt() };
}

/** Signs `tx` and resolves with its events once finalized (the worker reads finalized state). */
export function sendFinalized(api, tx, signer) {
  return new Promise((resolve, reject) => {
    tx.signAndSend(signer, ({ status, events, dispatchError }) => {
      if (dispatchError) {
        const err = dispatchError.isModule ? api.registry.findMetaError(dispatchError.asModule) : null;
        reject(new Error(err ? `${err.section}.${err.name}` : dispatchError.toString()));
      } else if (status.isFinalized) {
        resolve(events.map(({ event }) => event));
      }
    }).catch(reject);
  });
}
