"""Generation speed of ``LocalPolicy`` against bare ``model.generate``, side by side.

    python benchmarks/agent_bench_generation.py [--prompts 8] [--tokens 64] [--repeats 3]
        [--sequential]

Both decode the same prompts greedily as one left-padded batch on the same
model: ``LocalPolicy`` with N threads calling ``complete`` at once (its worker
gathers them into one batch and records a log-prob per token), ``generate``
with the N prompts in one call. Throughput counts generated tokens up to and
including each row's end of turn. Runs alternate (policy, generate, generate,
policy, ...) so drift on a shared machine falls on both; each side reports its
median run. ``same_ids`` says whether both produced identical token ids.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from typing import Any

import torch

from openale.agent.models.local import LocalPolicy
from openale.agent.models.smollm import resolve_model

PROMPTS = [
    "Write a haiku about the sea.",
    "Explain what a file system is in two sentences.",
    "List three uses of the ls command.",
    "What is the capital of Japan?",
    "Give me a tip for writing clean Python code.",
    "Describe a cat to someone who has never seen one.",
    "How do I count the lines of a file in bash?",
    "Why is the sky blue?",
]


def _chats(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}] for i in range(n)]


def _policy_run(policy: LocalPolicy, chats: list, max_new_tokens: int) -> tuple[float, list]:
    results: list = [None] * len(chats)
    barrier = threading.Barrier(len(chats) + 1)

    def call(i: int) -> None:
        barrier.wait()
        results[i] = policy.complete(chats[i], max_new_tokens=max_new_tokens)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(chats))]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    return seconds, [r.token_ids for r in results]


def _generate_run(model: Any, tokenizer: Any, chats: list, max_new_tokens: int) -> tuple:
    texts = [
        tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats
    ]
    tokenizer.padding_side = "left"
    started = time.perf_counter()
    batch = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    seconds = time.perf_counter() - started
    eos = tokenizer.eos_token_id
    ids = []
    for row in out[:, batch["input_ids"].shape[1] :].tolist():
        ids.append(row[: row.index(eos) + 1] if eos in row else row)
    return seconds, ids


def measure_generation(
    n_prompts: int = 8,
    max_new_tokens: int = 64,
    repeats: int = 3,
    model: str = "smollm2",
    sequential: bool = False,
) -> dict:
    """Tokens/s of ``LocalPolicy`` (batched, with log-probs) and of ``model.generate``.

    With ``sequential``, also the policy answering the prompts one at a time
    (once), which shows what batching buys.
    """
    lm, tokenizer = resolve_model(model)
    chats = _chats(n_prompts)
    policy = LocalPolicy(
        lm, tokenizer, temperature=0, max_new_tokens=max_new_tokens, max_batch=n_prompts
    )
    with policy:
        _policy_run(policy, chats[:2], 4)  # warm-up both paths
        _generate_run(lm, tokenizer, chats[:2], 4)
        policy.batch_sizes.clear()
        times: dict[str, list[float]] = {"policy": [], "generate": []}
        ids: dict[str, list] = {}
        for i in range(repeats):
            order = ["policy", "generate"] if i % 2 == 0 else ["generate", "policy"]
            for side in order:
                if side == "policy":
                    seconds, ids[side] = _policy_run(policy, chats, max_new_tokens)
                else:
                    seconds, ids[side] = _generate_run(lm, tokenizer, chats, max_new_tokens)
                times[side].append(seconds)
        batches = dict(policy.batch_sizes)
        if sequential:
            started = time.perf_counter()
            alone = [policy.complete(c, max_new_tokens=max_new_tokens).token_ids for c in chats]
            sequential_s = time.perf_counter() - started
    tokens = {side: sum(len(r) for r in rows) for side, rows in ids.items()}
    tps = {side: tokens[side] / statistics.median(times[side]) for side in times}
    result = {
        "model": model,
        "n_prompts": n_prompts,
        "max_new_tokens": max_new_tokens,
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "policy_tokens": tokens["policy"],
        "policy_s": round(statistics.median(times["policy"]), 3),
        "policy_tokens_per_s": round(tps["policy"], 1),
        "policy_batch_sizes": batches,
        "generate_tokens": tokens["generate"],
        "generate_s": round(statistics.median(times["generate"]), 3),
        "generate_tokens_per_s": round(tps["generate"], 1),
        "policy_vs_generate": round(tps["policy"] / tps["generate"], 3),
        "same_ids": ids["policy"] == ids["generate"],
    }
    if sequential:
        result["sequential_tokens_per_s"] = round(sum(map(len, alone)) / sequential_s, 1)
        result["sequential_same_ids"] = alone == ids["policy"]
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--sequential", action="store_true", help="also one prompt at a time")
    args = parser.parse_args()
    result = measure_generation(
        args.prompts, args.tokens, args.repeats, args.model, sequential=args.sequential
    )
    json.dump(result, sys.stdout, indent=2)
    print()
