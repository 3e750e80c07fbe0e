// The short zombienet check CI runs (`scripts/zombienet.sh check`): the full smoke test needs
// relay chain binaries that take hours to build, so CI checks what can go wrong without them.
//
// - every zombienet/*.zndsl parses with zombienet's own DSL parser, and its network file
//   with zombienet's config reader;
// - the assertions name only nodes of that network, and their js-scripts exist and compile;
// - each parachain's chain spec exists, has the config's para id and relay chain, and its
//   collator selection invulnerables are exactly the collators' keys (zombienet keys a node
//   named `alice` with //Alice), so the collators can author;
// - a collator running the worker (`--inference`, `--inference-gpu`) gets an `infr` sr25519
//   key in its keystore, which is what the worker signs with on a non-dev chain.
//
// Run with zombienet's node_modules on NODE_PATH (the script does).
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { parse_to_json } = require('@zombienet/dsl-parser-wrapper');
const { readNetworkConfig } = require('@zombienet/utils');
// zombienet's own key derivation, the one it uses to fill each node's keystore.
const { generateKeyForNode } = require('@zombienet/orchestrator/dist/keys');

const root = path.resolve(__dirname, '..');
const problems = [];
const fail = (msg) => problems.push(msg);

async function checkNetwork(configPath) {
	const cfg = readNetworkConfig(configPath);
	const name = path.relative(root, configPath);
	const nodes = new Set(cfg.relaychain.nodes.map((n) => n.name));
	if (cfg.relaychain.nodes.filter((n) => n.validator !== false).length < 2) fail(`${name}: fewer than 2 relay validators`);
	for (const para of cfg.parachains) {
		// zombienet resolves chain_spec_path from the working directory: the repository root.
		const specPath = path.resolve(root, para.chain_spec_path ?? '');
		if (!para.chain_spec_path || !fs.existsSync(specPath)) {
			fail(`${name}: parachain ${para.id}: chain spec ${para.chain_spec_path} not found`);
			continue;
		}
		const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
		if ((spec.para_id ?? spec.paraId) !== para.id) fail(`${name}: ${para.chain_spec_path} has para id ${spec.para_id}, not ${para.id}`);
		if ((spec.relay_chain ?? spec.relayChain) !== cfg.relaychain.chain) {
			fail(`${name}: ${para.chain_spec_path} names relay chain ${spec.relay_chain}, the network runs ${cfg.relaychain.chain}`);
		}
		// The raw spec zombienet runs cannot show its invulnerables; its plain twin can, and
		// node/tests/chain_specs.rs checks that both come from the same preset.
		const plain = JSON.parse(fs.readFileSync(specPath.replace(/-raw\.json$/, '.json'), 'utf8'));
		const genesis = plain.genesis.runtimeGenesis.patch ?? plain.genesis.runtimeGenesis.config;
		const invulnerables = [...genesis.collatorSelection.invulnerables].sort();
		const collators = para.collators ?? [];
		const keys = (await Promise.all(collators.map((c) => generateKeyForNode(c.name)))).map((k) => k.sr_account.address).sort();
		if (JSON.stringify(keys) !== JSON.stringify(invulnerables)) {
			fail(`${name}: collators ${collators.map((c) => c.name)} are not the spec's invulnerables ${invulnerables}`);
		}
		for (const c of collators) {
			nodes.add(c.name);
			const args = c.args ?? [];
			if (c.command !== 'opg-node') fail(`${name}: collator ${c.name} runs ${c.command}, not opg-node`);
			const worker = args.some((a) => a === '--inference' || a === '--inference-gpu');
			if (worker && !(c.keystore_key_types ?? []).includes('infr_sr')) {
				fail(`${name}: collator ${c.name} runs the worker but gets no infr_sr key`);
			}
			if (worker && !(c.keystore_key_types ?? []).some((k) => k.startsWith('aura'))) {
				fail(`${name}: collator ${c.name} lists keystore_key_types without its aura key`);
			}
		}
		if (!collators.some((c) => (c.args ?? []).some((a) => a.startsWith('--inference')))) {
			fail(`${name}: no collator of parachain ${para.id} runs the inference worker`);
		}
	}
	return nodes;
}

async function main() {
	const dir = __dirname;
	const tests = fs.readdirSync(dir).filter((f) => f.endsWith('.zndsl'));
	const configs = fs.readdirSync(dir).filter((f) => f.endsWith('.toml'));
	if (tests.length === 0) fail('no .zndsl test in zombienet/');
	for (const file of configs) await checkNetwork(path.join(dir, file));
	for (const file of tests) {
		let test;
		try {
			test = JSON.parse(parse_to_json(fs.readFileSync(path.join(dir, file), 'utf8')));
		} catch (e) {
			fail(`${file}: ${e.message ?? e}`);
			continue;
		}
		const nodes = await checkNetwork(path.resolve(dir, test.network));
		for (const { original_line: line, parsed } of test.assertions) {
			const node = parsed.args.node_name;
			if (node && !nodes.has(node)) fail(`${file}: "${line}": no node ${node}`);
			if (parsed.fn === 'CustomJs') {
				const script = path.resolve(dir, parsed.args.file_path);
				if (!fs.existsSync(script)) {
					fail(`${file}: "${line}": ${parsed.args.file_path} not found`);
					continue;
				}
				try {
					new vm.Script(fs.readFileSync(script, 'utf8'), { filename: script });
				} catch (e) {
					fail(`${file}: ${parsed.args.file_path}: ${e.message}`);
				}
				// Not required here: it loads tests/js's @polkadot/api, installed by the JS tests.
				if (!/module\.exports\s*=\s*\{[^}]*\brun\b/.test(fs.readFileSync(script, 'utf8'))) {
					fail(`${file}: ${parsed.args.file_path} exports no run()`);
				}
			}
		}
		console.log(`[zombienet] ${file}: ${test.assertions.length} assertions on ${test.network}`);
	}
	console.log(`[zombienet] ${configs.length} network configs checked`);
	if (problems.length) {
		for (const p of problems) console.error(`[zombienet] ${p}`);
		process.exit(1);
	}
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
