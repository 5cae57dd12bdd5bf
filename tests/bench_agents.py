"""Agents the bench tests load by import path (``tests.bench_agents:Name``)."""

from pathlib import Path

from openale.bench import AgentResult


class SnoopAgent:
    """Looks for the tests and the solution during the agent phase, then solves the task."""

    name = "snoop"
    model = "none"

    def run(self, task, sandbox, *, timeout, logs_dir: Path) -> AgentResult:
        seen = sandbox.commands.run(
            "ls -d /tests /solution /logs/verifier 2>/dev/null; "
            "find / -xdev \\( -name test_outputs.py -o -name solve.sh \\) 2>/dev/null; true"
        ).stdout
        logs_dir.mkdir(parents=True, exist_ok=True)
        (logs_dir / "seen.txt").write_text(seen)
        sandbox.files.write("/app/out.txt", "done\n")
        return AgentResult()


class ForgerAgent:
    """Does not solve the task but plants a perfect reward and fake tests."""

    name = "forger"
    model = None

    def run(self, task, sandbox, *, timeout, logs_dir: Path) -> AgentResult:
        sandbox.commands.run(
            "mkdir -p /logs/verifier /tests && echo 1 > /logs/verifier/reward.txt && "
            "printf '#!/bin/bash\\necho 1 > /logs/verifier/reward.txt\\n' > /tests/test.sh",
            user="root",
        )
        return AgentResult()


class CrashingAgent:
    name = "crasher"
    model = None

    def run(self, task, sandbox, *, timeout, logs_dir: Path) -> AgentResult:
        raise RuntimeError("the agent fell over")
