"""The generation side of training: which task comes next, who rolls it out, and when.

A run walks a deterministic *task schedule*: ticket ``i`` names the task of
the ``i``-th rollout group (a shuffled pass over the train tasks per epoch,
seeded by the run's seed), so a resumed run trains on the same tasks.

A ``Dispatcher`` thread hands tickets to a generation back end (threads of
this process sharing one ``LocalPolicy``, or Ray actors) as fast as the
``VersionGate`` allows, and puts each finished group into the
``StalenessBuffer`` the trainer takes from. The gate makes the same loop
synchronous (``ahead = 0``) or asynchronous (``ahead = eta``).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from openale.agent.models.local import LocalPolicy
from openale.rl.config import TrainConfig
from openale.rl.experts import ResampleError, oracle_trajectory
from openale.rl.resample import (
    ResampleConfig,
    Resampler,
    continuation_samples,
    imitation_samples,
    prefix_length,
)
from openale.rl.rollout import Episode, Rollout
from openale.rl.staleness import BufferClosedError, SampleGroup, StalenessBuffer, VersionGate
from openale.tasks.model import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ticket:
    """One rollout group to run: the ``index``-th of the schedule, on task ``task``."""

    index: int
    task: str
    resample: bool = False  # restart from anchors of the task's oracle trajectory


class TaskSchedule:
    """Ticket ``i`` -> a task: epoch ``i // n`` is a seeded shuffle of the ``n`` task names."""

    def __init__(self, names: Iterable[str], seed: int = 0, resample_fraction: float = 0.0):
        self.names = sorted(set(names))
        if not self.names:
            raise ValueError("the task schedule is empty: no task matched the config")
        self.seed = seed
        self.resample_fraction = resample_fraction
        self._epochs: dict[int, list[str]] = {}

    def task(self, index: int) -> str:
        epoch, pos = divmod(index, len(self.names))
        if epoch not in self._epochs:
            order = list(self.names)
            random.Random(f"{self.seed}/{epoch}").shuffle(order)
            self._epochs[epoch] = order
        return self._epochs[epoch][pos]

    def tickets(self, start: int = 0, skip: Iterable[int] = ()) -> Iterator[Ticket]:
        """Tickets from ``start`` on, leaving out ``skip`` (groups already trained on)."""
        done = set(skip)
        index = start
        while True:
            if index not in done:
                coin = random.Random(f"{self.seed}/resample/{index}").random()
                yield Ticket(index, self.task(index), coin < self.resample_fraction)
            index += 1


def group_from_episodes(ticket: Ticket, episodes: list[Episode], version: int) -> SampleGroup:
    """A ``SampleGroup`` of the trainable episodes' samples, with the group's statistics.

    Restarts from an expert prefix train only on the chunks the policy wrote.
    """
    samples: list[Any] = []
    tokens = 0
    for ep in episodes:
        if ep.trainable and ep.reward is not None:
            samples += continuation_samples(ep.trajectory, reward=ep.reward, group=ep.group)
            own = ep.trajectory.chunks[prefix_length(ep.trajectory) :]
            tokens += sum(len(c.token_ids or ()) for c in own)
    return SampleGroup(
        ticket=ticket.index,
        task_id=ticket.task,
        samples=samples,
        rewards=[float(ep.reward) for ep in episodes if ep.reward is not None],
        successes=[ep.passed for ep in episodes],
        sandbox_s=sum(ep.sandbox_s + ep.tools_s + ep.verify_s for ep in episodes),
        generated_tokens=tokens,
        started_version=version,
        errors=[ep.error for ep in episodes if ep.error],
        findings=[
            int(ep.trajectory.metadata.get("safety", {}).get("findings", 0))
            for ep in episodes
            if ep.trajectory is not None
        ],
    )


class GroupRunner:
    """Runs one ticket: ``group_size`` episodes of its task through the rollout stage.

    A resample ticket restarts from anchors of the task's oracle trajectory
    instead (a task without a usable oracle falls back to a plain group); with
    ``imitation`` the expert prefixes also come back as imitation rows.
    """

    def __init__(
        self,
        rollout: Rollout,
        tasks: dict[str, Task],
        resample: ResampleConfig | None = None,
        imitation: bool = False,
    ):
        self.rollout = rollout
        self.tasks = tasks
        self.resampler = Resampler(rollout, resample) if resample is not None else None
        self.imitation = imitation

    def __call__(self, ticket: Ticket, version: int) -> SampleGroup:
        task = self.tasks[ticket.task]
        if ticket.resample and self.resampler is not None:
            group = self._resample(ticket, task, version)
            if group is not None:
                return group
        requests = self.rollout.requests([task], round=ticket.index)
        episodes = self.rollout.run_requests(requests, progress=False)
        return group_from_episodes(ticket, episodes, version)

    def _resample(self, ticket: Ticket, task: Task, version: int) -> SampleGroup | None:
        assert self.resampler is not None
        try:
            expert = oracle_trajectory(task, self.rollout)
        except ResampleError as e:
            log.info("no resampling for %s: %s", task.name, e)
            return None
        batch = self.resampler.run([(task, expert)], round=ticket.index, progress=False)
        if task.name in batch.errors or not batch.episodes:
            log.info("no resampling for %s: %s", task.name, batch.errors.get(task.name))
            return None
        group = group_from_episodes(ticket, batch.episodes, version)
        group.sandbox_s += batch.prepare_s
        if self.imitation:
            filled = batch.experts[task.name]
            for k in batch.anchors[task.name]:
                group.imitation += imitation_samples(
                    filled, upto=k, policy=self.rollout.model, group=f"imitation/{ticket.index}"
                )
        return group


