"""Bounded staleness: no sample more than eta versions old ever reaches the trainer."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

import pytest

from openale.rl.config import TrainConfig
from openale.rl.pipeline import TrainingRun
from openale.rl.scalars import read_metrics
from openale.rl.staleness import (
    BufferClosedError,
    SampleGroup,
    StalenessBuffer,
    VersionGate,
)
from openale.rl.trainer import Trainer


@dataclass
class Row:
    """A training row as the buffer sees it: the versions of its chunks."""

    chunk_versions: list[int]
    uid: int

    @property
    def oldest_version(self) -> int:
        return min(self.chunk_versions)


def group(ticket: int, rows: list[Row]) -> SampleGroup:
    return SampleGroup(ticket=ticket, task_id=f"t{ticket}", samples=rows)


@pytest.mark.parametrize("seed", range(40))
def test_buffer_property_never_returns_a_sample_beyond_eta(seed):
    """Random interleavings of puts and takes: every sample is returned fresh, or dropped
    because it was stale at the moment it was taken, or still queued; nothing else."""
    rng = random.Random(seed)
    eta = rng.randint(0, 3)
    buf = StalenessBuffer(eta)
    version, uid, ticket = 0, 0, 0
    put: dict[int, Row] = {}
    returned: set[int] = set()
    dropped: set[int] = set()
    for _ in range(60):
        if rng.random() < 0.6:
            rows = []
            for _ in range(rng.randint(1, 4)):
                # Chunks from anywhere between well past eta and the current version.
                low = max(0, version - eta - 3)
                versions = sorted(rng.randint(low, version) for _ in range(rng.randint(1, 5)))
                rows.append(Row(versions, uid))
                put[uid] = rows[-1]
                uid += 1
            buf.put(group(ticket, rows))
            ticket += 1
        elif len(buf):
            before = {r.uid for g in list(buf._groups) for r in g.samples}
            n = rng.randint(1, 2)
            try:
                taken = buf.take(n, version, timeout=0)
            except TimeoutError:
                # Not enough fresh groups: whatever stale rows were met are gone, the rest stay.
                after = {r.uid for g in list(buf._groups) for r in g.samples}
                gone = before - after
                assert all(version - put[u].oldest_version > eta for u in gone)
                dropped |= gone
            else:
                got = {r.uid for r in taken.samples}
                assert all(s <= eta for s in taken.staleness)
                for u in got:
                    assert version - put[u].oldest_version <= eta
                    assert min(put[u].chunk_versions) == put[u].oldest_version
                after = {r.uid for g in list(buf._groups) for r in g.samples}
                gone = before - after - got
                assert all(version - put[u].oldest_version > eta for u in gone)
                assert len(gone) == taken.dropped_samples
                returned |= got
                dropped |= gone
        if rng.random() < 0.4:
            version += 1
    queued = {r.uid for g in list(buf._groups) for r in g.samples}
    assert returned | dropped | queued == set(put)
    assert not (returned & dropped) and not (returned & queued) and not (dropped & queued)
    assert buf.dropped_samples == len(dropped)
    assert buf.taken_samples == len(returned)


def test_eta_zero_is_synchronous():
    buf = StalenessBuffer(0)
    buf.put(group(0, [Row([3, 3], 0), Row([2, 3], 1)]))
    buf.put(group(1, [Row([2], 2)]))
    buf.put(group(2, [Row([3], 3)]))
    taken = buf.take(2, version=3, timeout=0)
    assert [r.uid for r in taken.samples] == [0, 3]
    assert taken.dropped_samples == 2 and taken.dropped_groups == 1
    assert taken.staleness == [0, 0]


def test_take_blocks_until_a_rollout_thread_puts_fresh_groups():
    buf = StalenessBuffer(1)
    buf.put(group(0, [Row([0], 0)]))  # stale at version 2

    def producer():
        buf.put(group(1, [Row([1, 2], 1)]))
        buf.put(group(2, [Row([2], 2)]))

    t = threading.Timer(0.05, producer)
    t.start()
    taken = buf.take(2, version=2, timeout=30)
    t.join()
    assert [g.ticket for g in taken.groups] == [1, 2]
    assert buf.stats()["dropped_samples"] == 1


def test_timeout_puts_fresh_groups_back_in_order():
    buf = StalenessBuffer(0)
    buf.put(group(0, [Row([1], 0)]))
    with pytest.raises(TimeoutError, match="1 of 2"):
        buf.take(2, version=1, timeout=0.01)
    assert buf.pending_tickets() == [0]
    assert buf.take(1, version=1, timeout=0).groups[0].ticket == 0


def test_close_wakes_a_waiting_trainer():
    buf = StalenessBuffer(1)
    threading.Timer(0.05, buf.close, args=(RuntimeError("worker died"),)).start()
    with pytest.raises(BufferClosedError, match="worker died"):
        buf.take(1, version=0, timeout=30)


def test_negative_eta_is_rejected():
    with pytest.raises(ValueError, match="eta"):
        StalenessBuffer(-1)


def test_version_gate_lets_groups_run_at_most_ahead_steps_early():
    gate = VersionGate(ahead=1, per_step=2, version=0)
    assert all(gate.wait_turn(timeout=0) for _ in range(4))  # steps 0 and 1
    assert not gate.wait_turn(timeout=0.01)
    gate.advance(1)
    assert gate.wait_turn(timeout=0) and gate.wait_turn(timeout=0)
    assert not gate.wait_turn(timeout=0.01)
    gate.grant(1)  # a discarded group is replaced without running further ahead
    assert gate.wait_turn(timeout=0)
    assert not gate.wait_turn(timeout=0.01)
    assert gate.issued == 7


def test_version_gate_with_no_lead_is_synchronous():
    sync = VersionGate(ahead=0, per_step=1, version=5)  # e.g. resumed at version 5
    assert sync.wait_turn(timeout=0)
    assert not sync.wait_turn(timeout=0.01)
    threading.Timer(0.05, sync.advance, args=(6,)).start()
    assert sync.wait_turn(timeout=30)
    sync.close()
    assert not sync.wait_turn(timeout=30)


# -- a real asynchronous run: tiny random policy, real sandboxes and verifiers ------------


class RecordingTrainer(Trainer):
    """The real trainer, also keeping what each optimizer step was given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received: list[tuple[int, list[list[int]]]] = []

    def train_step(self, samples, imitation=()):
        # Per sample: the policy version of each chunk it trains on.
        seen = [[s.chunk_versions[k] for k in s.chunks] for s in samples]
        self.received.append((self.version, seen))
        return super().train_step(samples, imitation)


