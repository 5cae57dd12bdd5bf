"""Asynchronous vs synchronous RL: wall-clock per optimizer step, eta = 1 against eta = 0.

    python benchmarks/rl_async_bench.py [--steps 8] [--model tiny-random]

Both runs use the same config (model, tasks, group size, groups in flight,
trainer) and the same number of steps, interleaved in this process (sync, async,
sync, async, ...; seconds per step averaged over the repeats), on real sandboxes and
verifiers. Synchronous training generates a batch, then
trains on it; with eta = 1 the next batch is generated while the trainer
updates. The first step of each run (model loading, cold caches) is left out
of the per-step figure.

``async_vs_sync_speedup`` = (seconds per step, eta = 0) / (seconds per step,
eta = 1); goal >= 1.5. Written into ``benchmarks/results/rl.json`` (that key
only); the details go to ``rl_async.json`` and the figure to ``rl_async.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import torch

from openale.rl.config import TrainConfig
from openale.rl.pipeline import TrainingRun
from openale.rl.scalars import read_metrics

RESULTS = Path(__file__).resolve().parent / "results"
KEY = "async_vs_sync_speedup"
GOAL = 1.5
TASKS = ["count-lines", "first-line", "create-hello-file", "last-line", "count-words"]


def config(eta: int, out_dir: Path, args: argparse.Namespace) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "model": {"name_or_path": args.model},
            "tasks": {"suite": "toy", "names": TASKS},
            "rollout": {
                "group_size": args.group_size,
                "max_turns": 2,
                "max_new_tokens": args.max_new_tokens,
                "concurrency": args.group_size,
            },
            "trainer": {"lr": 1e-4, "micro_batch_tokens": 16384},
            "steps": args.steps,
            "tasks_per_step": args.tasks_per_step,
            "staleness": {"eta": eta},
            "eval": {"enabled": False},
            "checkpoint_every": 1000,
            "seed": args.seed,
            "out_dir": str(out_dir),
        }
    )


def measure(eta: int, root: Path, args: argparse.Namespace) -> dict:
    run = TrainingRun(config(eta, root / f"eta{eta}", args), progress=False)
    summary = run.run()
    metrics = read_metrics(root / f"eta{eta}" / "logs")
    steps = summary["step_s"][args.warmup :]
    kept = metrics[args.warmup :]
    return {
        "eta": eta,
        "s_per_step": statistics.mean(steps),
        "step_s": summary["step_s"],
        "train_s_mean": statistics.mean(r["train_s"] for r in kept),
        "wait_s_mean": statistics.mean(r["wait_s"] for r in kept),
        "sync_s_mean": statistics.mean(r["sync_s"] for r in kept),
        "sandbox_s_per_episode": statistics.mean(r["sandbox_s"] for r in kept),
        "staleness_mean": statistics.mean(r["staleness"] for r in kept),
        "dropped_samples": summary["dropped_samples"],
        "reward_mean": statistics.mean(r["reward"] for r in metrics),
    }


def pick(runs: list[dict]) -> dict:
    """Seconds per step averaged over the repeats; the other figures are the first run's."""
    chosen = dict(runs[0])
    chosen["repeats_s_per_step"] = [r["s_per_step"] for r in runs]
    chosen["s_per_step"] = statistics.mean(chosen["repeats_s_per_step"])
    return chosen


def plot(sync: dict, asyn: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for run, label in ((sync, "sync (eta=0)"), (asyn, "async (eta=1)")):
        total, xs, ys = 0.0, [0], [0.0]
        for i, s in enumerate(run["step_s"], 1):
            total += s
            xs.append(i)
            ys.append(total)
        left.plot(xs, ys, marker="o", label=label)
    left.set_xlabel("optimizer step")
    left.set_ylabel("wall-clock seconds")
    left.set_title("cumulative wall-clock")
    left.grid(alpha=0.3)
    left.legend()
    names = ["sync (eta=0)", "async (eta=1)"]
    train = [sync["train_s_mean"], asyn["train_s_mean"]]
    wait = [sync["wait_s_mean"], asyn["wait_s_mean"]]
    right.bar(names, train, label="training")
    right.bar(names, wait, bottom=train, label="waiting for rollouts")
    right.set_ylabel("seconds per step after warm-up (first run)")
    speedup = sync["s_per_step"] / asyn["s_per_step"]
    repeats = len(sync["repeats_s_per_step"])
    right.set_title(f"async {speedup:.2f}x faster per step (mean of {repeats} runs)")
    right.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1, help="first steps left out")
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--tasks-per-step", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per mode")
    args = parser.parse_args()

    load_before = os.getloadavg()
    runs: dict[int, list[dict]] = {0: [], 1: []}
    with tempfile.TemporaryDirectory(prefix="rl-async-bench-") as tmp:
        # Interleaved (sync, async, sync, ...), so drifting background load hits both.
        for r in range(args.repeats):
            for eta in (0, 1):
                runs[eta].append(measure(eta, Path(tmp) / f"r{r}", args))
    sync, asyn = pick(runs[0]), pick(runs[1])
    speedup = sync["s_per_step"] / asyn["s_per_step"]
    details = {
        "benchmark": "rl_async",
        KEY: speedup,
        "goal": GOAL,
        "sync": sync,
        "async": asyn,
        "setup": {
            "model": args.model,
            "steps": args.steps,
            "repeats": args.repeats,
            "warmup_steps_left_out": args.warmup,
            "tasks_per_step": args.tasks_per_step,
            "group_size": args.group_size,
            "max_new_tokens": args.max_new_tokens,
            "tasks": TASKS,
            "generation": "threads in this process, one LocalPolicy",
            "torch_threads": torch.get_num_threads(),
        },
        "meta": {
            "timestamp": datetime.now(UTC).isoformat(),
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rl_async.json").write_text(json.dumps(details, indent=2) + "\n")
    plot(sync, asyn, RESULTS / "rl_async.png")
    # Other RL benchmarks share rl.json: read it, set this key only, write it back.
    path = RESULTS / "rl.json"
    shared = json.loads(path.read_text()) if path.is_file() else {}
    shared[KEY] = round(speedup, 3)
    path.write_text(json.dumps(shared, indent=2) + "\n")
    print(
        f"sync {sync['s_per_step']:.2f} s/step, async {asyn['s_per_step']:.2f} s/step: "
        f"{KEY} = {speedup:.2f} (goal >= {GOAL})"
    )


if __name__ == "__main__":
    main()
