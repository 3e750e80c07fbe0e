// What the client scripts share: the layouts of job inputs and outputs (they travel as SCALE
// bytes, so the client registers their layout to build and read them: canonical tensors, and
// the chat request and response of LLM releases, `opg_primitives::chat`) and the OPG unit.
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
