"""IPA vs GRPO on the quickstart: same warm start, same rollout budget, same seed.

Runs ``examples/quickstart.toml`` once per algorithm (``--set`` overrides apply
to both). The warm start is done once (oracle trajectories, error-masked SFT,
saved as a checkpoint) and both runs start from it with ``sft.enabled = false``,
so they differ only in the RL loss. Compares the per-step rollout reward and the
held-out success with 95% Wilson intervals; writes
``benchmarks/results/rl_ipa_vs_grpo.png`` and the ``ipa_vs_grpo`` key of
``benchmarks/results/rl.json``.

    .venv/bin/python benchmarks/rl_ipa_vs_grpo.py [--set steps=8] [--no-save]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "quickstart.toml")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "ipa_vs_grpo")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    parser.add_argument("--algorithms", nargs="+", default=["ipa", "grpo"])
    parser.add_argument("--no-save", action="store_true", help="do not touch benchmarks/results")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)  # trainer and generators overlap (eta >= 1)

    from openale.bench.stats import Success, plot_before_after, plot_curves, update_results
    from openale.rl.config import load_config
    from openale.rl.pipeline import TrainingRun
    from openale.rl.scalars import read_metrics

    started = time.monotonic()
    base = load_config(args.config, args.overrides)
    warm = args.out / "warm-start"
    if base.sft.enabled:
        console.rule("[bold cyan]shared warm start: oracle trajectories + SFT")
        warm_start(base, warm)
    runs: dict[str, dict] = {}
    for algo in args.algorithms:
        out = args.out / algo
        if out.exists():
            shutil.rmtree(out)
        sets = [f'out_dir="{out}"', f'algorithm="{algo}"', "eval.enabled=true", "eval.before=false"]
        if base.sft.enabled:  # both start from the same SFT checkpoint
            sets += [f'model.name_or_path="{warm / "model"}"', "sft.enabled=false"]
        cfg = load_config(args.config, [*args.overrides, *sets])
        console.rule(f"[bold cyan]{algo}: {cfg.steps} steps")
        t = time.monotonic()
        summary = TrainingRun(cfg, progress=True).run()
        records = read_metrics(out / "logs")
        runs[algo] = {
            "config": cfg,
            "summary": summary,
            "success": Success.from_eval(summary["eval"]),
            "reward": [(r["step"], r["reward"]) for r in records if "reward" in r],
            "wall_s": time.monotonic() - t,
        }

    table = Table("algorithm", "held-out success", "95% CI", "mean rollout reward", "wall")
    for algo, r in runs.items():
        s, rewards = r["success"], [v for _, v in r["reward"]]
        table.add_row(
            algo,
            f"{s.successes}/{s.attempts} = {s.rate:.1%}",
            f"{s.low:.1%} - {s.high:.1%}",
            f"{sum(rewards) / max(1, len(rewards)):+.3f}",
            f"{r['wall_s'] / 60:.1f} min",
        )
    console.print(table)
    if args.no_save:
        return
    png = HERE / "results" / "rl_ipa_vs_grpo.png"
    _figure(runs, png, plot_curves, plot_before_after)
    any_cfg = next(iter(runs.values()))["config"]
    entry = {
        algo: {
            "heldout_success": r["success"].model_dump(),
            "reward_per_step": [v for _, v in r["reward"]],
            "wall_s": round(r["wall_s"], 1),
        }
        for algo, r in runs.items()
    }
    entry.update(
        steps=any_cfg.steps,
        tasks_per_step=any_cfg.tasks_per_step,
        group_size=any_cfg.rollout.group_size,
        eval_attempts=any_cfg.eval.attempts,
        sft_warm_start=any_cfg.sft.enabled,
        figure=str(png.relative_to(ROOT)),
        total_wall_s=round(time.monotonic() - started, 1),
        machine={"cpus": os.cpu_count(), "platform": platform.platform()},
        timestamp=datetime.now(UTC).isoformat(),
    )
    update_results(HERE / "results" / "rl.json", "ipa_vs_grpo", entry)
    console.print(f"wrote {png} and the ipa_vs_grpo key of benchmarks/results/rl.json")


def warm_start(cfg, out: Path) -> Path:
    """Oracle trajectories of the train split, error-masked SFT as ``[sft]`` says, saved."""
    import random

    from openale.agent.models.local import LocalPolicy
    from openale.agent.models.smollm import resolve_model
    from openale.agent.trajectory import save
    from openale.bench.oracle import oracle_agent_config, oracle_trajectories
    from openale.rl.packing import samples_from_trajectory
    from openale.rl.trainer import Trainer
    from openale.tasks import load_tasks

    if out.exists():
        shutil.rmtree(out)
    model, tokenizer = resolve_model(cfg.model.name_or_path)
    t = cfg.tasks
    tasks = load_tasks(
        t.suite, include=t.names or None, exclude=t.exclude or None, split=t.split, limit=t.limit
    )[: cfg.sft.limit]
    with LocalPolicy(model, tokenizer) as policy:
        agent = oracle_agent_config(context_window=cfg.rollout.context_window)
        trajectories = oracle_trajectories(
            tasks, policy, config=agent, concurrency=cfg.rollout.concurrency
        )
    save(trajectories, out / "oracle.jsonl", append=False)
    trainer_cfg = cfg.trainer.model_copy(update={"lr": cfg.sft.lr, "seed": cfg.seed})
    trainer = Trainer(model, tokenizer, trainer_cfg, out_dir=out / "trainer")
    rows = [samples_from_trajectory(t, reward=1.0) for t in trajectories]
    rng = random.Random(cfg.seed)
    for epoch in range(cfg.sft.epochs):
        rng.shuffle(rows)
        for i in range(0, len(rows), cfg.sft.batch_size):
            stats = trainer.sft_step([s for r in rows[i : i + cfg.sft.batch_size] for s in r])
        console.print(f"SFT epoch {epoch + 1}: last loss {stats.loss:.3f}")
    trainer.model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    return out / "model"


def _figure(runs: dict, png: Path, plot_curves, plot_before_after) -> None:
    """Reward curves and held-out bars side by side, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    tmp = png.parent / ".ipa_vs_grpo"
    left = plot_curves({a: r["reward"] for a, r in runs.items()}, tmp / "curves.png", smooth=3)
    right = plot_before_after(
        {a: r["success"] for a, r in runs.items()}, tmp / "bars.png", title="held-out success"
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    for ax, path in zip(axes, (left, right), strict=True):
        ax.imshow(mpimg.imread(path))
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
