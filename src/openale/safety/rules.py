"""Declarative detection rules: the packaged YAML file, and users' own files merged on top.

A rule file has three sections. ``workspace.scratch`` lists directories outside
the task's workspace where deleting is still routine (``/tmp``, caches).
``macros`` names regex fragments that rules use as ``{name}`` (a name of
letters and ``_``, so ``{16}`` stays a quantifier). ``rules`` is a list; each
rule has an ``id``, ``category``, ``severity``, an ATT&CK ``technique`` where one
fits, a ``description`` and one kind of ``match``:

- a **command** match: ``programs`` (base names or globs, any case), ``args``
  (regexes that must all match the arguments and redirections), ``not_args``
  (none may match), ``piped_from``/``piped_to`` (the programs next to it in a
  pipeline), ``outside_workspace`` (one argument resolves outside the workspace
  and the scratch directories);
- a **text** match: ``text``, a regex over the command line and every piece of
  nested code or decoded payload in it;
- a **file** match: ``paths`` (regexes over the resolved path, ``~`` for home),
  ``ops`` (read, write, append, delete), ``not_programs``; it sees the audit
  log's file operations, an agent's file tools, and the files a command names;
- an **output** match: ``output``, a regex over tool outputs.

A later file's rule with an existing id replaces it; ``enabled: false`` turns
one off.
"""

from __future__ import annotations

import fnmatch
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from openale.safety.findings import Severity

FileOp = Literal["read", "write", "append", "delete"]
RuleKind = Literal["command", "text", "file", "output"]
DEFAULT_RULES = "default_rules.yaml"
_MACRO = re.compile(r"\{([A-Za-z_]+)\}")


class RuleError(ValueError):
    """A rule file that cannot be read: bad YAML, an unknown field, a bad regex."""


class Match(BaseModel):
    model_config = ConfigDict(extra="forbid")

    programs: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    not_args: list[str] = Field(default_factory=list)
    piped_from: list[str] = Field(default_factory=list)
    piped_to: list[str] = Field(default_factory=list)
    outside_workspace: bool = False
    text: str | None = None
    paths: list[str] = Field(default_factory=list)
    ops: list[FileOp] = Field(default_factory=lambda: ["read", "write", "append", "delete"])
    not_programs: list[str] = Field(default_factory=list)
    output: str | None = None

    @property
    def kind(self) -> RuleKind:
        if self.programs:
            return "command"
        if self.text:
            return "text"
        if self.paths:
            return "file"
        return "output"

    @model_validator(mode="after")
    def _one_kind(self) -> Match:
        kinds = [bool(self.programs), bool(self.text), bool(self.paths), bool(self.output)]
        if sum(kinds) != 1:
            raise ValueError("a match has exactly one of programs, text, paths, output")
        return self


class DetectionRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_.-]+$")
    category: str = Field(pattern=r"^[a-z_]+$")
    severity: Severity
    technique: str | None = Field(default=None, pattern=r"^T\d{4}(\.\d{3})?$")
    description: str
    enabled: bool = True
    match: Match


class WorkspaceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scratch: list[str] = Field(default_factory=list)


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspace: WorkspaceSettings = Field(default_factory=WorkspaceSettings)
    macros: dict[str, str] = Field(default_factory=dict)
    rules: list[DetectionRule] = Field(default_factory=list)


class RuleSet:
    """Rules ready to match: regexes compiled, macros expanded, command rules by program."""

    def __init__(self, files: list[RuleFile]):
        merged: dict[str, DetectionRule] = {}
        self.scratch: list[str] = []
        self.macros: dict[str, str] = {}
        for f in files:
            self.scratch += [s for s in f.workspace.scratch if s not in self.scratch]
            self.macros.update(f.macros)
            for rule in f.rules:
                merged[rule.id] = rule
        self.rules = [r for r in merged.values() if r.enabled]
        self.compiled = [CompiledRule(r, self._regex) for r in self.rules]
        self.by_program: dict[str, list[CompiledRule]] = {}
        self.glob_programs: list[CompiledRule] = []
        self.text: list[CompiledRule] = []
        self.file: list[CompiledRule] = []
        self.output: list[CompiledRule] = []
        for c in self.compiled:
            kind = c.rule.match.kind
            if kind == "command":
                for p in c.rule.match.programs:
                    if any(ch in p for ch in "*?["):
                        if c not in self.glob_programs:
                            self.glob_programs.append(c)
                    else:
                        self.by_program.setdefault(p.lower(), []).append(c)
            else:
                getattr(self, kind).append(c)

    def _regex(self, pattern: str, where: str) -> re.Pattern[str]:
        def expand(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.macros:
                raise RuleError(f"{where}: unknown macro {{{name}}}")
            return self.macros[name]

        try:
            return re.compile(_MACRO.sub(expand, pattern))
        except re.error as e:
            raise RuleError(f"{where}: bad regex {pattern!r}: {e}") from e

    def command_rules(self, prog: str) -> list[CompiledRule]:
        """The command rules that name ``prog``."""
        prog = prog.lower()
        out = self.by_program.get(prog, [])
        if self.glob_programs:
            out = out + [c for c in self.glob_programs if c.program_matches(prog)]
        return out


class CompiledRule:
    """One rule with its regexes compiled."""

    __slots__ = ("rule", "args", "not_args", "text", "paths", "output", "_globs", "ops")

    def __init__(self, rule: DetectionRule, regex):
        m = rule.match
        where = f"rule {rule.id}"
        self.rule = rule
        self.args = [regex(p, where) for p in m.args]
        self.not_args = [regex(p, where) for p in m.not_args]
        self.text = regex(m.text, where) if m.text else None
        self.paths = [regex(p, where) for p in m.paths]
        self.output = regex(m.output, where) if m.output else None
        self._globs = [p.lower() for p in m.programs if any(ch in p for ch in "*?[")]
        self.ops = frozenset(m.ops)

    def program_matches(self, prog: str) -> bool:
        return any(fnmatch.fnmatchcase(prog, g) for g in self._globs)


def read_rule_file(path: str | Path) -> RuleFile:
    """Parse and validate one rule file; ``RuleError`` says what is wrong and where."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return RuleFile.model_validate(data)
    except OSError as e:
        raise RuleError(f"{path}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise RuleError(f"{path}: not valid YAML: {e}") from e
    except ValidationError as e:
        raise RuleError(f"{path}: {e}") from e


def default_rule_path() -> Path:
    return Path(str(resources.files("openale.safety").joinpath(DEFAULT_RULES)))


@cache
def default_rules() -> RuleSet:
    """The packaged rules, compiled once per process."""
    return RuleSet([read_rule_file(default_rule_path())])


def load_rules(*extra: str | Path) -> RuleSet:
    """The packaged rules with ``extra`` files merged on top, in order."""
    if not extra:
        return default_rules()
    return RuleSet([read_rule_file(default_rule_path())] + [read_rule_file(p) for p in extra])
