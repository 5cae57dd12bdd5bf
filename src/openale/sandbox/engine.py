"""The connection to the container engine, shared by everything in this layer."""

from __future__ import annotations

import functools

import docker
import docker.errors
import requests.exceptions

from openale.sandbox.errors import EngineUnavailableError
from openale.sandbox.settings import SandboxSettings

# Every container and image openale makes carries this label, so `gc` and `ls`
# never touch anything else on the engine.
LABEL = "openale.sandbox"
L_CREATED, L_SPEC, L_OWNER, L_DETACHED = (
    "openale.created_at",
    "openale.spec",
    "openale.owner",
    "openale.detached",
)
# A control plane (``ale serve``) that owns a sandbox labels it with its id; its own
# reaper and reconciliation decide the sandbox's fate, not the embedded reaper.
L_SERVER = "openale.server"
L_AUDIT = "openale.audit_dir"  # where the sandbox's activity is logged, for idle-TTL checks
L_SNAPSHOT, L_SNAPSHOT_SOURCE = "openale.snapshot", "openale.snapshot.source"


@functools.lru_cache(maxsize=8)
def _client(base_url: str | None) -> docker.DockerClient:
    try:
        client = (
            docker.DockerClient(base_url=base_url, timeout=120, max_pool_size=64)
            if base_url
            else docker.from_env(timeout=120, max_pool_size=64)
        )
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as e:
        raise EngineUnavailableError(
            f"cannot reach the Docker engine ({e}); start it (`make setup` starts dockerd) "
            "or set DOCKER_HOST"
        ) from None
    return client


def docker_client(settings: SandboxSettings | None = None) -> docker.DockerClient:
    """A pooled client for the configured engine (``ALE_DOCKER_HOST``, ``DOCKER_HOST`` or local)."""
    settings = settings or SandboxSettings()
    return _client(settings.docker_host)
