"""Running a task's tests after the agent has finished, and reading the reward.

Tests reach the sandbox only now (the agent never saw ``/tests``). A verifier
that writes no reward, crashes, times out, or whose pytest run executed no
test is an *error*: never a pass, and never silently a fail either.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from pydantic import BaseModel

from openale.sandbox import AnySandbox, SandboxError
from openale.tasks.model import Task

REWARD_DIR = "/logs/verifier"
TESTS_DIR = "/tests"
_NO_TESTS = re.compile(r"\bno tests ran\b|\bcollected 0 items\b")
_PYTEST_SUMMARY = re.compile(
    r"^=+ (.*\b(?:passed|failed|error|errors|skipped)\b.*) in [\d.]+s", re.M
)


class VerifierResult(BaseModel):
    reward: float | None = None
    error: str | None = None
    exit_code: int | None = None
    duration_s: float = 0.0
    log: str = ""
    details: dict = {}

    @property
    def passed(self) -> bool:
        return self.error is None and self.reward is not None and self.reward >= 1.0


def pytest_counts(log: str) -> dict[str, int]:
    """``{"passed": 3, "failed": 1, ...}`` from pytest's last summary line, if any."""
    found = _PYTEST_SUMMARY.findall(log)
    if not found:
        return {}
    counts = {}
    for part in found[-1].split(","):
        m = re.match(r"\s*(\d+) (\w+)", part)
        if m:
            counts[m.group(2)] = int(m.group(1))
    return counts


def _parse_reward(text: str, source: str) -> tuple[float, dict]:
    if source.endswith(".json"):
        data = json.loads(text)
        if isinstance(data, (int, float)):
            return float(data), {}
        if isinstance(data, dict):
            if "reward" in data:
                return float(data["reward"]), data
            numbers = [v for v in data.values() if isinstance(v, (int, float))]
            if len(numbers) == 1:
                return float(numbers[0]), data
        raise ValueError("reward.json needs a number or a 'reward' field")
    return float(text.strip()), {}


def verify(task: Task, sandbox: AnySandbox, *, log_path: Path | None = None) -> VerifierResult:
    """Copy the tests in, run them with the task's timeout, and read the reward."""
    started = time.monotonic()
    result = _verify(task, sandbox)
    result.duration_s = time.monotonic() - started
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(result.log)
    return result


def _verify(task: Task, sandbox: AnySandbox) -> VerifierResult:
    timeout = task.config.verifier.timeout_sec
    # Whatever the agent left at these paths (a forged reward, fake tests) goes.
    prep = sandbox.commands.run(
        f"rm -rf {TESTS_DIR} {REWARD_DIR} && mkdir -p {TESTS_DIR} {REWARD_DIR} "
        f"&& chmod 777 {REWARD_DIR}",
        user="root",
        timeout=60,
    )
    if prep.exit_code != 0:
        return VerifierResult(error=f"cannot prepare the verifier: {prep.stderr.strip()}")
    sandbox.files.upload_dir(task.tests_dir, TESTS_DIR)
    for name, path in task.extra_test_files.items():
        sandbox.files.write(f"{TESTS_DIR}/{name}", path.read_bytes(), mode=0o755)
    run = sandbox.commands.run(
        f"bash {TESTS_DIR}/{task.test_script}",
        timeout=timeout,
        env={"TEST_DIR": TESTS_DIR, **task.config.verifier.env},
        user="root",
    )
    log = run.stdout + ("\n--- stderr ---\n" + run.stderr if run.stderr else "")
    res = VerifierResult(exit_code=run.exit_code, log=log)
    if run.timed_out:
        res.error = f"the verifier timed out after {timeout:g}s"
        return res
    if _NO_TESTS.search(log):
        res.error = "the verifier's pytest run executed no tests"
        return res
    for name in ("reward.txt", "reward.json"):
        path = f"{REWARD_DIR}/{name}"
        try:
            text = sandbox.files.read(path).decode()
        except SandboxError:
            continue
        try:
            res.reward, res.details = _parse_reward(text, name)
        except (ValueError, json.JSONDecodeError) as e:
            res.error = f"{path} is not a reward: {e} ({text[:80]!r})"
        return res
    if task.layout == "terminal-bench":
        # The old layout has no reward file: pytest's summary decides.
        counts = pytest_counts(log)
        ran = sum(counts.get(k, 0) for k in ("passed", "failed", "error", "errors"))
        if not ran:
            res.error = "the verifier ran no tests (no pytest summary in its output)"
        else:
            res.reward = 1.0 if counts.get("passed", 0) == ran else 0.0
            res.details = counts
        return res
    res.error = (
        f"the verifier wrote no reward to {REWARD_DIR}/reward.txt or reward.json "
        f"(exit code {run.exit_code})"
    )
    return res
