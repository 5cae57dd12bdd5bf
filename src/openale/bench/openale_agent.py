"""The openale agent as a bench agent: ``ale bench run -a openale --model ...``."""

from __future__ import annotations

from pathlib import Path

from openale.agent.approval import ApprovalPolicy
from openale.agent.environment import SandboxEnvironment
from openale.agent.loop import Agent, AgentConfig
from openale.agent.models.factory import make_model
from openale.agent.trajectory import ActionFormat, save
from openale.bench.agents import AgentResult
from openale.sandbox import Sandbox
from openale.tasks.model import Task


def default_registry():
    from openale.agent.tools.base import ToolRegistry
    from openale.agent.tools.builtin import default_tools

    return ToolRegistry(default_tools())


class OpenaleAgent:
    """Runs ``openale.agent.Agent`` on a task's instruction inside the trial's sandbox.

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
        self.config = dict(
            action_format=action_format, max_turns=max_turns, context_window=context_window
        )

    def _model_spec(self, task: Task) -> str:
        if self.model.startswith("replay:"):
            path = Path(self.model.removeprefix("replay:"))
            if path.is_dir():
                return f"replay:{path / (task.name + '.jsonl')}"
        return self.model

    def run(self, task: Task, sandbox: Sandbox, *, timeout: float, logs_dir: Path) -> AgentResult:
        model = make_model(self._model_spec(task), base_url=self.base_url)
        agent = Agent(
            model,
            default_registry(),
            AgentConfig(max_time_s=timeout, **self.config),
            approval=ApprovalPolicy(mode="default"),
        )
        env = SandboxEnvironment(sandbox)
        try:
            traj = agent.run(task.instruction, env, task_id=task.name)
        finally:
            env.close()
        path = save([traj], Path(logs_dir) / "trajectory.jsonl", append=False)
        return AgentResult(
            outcome=traj.outcome or "error",
            error=traj.error,
            trajectory_path=str(path),
            usage=traj.usage.model_dump(),
        )
