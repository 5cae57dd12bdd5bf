"""Approval policy: rules on tool + argument decide allow, deny or ask.

Modes: ``plan`` (read-only tools only), ``default`` (rules, then read-only
tools and anything inside a sandbox are allowed, host-side changes ask),
``auto`` (rules, then allow), ``yolo`` (everything but explicit denials).
Headless runs cannot ask: an ``ask`` becomes a recorded denial and the run
exits non-zero.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

Decision = Literal["allow", "deny", "ask"]
Mode = Literal["default", "auto", "plan", "yolo"]


class Rule(BaseModel):
    tool: str = Field(description="tool name glob, e.g. 'shell' or 'mcp__*'")
    pattern: str | None = Field(None, description="regex searched in the arguments")
    decision: Decision

    def matches(self, tool: str, args: dict[str, Any]) -> bool:
        if not fnmatch.fnmatch(tool, self.tool):
            return False
        if self.pattern is None:
            return True
        text = args.get("command") if isinstance(args.get("command"), str) else json.dumps(args)
        return re.search(self.pattern, text) is not None


class ApprovalPolicy(BaseModel):
    mode: Mode = "default"
    rules: list[Rule] = Field(default_factory=list)

    def decide(
        self, tool: str, args: dict[str, Any], *, read_only: bool, sandboxed: bool
    ) -> Decision:
        if self.mode == "plan":
            return "allow" if read_only else "deny"
        for rule in self.rules:
            if rule.matches(tool, args):
                if self.mode == "yolo" and rule.decision == "ask":
                    return "allow"
                return rule.decision
        if self.mode in ("auto", "yolo") or read_only or sandboxed:
            return "allow"
        return "ask"


Asker = Callable[[str, dict[str, Any]], bool]  # interactive: ask the user; True = allow
