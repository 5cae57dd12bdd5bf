"""Agents the bench can run: ``oracle``, ``nop``, or any class importable by path.

An agent gets the task's instruction and a running sandbox and acts in it; it
never sees the tests. ``run`` returns an ``AgentResult``; a trajectory, when the
agent records one, is written under ``logs_dir`` (None: keep nothing on disk).
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from openale.agent.trajectory import Outcome, Trajectory
from openale.sandbox import AnySandbox
from openale.tasks.model import Task


class AgentResult(BaseModel):
    """How an agent's run ended; ``trajectory`` is the run itself when the agent records one."""

    outcome: Outcome = "completed"
    error: str | None = None
    trajectory_path: str | None = None
    trajectory: Trajectory | None = Field(None, exclude=True, repr=False)
    usage: dict = Field(default_factory=dict)
    duration_s: float = 0.0


@runtime_checkable
class TaskAgent(Protocol):
    name: str
    model: str | None

    def run(
        self, task: Task, sandbox: AnySandbox, *, timeout: float, logs_dir: Path | None
    ) -> AgentResult:
        """Act on ``task.instruction`` inside ``sandbox`` for at most ``timeout`` seconds."""


class OracleAgent:
    """Runs the task's reference solution (``solution/solve.sh``) in a shell session."""

    name = "oracle"
    model: str | None = None

    def run(
        self, task: Task, sandbox: AnySandbox, *, timeout: float, logs_dir: Path | None
    ) -> AgentResult:
        started = time.monotonic()
        if task.solution is None:
            return AgentResult(outcome="error", error=f"{task.name} has no reference solution")
        if task.solution_dir is not None:
            sandbox.files.upload_dir(task.solution_dir, "/solution")
        else:
            sandbox.files.write(
                f"/solution/{task.solution.name}", task.solution.read_bytes(), mode=0o755
            )
        shell = sandbox.sessions.create()
        run = shell.run(f"bash /solution/{task.solution.name}", timeout=timeout)
        if logs_dir is not None:
            logs_dir.mkdir(parents=True, exist_ok=True)
            (logs_dir / "oracle.log").write_text(run.output)
        result = AgentResult(duration_s=time.monotonic() - started)
        if run.timed_out:
            result.outcome, result.error = "timeout", f"solution ran past {timeout:g}s"
        elif run.exit_code != 0:
            result.outcome = "error"
            result.error = f"solution exited with {run.exit_code}"
        return result


class NopAgent:
    """Does nothing: every task's tests must fail on the untouched environment."""

    name = "nop"
    model: str | None = None

    def run(
        self, task: Task, sandbox: AnySandbox, *, timeout: float, logs_dir: Path | None
    ) -> AgentResult:
        return AgentResult()


BUILTIN_AGENTS: dict[str, type] = {"oracle": OracleAgent, "nop": NopAgent}


def load_agent(spec: str, **kwargs) -> TaskAgent:
    """``oracle``, ``nop``, ``openale``, or ``package.module:ClassName`` (kwargs go to it)."""
    if spec in BUILTIN_AGENTS:
        return BUILTIN_AGENTS[spec]()
    if spec == "openale":
        from openale.bench.openale_agent import OpenaleAgent  # it imports this module

        return OpenaleAgent(**kwargs)
    module_name, sep, attr = spec.partition(":")
    if not sep:
        raise ValueError(f"unknown agent {spec!r}: use oracle, nop, openale or 'module:Class'")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot import agent {spec!r}: {e}") from None
    agent = cls(**kwargs)
    if not isinstance(agent, TaskAgent):
        raise ValueError(f"{spec} is not an agent: it needs `name`, `model` and `run(...)`")
    return agent
