"""The OpenAI Python client, unchanged, against OPG through `opg-client proxy`.

    python3 openai-check.py http://127.0.0.1:8088/v1 MODEL

A chat completion, whole and streamed (greedy, same seed: the same text), and the model
list. Prints a JSON summary; fails with the reason otherwise.
"""
import json
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
print(json.dumps({
    "answer": text,
    "usage": whole.usage.model_dump(),
    "streamedChunks": len([p for p in pieces if p]),
    "models": ids,
}))
