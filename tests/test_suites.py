"""The built-in suites: enough tasks, well-formed, oracle 1 / nop 0 with zero harness errors."""

import pytest
from typer.testing import CliRunner

from openale.bench import read_results
from openale.cli.main import app
from openale.tasks import builtin_suites, load_tasks

MINIMUM = {"core": 30, "toy": 20}


def test_suites_are_there_and_well_formed():
    assert {"core", "toy"} <= set(builtin_suites())
    for suite, minimum in MINIMUM.items():
        tasks = load_tasks(suite)
        assert len(tasks) >= minimum, suite
        for t in tasks:
            assert t.solution is not None, t.name
            assert t.difficulty in {"easy", "medium", "hard"}, t.name
            assert t.category != "uncategorized", t.name
    core = load_tasks("core")
    assert len({t.category for t in core}) >= 8
    assert {t.difficulty for t in core} == {"easy", "medium", "hard"}


def test_toy_suite_has_train_and_heldout_splits():
    train, heldout = load_tasks("toy", split="train"), load_tasks("toy", split="heldout")
    assert train and heldout
    assert len(train) + len(heldout) == len(load_tasks("toy"))
    assert len(train) > len(heldout)


@pytest.mark.slow
@pytest.mark.parametrize("suite", ["core", "toy"])
def test_oracle_scores_one_and_nop_zero_on_every_task(suite, tmp_path):
    tasks = {t.name for t in load_tasks(suite)}
    for agent, expected in (("oracle", 1.0), ("nop", 0.0)):
        out = tmp_path / agent
        result = CliRunner().invoke(
            app, ["bench", "run", "-t", suite, "-a", agent, "-o", str(out), "-n", "4"]
        )
        assert result.exit_code == 0, result.output
        rows = read_results(out)
        assert {r.task for r in rows} == tasks
        assert [(r.task, r.error) for r in rows if r.error] == []
        assert [r.task for r in rows if r.reward != expected] == []
        assert (out / "report.html").exists()
