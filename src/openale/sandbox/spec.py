"""What a sandbox is made of (``SandboxSpec``) and what its commands return.

Specs are validated completely before anything starts on the engine, so a bad
value never leaves a half-created container behind.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from openale.sandbox.errors import InvalidSpecError
from openale.sandbox.settings import DEFAULT_IMAGE

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")
MIN_MEMORY = 6 << 20  # the engine refuses less


def parse_memory(value: str | int) -> int:
    """``"512m"``, ``"1g"``, ``"1GiB"`` or a byte count -> bytes."""
    if isinstance(value, int):
        return value
    m = _MEMORY.match(value)
    if not m:
        raise ValueError(f"memory {value!r} is not a size like '512m' or '2g'")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


class SandboxSpec(BaseModel):
    """Everything needed to start a sandbox. Defaults are safe: offline, capped, unprivileged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = DEFAULT_IMAGE
    cpus: float = Field(1.0, gt=0, le=512, description="CPU quota in cores")
    memory: str = Field("1g", description="memory limit; swap is disabled")
    pids: int = Field(512, ge=8, le=1 << 22, description="max processes")
    network: Literal["none", "bridge"] = "none"
    user: str | None = Field(None, description="user[:group] inside; default: the image's user")
    workdir: str = "/workspace"
    env: dict[str, str] = Field(default_factory=dict)
    ttl_s: float | None = Field(3600.0, gt=0, description="idle time before reaping; None = never")
    deadline_s: float | None = Field(None, gt=0, description="hard lifetime; None = no deadline")
    read_only_root: bool = Field(
        False, description="root filesystem read-only; workdir and /tmp stay writable"
    )
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        if not v.strip() or any(c.isspace() for c in v):
            raise ValueError(f"image {v!r} is not an image reference")
        return v

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str) -> str:
        if parse_memory(v) < MIN_MEMORY:
            raise ValueError(f"memory {v!r} is below the engine's minimum of 6m")
        return v

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, v: str) -> str:
        if not v.startswith("/") or "\0" in v:
            raise ValueError(f"workdir {v!r} must be an absolute path")
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        if v is not None and not _USER.match(v):
            raise ValueError(f"user {v!r} must look like 'name', 'uid' or 'uid:gid'")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not _ENV_NAME.match(k)]
        if bad:
            raise ValueError(f"environment variable names {bad} are not valid")
        return v

    @property
    def memory_bytes(self) -> int:
        return parse_memory(self.memory)

    @classmethod
    def parse(cls, **fields) -> SandboxSpec:
        """Build a spec, turning pydantic's error into an ``InvalidSpecError``."""
        try:
            return cls(**fields)
        except ValidationError as e:
            raise InvalidSpecError(_describe(e)) from None


def _describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        where = ".".join(str(p) for p in err["loc"]) or "spec"
        parts.append(f"{where}: {err['msg']}")
    return "invalid sandbox spec: " + "; ".join(parts)


def as_spec(spec: SandboxSpec | dict | None) -> SandboxSpec:
    if spec is None:
        return SandboxSpec()
    if isinstance(spec, SandboxSpec):
        return spec
    return SandboxSpec.parse(**spec)


class CommandResult(BaseModel):
    """The outcome of one command. ``output`` is stdout+stderr interleaved (sessions)."""

    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    output: str = ""
    duration_s: float = 0.0
    truncated: bool = False
    timed_out: bool = False
    interrupted: bool = False
    oom_killed: bool = False
    error: str | None = Field(None, description="what the harness had to do, e.g. recover")

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


SandboxStatus = Literal["pending", "running", "stopped", "deleted", "failed"]


class SandboxInfo(BaseModel):
    """What ``Sandbox.list()`` and ``ale sandbox ls`` show."""

    id: str
    status: SandboxStatus
    image: str
    created_at: datetime
    last_active_at: datetime | None = None
    ttl_s: float | None = None
    deadline_s: float | None = None
    detached: bool = False
    owner: str | None = None
    spec: SandboxSpec


class Snapshot(BaseModel):
    """A sandbox's filesystem committed to an image; ``Sandbox.fork`` starts copies of it."""

    id: str
    image: str
    source_sandbox: str
    created_at: datetime
    spec: SandboxSpec
