"""Settings of the sandbox layer: where state lives, caps, image aliases.

Precedence: keyword arguments > ``ALE_*`` environment variables >
``$ALE_HOME/config.toml`` (table ``[sandbox]``) > defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# Names that task Dockerfiles use and that cannot be pulled on an offline
# machine, mapped onto images that `ale images bootstrap` builds locally.
DEFAULT_IMAGE_ALIASES: dict[str, str] = {
    "ubuntu:24.04": "openale/toolbox:bookworm",
    "ubuntu:22.04": "openale/toolbox:bookworm",
    "ubuntu:latest": "openale/toolbox:bookworm",
    "debian:bookworm": "openale/debian:bookworm",
    "debian:bookworm-slim": "openale/debian:bookworm",
    "python:3.11-slim": "openale/toolbox:bookworm",
    "python:3.12-slim": "openale/toolbox:bookworm",
    "python:3.11": "openale/toolbox:bookworm",
    "python:3.12": "openale/toolbox:bookworm",
    "ghcr.io/laude-institute/t-bench/ubuntu-24-04:20250624": "openale/toolbox:bookworm",
    "ghcr.io/laude-institute/t-bench/python-3-13:20250620": "openale/toolbox:bookworm",
}

DEFAULT_IMAGE = "openale/toolbox:bookworm"


def ale_home() -> Path:
    return Path(os.environ.get("ALE_HOME", Path.home() / ".openale")).expanduser()


def _host_ca_bundle() -> list[Path]:
    bundle = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    return [Path(bundle)] if Path(bundle).is_file() else []


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the ``[sandbox]`` table of ``$ALE_HOME/config.toml``."""

    def get_field_value(self, field, field_name):  # pragma: no cover - unused by __call__
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = ale_home() / "config.toml"
        if not path.is_file():
            return {}
        with path.open("rb") as f:
            return dict(tomllib.load(f).get("sandbox", {}))


class SandboxSettings(BaseSettings):
    """Configuration of the embedded sandbox layer."""

    model_config = SettingsConfigDict(env_prefix="ALE_", extra="ignore")

    home: Path = Field(default_factory=ale_home)
    audit_dir: Path | None = Field(None, description="JSONL audit logs, one file per sandbox")
    docker_host: str | None = Field(None, description="Engine URL; default: DOCKER_HOST or local")
    max_output_bytes: int = Field(1_000_000, gt=1024, description="cap on one command's output")
    max_file_bytes: int = Field(1 << 30, gt=0, description="cap on one file or directory transfer")
    reap_interval_s: float = Field(15.0, ge=0, description="in-process reaper period; 0 = off")
    image_aliases: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_IMAGE_ALIASES))
    extra_ca_files: list[Path] = Field(
        default_factory=_host_ca_bundle,
        description="PEM bundles whose CAs base images must trust (host bundle by default)",
    )
    debian_mirror: str = "http://deb.debian.org/debian"
    envhub_url: str | None = Field(
        None, description="EnvHub database URL; default sqlite:///<home>/envhub.db"
    )
    server: str | None = Field(
        None, description="control plane URL (ALE_SERVER); set, sandboxes are remote by default"
    )
    token: SecretStr | None = Field(None, description="bearer token for the server (ALE_TOKEN)")

    @model_validator(mode="after")
    def _derive_dirs(self) -> SandboxSettings:
        self.home = self.home.expanduser()
        if self.audit_dir is None:
            self.audit_dir = self.home / "audit"
        return self

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, env_settings, _TomlSource(settings_cls))


def is_remote(server: str | None, settings: SandboxSettings | None) -> bool:
    """Whether a sandbox call goes to a control plane: ``server=`` or ``ALE_SERVER`` is set.

    The one place that chooses between the embedded and the remote sandbox.
    """
    return bool(server or (settings or SandboxSettings()).server)
