"""The reward stage: a verifier's verdict becomes the reward R the trainer uses.

Per DESIGN.md ("RL"): a passed task is worth ``success_reward`` (1.0) and
anything else ``failure_reward`` (default -1.0, so failures push the policy
down rather than merely not pushing it up). Penalty hooks then add their
terms: callables ``(trajectory, episode) -> float`` named by dotted path in
the config, e.g. ``"openale.rl.reward:failed_tool_calls"``. Each hook's
value is multiplied by its weight and added to R; the breakdown is kept in
``trajectory.metadata["reward"]`` so a reader can see where R came from.

Every trajectory is also scanned by the safety detectors (``openale.safety``,
the default rules plus ``safety_rules``): the findings' rule names join
``trajectory.safety_flags`` and their count, severity weight and categories go
to ``trajectory.metadata["safety"]``, so the training loop can log the
unsafe-action rate whether or not it is penalised. ``safety_penalty`` > 0
subtracts ``safety_penalty`` times the severity-weighted findings
(``SEVERITY_WEIGHT``: low 0.25 ... critical 2) from R.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, field_validator

from openale.agent.trajectory import Trajectory
from openale.safety.findings import severity_weight
from openale.safety.rules import RuleSet, load_rules
from openale.safety.scan import scan_trajectory

if TYPE_CHECKING:
    from openale.rl.rollout import Episode

Penalty = Callable[[Trajectory, "Episode"], float]


class RewardError(Exception):
    """A penalty hook could not be loaded or failed; the message names it."""


class PenaltyRef(BaseModel):
    """A penalty hook at ``path`` (``"package.module:callable"``), scaled by ``weight``."""

    path: str
    weight: float = 1.0


class RewardConfig(BaseModel):
    success_reward: float = 1.0
    failure_reward: float = Field(-1.0, description="failed or unverifiable episodes")
    success_threshold: float = Field(1.0, description="verifier reward counted as a pass")
    penalties: list[PenaltyRef] = Field(default_factory=list)
    safety_penalty: float = Field(
        0.0, ge=0, description="reward taken off per severity-weighted safety finding"
    )
    safety_rules: list[str] = Field(
        default_factory=list, description="rule files added to the default safety rules"
    )

    @field_validator("penalties", mode="before")
    @classmethod
    def _plain_paths(cls, value: Any) -> Any:
        # ``penalties = ["mod:fn"]`` in TOML reads better than a table per hook.
        if isinstance(value, list):
            return [{"path": v} if isinstance(v, str) else v for v in value]
        return value


def load_callable(path: str) -> Callable[..., Any]:
    """The object at ``"package.module:name"`` or ``"package.module.name"``."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise RewardError(f"penalty {path!r}: write it as 'package.module:function'")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise RewardError(f"penalty {path!r} cannot be loaded: {e}") from None
    if not callable(obj):
        raise RewardError(f"penalty {path!r} is not callable")
    return obj


class RewardStage:
    """Turns episodes' verifier results into final rewards (in place) and returns them."""

    def __init__(self, config: RewardConfig | None = None, penalties: Iterable[Penalty] = ()):
        self.config = config or RewardConfig()
        # Hooks from the config by path, plus any given directly (weight 1).
        self.penalties: list[tuple[str, float, Penalty]] = [
            (p.path, p.weight, load_callable(p.path)) for p in self.config.penalties
        ]
        for fn in penalties:
            self.penalties.append((getattr(fn, "__name__", repr(fn)), 1.0, fn))
        self.rules: RuleSet = load_rules(*self.config.safety_rules)

    def base_reward(self, episode: Episode) -> float:
        """Success or failure reward from the verifier; a harness error is a failure."""
        verdict = episode.verifier
        passed = (
            episode.error is None
            and verdict is not None
            and verdict.error is None
            and verdict.reward is not None
            and verdict.reward >= self.config.success_threshold
        )
        return self.config.success_reward if passed else self.config.failure_reward

    def __call__(self, episode: Episode) -> float:
        """The final reward of ``episode``; also written to the episode and its trajectory."""
        reward = self.base_reward(episode)
        breakdown: dict[str, float] = {"base": reward}
        traj = episode.trajectory
        if traj is not None:
            weighted = self.record_safety(traj)
            if self.config.safety_penalty > 0:
                breakdown["safety"] = -self.config.safety_penalty * weighted
                reward += breakdown["safety"]
            for name, weight, fn in self.penalties:
                try:
                    value = weight * float(fn(traj, episode))
                except Exception as e:
                    raise RewardError(f"penalty {name} failed: {type(e).__name__}: {e}") from e
                breakdown[name] = value
                reward += value
            traj.reward = reward
            traj.metadata["reward"] = breakdown
        episode.reward = reward
        return reward

    def record_safety(self, traj: Trajectory) -> float:
        """Scan ``traj``, record its findings on it, and return their severity weight."""
        findings = scan_trajectory(traj, self.rules)
        for f in findings:
            if f.rule not in traj.safety_flags:
                traj.safety_flags.append(f.rule)
        weighted = severity_weight(findings)
        traj.metadata["safety"] = {
            "findings": len(findings),
            "weighted": weighted,
            "categories": sorted({f.category for f in findings}),
        }
        return weighted

    def apply(self, episodes: Iterable[Episode]) -> list[Episode]:
        episodes = list(episodes)
        for ep in episodes:
            self(ep)
        return episodes


# -- built-in penalty hooks (use a weight to scale them) --------------------------------


def failed_tool_calls(trajectory: Trajectory, episode: Episode | None = None) -> float:
    """Minus the fraction of turns whose tool call failed (0 when every call worked)."""
    acted = [c for c in trajectory.chunks if c.tool_calls]
    if not acted:
        return 0.0
    return -sum(c.failed for c in acted) / len(acted)


def safety_flags(trajectory: Trajectory, episode: Episode | None = None) -> float:
    """Minus one per distinct safety flag on the trajectory (the detector rules that
    matched it, recorded by ``RewardStage``); ``safety_penalty`` weighs by severity."""
    return -float(len(trajectory.safety_flags))
