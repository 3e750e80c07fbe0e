#!/usr/bin/env bash
# Regenerates the snarkjs test vectors of verifiers/groth16 (tests/fixtures/): compiles
# scripts/regen/zk/dot.circom with circom (the npm wasm build, no GitHub download), runs a small
# powers-of-tau and Groth16 setup with snarkjs, proves one witness and checks it with snarkjs.
# Every run draws new randomness, so the files change; the tests accept any valid set.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
zk="$root/scripts/regen/zk"
out="$root/verifiers/groth16/tests/fixtures"
bash "$root/scripts/lib/npm-ci.sh" "$zk"
cd "$zk"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
snarkjs() { node "$zk/node_modules/snarkjs/build/cli.cjs" "$@"; }
node node_modules/circom2/cli.js dot.circom --r1cs --wasm -o "$work" >/dev/null
cd "$work"
# y = 3·2 + 1·7 + 4·1 + 1·8 + 5 = 30; public signals: [y, b].
echo '{"x":[3,1,4,1],"w":[2,7,1,8],"b":5}' > input.json
snarkjs powersoftau new bn128 6 pot0.ptau >/dev/null
snarkjs powersoftau contribute pot0.ptau pot1.ptau --name=opg -e="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >/dev/null
snarkjs powersoftau prepare phase2 pot1.ptau pot.ptau >/dev/null
snarkjs groth16 setup dot.r1cs pot.ptau dot0.zkey >/dev/null
snarkjs zkey contribute dot0.zkey dot.zkey --name=opg -e="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >/dev/null
snarkjs zkey export verificationkey dot.zkey verification_key.json >/dev/null
snarkjs groth16 fullprove input.json dot_js/dot.wasm dot.zkey proof.json public.json
snarkjs groth16 verify verification_key.json public.json proof.json
cp verification_key.json proof.json public.json "$out/"
echo "[groth16] fixtures written to $out"
