"""`make demo`: the closed loop, on a laptop CPU, in under half an hour.

1. the toy suite's task images (``make setup`` bootstrapped the base images);
2. SmolLM2-135M-Instruct, as it comes, on the held-out toy tasks (G attempts each);
3. ``ale train examples/quickstart.toml``: oracle trajectories of the train split
   (reference solutions acted out by the agent, verified), error-masked SFT on
   them, then IPA reinforcement learning with rollouts in sandboxes;
4. the trained policy on the same held-out tasks;
5. before/after success with 95% Wilson intervals, a report (markdown + HTML +
   PNG plots) under ``--out``, and the numbers in ``benchmarks/results/rl.json``
   (key ``quickstart``).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "quickstart.toml"
RESULTS = ROOT / "benchmarks" / "results" / "rl.json"
console = Console()


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def build_images(suite: str) -> None:
    """Every task image of the suite, so the timed stages below do not build any."""
    from openale.tasks import EnvironmentBuilder, load_tasks

    tasks = load_tasks(suite)
    builder = EnvironmentBuilder()
    built = 0
    with Progress(
        TextColumn("[bold]images"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as bar:
        job = bar.add_task("images", total=len(tasks))
        for task in tasks:
            built += builder.build(task)[2]
            bar.advance(job)
    console.print(f"{len(tasks)} task images ready ({built} built now, the rest cached)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "demo")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON file to update")
    parser.add_argument("--no-results", action="store_true", help="do not update --results")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (generation and training overlap)"
    )
    args = parser.parse_args(argv)

    import torch

    # With staleness eta >= 1 the trainer and the generators run at once; one
    # intra-op thread each keeps two cores busy without spinning against each other.
    torch.set_num_threads(args.threads)

    from openale.bench.stats import Success, update_results
    from openale.rl.config import load_config
    from openale.rl.pipeline import TrainingRun

    started = time.monotonic()
    out: Path = args.out
    train_dir = out / "train"
    cfg = load_config(args.config, [*args.overrides, f'out_dir="{train_dir}"', "eval.enabled=true"])
    cfg.eval.before = True
    if train_dir.exists():  # a demo always starts from the base model
        shutil.rmtree(train_dir)
    out.mkdir(parents=True, exist_ok=True)
    console.print(
        f"model {cfg.model.name_or_path}, suite {cfg.tasks.suite} "
        f"(train: {cfg.tasks.split}, eval: {cfg.eval.split} x {cfg.eval.attempts} attempts), "
        f"algorithm {cfg.trainer.algorithm}, {cfg.steps} steps x {cfg.tasks_per_step} tasks x "
        f"G={cfg.rollout.group_size}, SFT warm start: {cfg.sft.enabled}",
        highlight=False,
    )

    step("1. task images")
    build_images(cfg.tasks.suite)

    step("2-4. evaluate the base model, warm-start with SFT, train with RL, evaluate again")
    summary = TrainingRun(cfg, progress=True).run()
    before = Success.from_eval(summary["eval_before"])
    after = Success.from_eval(summary["eval"])
    wall = time.monotonic() - started

    step("5. before and after")
    table = Table("policy", "held-out success", "95% Wilson CI", "episodes")
    for name, s in (("base model", before), ("after SFT + RL", after)):
        table.add_row(name, f"{s.rate:.1%}", f"{s.low:.1%} - {s.high:.1%}", str(s.attempts))
    console.print(table)
    report = write_report(out, cfg, summary, before, after, wall)
    console.print(f"report: {report} (and {report.with_suffix('.html')})")
    if not args.no_results:
        update_results(args.results, "quickstart", results_entry(cfg, summary, before, after, wall))
        console.print(f"results: {args.results} (key quickstart)")
    verdict = "better" if after.low > before.high else "not separated at 95%"
    console.print(
        f"[bold green]demo finished in {wall / 60:.1f} min[/]: held-out success "
        f"{before.rate:.1%} -> {after.rate:.1%} ({verdict})"
    )
    return 0


def results_entry(cfg, summary: dict, before, after, wall: float) -> dict:
    sft = summary.get("sft") or {}
    return {
        "heldout_success_before": before.model_dump(),
        "heldout_success_after": after.model_dump(),
        "per_task_before": summary["eval_before"].get("per_task"),
        "per_task_after": summary["eval"].get("per_task"),
        "model": cfg.model.name_or_path,
        "algorithm": cfg.trainer.algorithm,
        "steps": summary.get("steps"),
        "tasks_per_step": cfg.tasks_per_step,
        "group_size": cfg.rollout.group_size,
        "eval_attempts": cfg.eval.attempts,
        "sft_trajectories": sft.get("trajectories"),
        "sft_steps": sft.get("steps"),
        "sft_final_loss": (sft.get("losses") or [None])[-1],
        "wall_s": round(wall, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "timestamp": datetime.now(UTC).isoformat(),
    }


def write_report(out: Path, cfg, summary: dict, before, after, wall: float) -> Path:
    """report.md + report.html with the before/after bars and the training curves."""
    from openale.bench.stats import markdown_table, plot_before_after, plot_curves
    from openale.rl.scalars import read_metrics

    records = read_metrics(Path(cfg.out_dir) / "logs")
    curves = {
        "reward": [(r["step"], r["reward"]) for r in records if "reward" in r],
        "success": [(r["step"], r["success"]) for r in records if "success" in r],
    }
    curve_png = plot_curves(
        curves, out / "reward_curve.png", ylabel="rollout reward / success", smooth=3
    )
    bars_png = plot_before_after(
        {"base": before, "SFT + RL": after}, out / "before_after.png", title="held-out success"
    )
    sft = summary.get("sft") or {}
    sft_losses = sft.get("losses") or []
    per_before = summary["eval_before"].get("per_task") or {}
    per_after = summary["eval"].get("per_task") or {}
    rows = [
        {"task": t, "before": f"{per_before.get(t, 0):.2f}", "after": f"{per_after.get(t, 0):.2f}"}
        for t in sorted(set(per_before) | set(per_after))
    ]
    lines = [
        "# openale quickstart: closed-loop training on the toy suite",
        "",
        f"Model `{cfg.model.name_or_path}`, CPU, {os.cpu_count()} cores; "
        f"{wall / 60:.1f} minutes end to end.",
        "",
        markdown_table(
            [
                {"policy": "base model", "held-out success": str(before)},
                {
                    "policy": f"SFT + {cfg.trainer.algorithm.upper()}",
                    "held-out success": str(after),
                },
            ]
        ),
        "",
        f"- SFT warm start: {sft.get('trajectories', 0)} oracle trajectories, "
        f"{sft.get('steps', 0)} steps, loss {sft_losses[0] if sft_losses else float('nan'):.3f}"
        f" -> {sft_losses[-1] if sft_losses else float('nan'):.3f}",
        f"- RL: {summary.get('steps')} steps of {cfg.trainer.algorithm} x {cfg.tasks_per_step} "
        f"tasks x G={cfg.rollout.group_size}, staleness eta={cfg.eta}, "
        f"{summary.get('dropped_samples', 0)} stale samples dropped",
        "",
        "![before/after](before_after.png)",
        "",
        "![reward curve](reward_curve.png)",
        "",
        "## Held-out tasks (fraction of attempts passed)",
        "",
        markdown_table(rows),
        "",
    ]
    md = out / "report.md"
    md.write_text("\n".join(lines))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    body = "\n".join(
        f"<tr><td>{html.escape(r['task'])}</td><td>{r['before']}</td><td>{r['after']}</td></tr>"
        for r in rows
    )
    md.with_suffix(".html").write_text(
        "<!doctype html><meta charset=utf-8><title>openale quickstart</title>"
        "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto}"
        "td,th{padding:2px 10px;border-bottom:1px solid #ddd}</style>"
        f"<h1>openale quickstart</h1><p>Model <code>{html.escape(cfg.model.name_or_path)}</code>,"
        f" {wall / 60:.1f} minutes on {os.cpu_count()} CPU cores.</p>"
        f"<p>Held-out success: base model <b>{html.escape(str(before))}</b>; after SFT + "
        f"{cfg.trainer.algorithm.upper()} <b>{html.escape(str(after))}</b>.</p>"
        f'<img src="{bars_png.name}"> <img src="{curve_png.name}">'
        f"<h2>Held-out tasks</h2><table><tr><th>task</th><th>before</th><th>after</th></tr>"
        f"{body}</table>"
    )
    return md


if __name__ == "__main__":
    sys.exit(main())
