"""The bench harness: parallel trials, resume, agents by import path, reports."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openale.bench import BenchRun, load_agent, pass_at_k, read_results, summarize
from openale.bench.trial import TrialResult
from openale.cli.main import app
from openale.tasks import load_tasks

DATA = Path(__file__).parent / "data" / "tasks"
runner = CliRunner()


def test_pass_at_k_matches_hand_computed_values():
    assert pass_at_k(5, 0, 1) == 0.0
    assert pass_at_k(5, 5, 3) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)  # 1 - C(3,2)/C(4,2)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)  # 1 - C(7,5)/C(10,5)


def test_summary_by_category_and_difficulty():
    def row(task, attempt, passed, cat="a", diff="easy", error=None):
        return TrialResult(
            task=task,
            attempt=attempt,
            agent="x",
            passed=passed,
            reward=1.0 if passed else 0.0,
            category=cat,
            difficulty=diff,
            error=error,
        )

    rows = [
        row("t1", 0, True),
        row("t1", 1, False),
        row("t2", 0, False, "b", "hard"),
        row("t2", 1, False, "b", "hard", error="boom"),
    ]
    s = summarize(rows)
    assert s.overall.tasks == 2 and s.overall.trials == 4 and s.overall.errors == 1
    assert s.overall.pass_at_1 == pytest.approx(0.25)  # (1/2 + 0) / 2
    assert s.overall.pass_at_k == pytest.approx(0.5) and s.overall.k == 2
    assert s.by_category["a"].pass_at_1 == pytest.approx(0.5)
    assert s.by_difficulty["hard"].pass_at_1 == 0.0 and s.by_difficulty["hard"].errors == 1
    assert s.errors == [{"task": "t2", "attempt": 1, "stage": None, "error": "boom"}]


def test_unknown_agents_are_refused_clearly():
    with pytest.raises(ValueError, match="unknown agent"):
        load_agent("gpt-9000")
    with pytest.raises(ValueError, match="cannot import"):
        load_agent("tests.nowhere:Agent")
    with pytest.raises(ValueError, match="not an agent"):
        load_agent("pathlib:PurePath")


def test_run_is_parallel_resumable_and_reported(tmp_path):
    tasks = load_tasks(DATA, include=["good", "legacy-tb", "json-reward"])
    out = tmp_path / "run"
    first = BenchRun(
        tasks[:1], lambda: load_agent("oracle"), out, attempts=2, concurrency=2, progress=False
    ).run()
    assert len(first) == 2
    bench = BenchRun(
        tasks, lambda: load_agent("oracle"), out, attempts=2, concurrency=3, progress=False
    )
    assert len(bench.pending()) == 4  # the first task's two attempts are done
    rows = bench.run()
    assert len(rows) == 6 and len({(r.task, r.attempt) for r in rows}) == 6
    assert {r.task for r in rows if r.passed} == {"good", "legacy-tb"}
    assert BenchRun(tasks, lambda: load_agent("oracle"), out, attempts=2).pending() == []
    # Another agent in the same directory is a different set of trials.
    assert len(BenchRun(tasks, lambda: load_agent("nop"), out, attempts=1).pending()) == 3

    result = runner.invoke(app, ["bench", "report", str(out)])
    assert result.exit_code == 0, result.output
    assert "pass@1" in result.output
    assert (out / "report.html").read_text().count("<table>") >= 3
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads(runner.invoke(app, ["bench", "report", str(out), "--json"]).output)
    assert summary["overall"]["pass_at_1"] == pytest.approx(2 / 3)


def test_cli_run_with_an_agent_from_an_import_path(tmp_path):
    out = tmp_path / "cli-run"
    args = [
        "bench",
        "run",
        "-t",
        str(DATA),
        "-a",
        "tests.bench_agents:SnoopAgent",
        "-o",
        str(out),
        "-n",
        "2",
        "-f",
        "good",
        "-f",
        "legacy-tb",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    # Not a terminal: one plain line per finished trial, as it finishes.
    trial_lines = [line for line in result.output.splitlines() if line.startswith("[")]
    assert sorted(line[:5] for line in trial_lines) == ["[1/2]", "[2/2]"]
    assert any("good#0 passed reward 1.0" in line for line in trial_lines)
    assert any("legacy-tb#0 failed" in line for line in trial_lines)
    rows = {r.task: r for r in read_results(out)}
    assert rows["good"].passed and rows["good"].agent == "snoop" and rows["good"].model == "none"
    assert not rows["legacy-tb"].passed
    again = runner.invoke(app, args)
    assert "2 finished trial(s) skipped" in again.output
    assert len(read_results(out)) == 2


def test_cli_run_exits_1_on_harness_errors_and_2_when_no_task_matches(tmp_path):
    out = tmp_path / "errors"
    args = ["bench", "run", "-t", str(DATA), "-a", "oracle", "-o", str(out), "-f", "no-reward"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "1 of 1 trial(s) ended in a harness error (first: no-reward, verify)" in result.output
    assert "ERROR in verify" in result.output  # the trial's own line says so too
    assert [r.error_stage for r in read_results(out)] == ["verify"]

    nothing = ["bench", "run", "-t", str(DATA), "-a", "oracle", "-o", str(out), "-f", "nomatch*"]
    result = runner.invoke(app, nothing)
    assert result.exit_code == 2 and "no task" in result.output


def test_cli_errors_are_one_line(tmp_path):
    result = runner.invoke(
        app,
        ["bench", "run", "-t", str(tmp_path / "nope"), "-a", "oracle", "-o", str(tmp_path / "o")],
    )
    assert result.exit_code == 1 and "no such directory" in result.output
    result = runner.invoke(
        app, ["bench", "run", "-t", str(DATA), "-a", "nobody", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "unknown agent" in result.output
    result = runner.invoke(app, ["bench", "report", str(tmp_path)])
    assert result.exit_code == 1 and "no trial results" in result.output


def test_tasks_cli_ls_and_validate(tmp_path):
    result = runner.invoke(app, ["tasks", "ls", str(DATA), "--json"])
    names = [json.loads(line)["name"] for line in result.output.splitlines()]
    assert "legacy-tb" in names and "good" in names
    result = runner.invoke(
        app, ["tasks", "validate", str(DATA), "-f", "good", "-f", "passes-without-solution"]
    )
    assert result.exit_code == 1
    assert "ok good" in result.output and "BROKEN passes-without-solution" in result.output
    assert "without any solution" in result.output
