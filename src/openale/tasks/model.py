"""What a verifiable task is: its instruction, environment, tests and reference solution.

The on-disk layout is Harbor's (Terminal-Bench 2)::

    instruction.md
    task.toml                 [metadata] [verifier] [agent] [environment]
    environment/Dockerfile    build context = environment/
    tests/test.sh             writes /logs/verifier/reward.txt or reward.json
    solution/solve.sh

The older Terminal-Bench layout loads into the same model (see ``loader``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Layout = Literal["harbor", "terminal-bench"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow")


class Metadata(_Section):
    author_name: str | None = None
    author_email: str | None = None
    difficulty: str = "unknown"
    category: str = "uncategorized"
    tags: list[str] = Field(default_factory=list)
    split: str | None = Field(None, description="e.g. train / heldout for RL suites")


class VerifierConfig(_Section):
    timeout_sec: float = Field(600.0, gt=0)
    env: dict[str, str] = Field(default_factory=dict)


class AgentSection(_Section):
    """The ``[agent]`` section of task.toml: the agent's time budget on this task."""

    timeout_sec: float = Field(600.0, gt=0)


class EnvironmentConfig(_Section):
    build_timeout_sec: float = Field(600.0, gt=0)
    cpus: float = Field(1.0, gt=0)
    memory_mb: int = Field(2048, ge=16)
    storage_mb: int | None = Field(None, ge=1)
    allow_internet: bool = False


class TaskConfig(_Section):
    version: str = "1.0"
    metadata: Metadata = Field(default_factory=Metadata)
    verifier: VerifierConfig = Field(default_factory=VerifierConfig)
    agent: AgentSection = Field(default_factory=AgentSection)
    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)


class Task(BaseModel):
    """A loaded task; paths are absolute and were checked to exist."""

    name: str
    path: Path
    layout: Layout
    instruction: str
    config: TaskConfig
    build_context: Path
    dockerfile: Path
    tests_dir: Path
    test_script: str = Field("test.sh", description="file under /tests the verifier runs")
    extra_test_files: dict[str, Path] = Field(
        default_factory=dict, description="files copied into /tests besides tests_dir"
    )
    solution: Path | None = Field(None, description="script the oracle runs")
    solution_dir: Path | None = None

    @property
    def category(self) -> str:
        return self.config.metadata.category

    @property
    def difficulty(self) -> str:
        return self.config.metadata.difficulty
