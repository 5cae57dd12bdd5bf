"""Generation speed of ``LocalPolicy`` against bare ``model.generate``, side by side.

    python benchmarks/agent_bench_generation.py [--prompts 8] [--tokens 64] [--repeats 3]
        [--sequential]

    # token ids on a device, random weights from a config (no tokenizer files for the model):
    python benchmarks/agent_bench_generation.py --device cuda --dtype bfloat16 \
        --model arch:qwen2-1.5b --tokenizer DIR --prompts 32 --prompt-len 512 --tokens 128

Both decode the same prompts greedily as one left-padded batch on the same
model: ``LocalPolicy`` with N threads calling ``complete`` at once (its worker
gathers them into one batch and records a log-prob per token), ``generate``
with the N prompts in one call. Throughput counts generated tokens up to and
including each row's end of turn. Runs alternate (policy, generate, generate,
policy, ...) so drift on a shared machine falls on both; each side reports its
median run. ``same_ids`` says whether both produced identical token ids.

``--device`` (``measure_ids``) feeds random token-id prompts instead of chats,
so an ``arch:`` model built from a config (``bench_models.py``) runs without a
checkpoint; ``--tokenizer`` names a folder whose tokenizer gives the policy its
end-of-turn ids. Every timed run ends with a synchronize; the result records
the device, each side's peak GPU memory and MFU (2 N FLOPs per generated
token over the dense bf16 peak: decoding is memory-bound, so this is low), and
a seeded sampled run (temperature 0.7: generators on the model's device)
twice, to show it is reproducible there.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import threading
import time
from typing import Any

import torch
from bench_models import PEAK_FLOPS, load, matmul_params, synchronize

from openale.agent.models.local import LocalPolicy
from openale.agent.models.local_batching import Sampling
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


def _ids_policy_run(policy: LocalPolicy, prompts: list, sampling: list[Sampling], device) -> tuple:
    results: list = [None] * len(prompts)
    barrier = threading.Barrier(len(prompts) + 1)

    def call(i: int) -> None:
        barrier.wait()
        results[i] = policy.generate(prompts[i], sampling[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    synchronize(device)
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    synchronize(device)
    return time.perf_counter() - started, [r.token_ids for r in results]


def _ids_generate_run(model: Any, prompts: list, max_new_tokens: int, eos: list[int], device):
    ids = torch.tensor(prompts, device=device)  # same length: no padding
    synchronize(device)
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=eos[0],
        )
    synchronize(device)
    seconds = time.perf_counter() - started
    rows = []
    for row in out[:, ids.shape[1] :].tolist():
        end = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
        rows.append(row[:end])
    return seconds, rows


def measure_ids(
    model: str,
    device: str,
    dtype: str = "bfloat16",
    tokenizer_dir: str | None = None,
    n_prompts: int = 32,
    prompt_len: int = 512,
    max_new_tokens: int = 128,
    repeats: int = 3,
) -> dict:
    """Tokens/s of ``LocalPolicy.generate`` (batched, log-probs) and ``model.generate`` on
    random token-id prompts, on ``device``; plus a seeded sampled run of the policy."""
    from transformers import AutoTokenizer

    lm, tokenizer = load(model, device, getattr(torch, dtype))
    if tokenizer_dir:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    cuda = torch.device(device).type == "cuda"
    rng = random.Random(0)
    vocab = lm.config.vocab_size
    prompts = [[rng.randrange(100, vocab) for _ in range(prompt_len)] for _ in range(n_prompts)]
    policy = LocalPolicy(lm, tokenizer, max_new_tokens=max_new_tokens, max_batch=n_prompts)
    eos = sorted(policy.batcher.eos_ids)
    greedy = [Sampling(0.0, 1.0, max_new_tokens)] * n_prompts
    sampled = [Sampling(0.7, 1.0, max_new_tokens, seed=1000 + i) for i in range(n_prompts)]
    peak: dict[str, float] = {}

    def side(name: str, fn) -> tuple[float, list]:
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        seconds, ids = fn()
        if cuda:
            peak[name] = max(peak.get(name, 0.0), torch.cuda.max_memory_allocated(device))
        return seconds, ids

    runs = {
        "policy": lambda: side("policy", lambda: _ids_policy_run(policy, prompts, greedy, device)),
        "generate": lambda: side(
            "generate", lambda: _ids_generate_run(lm, prompts, max_new_tokens, eos, device)
        ),
    }
    with policy:
        _ids_policy_run(policy, prompts[:2], greedy[:2], device)  # warm-up both paths
        _ids_generate_run(lm, prompts[:2], 4, eos, device)
        policy.batch_sizes.clear()
        times: dict[str, list[float]] = {"policy": [], "generate": []}
        ids: dict[str, list] = {}
        for i in range(repeats):
            for name in ["policy", "generate"] if i % 2 == 0 else ["generate", "policy"]:
                seconds, ids[name] = runs[name]()
                times[name].append(seconds)
        batches = dict(policy.batch_sizes)
        sampled_s, first = side(
            "sampled", lambda: _ids_policy_run(policy, prompts, sampled, device)
        )
        _, second = _ids_policy_run(policy, prompts, sampled, device)
    tokens = {name: sum(len(r) for r in rows) for name, rows in ids.items()}
    tps = {name: tokens[name] / statistics.median(times[name]) for name in times}
    n_matmul = matmul_params(lm)
    result = {
        "model": model,
        "device": f"cuda ({torch.cuda.get_device_name(device)})" if cuda else device,
        "dtype": dtype,
        "params": sum(p.numel() for p in lm.parameters()),
        "n_prompts": n_prompts,
        "prompt_len": prompt_len,
        "max_new_tokens": max_new_tokens,
        "repeats": repeats,
        "policy_tokens": tokens["policy"],
        "policy_s": [round(t, 4) for t in times["policy"]],
        "policy_tokens_per_s": round(tps["policy"], 1),
        "policy_batch_sizes": batches,
        "generate_tokens": tokens["generate"],
        "generate_s": [round(t, 4) for t in times["generate"]],
        "generate_tokens_per_s": round(tps["generate"], 1),
        "policy_vs_generate": round(tps["policy"] / tps["generate"], 3),
        "same_ids": ids["policy"] == ids["generate"],
        "sampled_tokens_per_s": round(sum(map(len, first)) / sampled_s, 1),
        "sampled_seeded_reproducible": first == second,
        "torch": torch.__version__,
    }
    if torch.device(device).type in PEAK_FLOPS:
        peak_flops = PEAK_FLOPS[torch.device(device).type]
        for name in ("policy", "generate"):
            result[f"{name}_mfu"] = round(2 * n_matmul * tps[name] / peak_flops, 4)
    result.update({f"{n}_peak_memory_gib": round(b / 2**30, 2) for n, b in peak.items()})
    return result


def save(result: dict, path: str) -> None:
    """Read-modify-write ``generation_gpu`` / the model's name in the results file at ``path``."""
    import os
    from pathlib import Path

    out = Path(path)
    data = json.loads(out.read_text()) if out.exists() else {"benchmark": "rl"}
    data.setdefault("generation_gpu", {})[result["model"]] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, out)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--sequential", action="store_true", help="also one prompt at a time")
    parser.add_argument("--device", default=None, help="token-id prompts on this device")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (arch: models)")
    parser.add_argument("--prompt-len", type=int, default=512)
    parser.add_argument("--out", default=None, help="also save under generation_gpu here")
    args = parser.parse_args()
    if args.device:
        result = measure_ids(
            args.model,
            args.device,
            args.dtype,
            args.tokenizer,
            args.prompts,
            args.prompt_len,
            args.tokens,
            args.repeats,
        )
        if args.out:
            save(result, args.out)
    else:
        result = measure_generation(
            args.prompts, args.tokens, args.repeats, args.model, sequential=args.sequential
        )
    json.dump(result, sys.stdout, indent=2)
    print()
