"""Rollout throughput against bare ``model.generate`` on the same prompts, in one run.

    python benchmarks/rl_rollout_bench.py [--tasks 4] [--group-size 2] [--concurrency 4]
        [--max-turns 2] [--max-new-tokens 48] [--model smollm2] [--no-batched] [--no-save]

1. Rollout: ``Rollout.run`` on toy train tasks with SmolLM2 as a ``LocalPolicy``:
   ``concurrency`` episodes at once, each in its own Docker sandbox, verified.
   Throughput = generated tokens / wall time of the whole stage (sandboxes,
   tools and verifiers included).
2. Bare generate, batch 1: every turn of those episodes again, from the exact
   token context the policy saw, with ``model.generate`` sampling exactly as
   many tokens (``min_new_tokens = max_new_tokens``), one prompt at a time.
3. Bare generate, batched (unless ``--no-batched``): the same prompts in
   left-padded batches of ``concurrency``, every row generating the batch's
   longest count; all tokens produced are counted (raw decoding capacity).

Writes the key ``rollout_vs_generate`` of ``benchmarks/results/rl.json``
(read-modify-write under a lock; other keys are left alone) and a bar chart
``benchmarks/results/rl_rollout.png``. Each torch thread count in
``--threads`` gets its own rollout and baselines (on a 2-core machine shared
with other work, two OpenMP threads per op can be several times slower than
one). The load average before and after each run is recorded with it.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import torch

from openale.agent.models.local import LocalPolicy
from openale.rl.rollout import Rollout, RolloutConfig, summarize_episodes
from openale.tasks import load_tasks

RESULTS = Path(__file__).parent / "results"
KEY = "rollout_vs_generate"


def contexts(episodes) -> list[tuple[list[int], int]]:
    """(exact context ids, generated count) of every turn the policy generated."""
    out = []
    for ep in episodes:
        if ep.trajectory is None:
            continue
        seq: list[int] = []
        for chunk in ep.trajectory.chunks:
            if chunk.token_ids is None:
                continue
            if not chunk.prompt_continues:
                seq = []
            seq = seq + chunk.prompt_token_ids
            out.append((list(seq), len(chunk.token_ids)))
            seq = seq + chunk.token_ids
    return out


def sampling_kwargs(policy: LocalPolicy, temperature: float) -> dict:
    # top_k=0: the policy samples from the whole vocabulary, and so must generate.
    return dict(do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                pad_token_id=policy.pad_id)  # fmt: skip


@torch.inference_mode()
def generate_one_by_one(policy: LocalPolicy, turns, temperature: float) -> tuple[float, int]:
    kwargs = sampling_kwargs(policy, temperature)
    started, produced = time.perf_counter(), 0
    for ids, n in turns:
        x = torch.tensor([ids])  # (1, t)
        out = policy.model.generate(
            input_ids=x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=n,
            min_new_tokens=n,
            **kwargs,
        )
        produced += out.shape[1] - x.shape[1]
    return time.perf_counter() - started, produced


@torch.inference_mode()
def generate_batched(
    policy: LocalPolicy, turns, batch: int, temperature: float
) -> tuple[float, int]:
    kwargs = sampling_kwargs(policy, temperature)
    started, produced = time.perf_counter(), 0
    for i in range(0, len(turns), batch):
        part = turns[i : i + batch]
        width, n = max(len(ids) for ids, _ in part), max(k for _, k in part)
        x = torch.full((len(part), width), policy.pad_id)  # (b, t), left-padded
        mask = torch.zeros_like(x)
        for row, (ids, _) in enumerate(part):
            x[row, width - len(ids) :] = torch.tensor(ids)
            mask[row, width - len(ids) :] = 1
        out = policy.model.generate(
            input_ids=x, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, **kwargs
        )
        produced += (out.shape[1] - width) * len(part)
    return time.perf_counter() - started, produced


def save(result: dict, path: Path) -> None:
    """Replace only our key of the shared results file, under a lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / "openale-rl-results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() and path.stat().st_size else {}
        data[KEY] = result
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)


