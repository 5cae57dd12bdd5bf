"""File tools: ``read_file``, ``write_file`` and ``edit``, through ``ctx.env``.

Relative paths are relative to the environment's workdir (not to the shell's
current directory, which the model may have changed with ``cd``).
"""

from __future__ import annotations

import difflib
import posixpath
import shlex
from typing import Any

from openale.agent.tools.base import ToolContext, ToolOutput
from openale.sandbox import FileTooLargeError, SandboxFileError

MAX_LINES = 2000
MAX_BYTES = 100_000
MAX_LINE_CHARS = 2000
MAX_DIFF_LINES = 150
BINARY_SNIFF_BYTES = 8192

# What a failed file operation raises, on the host (OSError, ValueError for NUL
# bytes) or in a sandbox. Other sandbox errors (the sandbox is gone, the engine
# is down) are not the model's to handle, so they propagate.
FILE_ERRORS = (OSError, ValueError, SandboxFileError, FileTooLargeError)


def resolve_path(ctx: ToolContext, path: str) -> str:
    """``path`` as an absolute path: relative ones are taken from the workdir."""
    return posixpath.normpath(posixpath.join(ctx.env.workdir, path))


def display_path(ctx: ToolContext, path: str) -> str:
    """``path`` as the model should see it: relative to the workdir when inside it."""
    rel = posixpath.relpath(path, ctx.env.workdir)
    return path if rel == ".." or rel.startswith("../") else rel


def error(message: str) -> ToolOutput:
    return ToolOutput(output=message, is_error=True)


def _is_dir(ctx: ToolContext, path: str) -> bool:
    probe = ctx.env.shell(f"test -d {shlex.quote(resolve_path(ctx, path))}", timeout=10)
    return probe.exit_code == 0


def read_bytes(ctx: ToolContext, path: str) -> bytes | ToolOutput:
    """The file's bytes, or an error output saying why they cannot be read."""
    try:
        if not ctx.env.exists(path):
            return error(f"{path}: no such file or directory")
        return ctx.env.read(path)
    except FILE_ERRORS as e:
        if _is_dir(ctx, path):
            return error(f"{path} is a directory; use the list tool to see what it holds")
        return error(f"cannot read {path}: {e}")


def _binary(data: bytes) -> bool:
    return b"\0" in data[:BINARY_SNIFF_BYTES]


class ReadFileTool:
    name = "read_file"
    description = (
        "Read a text file. Returns its lines numbered like `cat -n` (line number, a tab, "
        "the line). Use start_line/end_line (1-based, inclusive) to read part of a large "
        f"file; at most {MAX_LINES} lines or {MAX_BYTES // 1000} kB come back per call, "
        "with a note saying where to continue. The numbers are not part of the file: "
        "leave them out of edit's old_string. Relative paths are relative to the "
        "workspace directory."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "minLength": 1, "description": "File to read."},
            "start_line": {
                "type": "integer",
                "minimum": 1,
                "description": "First line to show (default 1).",
            },
            "end_line": {
                "type": "integer",
                "minimum": 1,
                "description": "Last line to show (default: the end of the file).",
            },
        },
        "required": ["path"],
        "additionalProperties": False,
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path = args["path"]
        data = read_bytes(ctx, path)
        if isinstance(data, ToolOutput):
            return data
        if _binary(data):
            return error(
                f"{path} is a binary file ({len(data)} bytes); inspect it with the shell "
                "(e.g. `file`, `xxd | head`)"
            )
        lines = data.decode("utf-8", errors="replace").split("\n")
        if lines[-1] == "":
            lines.pop()  # the text after the final newline
        total = len(lines)
        if total == 0:
            return ToolOutput(f"({path} is empty)")
        start = args.get("start_line", 1)
        end = min(args.get("end_line", total), total)
        if start > total:
            return error(f"{path} has {total} lines; start_line {start} is past the end")
        if end < start:
            return error(f"end_line {end} is before start_line {start}")

        shown, size, last = [], 0, start - 1
        for number in range(start, end + 1):
            line = lines[number - 1]
            if len(line) > MAX_LINE_CHARS:
                cut = len(line) - MAX_LINE_CHARS
                line = f"{line[:MAX_LINE_CHARS]}... [{cut} more characters on this line]"
            row = f"{number:6}\t{line}"
            if shown and (len(shown) >= MAX_LINES or size + len(row) + 1 > MAX_BYTES):
                break
            shown.append(row)
            size += len(row) + 1
            last = number
        if last < end:
            shown.append(
                f"[showing lines {start}-{last} of {total}; call read_file with "
                f"start_line={last + 1} to read more]"
            )
        elif start > 1 or end < total:
            shown.append(f"[lines {start}-{end} of {total}]")
        return ToolOutput("\n".join(shown))


