"""The openale agent end to end: built-in tasks through the bench, and `ale run`."""

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openale.bench import read_results
from openale.cli.main import app
from openale.tasks import load_tasks

REPLAY = Path(__file__).parent / "data" / "replay"
runner = CliRunner()


@pytest.mark.slow
def test_the_agent_solves_core_tasks_through_the_bench(tmp_path):
    names = sorted(p.stem for p in REPLAY.glob("*.jsonl"))
    assert len(names) >= 5
    args = [
        "bench",
        "run",
        "-t",
        "core",
        "-a",
        "openale",
        "--model",
        f"replay:{REPLAY}",
        "-o",
        str(tmp_path),
        "-n",
        "3",
    ]
    for name in names:
        args += ["-f", name]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = read_results(tmp_path)
    assert {r.task for r in rows} == set(names)
    assert [(r.task, r.error) for r in rows if r.error] == []
    assert all(r.reward == 1.0 and r.agent == "openale" for r in rows)
    from openale.agent.trajectory import load

    traj = next(load(rows[0].trajectory))
    assert traj.outcome == "completed" and traj.task_id == rows[0].task
    assert "SOLVED" in traj.chunks[2].tool_results[0].output


def test_headless_run_json_output_and_exit_codes(tmp_path):
    replay = tmp_path / "r.jsonl"
    replay.write_text(
        json.dumps({"tool_calls": [{"name": "shell", "arguments": {"command": "echo $((6*7))"}}]})
        + "\n"
        + json.dumps({"text": "The answer is 42."})
        + "\n"
    )
    result = runner.invoke(
        app,
        [
            "run",
            "-p",
            "compute",
            "--model",
            f"replay:{replay}",
            "--output-format",
            "json",
            "--image",
            "openale/debian:bookworm",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["outcome"] == "completed" and out["answer"] == "The answer is 42."
    assert out["turns"] == 2

    denied = tmp_path / "d.jsonl"
    denied.write_text(
        json.dumps({"tool_calls": [{"name": "shell", "arguments": {"command": "rm -rf /x"}}]})
        + "\n"
        + json.dumps({"text": "gave up"})
        + "\n"
    )
    result = runner.invoke(
        app,
        [
            "run",
            "-p",
            "delete",
            "--model",
            f"replay:{denied}",
            "--approval-mode",
            "plan",
            "--output-format",
            "json",
            "--image",
            "openale/debian:bookworm",
        ],
    )
    assert result.exit_code == 3  # never a silent success
    assert json.loads(result.stdout.strip().splitlines()[-1])["denied"][0]["tool"] == "shell"


def test_run_task_prints_the_reward(tmp_path):
    result = runner.invoke(
        app,
        [
            "run",
            "--task",
            str(load_tasks("core", include=["log-error-summary"])[0].path),
            "--model",
            f"replay:{REPLAY / 'log-error-summary.jsonl'}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "reward 1.0" in result.output


def test_ale_run_help_documents_the_options():
    out = subprocess.run(
        [".venv/bin/ale", "run", "--help"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    ).stdout
    for flag in (
        "--prompt",
        "--output-format",
        "--max-turns",
        "--timeout",
        "--resume",
        "--task",
        "--model",
        "--base-url",
        "--workspace",
        "--approval-mode",
        "--record",
    ):
        assert flag in out