@pytest.mark.slow
def test_async_run_never_trains_on_a_sample_beyond_eta(tmp_path):
    """Generation runs three steps ahead while eta is 1: stale groups must be dropped."""
    eta = 1
    config = TrainConfig.model_validate(
        {
            "model": {"name_or_path": "tiny-random"},
            "tasks": {"suite": "toy", "names": ["count-lines", "first-line", "create-hello-file"]},
            "rollout": {"group_size": 2, "max_turns": 2, "max_new_tokens": 16, "concurrency": 2},
            "trainer": {"lr": 1e-3, "micro_batch_tokens": 16384},
            "steps": 4,
            "tasks_per_step": 1,
            "groups_in_flight": 3,  # four groups start on version 0 ...
            "staleness": {"eta": eta, "max_ahead": 3},  # ... and may be used up to version 1
            "eval": {"enabled": False},
            "checkpoint_every": 100,
            "out_dir": str(tmp_path / "run"),
        }
    )
    run = TrainingRun(config, progress=False, trainer_cls=RecordingTrainer)
    summary = run.run()

    received = run.trainer.received
    assert len(received) == 4 and summary["steps"] == 4
    for version, samples in received:
        assert samples, "a step trained on nothing"
        for chunk_versions in samples:
            assert chunk_versions and all(0 <= v <= version for v in chunk_versions)
            assert version - min(chunk_versions) <= eta
    # The run really was asynchronous and really did meet stale samples.
    assert any(version - min(min(s) for s in samples) == 1 for version, samples in received)
    assert summary["dropped_samples"] == run.buffer.dropped_samples > 0
    metrics = read_metrics(tmp_path / "run" / "logs")
    assert sum(r["dropped"] for r in metrics) == summary["dropped_samples"]
    assert all(r["staleness_max"] <= eta for r in metrics)