class WriteFileTool:
    name = "write_file"
    description = (
        "Create a file, or replace a file's whole content, with `content`. Parent "
        "directories are created. For a change to part of an existing file use edit "
        "instead; it is safer and cheaper. Relative paths are relative to the workspace "
        "directory."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "minLength": 1, "description": "File to write."},
            "content": {"type": "string", "description": "The complete new content."},
        },
        "required": ["path", "content"],
        "additionalProperties": False,
    }
    read_only = False

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path, content = args["path"], args["content"]
        try:
            existed = ctx.env.exists(path)
            # The engine's archive API would replace a directory with the file.
            if existed and _is_dir(ctx, path):
                return error(f"{path} is a directory; give the path of a file inside it")
            ctx.env.write(path, content)
        except FILE_ERRORS as e:
            return error(f"cannot write {path}: {e}")
        size = len(content.encode())
        return ToolOutput(f"{'Overwrote' if existed else 'Created'} {path} ({size} bytes)")


class EditTool:
    name = "edit"
    description = (
        "Replace text in an existing file: `old_string` must appear in the file exactly "
        "(same whitespace and indentation, no line numbers) and, unless replace_all is "
        "true, exactly once; include a few surrounding lines to make it unique. Returns "
        "a unified diff of the change. Read the file first. To create a file, use "
        "write_file."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "minLength": 1, "description": "File to change."},
            "old_string": {"type": "string", "description": "Exact text to replace."},
            "new_string": {"type": "string", "description": "Text to put in its place."},
            "replace_all": {
                "type": "boolean",
                "description": "Replace every occurrence instead of exactly one (default false).",
            },
        },
        "required": ["path", "old_string", "new_string"],
        "additionalProperties": False,
    }
    read_only = False

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        path, old, new = args["path"], args["old_string"], args["new_string"]
        replace_all = args.get("replace_all", False)
        if not old:
            return error("old_string is empty; to create or overwrite a file use write_file")
        if old == new:
            return error("old_string and new_string are the same; there is nothing to change")
        data = read_bytes(ctx, path)
        if isinstance(data, ToolOutput):
            return data
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return error(f"{path} is not UTF-8 text; change it with the shell instead")

        count = text.count(old)
        if count == 0 and "\r\n" in text and "\r" not in old:
            # A file with Windows line ends, quoted with plain newlines.
            old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
            count = text.count(old)
        if count == 0:
            return error(
                f"old_string was not found in {path} (0 matches). It must match the file "
                "exactly, including whitespace and indentation; read the file again and "
                "copy the text."
            )
        if count > 1 and not replace_all:
            return error(
                f"old_string matches {count} times in {path}; include more surrounding "
                f"lines to make it unique, or set replace_all to true to change all {count}."
            )
        updated = text.replace(old, new)
        try:
            ctx.env.write(path, updated)
        except FILE_ERRORS as e:
            return error(f"cannot write {path}: {e}")

        diff = list(
            difflib.unified_diff(
                text.splitlines(), updated.splitlines(), f"a/{path}", f"b/{path}", lineterm=""
            )
        )
        if len(diff) > MAX_DIFF_LINES:
            more = len(diff) - MAX_DIFF_LINES
            diff = diff[:MAX_DIFF_LINES] + [f"[... {more} more diff lines]"]
        plural = "s" if count > 1 else ""
        header = f"Edited {path}: replaced {count} occurrence{plural}"
        return ToolOutput("\n".join([header, *diff]))
