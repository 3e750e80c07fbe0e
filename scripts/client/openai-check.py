"""The OpenAI Python client, unchanged, against OPG through `opg-client proxy`.

    python3 openai-check.py http://127.0.0.1:8088/v1 MODEL [EMBEDDING_MODEL]

A chat completion, whole and streamed (greedy, same seed: the same text), and the model
list; with EMBEDDING_MODEL (a text-encoder release, MiniLM-L3 on the dev chain), the
embeddings of the reference texts, in the client's default base64 and as floats: the same
bits, onnxruntime's within tolerance (offchain-worker/tests/encoder-reference.json).
Prints a JSON summary; fails with the reason otherwise.
"""
import json
import math
from array import array
import os
import sys

from openai import OpenAI

base_url, model = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base_url, api_key="unused: the proxy pays by voucher", max_retries=0)
messages = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
whole = client.chat.completions.create(
    model=model, messages=messages, max_tokens=16, temperature=0, seed=7
)
text = whole.choices[0].message.content
assert "Paris" in text, text
assert whole.choices[0].finish_reason in ("stop", "length"), whole
assert 0 < whole.usage.completion_tokens <= 16 and whole.usage.prompt_tokens > 0, whole.usage

stream = client.chat.completions.create(
    model=model, messages=messages, max_tokens=16, temperature=0, seed=7, stream=True
)
pieces, finish = [], None
for chunk in stream:
    if chunk.choices:
        pieces.append(chunk.choices[0].delta.content or "")
        finish = chunk.choices[0].finish_reason or finish
assert "".join(pieces) == text, (pieces, text)
assert finish == whole.choices[0].finish_reason, finish

ids = [m.id for m in client.models.list().data]
assert model in ids, ids
summary = {
    "answer": text,
    "usage": whole.usage.model_dump(),
    "streamedChunks": len([p for p in pieces if p]),
    "models": ids,
}

if len(sys.argv) > 3:
    encoder = sys.argv[3]
    assert encoder in ids, ids
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "../../offchain-worker/tests/encoder-reference.json")) as f:
        case = json.load(f)["cases"][4]
    texts, want = case["texts"], case["embeddings"]["fp32"]
    packed = client.embeddings.create(model=encoder, input=texts)
    floats = client.embeddings.create(model=encoder, input=texts, encoding_format="float")
    got = [d.embedding for d in packed.data]
    # JSON gives each f32 in its shortest decimal: the same f32 once rounded back.
    as_f32 = [array("f", d.embedding) for d in floats.data]
    assert as_f32 == [array("f", g) for g in got], "base64 and float differ"
    assert packed.usage.prompt_tokens == sum(map(sum, case["attention_mask"])), packed.usage
    for row, (g, w) in enumerate(zip(got, want)):
        assert len(g) == len(w) == 384, len(g)
        worst = max(abs(a - b) - 1e-3 * abs(b) for a, b in zip(g, w))
        assert worst <= 1e-4, f"text {row}: {worst} off onnxruntime's"

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b)) / math.sqrt(
            sum(x * x for x in a) * sum(y * y for y in b)
        )

    paraphrase, unrelated = cosine(got[0], got[1]), cosine(got[0], got[2])
    assert paraphrase > unrelated, (paraphrase, unrelated)
    summary["embeddings"] = {
        "texts": len(got),
        "dimensions": len(got[0]),
        "tokens": packed.usage.prompt_tokens,
        "cosineParaphrase": round(paraphrase, 4),
        "cosineUnrelated": round(unrelated, 4),
    }
print(json.dumps(summary))
