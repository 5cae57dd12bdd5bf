"""``PolicyWeights``: a local model's weights and the version that names them.

Every generated token records the version of the weights that produced it
(the RL trainer's staleness and off-policy corrections need it). A batch holds
the lock while it decodes, so weights change only between two batches and a
batch never mixes versions.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import torch


class PolicyWeights:
    """The model, its weights' version, and the lock that keeps them consistent."""

    def __init__(self, model: Any, version: int = 0):
        self.model = model
        self.version = version
        self.lock = threading.RLock()  # held while a batch decodes or a model scores

    def load(self, state_dict: dict[str, torch.Tensor], strict: bool = True) -> int:
        """Replace the weights between two batches; returns the new version."""
        with self.lock:
            self.model.load_state_dict(state_dict, strict=strict)
            self.version += 1
            return self.version

    def bump(self) -> int:
        """Mark the weights as changed in place (e.g. after an optimizer step)."""
        with self.lock:
            self.version += 1
            return self.version

    @contextlib.contextmanager
    def updating(self) -> Iterator[None]:
        """Hold generation off while the weights change in place; bumps the version after."""
        with self.lock:
            yield
            self.version += 1
