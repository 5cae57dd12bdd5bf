"""``ale safety``: scan audit logs and trajectories for risky behaviour; list and test rules.

Exit codes: 1 when a scan (or ``rules --test``) finds something at or above
``--fail-on``, 0 otherwise, 2 on bad usage (a missing file, a bad rule file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from openale.cli.common import UsageError, console, err_console, user_errors
from openale.safety import SEVERITIES, Finding, RuleSet, ScanContext, load_rules, scan_command
from openale.safety.findings import SEVERITY_RANK
from openale.safety.scan import scan_path
from openale.sandbox import AuditLog, SandboxSettings

safety_app = typer.Typer(
    help="Find risky agent behaviour in audit logs and trajectories; list and test the rules.",
    no_args_is_help=True,
)

RulesOption = Annotated[
    list[Path] | None,
    typer.Option("--rules", help="A YAML rule file merged over the defaults; repeatable."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON lines.")]
FailOn = Annotated[
    str,
    typer.Option("--fail-on", help=f"Exit 1 on a finding this severe or worse: {SEVERITIES}."),
]
_STYLE = {"low": "dim", "medium": "yellow", "high": "red", "critical": "bold red"}


def _rules(files: list[Path] | None) -> RuleSet:
    return load_rules(*(files or []))


def _check_severity(value: str) -> None:
    if value not in SEVERITY_RANK:
        raise UsageError(f"--fail-on {value!r}: expected one of {', '.join(SEVERITIES)}")


def _where(f: Finding) -> str:
    e = f.evidence
    parts = [f"{e.source}:{e.line}" if e.source else ""]
    if f.trajectory:
        parts.append(f"{f.trajectory} chunk {e.chunk} call {e.call}")
    elif f.sandbox:
        parts.append(f.sandbox)
    return " ".join(p for p in parts if p)


def _print(findings: list[Finding], as_json: bool, with_where: bool = True) -> None:
    if as_json:
        for f in findings:
            typer.echo(f.model_dump_json(exclude_none=True))
        return
    if not findings:
        console.print("no findings")
        return
    table = Table("severity", "rule", "category", "ATT&CK", "evidence", box=box.SIMPLE_HEAD)
    if with_where:
        table.add_column("where")
    for f in sorted(findings, key=lambda f: -SEVERITY_RANK[f.severity]):
        row = [
            f"[{_STYLE[f.severity]}]{f.severity}[/]",
            f.rule,
            f.category,
            f.technique or "",
            escape(f.evidence.matched),
        ]
        table.add_row(*row, *([escape(_where(f))] if with_where else []))
    console.print(table)


def _exit(findings: list[Finding], fail_on: str) -> None:
    if any(f.at_least(fail_on) for f in findings):  # type: ignore[arg-type]
        raise typer.Exit(1)


@safety_app.command()
def scan(
    path: Annotated[
        Path | None, typer.Argument(help="An audit or trajectory JSONL file, or a folder.")
    ] = None,
    sandbox: Annotated[
        str | None, typer.Option("--sandbox", help="Scan this sandbox's local audit log.")
    ] = None,
    workdir: Annotated[
        str | None,
        typer.Option(help="The task's workspace (default: the sandbox's, else /workspace)."),
    ] = None,
    rules: RulesOption = None,
    fail_on: FailOn = "high",
    as_json: JsonOption = False,
) -> None:
    """Scan audit logs (commands, shell input, file operations) and trajectories."""
    with user_errors():
        _check_severity(fail_on)
        if (path is None) == (sandbox is None):
            raise UsageError("give either a PATH or --sandbox ID")
        if sandbox is not None:
            log = AuditLog(SandboxSettings().audit_dir)
            path = log.path(sandbox)
            if not path.exists():
                raise UsageError(f"no audit log for {sandbox!r} in {log.directory}")
        context = ScanContext(workdir=workdir) if workdir else None
        skipped: list[Path] = []
        findings = scan_path(path, _rules(rules), context, skipped)
    for file in skipped:
        err_console.print(f"skipped {escape(str(file))}: not audit or trajectory records")
    _print(findings, as_json)
    _exit(findings, fail_on)


@safety_app.command("rules")
def rules_command(
    test: Annotated[
        str | None, typer.Option("--test", help="A shell command: show which rules match and why.")
    ] = None,
    workdir: Annotated[str, typer.Option(help="The workspace --test runs in.")] = "/workspace",
    rules: RulesOption = None,
    fail_on: FailOn = "high",
    as_json: JsonOption = False,
) -> None:
    """List the rules, or test one command against them."""
    with user_errors():
        _check_severity(fail_on)
        ruleset = _rules(rules)
    if test is not None:
        findings = scan_command(test, ScanContext(workdir=workdir), ruleset)
        _print(findings, as_json, with_where=False)
        _exit(findings, fail_on)
        return
    if as_json:
        for r in ruleset.rules:
            typer.echo(json.dumps(r.model_dump(exclude_none=True, exclude_defaults=True)))
        return
    table = Table("id", "category", "severity", "ATT&CK", "description", box=box.SIMPLE_HEAD)
    for r in sorted(ruleset.rules, key=lambda r: (r.category, r.id)):
        table.add_row(
            r.id,
            r.category,
            f"[{_STYLE[r.severity]}]{r.severity}[/]",
            r.technique or "",
            escape(r.description),
        )
    console.print(table)
