"""Agent settings: flags > ``ALE_*`` environment > project ``.ale/settings.toml`` > user
``$ALE_HOME/settings.toml`` > defaults. ``AGENTS.md`` in the workspace joins the system prompt."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from openale.agent.approval import Mode, Rule
from openale.agent.trajectory import ActionFormat
from openale.sandbox.settings import DEFAULT_IMAGE, ale_home

ENV_FIELDS = {  # ALE_* variable -> setting
    "ALE_MODEL": "model",
    "ALE_BASE_URL": "base_url",
    "ALE_ACTION_FORMAT": "action_format",
    "ALE_MAX_TURNS": "max_turns",
    "ALE_TIMEOUT": "timeout_s",
    "ALE_APPROVAL_MODE": "approval_mode",
    "ALE_IMAGE": "image",
    "ALE_CONTEXT_WINDOW": "context_window",
}


class AgentSettings(BaseModel):
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = None
    action_format: ActionFormat | None = None
    max_turns: int = 50
    timeout_s: float = 1800.0
    context_window: int = 32768
    compress_at: float = 0.8
    approval_mode: Mode = "default"
    rules: list[Rule] = Field(default_factory=list)
    image: str = DEFAULT_IMAGE
    network: str = "none"
    mcp: dict[str, Any] = Field(default_factory=dict, description="[mcp.servers.NAME] tables")
    trajectories_dir: Path = Field(default_factory=lambda: ale_home() / "trajectories")


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        data = tomllib.load(f)
    return data.get("agent", data)


def load_settings(workspace: Path | None = None, **flags: Any) -> AgentSettings:
    """Merge the layers; ``flags`` with value None are not set."""
    merged: dict[str, Any] = {}
    merged.update(_read_toml(ale_home() / "settings.toml"))
    project = (workspace or Path.cwd()) / ".ale" / "settings.toml"
    merged.update(_read_toml(project))
    for var, field in ENV_FIELDS.items():
        if var in os.environ:
            merged[field] = os.environ[var]
    merged.update({k: v for k, v in flags.items() if v is not None})
    return AgentSettings.model_validate(merged)


def project_memory(workspace: Path | None) -> str:
    """The workspace's ``AGENTS.md``, for the system prompt."""
    if workspace is None:
        return ""
    path = workspace / "AGENTS.md"
    return f"Project instructions (AGENTS.md):\n{path.read_text()}" if path.is_file() else ""
