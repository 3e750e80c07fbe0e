"""Chat latency through the direct path: the OpenAI client, streaming, through opg-client proxy.

    python3 chat-latency.py http://127.0.0.1:8088/v1 MODEL [--requests 20] [--max-tokens 32]

For each request: time to first token (the first chunk with text), decode tokens per second
after it (completion tokens from the usage), total time. Prints p50/p95 as JSON.
"""
import argparse
import json
import time

from openai import OpenAI

ap = argparse.ArgumentParser()
ap.add_argument("base_url")
ap.add_argument("model")
ap.add_argument("--requests", type=int, default=20)
ap.add_argument("--max-tokens", type=int, default=32)
a = ap.parse_args()
client = OpenAI(base_url=a.base_url, api_key="unused", max_retries=0)
questions = ["What is the capital of France?", "Name a primary colour.", "What is 2 + 2?",
             "Which planet is the largest?", "What language is spoken in Spain?"]
ttft, rate, total, tokens = [], [], [], []
for i in range(a.requests):
    started = time.perf_counter()
    first = None
    usage = None
    stream = client.chat.completions.create(
        model=a.model,
        messages=[{"role": "user", "content": questions[i % len(questions)]}],
        max_tokens=a.max_tokens, temperature=0, seed=i, stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
        if chunk.usage is not None:
            usage = chunk.usage
    end = time.perf_counter()
    ttft.append((first - started) * 1000)
    total.append((end - started) * 1000)
    tokens.append(usage.completion_tokens)
    if usage.completion_tokens > 1:
        rate.append((usage.completion_tokens - 1) / (end - first))


def q(xs, p):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))], 1)


print(json.dumps({
    "requests": a.requests,
    "ttftMs": {"p50": q(ttft, 0.5), "p95": q(ttft, 0.95)},
    "totalMs": {"p50": q(total, 0.5), "p95": q(total, 0.95)},
    "decodeTokensPerS": {"p50": q(rate, 0.5), "min": q(rate, 0.0)},
    "completionTokens": {"mean": round(sum(tokens) / len(tokens), 1)},
}))
