"""The openale agent loop as a bench agent: ``ale bench run -a openale --model ...``.

``LoopAgent`` runs ``openale.agent.Agent`` with a given model (any: an HTTP
model, a shared ``LocalPolicy`` behind a ``SeededModel``, a teacher-forced
``ScriptedPolicy``), tools and settings; rollouts and oracle runs use it
directly. ``OpenaleAgent`` is the same agent named by a model spec string,
as the CLI and ``load_agent("openale")`` make it.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

from openale.agent.approval import ApprovalPolicy
from openale.agent.environment import SandboxEnvironment
from openale.agent.loop import Agent, AgentConfig
from openale.agent.models.base import Model
from openale.agent.models.factory import make_model
from openale.agent.tools.base import ToolRegistry
from openale.agent.tools.builtin import default_tools
from openale.agent.trajectory import ActionFormat, Trajectory, save
from openale.bench.agents import AgentResult
from openale.sandbox import AnySandbox
from openale.tasks.model import Task


class LoopAgent:
    """The openale agent loop with ``llm``, acting in the episode's sandbox.

    ``resume``: a trajectory the agent continues (a copy is taken, the original
    is left alone) instead of starting on the task's instruction. A model with
    ``release()`` (``SeededModel``) is released when the run ends, so a shared
    policy forgets the run's token sequences (the trajectory keeps them).
    """

    def __init__(
        self,
        llm: Model,
        config: AgentConfig | None = None,
        *,
        tools: ToolRegistry | None = None,
        name: str = "openale",
        approval: ApprovalPolicy | None = None,
        resume: Trajectory | None = None,
    ):
        self.llm = llm
        self.model = llm.name
        self.config = config or AgentConfig()
        self.tools = tools if tools is not None else ToolRegistry(default_tools())
        self.name = name
        self.approval = approval
        self.resume = resume

    def loop(self, timeout: float | None = None) -> Agent:
        """The agent loop as it runs (``timeout`` caps its time budget)."""
        config = self.config
        if timeout is not None and timeout < config.max_time_s:
            config = config.model_copy(update={"max_time_s": timeout})
        return Agent(self.llm, self.tools, config, approval=self.approval, name=self.name)

    def run(
        self,
        task: Task,
        sandbox: AnySandbox,
        *,
        timeout: float,
        logs_dir: Path | None,
        env: SandboxEnvironment | None = None,
    ) -> AgentResult:
        """Act on the task; ``env``: the episode's prepared environment (left open here)."""
        started = time.monotonic()
        own_env = env is None
        env = env if env is not None else SandboxEnvironment(sandbox)
        resume = copy.deepcopy(self.resume) if self.resume is not None else None
        instruction = None if resume is not None else task.instruction
        try:
            traj = self.loop(timeout).run(instruction, env, task_id=task.name, resume=resume)
        finally:
            if own_env:
                env.close()
            release = getattr(self.llm, "release", None)
            if release is not None:
                release()
        path = None
        if logs_dir is not None:
            path = str(save([traj], Path(logs_dir) / "trajectory.jsonl", append=False))
        return AgentResult(
            outcome=traj.outcome or "error",
            error=traj.error,
            trajectory_path=path,
            trajectory=traj,
            usage=traj.usage.model_dump(),
            duration_s=time.monotonic() - started,
        )


class OpenaleAgent:
    """``LoopAgent`` with the model named by a spec (``make_model``), one per task.

    ``model="replay:DIR"`` with a directory replays ``DIR/<task name>.jsonl``.
    """

    name = "openale"

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        base_url: str | None = None,
        action_format: ActionFormat | None = None,
        max_turns: int = 50,
        context_window: int = 32768,
    ):
        self.model = model
        self.base_url = base_url
        self.config = AgentConfig(
            action_format=action_format, max_turns=max_turns, context_window=context_window
        )

    def _model_spec(self, task: Task) -> str:
        if self.model.startswith("replay:"):
            path = Path(self.model.removeprefix("replay:"))
            if path.is_dir():
                return f"replay:{path / (task.name + '.jsonl')}"
        return self.model

    def run(
        self, task: Task, sandbox: AnySandbox, *, timeout: float, logs_dir: Path | None
    ) -> AgentResult:
        llm = make_model(self._model_spec(task), base_url=self.base_url)
        config = self.config.model_copy(update={"max_time_s": timeout})  # the task's budget
        agent = LoopAgent(llm, config, approval=ApprovalPolicy(mode="default"))
        return agent.run(task, sandbox, timeout=timeout, logs_dir=logs_dir)
