"""``TrainConfig``: everything one ``ale train CONFIG.toml`` run needs, in one TOML file.

Sections mirror the stages: ``[model]``, ``[tasks]``, ``[rollout]``, ``[reward]``,
``[trainer]``, ``[staleness]``, ``[sft]``, ``[resample]``, ``[eval]``, ``[ray]``,
plus top-level ``algorithm``, ``steps``, ``tasks_per_step``, ``out_dir`` and
``seed``. Unknown keys are errors (a misspelt key must not silently fall back
to a default). ``--set key.sub=value`` overrides any key from the command line;
the value is read as a TOML value (``3``, ``0.5``, ``true``, ``"text"``,
``[1, 2]``), and a bare word that is not valid TOML is taken as a string.

A small run on the toy suite::

    steps = 20
    tasks_per_step = 2
    out_dir = "runs/toy-ipa"

    [model]
    name_or_path = "smollm2"        # or "tiny-random", or a checkpoint folder

    [tasks]
    suite = "toy"
    split = "train"

    [rollout]
    group_size = 4
    max_turns = 4

    [trainer]
    algorithm = "ipa"
    lr = 1e-5
    # dtype = "bfloat16"            # with device = "cuda": bf16 autocast, float32 weights

    [staleness]
    eta = 1                         # 0: synchronous

    [eval]
    split = "heldout"
    attempts = 2
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from openale.rl.lora import LoraSettings
from openale.rl.losses import Algorithm
from openale.rl.resample import ResampleConfig
from openale.rl.reward import RewardConfig
from openale.rl.rollout import RolloutConfig
from openale.rl.trainer import TrainerConfig


class ConfigError(ValueError):
    """A training config that cannot be used; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RolloutSection(RolloutConfig):
    """``[rollout]``: the rollout stage's settings, with unknown keys refused."""

    model_config = ConfigDict(extra="forbid")


class RewardSection(RewardConfig):
    """``[reward]``: failure reward and penalty hooks, with unknown keys refused."""

    model_config = ConfigDict(extra="forbid")


class ModelSection(_Section):
    name_or_path: str = Field("smollm2", description="smollm2, tiny-random or a checkpoint folder")
    lora: LoraSettings | None = Field(None, description="train a LoRA adapter instead of all")


class TasksSection(_Section):
    suite: str = Field("toy", description="a built-in suite name or a folder of tasks")
    split: str | None = Field("train", description="only tasks of this split (None: all)")
    names: list[str] = Field(default_factory=list, description="name globs to keep (empty: all)")
    exclude: list[str] = Field(default_factory=list, description="name globs to leave out")
    limit: int | None = Field(None, ge=1)


class StalenessSection(_Section):
    eta: int = Field(1, ge=0, description="max optimizer versions a sample may lag; 0 = sync")
    max_ahead: int | None = Field(
        None, ge=0, description="batches generation may run ahead of training (None: eta)"
    )
    take_timeout_s: float = Field(
        1800.0, gt=0, description="how long the trainer waits for a batch before failing"
    )

    @property
    def ahead(self) -> int:
        return self.eta if self.max_ahead is None else self.max_ahead


class SFTSection(_Section):
    """Warm start: error-masked SFT on oracle trajectories of the train split."""

    enabled: bool = False
    epochs: int = Field(1, ge=1)
    lr: float = Field(1e-4, gt=0)
    batch_size: int = Field(4, ge=1, description="trajectories per optimizer step")
    limit: int | None = Field(None, ge=1, description="at most this many tasks")


