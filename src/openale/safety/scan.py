"""Scan recorded behaviour: sandbox audit logs, trajectories, the control plane's audit export.

Every line of a JSONL file is recognised by its shape: an audit event
(``kind``/``action``, written by ``openale.sandbox.audit``), a trajectory
(``format: openale.trajectory/1``), or a control-plane audit record
(``op``/``route``, from ``GET /v1/audit``). Findings say where they were seen:
the file and line, and for trajectories the chunk and tool call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from openale.agent.trajectory import FORMAT as TRAJECTORY_FORMAT
from openale.agent.trajectory import Trajectory
from openale.safety.detect import ScanContext, scan_command, scan_file_op, scan_output
from openale.safety.findings import Finding
from openale.safety.rules import FileOp, RuleSet, default_rules
from openale.sandbox.audit import AuditEvent

# Audit file actions (sandbox and control plane) and what they do to the path.
_FILE_OPS: dict[str, FileOp] = {
    "write": "write",
    "read": "read",
    "upload_dir": "write",
    "download_dir": "read",
    "file.write": "write",
    "file.read": "read",
    "archive.write": "write",
    "archive.read": "read",
}
# Agent tools: shell commands and file operations by argument.
_SHELL_TOOLS = {"shell", "bash", "run", "execute", "terminal"}
_FILE_TOOLS: dict[str, FileOp] = {"read_file": "read", "write_file": "write", "edit": "write"}


class ScanError(ValueError):
    """A file that is not an audit log, a trajectory file or an audit export."""


def _located(findings: list[Finding], source: str, line: int, **where: Any) -> list[Finding]:
    for f in findings:
        f.evidence.source = source
        f.evidence.line = line
        for key in ("chunk", "call"):
            if key in where:
                setattr(f.evidence, key, where[key])
        for key in ("sandbox", "trajectory", "ts"):
            if where.get(key) is not None:
                setattr(f, key, where[key])
    return findings


def _keystroke_lines(typed: str) -> list[str]:
    """Commands typed into an attached shell (the audit keeps its input)."""
    return [ln for ln in typed.replace("\r", "\n").splitlines() if ln.strip()]


def scan_audit_event(event: AuditEvent, rules: RuleSet, context: ScanContext) -> list[Finding]:
    """Findings in one sandbox audit event."""
    d = event.detail
    if event.kind == "command" and isinstance(d.get("cmd"), str):
        return scan_command(d["cmd"], context, rules)
    if event.kind == "session" and isinstance(d.get("input"), str):
        return [f for ln in _keystroke_lines(d["input"]) for f in scan_command(ln, context, rules)]
    if event.kind == "file" and event.action in _FILE_OPS and isinstance(d.get("path"), str):
        return scan_file_op(_FILE_OPS[event.action], d["path"], context, rules)
    return []


def scan_trajectory(
    traj: Trajectory,
    rules: RuleSet | None = None,
    context: ScanContext | None = None,
    source: str = "",
    line: int = 0,
) -> list[Finding]:
    """Findings in a trajectory's tool calls (commands, file paths) and tool outputs."""
    rules = rules or default_rules()
    ctx = context or ScanContext(workdir=str(traj.metadata.get("workdir") or "/workspace"))
    out: list[Finding] = []
    for chunk in traj.chunks:
        for k, call in enumerate(chunk.tool_calls):
            args = call.arguments
            found: list[Finding] = []
            if call.name in _SHELL_TOOLS and isinstance(args.get("command"), str):
                found = scan_command(args["command"], ctx, rules)
            elif call.name in _FILE_TOOLS and isinstance(args.get("path"), str):
                found = scan_file_op(_FILE_TOOLS[call.name], args["path"], ctx, rules)
            out += _located(
                found,
                source,
                line,
                chunk=chunk.index,
                call=k,
                trajectory=traj.id,
                ts=chunk.started_at,
            )
        calls = {c.id: k for k, c in enumerate(chunk.tool_calls)}
        for result in chunk.tool_results:
            out += _located(
                scan_output(result.output, rules),
                source,
                line,
                chunk=chunk.index,
                call=calls.get(result.call_id),
                trajectory=traj.id,
                ts=chunk.started_at,
            )
    return out


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open() as f:
        for n, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise ScanError(f"{path}:{n}: not JSON: {e.msg}") from e
            if not isinstance(data, dict):
                raise ScanError(f"{path}:{n}: a JSON object was expected")
            yield n, data


def scan_file(
    path: str | Path, rules: RuleSet | None = None, context: ScanContext | None = None
) -> list[Finding]:
    """Findings in one JSONL file of audit events, trajectories or audit-export records."""
    rules = rules or default_rules()
    path = Path(path)
    source = str(path)
    out: list[Finding] = []
    # A sandbox's workspace is in its spec, recorded when it was created.
    workdirs: dict[str, str] = {}
    for n, data in _records(path):
        if data.get("format") == TRAJECTORY_FORMAT:
            traj = Trajectory.model_validate(data)
            out += scan_trajectory(traj, rules, context, source, n)
        elif "kind" in data and "action" in data and "sandbox" in data:
            event = AuditEvent.model_validate(data)
            spec = event.detail.get("spec")
            if event.kind == "lifecycle" and isinstance(spec, dict) and spec.get("workdir"):
                workdirs[event.sandbox] = spec["workdir"]
            ctx = context or ScanContext(workdir=workdirs.get(event.sandbox, "/workspace"))
            out += _located(
                scan_audit_event(event, rules, ctx), source, n, sandbox=event.sandbox, ts=event.ts
            )
        elif "op" in data and "route" in data:
            out += _located(
                _scan_server_record(data, rules, context or ScanContext()),
                source,
                n,
                sandbox=data.get("sandbox"),
                ts=_ts(data.get("ts")),
            )
        else:
            raise ScanError(
                f"{path}:{n}: neither an audit event, a trajectory nor an audit-export record"
            )
    return out


def _scan_server_record(data: dict[str, Any], rules: RuleSet, ctx: ScanContext) -> list[Finding]:
    d = data.get("detail") or {}
    op = data["op"]
    if op in ("command", "session.run") and isinstance(d.get("cmd"), str):
        return scan_command(d["cmd"], ctx, rules)
    if op in _FILE_OPS and isinstance(d.get("path"), str):
        return scan_file_op(_FILE_OPS[op], d["path"], ctx, rules)
    return []


def _ts(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _recognised(path: Path) -> bool:
    """Whether a file's first record is an audit event, a trajectory or an export record."""
    for _, data in _records(path):
        return (
            data.get("format") == TRAJECTORY_FORMAT
            or {"kind", "action", "sandbox"} <= data.keys()
            or {"op", "route"} <= data.keys()
        )
    return True


def scan_path(
    path: str | Path,
    rules: RuleSet | None = None,
    context: ScanContext | None = None,
    skipped: list[Path] | None = None,
) -> list[Finding]:
    """Findings in a JSONL file, or in every ``*.jsonl`` file under a directory.

    In a directory, files of other JSONL records (model replays, metrics) are
    left out and appended to ``skipped``; a file named directly must be one.
    """
    path = Path(path)
    if path.is_dir():
        files = []
        for file in sorted(path.rglob("*.jsonl")):
            try:
                ok = _recognised(file)
            except ScanError:
                ok = False
            if ok:
                files.append(file)
            elif skipped is not None:
                skipped.append(file)
    elif path.exists():
        files = [path]
    else:
        raise ScanError(f"{path}: no such file or directory")
    return [f for file in files for f in scan_file(file, rules, context)]
