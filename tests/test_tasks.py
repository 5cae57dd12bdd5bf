"""Loading tasks in both layouts, building their environments, and verifying."""

from pathlib import Path

import pytest

from openale.bench import EpisodeRunner, NopAgent, OracleAgent, run_trial
from openale.bench.validate import validate_task
from openale.tasks import EnvironmentBuilder, TaskLoadError, load_task, load_tasks

DATA = Path(__file__).parent / "data" / "tasks"


@pytest.fixture(scope="module")
def builder():
    return EnvironmentBuilder()


@pytest.fixture(scope="module")
def runner(builder):
    return EpisodeRunner(builder)


def trial(task_name, agent, runner, tmp_path, attempt=0):
    return run_trial(load_task(DATA / task_name), agent, attempt, tmp_path, runner)


def test_harbor_layout_loads():
    task = load_task(DATA / "good")
    assert task.layout == "harbor" and task.name == "good"
    assert task.instruction.startswith("Write the word done")
    assert task.config.verifier.timeout_sec == 60 and task.config.agent.timeout_sec == 60
    assert task.build_context == DATA / "good" / "environment"
    assert task.solution == DATA / "good" / "solution" / "solve.sh"


def test_legacy_layout_loads_through_the_adapter():
    task = load_task(DATA / "legacy-tb")
    assert task.layout == "terminal-bench"
    assert "hello from the old layout" in task.instruction
    assert (task.difficulty, task.category) == ("easy", "file-operations")
    assert task.config.agent.timeout_sec == 120 and task.config.verifier.timeout_sec == 60
    assert task.test_script == "run-tests.sh" and task.solution.name == "solution.sh"


def test_malformed_task_names_file_and_field(tmp_path):
    with pytest.raises(TaskLoadError) as e:
        load_task(DATA / "malformed" / "bad-timeout")
    assert "task.toml" in str(e.value) and "verifier.timeout_sec" in str(e.value)

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "task.toml").write_text("[metadata]\n")
    with pytest.raises(TaskLoadError, match="instruction.md"):
        load_task(tmp_path / "t")
    (tmp_path / "t" / "task.toml").write_text("[metadata\n")
    with pytest.raises(TaskLoadError, match="not valid TOML"):
        load_task(tmp_path / "t")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "task.yaml").write_text("difficulty: easy\n")
    with pytest.raises(TaskLoadError, match=r"task.yaml \[instruction\]"):
        load_task(tmp_path / "y")
    with pytest.raises(TaskLoadError, match="neither task.toml"):
        load_task(tmp_path)


def test_filters():
    names = [t.name for t in load_tasks(DATA, include=["no-*"])]
    assert names == ["no-reward", "no-tests"]
    assert [t.name for t in load_tasks(DATA, category="file-operations")] == ["legacy-tb"]
    assert len(load_tasks(DATA, limit=2)) == 2


def test_builds_are_cached_by_digest(builder, tmp_path):
    src = DATA / "good"
    copy = tmp_path / "cached-task"
    import shutil

    shutil.copytree(src, copy)
    task = load_task(copy)
    tag, _, built = builder.build(task)
    tag2, _, built2 = builder.build(task)
    assert tag == tag2 and not built2
    (copy / "environment" / "data.txt").write_text("changed")
    tag3, _, built3 = builder.build(load_task(copy))
    assert tag3 != tag and built3
    for t in {tag, tag3}:
        builder.client.images.remove(t, force=True)


def test_a_failed_build_reports_its_log(runner, tmp_path):
    import shutil

    shutil.copytree(DATA / "good", tmp_path / "broken-build")
    (tmp_path / "broken-build" / "environment" / "Dockerfile").write_text(
        "FROM ubuntu:24.04\nRUN echo about-to-fail && exit 7\n"
    )
    row = run_trial(load_task(tmp_path / "broken-build"), OracleAgent(), 0, tmp_path, runner)
    assert row.error_stage == "build" and not row.passed
    assert "about-to-fail" in row.error