class ResampleSection(ResampleConfig):
    """Initialized resampling: some groups restart from anchor chunks of the task's oracle.

    The imitation term on the expert prefix is ``trainer.imitation_coef``.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    fraction: float = Field(0.5, ge=0, le=1, description="share of groups that start from anchors")


class EvalSection(_Section):
    enabled: bool = True
    split: str = "heldout"
    names: list[str] = Field(default_factory=list, description="name globs (empty: the split)")
    attempts: int = Field(1, ge=1)
    limit: int | None = Field(None, ge=1, description="at most this many held-out tasks")
    before: bool = Field(False, description="also evaluate the initial policy")


class RaySection(_Section):
    enabled: bool = False
    address: str | None = Field(None, description="None: start a local Ray; else a cluster")
    num_workers: int = Field(2, ge=1)
    cpus_per_worker: float = Field(1.0, gt=0)


class TrainConfig(_Section):
    """One RL run (see the module docstring for the TOML layout)."""

    model: ModelSection = Field(default_factory=ModelSection)
    tasks: TasksSection = Field(default_factory=TasksSection)
    rollout: RolloutSection = Field(default_factory=RolloutSection)
    reward: RewardSection = Field(default_factory=RewardSection)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    algorithm: Algorithm | None = Field(None, description="shorthand for trainer.algorithm")
    steps: int = Field(20, ge=1, description="optimizer steps")
    tasks_per_step: int = Field(2, ge=1, description="rollout groups (tasks) per step")
    groups_in_flight: int | None = Field(
        None, ge=1, description="rollout groups running at once (None: tasks_per_step)"
    )
    staleness: StalenessSection = Field(default_factory=StalenessSection)
    sft: SFTSection = Field(default_factory=SFTSection)
    resample: ResampleSection = Field(default_factory=ResampleSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    ray: RaySection = Field(default_factory=RaySection)
    checkpoint_every: int = Field(5, ge=1, description="save a checkpoint every N steps")
    keep_checkpoints: int = Field(2, ge=1)
    out_dir: Path = Path("runs/train")
    seed: int = 0
    device: str = Field(
        "cpu",
        description='torch device of the trainer and the local generators ("cpu", "cuda", '
        '"cuda:1"); trainer.dtype = "bfloat16" computes in bf16 there (float32 weights)',
    )

    @model_validator(mode="after")
    def _one_source_of_truth(self) -> TrainConfig:
        # ``algorithm`` and ``model.lora`` are shorthands for trainer fields:
        # copy them over, refusing contradictions instead of picking one.
        if self.algorithm is not None:
            set_in_trainer = "algorithm" in self.trainer.model_fields_set
            if set_in_trainer and self.trainer.algorithm != self.algorithm:
                raise ValueError(
                    f"algorithm = {self.algorithm!r} but trainer.algorithm = "
                    f"{self.trainer.algorithm!r}: set only one"
                )
            self.trainer.algorithm = self.algorithm
        self.algorithm = self.trainer.algorithm
        if self.model.lora is not None:
            if self.trainer.lora is not None and self.trainer.lora != self.model.lora:
                raise ValueError("model.lora and trainer.lora differ: set only model.lora")
            self.trainer.lora = self.model.lora
        try:
            torch.device(self.device)
        except RuntimeError:
            raise ValueError(f"device {self.device!r} is not a torch device") from None
        if self.trainer.imitation_coef and not self.resample.enabled:
            raise ValueError("trainer.imitation_coef needs resample.enabled = true")
        return self

    @property
    def eta(self) -> int:
        return self.staleness.eta

    @property
    def slots(self) -> int:
        return self.groups_in_flight or self.tasks_per_step


# -- loading -----------------------------------------------------------------------------


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"trainer.lr=1e-5"`` -> ``(["trainer", "lr"], 1e-5)``; the value is read as TOML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: write it as key.sub=value")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: a string (paths, model names)
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``data`` with each ``key.sub=value`` set (sections are created as needed)."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


def validate_config(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """A ``TrainConfig`` from plain data, or a ``ConfigError`` listing every problem."""
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"  {where}: {msg}")
        listing = "\n".join(problems)
        raise ConfigError(f"{source} is not a valid training config:\n{listing}") from None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read ``path`` (TOML; None: all defaults), apply ``--set`` overrides, validate."""
    data: dict[str, Any] = {}
    source = "the --set overrides" if overrides else "the defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"no training config at {path}")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}") from None
    apply_overrides(data, overrides or [])
    return validate_config(data, source)


def dump_config(config: TrainConfig) -> dict[str, Any]:
    """The config as JSON-ready data (written next to a run's outputs)."""
    return config.model_dump(mode="json")
