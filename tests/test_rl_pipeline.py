"""The training config, the task schedule, and the loop end to end (tiny policy, real sandboxes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openale.cli.main import app
from openale.rl.config import ConfigError, TrainConfig, load_config, parse_override
from openale.rl.generation import TaskSchedule
from openale.rl.pipeline import TrainingError, TrainingRun, latest_checkpoint
from openale.rl.scalars import read_metrics
from openale.rl.trainer import Trainer

TASKS = ["count-lines", "first-line", "create-hello-file"]
DATA_TASKS = Path(__file__).parent / "data" / "tasks"


def tiny_config(out_dir, **overrides) -> TrainConfig:
    data = {
        "model": {"name_or_path": "tiny-random"},
        "tasks": {"suite": "toy", "names": TASKS},
        "rollout": {"group_size": 2, "max_turns": 2, "max_new_tokens": 16, "concurrency": 2},
        "trainer": {"lr": 1e-3, "micro_batch_tokens": 16384},
        "steps": 2,
        "tasks_per_step": 2,
        "staleness": {"eta": 0},
        "eval": {"enabled": False},
        "checkpoint_every": 1,
        "out_dir": str(out_dir),
    }
    for key, value in overrides.items():
        data[key] = value
    return TrainConfig.model_validate(data)


# -- config -------------------------------------------------------------------------------


def test_config_loads_toml_and_cli_overrides(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text(
        'algorithm = "grpo"\nsteps = 7\n[model]\nname_or_path = "tiny-random"\n'
        "[rollout]\ngroup_size = 3\n[staleness]\neta = 2\n"
    )
    cfg = load_config(
        path,
        ["trainer.lr=3e-4", "rollout.temperature=0.7", "tasks.names=['a*', 'b']", "out_dir=x/y"],
    )
    assert cfg.algorithm == cfg.trainer.algorithm == "grpo"
    assert cfg.steps == 7 and cfg.eta == 2 and cfg.staleness.ahead == 2
    assert cfg.rollout.group_size == 3 and cfg.rollout.temperature == 0.7
    assert cfg.trainer.lr == 3e-4 and cfg.tasks.names == ["a*", "b"]
    assert str(cfg.out_dir) == "x/y"  # a bare word is a string
    assert load_config(None).model_dump() == TrainConfig().model_dump()


def test_unknown_and_bad_keys_are_all_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("stepz = 3\n[rollout]\ngrup_size = 2\n[trainer]\nlr = -1\n[reward]\nx = 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert str(path) in text
    for line in ("stepz: unknown key", "rollout.grup_size: unknown key", "reward.x: unknown key"):
        assert line in text
    assert "trainer.lr:" in text


def test_config_errors_a_user_can_act_on(tmp_path):
    with pytest.raises(ConfigError, match="no training config"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "broken.toml").write_text("steps = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "broken.toml")
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_override("trainer.lr")
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_config(None, ["steps=3", "steps.x=1"])
    with pytest.raises(ConfigError, match="set only one"):
        load_config(None, ["algorithm=grpo", "trainer.algorithm=ppo"])
    with pytest.raises(ConfigError, match="algorithm"):
        load_config(None, ["algorithm=reinforce"])
    cfg = load_config(None, ["model.lora.r=4"])
    assert cfg.trainer.lora is not None and cfg.trainer.lora.r == 4


def test_task_schedule_is_a_seeded_shuffle_per_epoch():
    schedule = TaskSchedule(["a", "b", "c"], seed=3)
    first = [schedule.task(i) for i in range(6)]
    assert sorted(first[:3]) == sorted(first[3:]) == ["a", "b", "c"]
    assert first == [TaskSchedule(["c", "b", "a"], seed=3).task(i) for i in range(6)]
    tickets = schedule.tickets(start=2, skip={3, 5})
    assert [next(tickets).index for _ in range(3)] == [2, 4, 6]
    with pytest.raises(ValueError, match="empty"):
        TaskSchedule([])


# -- the loop -----------------------------------------------------------------------------


class RecordingTrainer(Trainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received: list[tuple[int, set[int]]] = []

    def train_step(self, samples, imitation=()):
        versions = {s.chunk_versions[k] for s in samples for k in s.chunks}
        self.received.append((self.version, versions))
        return super().train_step(samples, imitation)


@pytest.mark.slow
def test_synchronous_run_checkpoints_and_resumes(tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config(out, eval={"enabled": True, "limit": 1, "attempts": 1})
    run = TrainingRun(cfg, progress=False, trainer_cls=RecordingTrainer)
    summary = run.run()

    # eta = 0: every step trains only on samples of the weights it starts from.
    assert [r[0] for r in run.trainer.received] == [0, 1]
    assert all(versions == {version} for version, versions in run.trainer.received)
    assert summary["steps"] == 2 and summary["version"] == 2 and summary["dropped_samples"] == 0
    assert summary["eval"]["episodes"] == 1 and summary["eval"]["split"] == "heldout"
    assert json.loads((out / "summary.json").read_text())["steps"] == 2
    assert (out / "reward_curve.png").stat().st_size > 1000
    metrics = read_metrics(out / "logs")
    assert [r["step"] for r in metrics] == [1, 2]
    for r in metrics:
        assert -1.0 <= r["reward"] <= 1.0 and 0.0 <= r["success"] <= 1.0
        assert r["grad_norm"] > 0 and r["tokens"] > 0 and r["sandbox_s"] > 0
        assert r["staleness"] == 0 and r["dropped"] == 0
    assert latest_checkpoint(out).name == "step-000002"
    first_tickets = json.loads((out / "checkpoints/step-000002/state.json").read_text())["extra"]
    assert first_tickets["frontier"] == 4 and first_tickets["step"] == 2

    # Resume: two more steps, continuing the version count and the task schedule.
    more = tiny_config(out, steps=4, checkpoint_every=2)
    resumed = TrainingRun(more, resume=True, progress=False, trainer_cls=RecordingTrainer)
    summary = resumed.run()
    assert [r[0] for r in resumed.trainer.received] == [2, 3]
    assert all(versions == {version} for version, versions in resumed.trainer.received)
    assert summary["version"] == 4
    assert [r["step"] for r in read_metrics(out / "logs")] == [1, 2, 3, 4]
    state = json.loads((out / "checkpoints/step-000004/state.json").read_text())
    assert state["version"] == 4 and state["extra"]["frontier"] == 8
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "step-000002",
        "step-000004",
    ]


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(TrainingError, match="no checkpoint"):
        TrainingRun(tiny_config(tmp_path / "empty"), resume=True, progress=False).run()


def test_a_fresh_run_refuses_a_directory_with_checkpoints(tmp_path):
    step = tmp_path / "run" / "checkpoints" / "step-000003"
    step.mkdir(parents=True)
    (step / "state.json").write_text("{}")
    with pytest.raises(TrainingError, match="--resume"):
        TrainingRun(tiny_config(tmp_path / "run"), progress=False).run()


def test_no_matching_task_is_an_error_before_any_work(tmp_path):
    cfg = tiny_config(tmp_path / "run", tasks={"suite": "toy", "names": ["no-such-task"]})
    with pytest.raises(TrainingError, match="no task of suite 'toy'"):
        TrainingRun(cfg, progress=False).run()
    assert not (tmp_path / "run" / "config.json").exists()


# -- ale train ----------------------------------------------------------------------------


def test_ale_train_shows_the_resolved_config(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("steps = 3\n[staleness]\neta = 0\n")
    result = CliRunner().invoke(
        app, ["train", str(path), "--set", "trainer.lr=2e-5", "--show-config"]
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["steps"] == 3 and shown["staleness"]["eta"] == 0
    assert shown["trainer"]["lr"] == 2e-5


def test_ale_train_rejects_a_bad_config_with_exit_2(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("[rollout]\ngroupsize = 4\n")
    result = CliRunner().invoke(app, ["train", str(path)])
    assert result.exit_code == 2
    assert "rollout.groupsize: unknown key" in result.output
    missing = CliRunner().invoke(app, ["train", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2 and "no training config" in missing.output


@pytest.mark.slow
def test_ale_train_runs_end_to_end(tmp_path):
    out = tmp_path / "cli-run"
    path = tmp_path / "t.toml"
    path.write_text(
        f'steps = 1\ntasks_per_step = 1\nout_dir = "{out}"\n'
        '[model]\nname_or_path = "tiny-random"\n'
        '[tasks]\nnames = ["count-lines"]\n'
        "[rollout]\ngroup_size = 2\nmax_turns = 1\nmax_new_tokens = 8\n"
        "[eval]\nenabled = false\n"
    )
    result = CliRunner().invoke(app, ["train", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "done: 1 steps" in result.output
    assert json.loads((out / "summary.json").read_text())["version"] == 1
    again = CliRunner().invoke(app, ["train", str(path), "--set", "steps=2", "--resume"])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "summary.json").read_text())["version"] == 2


@pytest.mark.slow
def test_rollouts_that_never_yield_samples_stop_the_run_with_the_reason(tmp_path):
    cfg = tiny_config(
        tmp_path / "run",
        tasks={"suite": str(DATA_TASKS), "split": None, "names": ["crashing-verifier"]},
        tasks_per_step=1,
        rollout={"group_size": 1, "max_turns": 1, "max_new_tokens": 8},
    )
    with pytest.raises(TrainingError, match="no trainable episode") as err:
        TrainingRun(cfg, progress=False).run()
    assert "crashing-verifier" in str(err.value)
    assert latest_checkpoint(tmp_path / "run") is None


@pytest.mark.slow
def test_sft_warm_start_then_resampled_groups_with_imitation(tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config(
        out,
        steps=1,
        tasks={"suite": "toy", "names": ["count-lines", "create-hello-file"]},
        trainer={"lr": 1e-3, "micro_batch_tokens": 16384, "imitation_coef": 0.5},
        sft={"enabled": True, "epochs": 2, "lr": 1e-3, "batch_size": 2},
        resample={"enabled": True, "fraction": 1.0},
    )
    run = TrainingRun(cfg, progress=False, trainer_cls=RecordingTrainer)
    summary = run.run()

    sft = summary["sft"]
    assert sft["trajectories"] == 2 and sft["steps"] == 2  # one batch of two, two epochs
    assert (out / "sft" / "oracle.jsonl").is_file()
    assert [r["step"] for r in read_metrics(out / "logs" / "sft")] == [1, 2]
    # RL starts from the warm-started weights: versions count every optimizer step.
    assert run.trainer.received[0][0] == 2 and summary["version"] == 3
    assert run.trainer.received[0][1] == {2}  # restarts train only on what the policy wrote
    trained = [g for g in run.groups_seen if g.started_version == 2]
    assert len(trained) >= 2
    for group in trained:
        assert group.imitation and all(s.imitation for s in group.imitation)
        assert group.samples and not any(s.imitation for s in group.samples)
    record = read_metrics(out / "logs")[0]
    assert record["imitation_loss"] > 0