def test_oracle_passes_and_nop_fails(runner, tmp_path):
    good = trial("good", OracleAgent(), runner, tmp_path)
    assert good.passed and good.reward == 1.0 and good.error is None
    assert good.build_s >= 0 and good.agent_s > 0 and good.verify_s > 0
    assert Path(good.verifier_log).read_text().count("passed") >= 1
    nop = trial("good", NopAgent(), runner, tmp_path)
    assert not nop.passed and nop.reward == 0.0 and nop.error is None


def test_legacy_task_is_scored_from_pytest_output(runner, tmp_path):
    assert trial("legacy-tb", OracleAgent(), runner, tmp_path).passed
    nop = trial("legacy-tb", NopAgent(), runner, tmp_path)
    assert nop.reward == 0.0 and nop.error is None


def test_json_reward(runner, tmp_path):
    row = trial("json-reward", OracleAgent(), runner, tmp_path)
    assert row.reward == 0.75 and not row.passed and row.error is None


@pytest.mark.parametrize(
    "name,message",
    [
        ("no-reward", "wrote no reward"),
        ("no-tests", "executed no tests"),
        ("crashing-verifier", "wrote no reward"),
        ("slow-verifier", "timed out"),
    ],
)
def test_broken_verifiers_are_errors_not_passes(runner, tmp_path, name, message):
    row = trial(name, OracleAgent(), runner, tmp_path)
    assert not row.passed and row.reward is None
    assert row.error_stage == "verify" and message in row.error


def test_tests_are_invisible_during_the_agent_phase(runner, tmp_path):
    from tests.bench_agents import SnoopAgent

    row = trial("good", SnoopAgent(), runner, tmp_path)
    assert row.passed
    assert (tmp_path / "trials" / "good__0" / "agent" / "seen.txt").read_text().strip() == ""


def test_an_agent_cannot_forge_the_reward(runner, tmp_path):
    from tests.bench_agents import ForgerAgent

    row = trial("good", ForgerAgent(), runner, tmp_path)
    assert row.reward == 0.0 and not row.passed


def test_an_agent_crash_is_a_harness_error_not_a_crash(runner, tmp_path):
    from tests.bench_agents import CrashingAgent

    row = trial("good", CrashingAgent(), runner, tmp_path)
    assert row.error_stage == "agent" and "fell over" in row.error and not row.passed


def test_validate_accepts_a_good_task_and_flags_planted_ones(runner, tmp_path):
    assert validate_task(load_task(DATA / "good"), runner, tmp_path / "g").ok
    free = validate_task(load_task(DATA / "passes-without-solution"), runner, tmp_path / "p")
    assert any("without any solution" in p for p in free.problems)
    broken = validate_task(load_task(DATA / "no-reward"), runner, tmp_path / "n")
    assert any("oracle errored" in p for p in broken.problems)


@pytest.mark.slow
def test_validate_flags_a_flaky_task(runner, tmp_path):
    # The planted verifier passes with probability 1/2: twelve identical
    # oracle runs all agree with probability 2 * 2**-12.
    report = validate_task(load_task(DATA / "flaky"), runner, tmp_path, oracle_runs=12)
    assert any(p.startswith("flaky") for p in report.problems)


def test_a_broken_task_that_was_not_asked_for_does_not_stop_loading(tmp_path):
    import shutil

    shutil.copytree(DATA / "good", tmp_path / "fine")
    (tmp_path / "half-written").mkdir()
    (tmp_path / "half-written" / "task.toml").write_text("[metadata]\n")
    assert [t.name for t in load_tasks(tmp_path, include=["fine"])] == ["fine"]
    with pytest.raises(TaskLoadError, match="half-written"):
        load_tasks(tmp_path)


def test_sandboxes_are_offline_unless_the_task_allows_internet():
    from openale.bench.episode import task_spec

    task = load_task(DATA / "good")
    assert task_spec(task, "img", "/app", 2).network == "none"
    online = task.model_copy(deep=True)
    online.config.environment.allow_internet = True
    assert task_spec(online, "img", "/app", 2).network == "bridge"
    assert task_spec(task, "img", "/app", 2).memory == f"{task.config.environment.memory_mb}m"
