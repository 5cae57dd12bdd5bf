"""Bounded staleness: the trainer never learns from samples more than ``eta`` versions old.

Rollouts hand finished groups of samples to a ``StalenessBuffer``; the trainer
takes groups from it before each optimizer step. Every sample knows the policy
version of each of its chunks; at take time a sample whose *oldest* chunk is
more than ``eta`` optimizer versions behind the trainer's current version is
dropped (and counted), never returned. ``eta = 0`` only lets samples generated
entirely by the current weights through, which is synchronous training.

The check runs when a group is taken, not when it is put, because the trainer's
version may move on while a group waits in the buffer.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol


class Versioned(Protocol):
    """Anything the buffer can hold: it knows its oldest policy version."""

    @property
    def oldest_version(self) -> int: ...


class BufferClosedError(RuntimeError):
    """The buffer was closed (the run is ending or a rollout worker failed)."""


@dataclass
class SampleGroup:
    """The samples of one rollout group (one task, one round) plus what the metrics need.

    ``ticket`` is the group's position in the run's task schedule, so a resumed
    run knows which groups were already trained on.
    """

    ticket: int
    task_id: str
    samples: list[Any]
    rewards: list[float] = field(default_factory=list)  # one per trajectory
    successes: list[bool] = field(default_factory=list)
    sandbox_s: float = 0.0  # summed time spent in sandboxes (build, setup, tools, verify)
    generated_tokens: int = 0
    started_version: int = 0  # policy version when the group's rollouts began
    imitation: list[Any] = field(default_factory=list)  # expert-prefix samples, if any
    errors: list[str] = field(default_factory=list)  # harness errors of its episodes
    findings: list[int] = field(default_factory=list)  # safety findings, one per trajectory
    worker: str | None = None  # which rollout worker ran it (Ray), for the logs

    @property
    def oldest_version(self) -> int:
        return min((s.oldest_version for s in self.samples), default=self.started_version)


@dataclass
class Taken:
    """What one ``take`` returned, and what it threw away on the way."""

    groups: list[SampleGroup]
    version: int  # the trainer version the groups were checked against
    dropped_samples: int = 0
    dropped_groups: int = 0  # groups left with no fresh sample
    dropped_tickets: list[int] = field(default_factory=list)  # their tickets
    waited_s: float = 0.0

    @property
    def samples(self) -> list[Any]:
        return [s for g in self.groups for s in g.samples]

    @property
    def staleness(self) -> list[int]:
        """``version - oldest_version`` of every sample returned (each is ``<= eta``)."""
        return [self.version - s.oldest_version for s in self.samples]


class StalenessBuffer:
    """A thread-safe FIFO of sample groups that enforces ``version - oldest_version <= eta``."""

    def __init__(self, eta: int):
        if eta < 0:
            raise ValueError(f"staleness eta must be >= 0, got {eta}")
        self.eta = eta
        self._groups: deque[SampleGroup] = deque()
        self._cond = threading.Condition()
        self._closed: BaseException | str | None = None
        self.put_samples = 0
        self.taken_samples = 0
        self.dropped_samples = 0
        self.dropped_groups = 0

    def is_stale(self, item: Versioned, version: int) -> bool:
        """True when ``item`` is more than ``eta`` versions behind ``version``."""
        return version - item.oldest_version > self.eta

    def put(self, group: SampleGroup) -> None:
        """Add a finished group (called from rollout threads)."""
        with self._cond:
            self._raise_if_closed()
            self._groups.append(group)
            self.put_samples += len(group.samples)
            self._cond.notify_all()

    def take(self, n_groups: int, version: int, timeout: float | None = None) -> Taken:
        """The next ``n_groups`` groups with at least one sample fresh at ``version``.

        Stale samples are dropped from each group in FIFO order; a group left
        empty is dropped whole. Blocks until enough fresh groups arrived; raises
        ``TimeoutError`` after ``timeout`` seconds (the groups found so far go
        back to the front) and ``BufferClosedError`` once the buffer is closed.
        """
        if n_groups < 1:
            raise ValueError("take at least one group")
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        taken = Taken(groups=[], version=version)
        with self._cond:
            while len(taken.groups) < n_groups:
                if self._groups:
                    self._admit(self._groups.popleft(), taken)
                    continue
                if self._closed is not None:
                    self._groups.extendleft(reversed(taken.groups))
                    self._raise_if_closed()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self._groups.extendleft(reversed(taken.groups))
                    raise TimeoutError(
                        f"only {len(taken.groups)} of {n_groups} fresh groups after {timeout:g}s"
                    )
                self._cond.wait(remaining)
            self.taken_samples += len(taken.samples)
        taken.waited_s = time.monotonic() - started
        return taken

    def _admit(self, group: SampleGroup, taken: Taken) -> None:
        fresh = [s for s in group.samples if not self.is_stale(s, taken.version)]
        dropped = len(group.samples) - len(fresh)
        self.dropped_samples += dropped
        taken.dropped_samples += dropped
        if not fresh:
            self.dropped_groups += 1
            taken.dropped_groups += 1
            taken.dropped_tickets.append(group.ticket)
            return
        group.samples = fresh
        taken.groups.append(group)

    def __len__(self) -> int:
        with self._cond:
            return len(self._groups)

    def pending_tickets(self) -> list[int]:
        """Tickets of the groups waiting in the buffer (a checkpoint re-issues them)."""
        with self._cond:
            return [g.ticket for g in self._groups]

    def close(self, reason: BaseException | str = "closed") -> None:
        """Wake every waiter with ``BufferClosedError`` (``reason`` is its cause)."""
        with self._cond:
            if self._closed is None:
                self._closed = reason
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def _raise_if_closed(self) -> None:
        if self._closed is None:
            return
        reason = self._closed
        if isinstance(reason, BaseException):
            raise BufferClosedError(f"the sample buffer was closed: {reason}") from reason
        raise BufferClosedError(f"the sample buffer was closed: {reason}")

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "eta": self.eta,
                "queued_groups": len(self._groups),
                "put_samples": self.put_samples,
                "taken_samples": self.taken_samples,
                "dropped_samples": self.dropped_samples,
                "dropped_groups": self.dropped_groups,
            }


class VersionGate:
    """Holds rollouts back so generation runs at most ``ahead`` steps ahead of training.

    Each step trains on ``per_step`` groups. The n-th group issued since the
    gate was made (n = 0, 1, ...) belongs to step ``n // per_step`` and may start
    once the generators hold weights of version ``start + n // per_step - ahead``
    or newer. With ``ahead = eta`` a group that starts on time is fresh when its
    step trains, so the buffer drops only stragglers; with ``ahead = 0`` the next
    batch waits for the weights of the step before it (synchronous training).
    A group the trainer discarded (all stale, or empty) is replaced by ``grant``,
    so a step can always be filled without running further ahead.
    """

    def __init__(self, ahead: int, per_step: int, version: int = 0):
        if ahead < 0 or per_step < 1:
            raise ValueError(f"need ahead >= 0 and per_step >= 1, got {ahead}, {per_step}")
        self.ahead = ahead
        self.per_step = per_step
        self._start = version
        self._version = version
        self._issued = 0
        self._credits = 0
        self._cond = threading.Condition()
        self._closed = False

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    @property
    def issued(self) -> int:
        with self._cond:
            return self._issued

    def _allowed(self) -> int:
        return (self._version - self._start + self.ahead + 1) * self.per_step + self._credits

    def advance(self, version: int) -> None:
        """The generators now hold weights of ``version``."""
        with self._cond:
            self._version = max(self._version, version)
            self._cond.notify_all()

    def grant(self, n: int = 1) -> None:
        """Allow ``n`` more groups: replacements for groups the trainer could not use."""
        with self._cond:
            self._credits += n
            self._cond.notify_all()

    def wait_turn(self, timeout: float | None = None) -> bool:
        """Block until one more group may start and count it; False when closed or timed out."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self._closed or self._issued < self._allowed(), timeout
            )
            if not ok or self._closed:
                return False
            self._issued += 1
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
