"""``ale train CONFIG.toml``: RL post-training of a local policy on verifiable tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from openale.cli.common import console, print_error, user_errors


def train_command(
    config: Annotated[
        Path | None, typer.Argument(help="Training config (TOML); omit for all defaults.")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override a key: --set trainer.lr=1e-5 (repeatable)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the newest checkpoint in out_dir.")
    ] = False,
    show_config: Annotated[
        bool, typer.Option("--show-config", help="Print the resolved config and exit.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train with rollout -> reward -> train (sync when staleness.eta = 0, else async)."""
    from openale.rl.config import dump_config, load_config
    from openale.rl.reward import RewardError

    with user_errors():
        cfg = load_config(config, overrides or [])
    if show_config:
        print(json.dumps(dump_config(cfg), indent=2))
        return

    from openale.rl.checkpoint import CheckpointError
    from openale.rl.pipeline import TrainingError, TrainingRun

    mode = "synchronous" if cfg.eta == 0 else f"asynchronous, eta={cfg.eta}"
    where = f"Ray ({cfg.ray.address or 'local'})" if cfg.ray.enabled else "this process"
    console.print(
        f"training {cfg.model.name_or_path} with {cfg.trainer.algorithm} for {cfg.steps} steps "
        f"({mode}, rollouts in {where}) -> {cfg.out_dir}",
        highlight=False,
        soft_wrap=True,
    )
    with user_errors():
        try:
            summary = TrainingRun(cfg, resume=resume, progress=progress).run()
        except (TrainingError, CheckpointError, RewardError) as e:
            print_error(str(e))
            raise typer.Exit(1) from None
    steps = summary.get("steps")
    line = f"done: {steps} steps, {summary.get('dropped_samples', 0)} stale samples dropped"
    if "eval" in summary:
        ev = summary["eval"]
        line += f"; {ev['split']} pass rate {ev['pass_rate']:.2f} over {ev['episodes']} episodes"
    console.print(line, highlight=False, soft_wrap=True)
    console.print(f"summary: {Path(cfg.out_dir) / 'summary.json'}", highlight=False)