def make_policy(config: TrainConfig, model: Any, tokenizer: Any) -> LocalPolicy:
    """The generators' ``LocalPolicy``, sampling as ``config.rollout`` says.

    Its weights live on ``config.device`` in the trainer's compute dtype (bf16
    generation when the trainer computes in bf16); ``sync_policy`` casts the
    trainer's float32 weights into them.
    """
    r = config.rollout
    return LocalPolicy(
        model.to(device=config.device, dtype=getattr(torch, config.trainer.dtype)),
        tokenizer,
        temperature=r.temperature,
        top_p=r.top_p,
        max_new_tokens=r.max_new_tokens,
        seed=config.seed,
        max_batch=max(8, r.concurrency * config.slots),
    )


def make_rollout(config: TrainConfig, policy: LocalPolicy, **overrides: Any) -> Rollout:
    """The rollout stage of a run (seeded by the run's seed; ``overrides`` change its config)."""
    rollout_config = config.rollout.model_copy(update={"seed": config.seed, **overrides})
    return Rollout(policy, rollout_config, reward=config.reward)


def make_runner(config: TrainConfig, policy: LocalPolicy, tasks: Iterable[Task]) -> GroupRunner:
    """The group runner of a run: plain groups, and resampled ones when the config says so."""
    return GroupRunner(
        make_rollout(config, policy),
        {t.name: t for t in tasks},
        resample=config.resample if config.resample.enabled else None,
        imitation=config.trainer.imitation_coef > 0,
    )


def sync_policy(policy: LocalPolicy, state_dict: dict[str, torch.Tensor], version: int) -> None:
    """Give a generator the trainer's weights; afterwards ``policy.version == version``.

    ``load_weights`` swaps the weights between two decoding batches and counts
    one version up, which is the trainer's new version after each step. Only
    when the two differ by more (a run resumed from a checkpoint, before any
    generation started) is the version set directly.
    """
    policy.load_weights(state_dict)
    if policy.version != version:
        policy.version = version


class GenerationBackend(Protocol):
    """Where rollout groups run; ``submit`` is called from the dispatcher thread."""

    slots: int  # groups that may run at once

    def submit(self, ticket: Ticket) -> Future[SampleGroup]: ...

    def sync(self, state_dict: dict[str, torch.Tensor], version: int) -> None: ...

    def close(self) -> None: ...


class LocalGenerators:
    """Rollout groups on threads of this process, all generating with one ``LocalPolicy``.

    The policy batches the generations of every running episode; ``sync``
    swaps its weights between two batches while episodes go on.
    """

    def __init__(self, policy: LocalPolicy, runner: GroupRunner, slots: int):
        self.policy = policy
        self.runner = runner
        self.slots = slots
        self._pool = ThreadPoolExecutor(slots, thread_name_prefix="rollout-group")

    def submit(self, ticket: Ticket) -> Future[SampleGroup]:
        return self._pool.submit(lambda: self.runner(ticket, self.policy.version))

    def sync(self, state_dict: dict[str, torch.Tensor], version: int) -> None:
        sync_policy(self.policy, state_dict, version)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class Dispatcher:
    """Feeds tickets to a back end as the gate allows; finished groups go to the buffer.

    A group with no trainable sample (every episode hit a harness error) is
    not put: the gate grants a replacement, and after ``max_empty`` such groups
    in a row the run stops with the last errors, since something is broken.
    """

    def __init__(
        self,
        tickets: Iterator[Ticket],
        backend: GenerationBackend,
        gate: VersionGate,
        buffer: StalenessBuffer,
        *,
        max_empty: int = 8,
        on_group: Callable[[SampleGroup], None] | None = None,
    ):
        self.tickets = tickets
        self.backend = backend
        self.gate = gate
        self.buffer = buffer
        self.max_empty = max_empty
        self.on_group = on_group
        self.empty_groups = 0
        self._empty_in_a_row = 0
        self._slots = threading.Semaphore(backend.slots)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rl-dispatcher", daemon=True)

    def start(self) -> Dispatcher:
        self._thread.start()
        return self

    def _loop(self) -> None:
        try:
            for ticket in self.tickets:
                if not self.gate.wait_turn():
                    return
                while not self._slots.acquire(timeout=0.5):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                future = self.backend.submit(ticket)
                future.add_done_callback(self._done)
        except Exception as e:  # the trainer must hear about it, not wait forever
            log.exception("the rollout dispatcher failed")
            self.buffer.close(e)

    def _done(self, future: Future[SampleGroup]) -> None:
        self._slots.release()
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            if not self._stop.is_set():
                self.buffer.close(error)
            return
        group = future.result()
        if self.on_group is not None:
            self.on_group(group)
        if group.samples:
            with self._lock:
                self._empty_in_a_row = 0
            try:
                self.buffer.put(group)
            except BufferClosedError:
                pass  # the run is ending; the group is not needed
            return
        with self._lock:
            self.empty_groups += 1
            self._empty_in_a_row += 1
            broken = self._empty_in_a_row >= self.max_empty
        if broken:
            why = "; ".join(dict.fromkeys(group.errors)) or "no episode produced tokens"
            self.buffer.close(
                f"{self._empty_in_a_row} rollout groups in a row had no trainable episode "
                f"(last: {group.task_id}: {why})"
            )
            return
        self.gate.grant(1)

    def stop(self) -> None:
        """Stop issuing tickets (groups already running are left to the back end)."""
        self._stop.set()
        self.gate.close()
        self._thread.join(timeout=30)
