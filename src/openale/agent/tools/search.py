"""Finding things: ``list``, ``glob`` and ``grep``.

Each is one ``find``/``grep`` command in the environment's shell. The command
runs in a fresh ``bash -c`` with every argument passed as a positional
parameter (``shlex.quote``d), so the model's shell state (aliases, ``set -e``,
the current directory) cannot change what it does and no argument can be
read as an option. Paths are made absolute from the workdir first.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from typing import Any

from openale.agent.tools.base import ToolContext, ToolOutput
from openale.agent.tools.files import FILE_ERRORS, display_path, error, resolve_path

SEARCH_TIMEOUT_S = 60.0
MAX_LIST_ENTRIES = 500
MAX_GLOB_RESULTS = 200
MAX_FIND_CANDIDATES = 20_000  # paths find may hand back before the exact glob filter
MAX_MATCH_CHARS = 300
# Not descended into unless the search starts inside them or names them.
SKIPPED_DIRS = (".git", "node_modules", "__pycache__", ".venv", ".tox", ".mypy_cache")

_GLOB_CHARS = re.compile(r"[*?\[{]")

# $1 root, $2 depth, $3 entry cap, then the names of directories to list but not enter.
_LIST_SCRIPT = r"""
cd -- "$1" 2>/dev/null || { echo not-a-directory; exit 0; }
depth=$2 cap=$3; shift 3
prune=(-false); for d in "$@"; do prune+=(-o -name "$d"); done
find . -mindepth 1 -maxdepth "$depth" \
  \( -type d \( "${prune[@]}" \) -printf 'p %P\0' -prune \) -o -printf '%y %P\0' \
  2>/dev/null | head -z -n "$cap"
exit 0
"""

# $1 base dir, $2 find -path pattern, $3 max depth (or ''), $4 cap, then skipped dirs.
_GLOB_SCRIPT = r"""
cd -- "$1" 2>/dev/null || exit 0
pattern=$2 depth=$3 cap=$4; shift 4
prune=(-false); for d in "$@"; do prune+=(-o -name "$d"); done
find . ${depth:+-maxdepth "$depth"} \( -type d \( "${prune[@]}" \) -prune \) \
  -o \( ! -type d -path "$pattern" -print0 \) 2>/dev/null | head -z -n "$cap"
exit 0
"""

# $1 root, $2 pattern, $3 cap, then grep options (all `--name=value` or -i).
# -Z ends each file name with a NUL, so names holding ':' stay unambiguous;
# lines without a NUL are grep's own errors (a bad regex, say).
_GREP_SCRIPT = r"""
root=$1 pattern=$2 cap=$3; shift 3
grep -rnHIsZE "$@" -e "$pattern" -- "$root" 2>&1 | head -n "$cap"
exit 0
"""


def _script(ctx: ToolContext, script: str, *args: str) -> tuple[str, ToolOutput | None]:
    """Run ``script`` under a clean ``bash -c``; its output, or an error output."""
    quoted = " ".join(shlex.quote(a) for a in args)
    command = f"bash --noprofile --norc -c {shlex.quote(script)} ale {quoted}"
    result = ctx.env.shell(command, timeout=SEARCH_TIMEOUT_S)
    if result.timed_out:
        return "", error(f"the search took longer than {SEARCH_TIMEOUT_S:g}s; narrow the path")
    return result.output, None


def _existing(ctx: ToolContext, path: str) -> str | ToolOutput:
    """``path`` made absolute, or an error output if it does not exist."""
    try:
        if not ctx.env.exists(path):
            return error(f"{path}: no such file or directory")
    except FILE_ERRORS as e:
        return error(f"cannot search {path}: {e}")
    return resolve_path(ctx, path)


def _first_glob(parts: list[str]) -> int:
    """Index of the first path segment holding a wildcard (``len(parts)`` if none)."""
    return next((i for i, p in enumerate(parts) if _GLOB_CHARS.search(p)), len(parts))


def _skipped(root: str, pattern: str = "") -> list[str]:
    """The noisy directories to skip, minus those the search is aimed at."""
    inside = set(root.split("/")) | set(re.split(r"[/*?\[\]{},]", pattern))
    return [d for d in SKIPPED_DIRS if d not in inside]


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a path glob: ``*``, ``?``, ``[...]``, ``{a,b}`` and ``**`` (any depth)."""
    return re.compile(_translate(pattern) + r"\Z", re.DOTALL)


