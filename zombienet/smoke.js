// zombienet js-script (CommonJS, run by `zombienet test`): the inference market on a parachain
// under a real relay chain, through the project's own @polkadot/api (tests/js, 16.5.x) rather
// than the older one zombienet bundles, which does not decorate the runtime APIs.
//
// Charlie publishes the digits CNN (file:// URI to the repository's copy, so nothing is
// downloaded), the `alice` collator's account registers as a CPU worker for it (its node runs
// `--inference` and signs with the `infr` key zombienet put in its keystore), Bob submits a
// job, and the script waits until the worker's result settles. It checks that the output is
// the model's reference answer, that the verification fee was burned (total issuance and
// `BurnTotals`) and that the worker was paid. Then a chat: Charlie publishes SmolLM2 (the
// GGUF that scripts/lib/llm-model.sh caches, with the preset release's LLM spec), Alice serves
// it at per-token prices, Bob asks a question; the answer must name Paris and the worker be
// paid exactly its per-job price plus the reported tokens. Returns 0 on success; throws
// otherwise.
const { readFileSync } = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');
const { pathToFileURL } = require('node:url');

// scripts/zombienet.sh smoke installs tests/js's locked packages first.
const requireJs = createRequire(path.resolve(__dirname, '../tests/js/package.json'));
const { ApiPromise, WsProvider } = requireJs('@polkadot/api');
const { Keyring } = requireJs('@polkadot/keyring');
const { cryptoWaitReady, blake2AsHex } = requireJs('@polkadot/util-crypto');

const UNIT = 10n ** 18n;
const MODEL = path.resolve(__dirname, '../models/digits/digits-cnn.onnx');
const LLM = path.join(process.env.HOME ?? '', '.cache/opg/models/SmolLM2-135M-Instruct.Q4_1.gguf');
const REFERENCE = path.resolve(__dirname, '../models/digits/reference.json');
const VANILLA = 1; // ModeSet bit of Vanilla

const hex = (bytes) => '0x' + Buffer.from(bytes).toString('hex');
const log = (...args) => console.log('    [smoke]', ...args);

// Resolves with the first event of a new block that `pick` returns something for.
function waitForEvent(api, pick, seconds) {
	return new Promise((resolve, reject) => {
		let unsub = () => {};
		const timer = setTimeout(() => {
			unsub();
			reject(new Error(`no matching event within ${seconds} s`));
		}, seconds * 1000);
		api.query.system
			.events((records) => {
				for (const { event } of records) {
					const found = pick(event);
					if (found) {
						clearTimeout(timer);
						unsub();
						resolve(found);
						return;
					}
				}
			})
			.then((u) => {
				unsub = u;
			}, reject);
	});
}

function f32Tensor(api, shape, values) {
	const data = hex(new Uint8Array(new Float32Array(values).buffer));
	return api.createType('Vec<OpgTensor>', [{ elem: 'F32', shape, data }]).toU8a();
}

