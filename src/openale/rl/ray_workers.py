"""Rollout workers as Ray actors: the same training config, spread over a machine or a cluster.

Each ``RolloutWorker`` actor loads the model itself, holds its own
``LocalPolicy`` and runs rollout groups exactly as the in-process back end
does (sandboxes are created on the worker's node). After every optimizer step
the driver puts the new weights into the object store once and every worker
loads them from there; the worker is a threaded actor, so the swap happens
between two decoding batches while its episodes go on.

``ray.address = None`` starts a local Ray instance (``ray.init``); an address
(``"auto"``, ``"ray://host:10001"``) joins a running cluster, whose nodes must
have openale installed, Docker running and the task folders at the same paths.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any

import torch

from openale.rl.config import TrainConfig
from openale.rl.generation import Ticket, make_policy, make_runner, sync_policy
from openale.rl.staleness import SampleGroup

log = logging.getLogger(__name__)


class RayUnavailableError(RuntimeError):
    """Ray could not be started or joined; the message says which address failed."""


class RolloutWorker:
    """One worker: its own policy copy and rollout stage. Wrapped by ``ray.remote`` below."""

    def __init__(self, config: dict[str, Any], task_paths: list[str], index: int):
        from openale.agent.models.smollm import resolve_model
        from openale.tasks import load_task

        self.config = cfg = TrainConfig.model_validate(config)
        self.index = index
        self.name = f"worker-{index}@{socket.gethostname()}:{os.getpid()}"
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        model, tokenizer = resolve_model(cfg.model.name_or_path)
        self.policy = make_policy(cfg, model, tokenizer)
        self.runner = make_runner(cfg, self.policy, [load_task(p) for p in task_paths])
        self.groups = 0

    def run_group(self, ticket: Ticket) -> SampleGroup:
        group = self.runner(ticket, self.policy.version)
        group.worker = self.name
        self.groups += 1
        return group

    def load_weights(self, state_dict: dict[str, torch.Tensor], version: int) -> int:
        sync_policy(self.policy, state_dict, version)
        return self.policy.version

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.policy.version, "groups": self.groups}


def ensure_ray(address: str | None, num_cpus: float) -> bool:
    """Connect to Ray; returns True when this call started it (so the caller shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(num_cpus=math.ceil(num_cpus), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except Exception as e:
        where = address or "a local instance"
        raise RayUnavailableError(f"cannot start or join Ray at {where}: {e}") from e
    return True


class RayGenerators:
    """A ``GenerationBackend`` of ``ray.num_workers`` ``RolloutWorker`` actors.

    ``submit`` sends a group to the worker with the fewest groups in flight;
    ``sync`` puts the weights into the object store once and waits until
    every worker has loaded them, so no group starts on old weights after it.
    """

    def __init__(self, config: TrainConfig, task_paths: list[str | Path]):
        import ray

        self.config = config
        r = config.ray
        self.slots = config.slots
        per_worker = math.ceil(self.slots / r.num_workers)
        self._started_ray = ensure_ray(r.address, r.num_workers * r.cpus_per_worker)
        actor = ray.remote(RolloutWorker).options(
            num_cpus=r.cpus_per_worker,
            max_concurrency=per_worker + 2,  # groups, plus weight loads and info calls
        )
        data = config.model_dump(mode="json")
        paths = [str(p) for p in task_paths]
        self.workers = [actor.remote(data, paths, i) for i in range(r.num_workers)]
        self._load = [0] * len(self.workers)
        self._running: set[Future] = set()
        self._lock = threading.Lock()
        self.names = ray.get([w.info.remote() for w in self.workers])  # fail early if broken

    def submit(self, ticket: Ticket) -> Future[SampleGroup]:
        with self._lock:
            i = min(range(len(self.workers)), key=lambda j: (self._load[j], j))
            self._load[i] += 1
        future: Future[SampleGroup] = self.workers[i].run_group.remote(ticket).future()
        with self._lock:
            self._running.add(future)

        def release(done: Future) -> None:
            with self._lock:
                self._load[i] -= 1
                self._running.discard(done)

        future.add_done_callback(release)
        return future

    def sync(self, state_dict: dict[str, torch.Tensor], version: int) -> None:
        import ray

        ref = ray.put({k: v.detach().cpu() for k, v in state_dict.items()})
        versions = ray.get([w.load_weights.remote(ref, version) for w in self.workers])
        if any(v != version for v in versions):
            raise RuntimeError(f"workers report versions {versions} after loading {version}")

    def info(self) -> list[dict[str, Any]]:
        import ray

        return ray.get([w.info.remote() for w in self.workers])

    def close(self) -> None:
        """Let running groups finish (their sandboxes close cleanly), then end the actors."""
        import ray

        with self._lock:
            running = list(self._running)
        _, late = wait(running, timeout=600)
        if late:
            log.warning("%d rollout groups still running after 600 s; ending them", len(late))
        for w in self.workers:
            ray.kill(w)
        if self._started_ray:
            ray.shutdown()