def plot(result: dict, path: Path) -> None:
    """Grouped bars: rollout, generate batch 1 and batched generate, per torch thread count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conc = result["config"]["concurrency"]
    series = [
        (f"rollout (concurrency {conc}, sandboxes)", "rollout_tokens_per_s", "tab:blue"),
        ("generate, batch 1", "generate_tokens_per_s", "tab:gray"),
        (f"generate, batch {conc}", "generate_batched_tokens_per_s", "tab:olive"),
    ]
    runs = result["runs"]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / len(series)
    for j, (label, key, color) in enumerate(series):
        xs = [i + (j - 1) * width for i in range(len(runs))]
        values = [run.get(key) or 0.0 for run in runs.values()]
        ax.bar(xs, values, width, label=label, color=color)
        for x, v in zip(xs, values, strict=True):
            ax.text(x, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(runs)), [f"{t} torch thread(s)" for t in runs])
    ax.set_ylabel("generated tokens / s")
    ax.set_title(f"{result['model']} on {result['cpus']} shared CPU cores: rollout vs generate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def measure(policy: LocalPolicy, rollout: Rollout, tasks, args) -> dict:
    """One rollout, then bare generate on the same turns; figures of this thread count."""
    policy.complete([{"role": "user", "content": "hi"}], max_new_tokens=4)  # warm up
    policy.batch_sizes.clear()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    episodes = rollout.run(tasks, round=0)
    rollout_s = time.perf_counter() - started
    turns = contexts(episodes)
    generated = sum(n for _, n in turns)
    print(f"rollout: {generated} tokens in {rollout_s:.1f}s over {len(turns)} turns")

    gen_s, gen_tokens = generate_one_by_one(policy, turns, args.temperature)
    assert gen_tokens == generated, (gen_tokens, generated)
    print(f"generate (batch 1): {gen_tokens} tokens in {gen_s:.1f}s")
    run = {
        "episodes": len(episodes),
        "turns": len(turns),
        "generated_tokens": generated,
        "prompt_tokens_mean": round(statistics.mean(len(ids) for ids, _ in turns), 1),
        "rollout_s": round(rollout_s, 2),
        "rollout_tokens_per_s": round(generated / rollout_s, 2),
        "generate_s": round(gen_s, 2),
        "generate_tokens_per_s": round(gen_tokens / gen_s, 2),
        "rollout_vs_generate": round((generated / rollout_s) / (gen_tokens / gen_s), 3),
    }
    if not args.no_batched:
        batched_s, batched = generate_batched(policy, turns, args.concurrency, args.temperature)
        print(f"generate (batch {args.concurrency}): {batched} tokens in {batched_s:.1f}s")
        run["generate_batched_s"] = round(batched_s, 2)
        run["generate_batched_tokens_per_s"] = round(batched / batched_s, 2)
    stats = summarize_episodes(episodes)
    run.update(
        policy_batch_sizes=dict(sorted(Counter(policy.batch_sizes).items())),
        episode_means_s={k: round(stats[k], 2) for k in ("sandbox_s", "model_s", "verify_s")},
        pass_rate=stats["pass_rate"],
        errors=stats["errors"],
        load_average=[round(load_before, 1), round(os.getloadavg()[0], 1)],
    )
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--tasks", type=int, default=3)
    ap.add_argument("--group-size", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--max-turns", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", default="1,2", help="torch thread counts to measure, in order")
    ap.add_argument("--no-batched", action="store_true", help="skip batched generate")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    tasks = load_tasks("toy", split="train", limit=args.tasks)
    config = RolloutConfig(
        group_size=args.group_size,
        concurrency=args.concurrency,
        max_turns=args.max_turns,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=args.seed,
    )
    runs: dict[str, dict] = {}
    with LocalPolicy.from_pretrained(args.model, max_batch=args.concurrency) as policy:
        rollout = Rollout(policy, config)
        for task in tasks:  # images are built (or found) before any clock starts
            rollout.runner.image(task)
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            print(f"-- {threads} torch thread(s)")
            runs[str(threads)] = measure(policy, rollout, tasks, args)

    first = next(iter(runs.values()))
    result = {
        "model": args.model,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.model_dump(
            include={
                "group_size",
                "concurrency",
                "max_turns",
                "max_new_tokens",
                "temperature",
                "seed",
            }
        ),  # fmt: skip
        "tasks": [t.name for t in tasks],
        "cpus": os.cpu_count(),
        # Headline figures: the first thread count measured.
        "torch_threads": int(next(iter(runs))),
        "rollout_tokens_per_s": first["rollout_tokens_per_s"],
        "generate_tokens_per_s": first["generate_tokens_per_s"],
        "rollout_vs_generate": first["rollout_vs_generate"],
        "runs": runs,
    }
    print(json.dumps(result, indent=2))
    if not args.no_save:
        save(result, RESULTS / "rl.json")
        plot(result, RESULTS / "rl_rollout.png")


if __name__ == "__main__":
    main()
