"""``ServerSettings``: how ``ale serve`` listens, where it keeps state, what it allows.

Precedence: keyword arguments (CLI flags) > ``ALE_SERVER_*`` environment variables
> defaults. The sandbox layer's own settings (engine, caps) come from
``SandboxSettings`` as usual.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from openale.sandbox.settings import SandboxSettings, ale_home
from openale.server.schemas import DEFAULT_MAX_UPLOAD_BYTES


class ServerSettings(BaseSettings):
    """Configuration of the control plane."""

    model_config = SettingsConfigDict(env_prefix="ALE_SERVER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///$ALE_HOME/server.db"
    )
    max_upload_bytes: int = Field(
        DEFAULT_MAX_UPLOAD_BYTES, gt=0, description="largest file or archive upload (413 above)"
    )
    backend: Literal["local", "ray"] = Field(
        "local",
        description="where sandboxes run: 'local' = this host's container engine,"
        " 'ray' = the Docker nodes of a Ray cluster (CPUs and memory as Ray resources)",
    )
    ray_address: str | None = Field(
        None, description="Ray cluster address for backend='ray'; None = start a local instance"
    )
    ray_placement_timeout_s: float = Field(
        60.0, gt=0, description="how long a create waits for a node with room (then 503)"
    )
    reap_interval_s: float = Field(
        10.0, ge=0, description="period of the TTL/deadline reaper and engine sync; 0 = off"
    )
    max_workers: int = Field(
        128, ge=4, description="threads for blocking sandbox calls (one per running command)"
    )
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)

    @model_validator(mode="after")
    def _default_db(self) -> ServerSettings:
        if not self.database_url:
            self.database_url = f"sqlite:///{ale_home() / 'server.db'}"
        # The server runs its own reaper over its own store: the sandbox layer's
        # per-process reaper would remove sandboxes behind the store's back.
        if self.sandbox.reap_interval_s:
            self.sandbox = self.sandbox.model_copy(update={"reap_interval_s": 0.0})
        return self
