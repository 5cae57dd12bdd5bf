"""What an EnvHub environment is: its record, its names, its errors."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from openale.sandbox.errors import SandboxError
from openale.sandbox.images.names import ENV_REPOSITORY

LOCAL_OWNER = "local"
ENV_PREFIX = "env:"
_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_VERSION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")

EnvStatus = Literal["registered", "building", "ready", "failed"]


class EnvHubError(SandboxError):
    """Base class of EnvHub errors; ``status_code`` is the HTTP status the server answers."""


class InvalidEnvError(EnvHubError, ValueError):
    """A bad name, version, reference, image or Dockerfile folder."""

    status_code = 400


class EnvNotFoundError(EnvHubError):
    """No such ``name@version`` for this owner (another owner's env is never revealed)."""

    status_code = 404


class EnvExistsError(EnvHubError):
    """``name@version`` is already registered by this owner."""

    status_code = 409


class EnvStateError(EnvHubError):
    """The environment is in the wrong state: not built yet, building, or in use."""

    status_code = 409


class EnvBuildError(EnvHubError):
    """The image could not be built; ``log`` holds the build log."""

    status_code = 400

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


class Env(BaseModel):
    """One registered environment, as the library, the CLI and the REST API show it."""

    name: str
    version: str
    owner: str
    image: str
    digest: str | None = None
    status: EnvStatus
    source: Literal["context", "image"]
    source_image: str | None = None
    created_at: datetime
    built_at: datetime | None = None
    error: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def validate(name: str, version: str) -> None:
    """Names are one Docker repository component; versions are Docker tags."""
    if not _NAME.match(name) or len(name) > 64:
        raise InvalidEnvError(
            f"environment name {name!r}: use lowercase letters, digits and . _ - (at most 64)"
        )
    if not _VERSION.match(version):
        raise InvalidEnvError(
            f"version {version!r}: use letters, digits and . _ - (at most 64, not starting . -)"
        )


def parse_ref(ref: str) -> tuple[str, str]:
    """``"name@version"`` (or ``"env:name@version"``) -> ``(name, version)``, validated."""
    name, sep, version = ref.removeprefix(ENV_PREFIX).partition("@")
    if not sep:
        raise InvalidEnvError(f"environment reference {ref!r} must look like 'name@version'")
    validate(name, version)
    return name, version


def image_tag(owner: str, name: str, version: str) -> str:
    """The local image of an environment: ``openale/env/<owner>/<name>:<version>``."""
    return f"{ENV_REPOSITORY}/{_owner_component(owner)}/{name}:{version}"


def check_image_access(image: str, owner: str) -> None:
    """Refuse a sandbox image that is another owner's EnvHub image (as if it did not exist).

    For the control plane, where ``spec.image`` is whatever a caller sends:
    EnvHub tags are ``openale/env/<owner>/<name>:<version>``, so one owner
    could otherwise start another's environment by its tag. Task images
    (``openale/env/<task>:<digest>``) and every other image pass.
    """
    parts = image.split("/")
    if image.startswith(ENV_REPOSITORY + "/") and len(parts) == 4:
        if parts[2] != _owner_component(owner):
            raise EnvNotFoundError(f"no environment image {image!r}")


def _owner_component(owner: str) -> str:
    component = re.sub(r"[^a-z0-9]+", "-", owner.lower()).strip("-")
    if component != owner:
        # Two owners must never share a tag, whatever their names fold to.
        component = f"{component or 'owner'}-{hashlib.sha256(owner.encode()).hexdigest()[:8]}"
    return component