function f32Values(tensor) {
	const raw = tensor.data.toU8a(true);
	const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
	return Array.from({ length: raw.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

async function run(nodeName, networkInfo) {
	// The JS tests' helper: signs, waits for inclusion, rejects with `section.Name`.
	const lib = await import(pathToFileURL(path.resolve(__dirname, '../tests/js/lib.mjs')).href);
	const send = async (api, tx, signer) => (await lib.send(api, tx, signer)).events;
	// The client scripts' job layouts (tensors, chat request and response).
	const { TYPES, chatRequest } = await import(pathToFileURL(path.resolve(__dirname, '../scripts/client/opg.mjs')).href);
	await cryptoWaitReady();
	const api = await ApiPromise.create({
		provider: new WsProvider(networkInfo.nodesByName[nodeName].wsUri),
		types: TYPES,
		noInitWarn: true,
	});
	try {
		const keyring = new Keyring({ type: 'sr25519' });
		const [alice, bob, charlie] = ['//Alice', '//Bob', '//Charlie'].map((s) => keyring.addFromUri(s));
		const props = await api.rpc.system.properties();
		log(`connected to ${nodeName}: ${await api.rpc.system.chain()}, ${props.tokenSymbol.toString()}`);

		// The model, published with a file:// source the worker can read on this machine.
		const file = readFileSync(MODEL);
		const spec = (name, shape) => ({ name, elem: 'F32', shape });
		let events = await send(api, api.tx.modelHub.createRepository('opg/digits-smoke', 'file://' + path.dirname(MODEL)), charlie);
		const repository = events.find((e) => api.events.modelHub.RepositoryCreated.is(e)).data.repository;
		events = await send(
			api,
			api.tx.modelHub.publishRelease(repository, {
				version: '1.0.0',
				artifact: blake2AsHex(file, 256),
				artifactSize: file.length,
				format: 'Onnx',
				sourceUri: 'file://' + MODEL,
				inputs: [spec('pixels', [0, 1, 8, 8])],
				outputs: [spec('probabilities', [0, 10])],
				modes: VANILLA,
				zkVerifyingKey: null,
				royalty: 0,
				llm: null,
			}),
			charlie,
		);
		const release = events.find((e) => api.events.modelHub.ReleasePublished.is(e)).data.release.toNumber();
		log(`release ${release} published (${file.length} bytes)`);

		// The worker: Alice's account, served by the `alice` collator's in-process worker.
		const price = UNIT / 100n;
		const existing = await api.query.inference.workers(alice.address);
		if (existing.isSome) {
			const releases = existing.unwrap().releases.map((r) => r.toNumber());
			await send(api, api.tx.inference.updateWorker([...releases, release], VANILLA, price, 4, 'Cpu'), alice);
		} else {
			await send(api, api.tx.inference.registerWorker(1_000n * UNIT, [release], VANILLA, price, 4, 'Cpu'), alice);
		}
		log(`worker ${alice.address} serves release ${release}`);

		// The job.
		const reference = JSON.parse(readFileSync(REFERENCE));
		const sample = reference.cases[0];
		const input = f32Tensor(api, [1, 1, 8, 8], sample.pixels);
		const issuanceBefore = (await api.query.balances.totalIssuance()).toBigInt();
		const burnedBefore = (await api.call.inferenceApi.burnTotals()).total.toBigInt();
		const aliceBefore = (await api.query.system.account(alice.address)).data.free.toBigInt();
		events = await send(api, api.tx.inference.submitJob(release, 'Vanilla', hex(input), UNIT, null), bob);
		const job = events.find((e) => api.events.inference.JobQueued.is(e)).data.job.toBigInt();
		// Drawn in a later block, with the relay parent's randomness: poll the record (an event
		// subscription started now could miss the block that drew it).
		let drawn = null;
		for (let i = 0; i < 600 && !drawn; i += 1) {
			const view = await api.call.inferenceApi.job(job);
			if (view.isSome) drawn = view.unwrap()[0];
			else await new Promise((resolve) => setTimeout(resolve, 200));
		}
		if (!drawn) throw new Error(`job ${job} not drawn within 120 s`);
		if (drawn.worker.toString() !== alice.address) throw new Error(`job ${job} went to ${drawn.worker}`);
		log(`job ${job} drawn under relay randomness, waiting for the worker`);

		const settled = await waitForEvent(
			api,
			(e) => (api.events.inference.JobSettled.is(e) && e.data.job.toBigInt() === job ? e : null) ||
				(api.events.inference.JobRejected.is(e) && e.data.job.toBigInt() === job ? e : null),
			300,
		);
		if (!api.events.inference.JobSettled.is(settled)) throw new Error(`job ${job} rejected: ${settled.data.reason}`);
		const fee = settled.data.verificationFee.toBigInt();
		const payment = settled.data.workerPayment.toBigInt();

		const [record, , result] = (await api.call.inferenceApi.job(job)).unwrap();
		if (!record.status.isSettled) throw new Error(`job ${job} is ${record.status}`);
		const output = api.createType('Vec<OpgTensor>', result.unwrap().output.toU8a(true));
		const got = f32Values(output[0]);
		const want = sample.probabilities;
		got.forEach((v, i) => {
			if (Math.abs(v - want[i]) > 1e-4 + 1e-3 * Math.abs(want[i])) {
				throw new Error(`output ${i}: ${v} != reference ${want[i]}`);
			}
		});
		const predicted = got.indexOf(Math.max(...got));

		const issuanceAfter = (await api.query.balances.totalIssuance()).toBigInt();
		const burnedAfter = (await api.call.inferenceApi.burnTotals()).total.toBigInt();
		const aliceAfter = (await api.query.system.account(alice.address)).data.free.toBigInt();
		if (fee <= 0n) throw new Error('no verification fee');
		// Collator fees are not burned, so issuance falls by the burn alone.
		if (issuanceBefore - issuanceAfter !== fee) {
			throw new Error(`issuance fell by ${issuanceBefore - issuanceAfter}, burned ${fee}`);
		}
		if (burnedAfter - burnedBefore !== fee) throw new Error(`BurnTotals rose by ${burnedAfter - burnedBefore}, not ${fee}`);
		// Alice also pays her result's transaction fee (and earns collator rewards), so only
		// the sign of the change is certain: the payment is checked from the event.
		if (payment !== price) throw new Error(`worker paid ${payment}, price ${price}`);
		log(
			`job ${job} settled: class ${predicted} (label ${sample.label}), worker +${payment}, burned ${fee}, ` +
				`Alice ${aliceAfter >= aliceBefore ? '+' : '-'}${aliceAfter >= aliceBefore ? aliceAfter - aliceBefore : aliceBefore - aliceAfter}`,
		);

		// A chat, paid per token.
		const gguf = readFileSync(LLM);
		const preset = (await api.call.inferenceApi.release(2)).unwrap().params;
		if (preset.llm.isNone) throw new Error('release 2 of the preset is not SmolLM2');
		events = await send(
			api,
			api.tx.modelHub.publishRelease(repository, {
				version: 'smollm2-smoke',
				artifact: blake2AsHex(gguf, 256),
				artifactSize: gguf.length,
				format: 'Gguf',
				sourceUri: 'file://' + LLM,
				inputs: [],
				outputs: [],
				modes: VANILLA,
				zkVerifyingKey: null,
				royalty: 0,
				llm: preset.llm.unwrap(),
			}),
			charlie,
		);
		const llmRelease = events.find((e) => api.events.modelHub.ReleasePublished.is(e)).data.release.toNumber();
		await send(api, api.tx.inference.updateWorker([release, llmRelease], VANILLA, price, 4, 'Cpu'), alice);
		const prices = { promptPer1k: UNIT / 1000n, completionPer1k: UNIT / 100n };
		await send(api, api.tx.inference.setTokenPrices(prices), alice);
		const request = chatRequest(
			api,
			[
				{ role: 'System', content: 'Answer in one short sentence.' },
				{ role: 'User', content: 'What is the capital of France?' },
			],
			{ maxTokens: 16 },
		);
		const quote = (await api.call.inferenceApi.inputQuote(llmRelease, 'Vanilla', hex(request.toU8a()))).unwrap();
		events = await send(api, api.tx.inference.submitJob(llmRelease, 'Vanilla', hex(request.toU8a()), quote.price, null), bob);
		const chat = events.find((e) => api.events.inference.JobQueued.is(e)).data.job.toBigInt();
		const chatSettled = await waitForEvent(
			api,
			(e) => (api.events.inference.JobSettled.is(e) && e.data.job.toBigInt() === chat ? e : null) ||
				(api.events.inference.JobRejected.is(e) && e.data.job.toBigInt() === chat ? e : null),
			600,
		);
		if (!api.events.inference.JobSettled.is(chatSettled)) throw new Error(`chat ${chat} rejected: ${chatSettled.data.reason}`);
		const [, , chatResult] = (await api.call.inferenceApi.job(chat)).unwrap();
		const answer = api.createType('OpgChatResponse', chatResult.unwrap().output.toU8a(true));
		const text = new TextDecoder().decode(answer.text.toU8a(true));
		if (!text.includes('Paris')) throw new Error(`the answer does not name Paris: ${text}`);
		const [p, c] = [answer.promptTokens.toBigInt(), answer.completionTokens.toBigInt()];
		const owed = price + (p * prices.promptPer1k + c * prices.completionPer1k) / 1000n;
		if (chatSettled.data.workerPayment.toBigInt() !== owed) {
			throw new Error(`worker paid ${chatSettled.data.workerPayment}, owed ${owed} for ${p} + ${c} tokens`);
		}
		log(`chat ${chat} settled: "${text}" (${p} + ${c} tokens), worker +${owed}, burned ${chatSettled.data.verificationFee}`);
		return 0;
	} finally {
		await api.disconnect();
	}
}

module.exports = { run };