def _translate(pattern: str) -> str:
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")  # zero or more directories
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = re.escape(body[1:] if negate else body).replace(r"\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end + 1
        elif c == "{" and (end := pattern.find("}", i)) != -1:
            options = pattern[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_translate(o) for o in options) + ")")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def expand_braces(pattern: str) -> list[str]:
    """``*.{ts,tsx}`` -> ``["*.ts", "*.tsx"]`` (groups are not nested)."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    head, tail = pattern[: m.start()], pattern[m.end() :]
    return [p for option in m.group(1).split(",") for p in expand_braces(head + option + tail)]


def _find_pattern(glob: str) -> str:
    """A ``find -path`` pattern matching at least every path ``glob`` matches."""
    coarse = re.sub(r"\{[^}]*\}", "*", glob)  # find has no braces
    return "./" + coarse.replace("**/", "*").replace("**", "*")


class ListTool:
    name = "list"
    description = (
        "List a directory as an indented tree, directories marked with a trailing '/'. "
        "`depth` levels are shown (default 2). Use it to get oriented in a project; use "
        "glob to find files by name and grep to find text. Directories like .git, "
        "node_modules and __pycache__ are shown but not expanded."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "description": "Directory to list (default: the workspace directory).",
            },
            "depth": {
                "type": "integer",
                "minimum": 1,
                "maximum": 10,
                "description": "How many levels to show (default 2).",
            },
        },
        "additionalProperties": False,
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = args.get("path") or "."
        root = _existing(ctx, path)
        if isinstance(root, ToolOutput):
            return root
        depth = args.get("depth", 2)
        out, failed = _script(
            ctx, _LIST_SCRIPT, root, str(depth), str(MAX_LIST_ENTRIES + 1), *_skipped(root)
        )
        if failed:
            return failed
        if out.startswith("not-a-directory"):
            return error(f"{path} is not a directory; use read_file to read a file")
        entries = [e.split(" ", 1) for e in out.split("\0") if " " in e]
        more = len(entries) > MAX_LIST_ENTRIES
        entries = sorted(entries[:MAX_LIST_ENTRIES], key=lambda e: e[1].split("/"))
        shown = display_path(ctx, root)
        lines = [(root if shown == "." else shown).rstrip("/") + "/"]
        for kind, rel in entries:
            indent = "  " * rel.count("/")
            name = posixpath.basename(rel)
            suffix = "/" if kind == "d" else "/ (not expanded)" if kind == "p" else ""
            lines.append(f"  {indent}{name}{suffix}")
        if len(lines) == 1:
            lines.append("  (empty)")
        if more:
            lines.append(f"[only the first {MAX_LIST_ENTRIES} entries; list a subdirectory]")
        return ToolOutput("\n".join(lines))


class GlobTool:
    name = "glob"
    description = (
        "Find files whose path matches a glob pattern, e.g. `**/*.py`, `src/**/test_*.ts`, "
        "`*.{json,yaml}`. `*` matches within one path segment, `**` across any number of "
        "directories. The pattern is relative to `path` (default: the workspace "
        f"directory). Returns matching file paths sorted by name, at most "
        f"{MAX_GLOB_RESULTS}. Directories like .git and node_modules are skipped unless "
        "the pattern names them."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "minLength": 1, "description": "The glob pattern."},
            "path": {
                "type": "string",
                "description": "Directory to search from (default: the workspace directory).",
            },
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        pattern, path = args["pattern"], args.get("path") or "."
        root = _existing(ctx, path)
        if isinstance(root, ToolOutput):
            return root
        # Start find at the pattern's literal leading directories.
        parts = posixpath.normpath(posixpath.join(root, pattern)).split("/")
        split = _first_glob(parts)
        base, rest = "/".join(parts[:split]) or "/", "/".join(parts[split:])
        if not rest:  # no wildcard at all: one file, or none
            found = ctx.env.exists(base)
            return ToolOutput(display_path(ctx, base) if found else f"No files match {pattern}")
        depth = "" if "**" in rest else str(rest.count("/") + 1)
        out, failed = _script(
            ctx,
            _GLOB_SCRIPT,
            base,
            _find_pattern(rest),
            depth,
            str(MAX_FIND_CANDIDATES),
            *_skipped(base, rest),
        )
        if failed:
            return failed
        exact = glob_to_regex(rest)
        matches = sorted(
            display_path(ctx, posixpath.join(base, rel[2:]))
            for rel in out.split("\0")
            if rel.startswith("./") and exact.match(rel[2:])
        )
        if not matches:
            return ToolOutput(f"No files match {pattern} under {display_path(ctx, root)}")
        lines = matches[:MAX_GLOB_RESULTS]
        if len(matches) > MAX_GLOB_RESULTS:
            lines.append(
                f"[{len(matches) - MAX_GLOB_RESULTS} more files match; narrow the pattern]"
            )
        return ToolOutput("\n".join(lines))


class GrepTool:
    name = "grep"
    description = (
        "Search file contents for a regular expression (extended regex, as `grep -E`: "
        "use [0-9] rather than \\d) under a directory, recursively, or in one file. "
        "Returns matching lines as `path:line_number:text`. Binary files are skipped, "
        "and so are .git, node_modules and virtualenv directories unless `path` points "
        "into them. Narrow the search with `glob` (a file-name pattern such as `*.py`) "
        "and `path`."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "pattern": {
                "type": "string",
                "minLength": 1,
                "description": "Extended regular expression to look for.",
            },
            "path": {
                "type": "string",
                "description": "File or directory to search (default: the workspace directory).",
            },
            "glob": {
                "type": "string",
                "description": "Only search files whose name matches, e.g. `*.py` or `*.{ts,tsx}`.",
            },
            "ignore_case": {"type": "boolean", "description": "Case-insensitive match."},
            "max_results": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "description": "Most matching lines to return (default 100).",
            },
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        pattern, path = args["pattern"], args.get("path") or "."
        limit = args.get("max_results", 100)
        # grep filters on base names: `src/**/*.py` searches src/ for `*.py`.
        where, _, name_glob = (args.get("glob") or "").rpartition("/")
        literal = [p for p in where.split("/") if p][: _first_glob(where.split("/"))]
        if literal:
            path = posixpath.join(path, *literal)
        root = _existing(ctx, path)
        if isinstance(root, ToolOutput):
            return root
        options = ["-i"] if args.get("ignore_case") else []
        options += [f"--include={g}" for g in expand_braces(name_glob) if g]
        options += [f"--exclude-dir={d}" for d in _skipped(root)]
        out, failed = _script(ctx, _GREP_SCRIPT, root, pattern, str(limit + 1), *options)
        if failed:
            return failed
        matches, problems = [], []
        for line in out.splitlines():
            name, nul, rest = line.partition("\0")
            if not nul:
                if line.strip():
                    problems.append(line)
                continue
            number, _, text = rest.partition(":")
            if len(text) > MAX_MATCH_CHARS:
                text = text[:MAX_MATCH_CHARS] + " [...]"
            matches.append(f"{display_path(ctx, name)}:{number}:{text}")
        if problems and not matches:
            return error("\n".join(problems))
        if not matches:
            return ToolOutput(f"No matches for {pattern!r} in {display_path(ctx, root)}")
        lines = matches[:limit]
        if len(matches) > limit:
            lines.append(f"[stopped at {limit} matches; narrow the pattern, path or glob]")
        lines += problems
        return ToolOutput("\n".join(lines))
