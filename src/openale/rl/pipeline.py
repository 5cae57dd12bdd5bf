"""The RL training loop: rollout -> reward -> train, synchronous or with bounded staleness.

One loop serves both modes. Rollout groups run in the background (threads
sharing one ``LocalPolicy``, or Ray actors) and land in a ``StalenessBuffer``;
the trainer takes ``tasks_per_step`` groups, makes one optimizer step, and
sends the new weights to the generators. A ``VersionGate`` decides how far
generation may run ahead: with ``eta = 0`` the next batch starts only once
the new weights are in (synchronous); with ``eta >= 1`` generation goes on
while the trainer updates, and samples more than ``eta`` versions old are
dropped when taken.

A run directory holds ``config.json``, ``logs/metrics.jsonl`` (+ TensorBoard
events), ``checkpoints/step-NNNNNN`` (``resume=True`` continues from the
newest), ``reward_curve.png`` and ``summary.json``.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from openale.agent.models.local import LocalPolicy
from openale.agent.models.smollm import resolve_model
from openale.rl.config import TrainConfig, dump_config
from openale.rl.generation import (
    Dispatcher,
    GenerationBackend,
    LocalGenerators,
    TaskSchedule,
    make_policy,
    make_rollout,
    make_runner,
    sync_policy,
)
from openale.rl.packing import samples_from_trajectory
from openale.rl.rollout import summarize_episodes
from openale.rl.scalars import ScalarLog, plot_reward_curve, read_metrics, training_progress
from openale.rl.staleness import BufferClosedError, SampleGroup, StalenessBuffer, Taken, VersionGate
from openale.rl.trainer import Trainer
from openale.tasks import Task, load_tasks

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"


class TrainingError(RuntimeError):
    """The run cannot go on (no tasks, no checkpoint to resume, broken rollouts)."""


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete ``checkpoints/step-N`` folder of a run, or None."""
    root = Path(out_dir) / CHECKPOINTS
    found = sorted(root.glob("step-*/state.json")) if root.is_dir() else []
    return found[-1].parent if found else None


