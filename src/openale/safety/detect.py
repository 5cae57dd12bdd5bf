"""Match rules against one command, one file operation or one tool output.

``scan_command`` is the entry point live enforcement calls before a command
runs: it parses the line once and only tries the command rules indexed under
the programs it finds, so its cost is a few tens of microseconds.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from openale.safety.findings import Evidence, Finding
from openale.safety.paths import Access, accesses, resolve
from openale.safety.rules import CompiledRule, FileOp, RuleSet, default_rules
from openale.safety.shell import Simple, parse

_REMOTE = re.compile(r"^[\w.-]+@[\w.-]+:|^[\w-]+(\.[\w-]+)+:")
_OUTPUT_EXCERPT = 160


class ScanContext(BaseModel):
    """Where a command runs: the task's workspace, and the directory it runs in."""

    workdir: str = "/workspace"
    cwd: str | None = None


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/") or root == ""


def outside_path(cmd: Simple, ctx: ScanContext, rules: RuleSet) -> str | None:
    """The first argument of ``cmd`` that resolves outside the workspace and scratch dirs."""
    roots = [ctx.workdir, *rules.scratch]
    for a in cmd.args:
        if not a or a.startswith("-") or "://" in a or _REMOTE.match(a) or a in ("{}", ";", "+"):
            continue
        path = resolve(a, cmd.cwd)
        if not any(_under(path, resolve(r, "/")) for r in roots):
            return path
    return None


def _command_match(c: CompiledRule, cmd: Simple, ctx: ScanContext, rules: RuleSet) -> str | None:
    m = c.rule.match
    if m.piped_from and cmd.piped_from not in m.piped_from:
        return None
    if m.piped_to and cmd.piped_to not in m.piped_to:
        return None
    if c.args or c.not_args:
        text = cmd.arg_text
        if not all(r.search(text) for r in c.args) or any(r.search(text) for r in c.not_args):
            return None
    if m.outside_workspace:
        path = outside_path(cmd, ctx, rules)
        if path is None:
            return None
        return f"{cmd.text}  [outside the workspace: {path}]"
    return cmd.text


def _finding(c: CompiledRule, kind, text: str, matched: str) -> Finding:
    r = c.rule
    return Finding(
        rule=r.id,
        category=r.category,
        severity=r.severity,
        technique=r.technique,
        description=r.description,
        evidence=Evidence(kind=kind, text=text, matched=matched),
    )


def _file_findings(
    rules: RuleSet, access: Access, text: str, prog: str | None, seen: set[str]
) -> list[Finding]:
    out = []
    for c in rules.file:
        if c.rule.id in seen or access.op not in c.ops:
            continue
        if prog and prog in c.rule.match.not_programs:
            continue
        if any(r.search(access.path) for r in c.paths):
            seen.add(c.rule.id)
            out.append(
                _finding(
                    c, "file" if prog is None else "command", text, f"{access.op} {access.path}"
                )
            )
    return out


def scan_command(
    command: str, context: ScanContext | None = None, rules: RuleSet | None = None
) -> list[Finding]:
    """Every rule a shell command line matches, one finding per rule."""
    rules = rules or default_rules()
    ctx = context or ScanContext()
    parsed = parse(command, cwd=ctx.cwd or ctx.workdir)
    seen: set[str] = set()
    out: list[Finding] = []
    for cmd in parsed.commands:
        if cmd.prog:
            for c in rules.command_rules(cmd.prog):
                if c.rule.id in seen:
                    continue
                matched = _command_match(c, cmd, ctx, rules)
                if matched is not None:
                    seen.add(c.rule.id)
                    out.append(_finding(c, "command", command, matched))
        for access in accesses(cmd):
            out += _file_findings(rules, access, command, cmd.prog, seen)
    for c in rules.text:
        if c.rule.id in seen:
            continue
        for text in parsed.texts:
            m = c.text.search(text)
            if m:
                seen.add(c.rule.id)
                out.append(_finding(c, "command", command, m.group(0)))
                break
    return out


def scan_file_op(
    op: FileOp, path: str, context: ScanContext | None = None, rules: RuleSet | None = None
) -> list[Finding]:
    """Rules a file operation (a sandbox file API call, an agent's file tool) matches."""
    rules = rules or default_rules()
    ctx = context or ScanContext()
    access = Access(op, resolve(path, ctx.cwd or ctx.workdir))
    return _file_findings(rules, access, path, None, set())


def scan_output(text: str, rules: RuleSet | None = None) -> list[Finding]:
    """Rules a tool's output matches (secrets printed, password hashes)."""
    rules = rules or default_rules()
    out = []
    for c in rules.output:
        m = c.output.search(text)
        if m:
            start = max(0, m.start() - 40)
            excerpt = text[start : start + _OUTPUT_EXCERPT]
            out.append(_finding(c, "output", excerpt, m.group(0)[:80]))
    return out
