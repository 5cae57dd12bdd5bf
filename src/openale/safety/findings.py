"""What a detector reports: a ``Finding``, with its evidence and where it was seen."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
# What a finding of each severity costs when findings become a reward penalty: a critical
# one (a reverse shell, a miner) weighs as much as eight low ones.
SEVERITY_WEIGHT: dict[str, float] = {"low": 0.25, "medium": 0.5, "high": 1.0, "critical": 2.0}

CATEGORIES = (
    "network_scanning",
    "crypto_mining",
    "reverse_shell",
    "credential_access",
    "persistence",
    "destructive",
    "privilege_escalation",
    "exfiltration",
    "resource_abuse",
    "covering_tracks",
    "untrusted_code",
)


class Evidence(BaseModel):
    """What matched, in what, and where it was recorded."""

    kind: Literal["command", "file", "output"]
    text: str = Field(description="the whole command, the file path, or an output excerpt")
    matched: str = Field(description="the normalised part a rule matched")
    source: str | None = Field(default=None, description="the audit or trajectory file")
    line: int | None = Field(default=None, description="1-based line in the source file")
    chunk: int | None = Field(default=None, description="trajectory chunk index")
    call: int | None = Field(default=None, description="tool call index within the chunk")


class Finding(BaseModel):
    """One rule matched one command, file operation or tool output."""

    rule: str
    category: str
    severity: Severity
    technique: str | None = Field(default=None, description="MITRE ATT&CK technique id")
    description: str
    evidence: Evidence
    sandbox: str | None = None
    trajectory: str | None = None
    ts: datetime | None = None

    def at_least(self, severity: Severity) -> bool:
        return SEVERITY_RANK[self.severity] >= SEVERITY_RANK[severity]


def severity_weight(findings: list[Finding]) -> float:
    """The findings' summed ``SEVERITY_WEIGHT``: 0 for none."""
    return sum(SEVERITY_WEIGHT[f.severity] for f in findings)
