"""Snapshots on the local engine: look one up by id, delete one."""

from __future__ import annotations

from datetime import datetime

from openale.sandbox.engine import L_CREATED, L_SNAPSHOT, L_SNAPSHOT_SOURCE, L_SPEC
from openale.sandbox.errors import SandboxError
from openale.sandbox.runtime import SNAPSHOT_REPOSITORY, DockerRuntime
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import SandboxSpec, Snapshot


def load_snapshot(snapshot_id: str, settings: SandboxSettings | None = None) -> Snapshot:
    runtime = DockerRuntime(settings or SandboxSettings())
    image = snapshot_id if ":" in snapshot_id else f"{SNAPSHOT_REPOSITORY}:{snapshot_id}"
    labels = runtime.image_labels(image)
    if L_SNAPSHOT not in labels:
        raise SandboxError(f"{image} is not an openale snapshot")
    return Snapshot(
        id=labels[L_SNAPSHOT],
        image=image,
        source_sandbox=labels[L_SNAPSHOT_SOURCE],
        created_at=datetime.fromisoformat(labels[L_CREATED]),
        spec=SandboxSpec.model_validate_json(labels[L_SPEC]),
    )


def delete_snapshot(snapshot: Snapshot | str, settings: SandboxSettings | None = None) -> bool:
    """Remove a snapshot's image; False if it was already gone."""
    runtime = DockerRuntime(settings or SandboxSettings())
    if isinstance(snapshot, str):
        snapshot = load_snapshot(snapshot, settings)
    image = snapshot.image
    return runtime.remove_image(image)
