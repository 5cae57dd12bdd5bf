"""``SandboxInfo`` from what the engine says about a sandbox's container."""

from __future__ import annotations

from datetime import datetime

from openale.sandbox.audit import AuditLog
from openale.sandbox.engine import L_CREATED, L_DETACHED, L_OWNER, L_SPEC, LABEL
from openale.sandbox.spec import SandboxInfo, SandboxSpec, SandboxStatus


def _status(state: str, exit_code: int | None, oom: bool = False) -> SandboxStatus:
    if state in ("created", "restarting"):
        return "pending"
    if state in ("running", "paused"):
        return "running"
    if state == "exited" and exit_code in (0, 137, 143) and not oom:
        return "stopped"
    return "failed"


def _info(
    sandbox_id: str, labels: dict[str, str], status: SandboxStatus, audit: AuditLog
) -> SandboxInfo:
    spec = SandboxSpec.model_validate_json(labels[L_SPEC])
    return SandboxInfo(
        id=sandbox_id,
        status=status,
        image=spec.image,
        created_at=datetime.fromisoformat(labels[L_CREATED]),
        last_active_at=audit.last_active(sandbox_id),
        ttl_s=spec.ttl_s,
        deadline_s=spec.deadline_s,
        detached=labels.get(L_DETACHED) == "1",
        owner=labels.get(L_OWNER) or None,
        spec=spec,
    )


def info_from_summary(summary: dict, audit: AuditLog) -> SandboxInfo:
    """From a ``GET /containers/json`` row (no per-container inspect needed)."""
    labels = summary["Labels"]
    exit_code = None
    if summary["State"] == "exited" and "(" in summary.get("Status", ""):
        exit_code = int(summary["Status"].split("(")[1].split(")")[0])
    return _info(labels[LABEL], labels, _status(summary["State"], exit_code), audit)


def info_from_inspect(inspect: dict, audit: AuditLog) -> SandboxInfo:
    labels = inspect["Config"]["Labels"]
    state = inspect["State"]
    return _info(
        labels[LABEL],
        labels,
        _status(state["Status"], state.get("ExitCode"), state.get("OOMKilled", False)),
        audit,
    )