class TrainingRun:
    """One ``ale train`` run; ``run()`` returns the summary it also writes to summary.json.

    ``trainer_cls`` and ``backend`` exist for tests and callers that bring their
    own (e.g. a trainer subclass that records what it was given).
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: bool = False,
        progress: bool = True,
        trainer_cls: type[Trainer] = Trainer,
    ):
        self.config = config
        self.out = Path(config.out_dir)
        self.resume = resume
        self.progress = progress
        self.trainer_cls = trainer_cls
        self.trainer: Trainer | None = None
        self.policy: LocalPolicy | None = None
        self.buffer: StalenessBuffer | None = None
        self.groups_seen: list[SampleGroup] = []  # every group the generators returned

    # -- set-up ----------------------------------------------------------------------------

    def train_tasks(self) -> list[Task]:
        t = self.config.tasks
        return self._load(t.split, t.names, t.exclude, t.limit)

    def eval_tasks(self) -> list[Task]:
        e = self.config.eval
        return self._load(e.split, e.names, [], e.limit)

    def _load(
        self, split: str | None, names: list[str], exclude: list[str], limit: int | None
    ) -> list[Task]:
        suite = self.config.tasks.suite
        tasks = load_tasks(
            suite, include=names or None, exclude=exclude or None, split=split, limit=limit
        )
        if not tasks:
            raise TrainingError(f"no task of suite {suite!r} matches split={split!r}, {names=}")
        return tasks

    def _backend(self, train_tasks: list[Task]) -> GenerationBackend:
        cfg = self.config
        if cfg.ray.enabled:
            from openale.rl.ray_workers import RayGenerators

            return RayGenerators(cfg, [t.path for t in train_tasks])
        runner = make_runner(cfg, self.policy, train_tasks)
        return LocalGenerators(self.policy, runner, slots=cfg.slots)

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        finally:
            if self.policy is not None:
                self.policy.close()

    def _run(self) -> dict[str, Any]:
        cfg = self.config
        started = time.monotonic()
        self.out.mkdir(parents=True, exist_ok=True)
        train_tasks = self.train_tasks()
        if cfg.eval.enabled:
            self.eval_tasks()  # a config that cannot evaluate fails now, not after training
        checkpoint = latest_checkpoint(self.out)
        if self.resume and checkpoint is None:
            raise TrainingError(f"--resume: no checkpoint under {self.out / CHECKPOINTS}")
        if not self.resume and checkpoint is not None:
            # A fresh run would interleave its checkpoints with the old ones.
            raise TrainingError(
                f"{self.out} already holds checkpoints ({checkpoint.name}): pass --resume to "
                "continue that run, or choose another out_dir"
            )
        (self.out / "config.json").write_text(json.dumps(dump_config(cfg), indent=2))

        model, tokenizer = resolve_model(cfg.model.name_or_path)
        # The generators get their own copy before the trainer wraps or moves the model.
        self.policy = make_policy(cfg, copy.deepcopy(model), tokenizer)
        trainer_config = cfg.trainer.model_copy(update={"seed": cfg.seed})
        self.trainer = trainer = self.trainer_cls(
            model, tokenizer, trainer_config, out_dir=self.out / "trainer", device=cfg.device
        )
        state: dict[str, Any] = {"step": 0, "frontier": 0, "consumed_above": [], "sft_done": False}
        if checkpoint is not None:
            state.update(trainer.load_checkpoint(checkpoint))
            log.info("resuming from %s (step %d)", checkpoint, state["step"])
        _truncate_metrics(self.out / "logs", state["step"])
        sync_policy(self.policy, trainer.policy_state_dict(), trainer.version)

        summary: dict[str, Any] = {"out_dir": str(self.out), "eta": cfg.eta}
        if cfg.eval.enabled and cfg.eval.before and state["step"] == 0:
            summary["eval_before"] = self.evaluate()
        if cfg.sft.enabled and not state["sft_done"]:
            summary["sft"] = self.warm_start(train_tasks)
        state["sft_done"] = True

        if state["step"] < cfg.steps:
            with ScalarLog(self.out / "logs") as scalars:
                summary.update(self._train(train_tasks, state, scalars))
        else:
            log.info(
                "the run already has %d of %d steps: nothing to train", state["step"], cfg.steps
            )
            summary.update(steps=state["step"], version=trainer.version)
        if cfg.eval.enabled:
            summary["eval"] = self.evaluate()
        records = read_metrics(self.out / "logs")
        if any("reward" in r for r in records):
            png = plot_reward_curve(records, self.out / "reward_curve.png", smooth=3)
            summary["reward_curve"] = str(png)
        summary["wall_s"] = time.monotonic() - started
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        return summary

    def _train(
        self, train_tasks: list[Task], state: dict[str, Any], scalars: ScalarLog
    ) -> dict[str, Any]:
        cfg, trainer = self.config, self.trainer
        assert trainer is not None and self.policy is not None
        consumed = set(state["consumed_above"])
        frontier = state["frontier"]
        fraction = cfg.resample.fraction if cfg.resample.enabled else 0.0
        schedule = TaskSchedule([t.name for t in train_tasks], cfg.seed, fraction)
        self.buffer = buffer = StalenessBuffer(cfg.eta)
        gate = VersionGate(cfg.staleness.ahead, cfg.tasks_per_step, version=trainer.version)
        backend = self._backend(train_tasks)
        backend.sync(trainer.policy_state_dict(), trainer.version)
        dispatcher = Dispatcher(
            schedule.tickets(frontier, skip=consumed),
            backend,
            gate,
            buffer,
            max_empty=max(4, 2 * cfg.tasks_per_step),
            on_group=self.groups_seen.append,
        ).start()

        step = state["step"]
        dropped = empty_before = 0
        step_times: list[float] = []
        loop_started = last = time.monotonic()
        try:
            bar_cm = (
                training_progress(cfg.steps - step, "train") if self.progress else nullcontext()
            )
            with bar_cm as bar:
                while step < cfg.steps:
                    taken = self._take(cfg.tasks_per_step, trainer.version)
                    gate.grant(taken.dropped_groups)
                    consumed.update(g.ticket for g in taken.groups)
                    consumed.update(taken.dropped_tickets)
                    dropped += taken.dropped_samples
                    if taken.dropped_samples:
                        log.info(
                            "step %d: dropped %d samples more than %d versions old",
                            step + 1,
                            taken.dropped_samples,
                            cfg.eta,
                        )
                    train_started = time.monotonic()
                    imitation = [s for g in taken.groups for s in g.imitation]
                    stats = trainer.train_step(taken.samples, imitation)
                    train_s = time.monotonic() - train_started
                    sync_started = time.monotonic()
                    backend.sync(trainer.policy_state_dict(), trainer.version)
                    gate.advance(trainer.version)
                    sync_s = time.monotonic() - sync_started
                    step += 1
                    now = time.monotonic()
                    step_times.append(now - last)
                    record = _step_record(taken, stats.scalars(), now - last, train_s, sync_s)
                    record.update(dropped_total=dropped, queued=len(buffer))
                    record["empty_groups"] = dispatcher.empty_groups - empty_before
                    empty_before = dispatcher.empty_groups
                    last = now
                    scalars.log(step, record)
                    if bar is not None:
                        bar(reward=record["reward"], loss=record["loss"], dropped=dropped)
                    while consumed and frontier in consumed:
                        consumed.discard(frontier)
                        frontier += 1
                    if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                        self._checkpoint(step, frontier, consumed)
            workers = backend.info() if hasattr(backend, "info") else None
        finally:
            dispatcher.stop()
            buffer.close("training finished")
            backend.close()
        return {
            "workers": workers,
            "steps": step,
            "version": trainer.version,
            "loop_s": last - loop_started,
            "step_s": step_times,
            "dropped_samples": dropped,
            "empty_groups": dispatcher.empty_groups,
            "checkpoint": str(latest_checkpoint(self.out)),
            "metrics": str(scalars.path),
        }

    def _take(self, n: int, version: int) -> Taken:
        assert self.buffer is not None
        timeout = self.config.staleness.take_timeout_s
        try:
            return self.buffer.take(n, version, timeout)
        except BufferClosedError as e:
            raise TrainingError(f"rollouts stopped: {e.__cause__ or e}") from e
        except TimeoutError as e:
            raise TrainingError(
                f"no batch of {n} fresh rollout groups within {timeout:g}s ({e}); raise "
                "staleness.take_timeout_s if rollouts are this slow"
            ) from e

    def _checkpoint(self, step: int, frontier: int, consumed: set[int]) -> None:
        assert self.trainer is not None
        extra = {
            "step": step,
            "frontier": frontier,
            "consumed_above": sorted(consumed),
            "sft_done": True,
        }
        self.trainer.save_checkpoint(self.out / CHECKPOINTS / f"step-{step:06d}", extra)
        kept = sorted((self.out / CHECKPOINTS).glob("step-*"))
        for old in kept[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)

    # -- warm start and evaluation ----------------------------------------------------------

    def warm_start(self, train_tasks: list[Task]) -> dict[str, Any]:
        """Error-masked SFT on oracle trajectories of the train tasks (recorded once)."""
        from openale.agent.trajectory import load, save
        from openale.bench.oracle import oracle_agent_config, oracle_trajectories

        cfg, trainer, policy = self.config, self.trainer, self.policy
        assert trainer is not None and policy is not None
        path = self.out / "sft" / "oracle.jsonl"
        if path.is_file():
            trajectories = list(load(path))
        else:
            tasks = train_tasks[: cfg.sft.limit] if cfg.sft.limit else train_tasks
            agent = oracle_agent_config(context_window=cfg.rollout.context_window)
            trajectories = oracle_trajectories(
                tasks, policy, config=agent, concurrency=cfg.rollout.concurrency
            )
            save(trajectories, path, append=False)
        if not trajectories:
            raise TrainingError("sft.enabled, but no oracle trajectory of the train tasks passed")
        rows = [samples_from_trajectory(t, reward=1.0) for t in trajectories]
        rng = random.Random(cfg.seed)
        lrs = [g["lr"] for g in trainer.optimizer.param_groups]
        for g in trainer.optimizer.param_groups:
            g["lr"] = cfg.sft.lr
        losses: list[float] = []
        with ScalarLog(self.out / "logs" / "sft", tensorboard=False) as sft_log:
            for _epoch in range(cfg.sft.epochs):
                rng.shuffle(rows)
                for i in range(0, len(rows), cfg.sft.batch_size):
                    batch = [s for r in rows[i : i + cfg.sft.batch_size] for s in r]
                    stats = trainer.sft_step(batch)
                    losses.append(stats.loss)
                    sft_log.log(len(losses), loss=stats.loss, grad_norm=stats.grad_norm)
        # RL starts with its own learning rate and fresh Adam moments.
        for g, lr in zip(trainer.optimizer.param_groups, lrs, strict=True):
            g["lr"] = lr
        trainer.optimizer.state.clear()
        sync_policy(policy, trainer.policy_state_dict(), trainer.version)
        return {"trajectories": len(trajectories), "steps": len(losses), "losses": losses}

    def evaluate(self) -> dict[str, Any]:
        """Pass rate and mean reward of the current policy on the eval split."""
        cfg, policy, trainer = self.config, self.policy, self.trainer
        assert policy is not None and trainer is not None
        if policy.version != trainer.version:  # with Ray, only the workers were kept in sync
            sync_policy(policy, trainer.policy_state_dict(), trainer.version)
        tasks = self.eval_tasks()
        rollout = make_rollout(cfg, policy, group_size=cfg.eval.attempts)
        episodes = rollout.run(tasks, round=1_000_000 + policy.version, progress=self.progress)
        result: dict[str, Any] = summarize_episodes(episodes)
        result.update(split=cfg.eval.split, tasks=len(tasks), version=policy.version)
        result["per_task"] = {
            t.name: sum(e.passed for e in episodes if e.task == t.name) / cfg.eval.attempts
            for t in tasks
        }
        return result


def _step_record(
    taken: Taken, trainer_scalars: dict[str, Any], step_s: float, train_s: float, sync_s: float
) -> dict[str, Any]:
    """One step's scalars: the trainer's, plus the rollout side of the groups trained on."""
    rewards = [r for g in taken.groups for r in g.rewards]
    successes = [s for g in taken.groups for s in g.successes]
    episodes = max(1, len(successes))
    tokens = sum(g.generated_tokens for g in taken.groups)
    findings = [n for g in taken.groups for n in g.findings]
    record = dict(trainer_scalars)
    record.update(
        reward=sum(rewards) / max(1, len(rewards)),
        success=sum(successes) / episodes,
        dropped=taken.dropped_samples,
        dropped_groups=taken.dropped_groups,
        staleness=sum(taken.staleness) / max(1, len(taken.staleness)),
        step_s=step_s,
        train_s=train_s,
        wait_s=taken.waited_s,
        sync_s=sync_s,
        gen_tokens_per_s=tokens / step_s if step_s > 0 else 0.0,
        sandbox_s=sum(g.sandbox_s for g in taken.groups) / episodes,
        episode_errors=sum(len(g.errors) for g in taken.groups),
        # Trajectories with at least one safety finding, and findings per trajectory.
        unsafe_rate=sum(n > 0 for n in findings) / max(1, len(findings)),
        safety_findings=sum(findings) / max(1, len(findings)),
    )
    return record


def _truncate_metrics(log_dir: Path, step: int) -> None:
    """Forget records of steps after ``step`` (written before a crash, redone on resume)."""
    path = log_dir / "metrics.jsonl"
    if not path.is_file():
        return
    keep = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in keep))
