"""Trainer checkpoints: weights (or only the trainable LoRA adapter), optimizer, RNG, version.

A checkpoint is a folder:

    trainable.safetensors   parameters that train (all of them, or the LoRA adapter)
    optimizer.pt            the optimizer's state_dict
    rng.pt                  torch (CPU and CUDA), Python ``random`` and NumPy generator states
    state.json              format, version (optimizer steps), the caller's ``extra`` dict

With LoRA only the adapter is saved: resume on the same base model (e.g. the
same ``resolve_model`` name). The folder is written under a temporary sibling
name and renamed into place, so a crash never leaves half a checkpoint under
the final name. Resuming restores every piece, so the next step is
bit-identical to that of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_FORMAT = 1
WEIGHTS_FILE = "trainable.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng.pt"
STATE_FILE = "state.json"


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, incomplete, or does not fit the model."""


def trainable_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that train (``requires_grad``), detached and contiguous, by name."""
    return {
        name: p.detach().contiguous() for name, p in model.named_parameters() if p.requires_grad
    }


def rng_state() -> dict[str, Any]:
    """Every RNG a training step may draw from, as ``torch.load(weights_only=True)`` reads it."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": [py_version, list(py_internal), py_gauss],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    py_version, py_internal, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_internal), py_gauss))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached"]))


def save_checkpoint(
    directory: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    version: int,
    extra: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint of ``model``'s trainable parameters, ``optimizer`` and the RNGs.

    ``extra`` (JSON-serialisable) is the caller's own state, e.g. its buffer
    position; ``meta`` describes the run (algorithm, LoRA settings) for humans.
    An existing checkpoint at ``directory`` is replaced.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        # Tied parameters appear once in named_parameters, so safetensors sees no shared storage.
        weights = {k: v.cpu() for k, v in trainable_state_dict(model).items()}
        save_file(weights, str(tmp / WEIGHTS_FILE))
        torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
        torch.save(rng_state(), tmp / RNG_FILE)
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": int(version),
            "extra": extra or {},
            "meta": meta or {},
        }
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True))
        if directory.exists():
            shutil.rmtree(directory)
        os.rename(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def load_checkpoint(
    directory: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint into ``model`` and ``optimizer``; returns state.json's content.

    The model must have the same trainable parameters as when it was saved
    (same architecture, same LoRA settings); anything else is a ``CheckpointError``.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    missing = [
        f
        for f in (WEIGHTS_FILE, OPTIMIZER_FILE, RNG_FILE, STATE_FILE)
        if not (directory / f).is_file()
    ]
    if missing:
        raise CheckpointError(f"{directory} is not a complete trainer checkpoint: no {missing}")
    state = json.loads((directory / STATE_FILE).read_text())
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{directory}: checkpoint format {state.get('format')}, want {CHECKPOINT_FORMAT}"
        )

    saved = load_file(str(directory / WEIGHTS_FILE))
    params = dict(model.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    if set(saved) != expected:
        extra_keys, lacking = sorted(set(saved) - expected), sorted(expected - set(saved))
        raise CheckpointError(
            f"{directory} does not fit this model (were LoRA settings changed?): "
            f"unexpected {extra_keys[:5]}, missing {lacking[:5]}"
        )
    with torch.no_grad():
        for name, tensor in saved.items():
            params[name].copy_(tensor)
    device = next(model.parameters()).device
    optimizer.load_state_dict(torch.load(directory / OPTIMIZER_FILE, map_location=device))
    if restore_rng:
        set_rng_state(torch.load(directory / RNG_FILE, weights_only=True))
    return state
