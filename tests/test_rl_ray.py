"""Rollout workers as Ray actors on a local Ray instance: two workers, weights after every step."""

from __future__ import annotations

import pytest

from openale.rl.config import TrainConfig
from openale.rl.pipeline import TrainingRun
from openale.rl.scalars import read_metrics
from openale.rl.trainer import Trainer

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture
def no_ray_left():
    yield
    ray.shutdown()  # whatever happened in the test, the next one starts clean


class RecordingTrainer(Trainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received: list[tuple[int, set[int]]] = []

    def train_step(self, samples, imitation=()):
        self.received.append(
            (self.version, {s.chunk_versions[k] for s in samples for k in s.chunks})
        )
        return super().train_step(samples, imitation)


def test_two_ray_workers_roll_out_with_the_newest_weights(tmp_path, no_ray_left):
    config = TrainConfig.model_validate(
        {
            "model": {"name_or_path": "tiny-random"},
            "tasks": {"suite": "toy", "names": ["count-lines", "first-line", "create-hello-file"]},
            "rollout": {"group_size": 2, "max_turns": 2, "max_new_tokens": 16, "concurrency": 2},
            "trainer": {"lr": 1e-3, "micro_batch_tokens": 16384},
            "steps": 3,
            "tasks_per_step": 2,
            "staleness": {"eta": 0},
            "ray": {"enabled": True, "address": None, "num_workers": 2, "cpus_per_worker": 1},
            "eval": {"enabled": False},
            "checkpoint_every": 100,
            "out_dir": str(tmp_path / "run"),
        }
    )
    run = TrainingRun(config, progress=False, trainer_cls=RecordingTrainer)
    summary = run.run()

    # Groups came back from both actors, each named by its own process.
    workers = {g.worker for g in run.groups_seen}
    assert len(workers) == 2 and all(w and w.startswith("worker-") for w in workers)
    assert sorted(w["name"] for w in summary["workers"]) == sorted(workers)
    # eta = 0: step k trains on chunks of version k only, so every worker generated
    # with the weights of the step before (sent through the object store).
    assert [version for version, _ in run.trainer.received] == [0, 1, 2]
    assert all(versions == {version} for version, versions in run.trainer.received)
    by_version: dict[int, set[str]] = {}
    for g in run.groups_seen:
        by_version.setdefault(g.started_version, set()).add(g.worker)
    assert {0, 1, 2} <= set(by_version)
    assert all(w["version"] == 3 for w in summary["workers"])  # the final weights arrived
    assert [r["version"] for r in read_metrics(tmp_path / "run" / "logs")] == [1, 2, 3]
    assert not ray.is_initialized()  # the run shut down the Ray instance it started
