"""Which files a parsed command reads, writes, appends to or deletes, resolved to absolute paths."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openale.safety.shell import Simple

# Programs that write (or delete) the paths they are given, and those whose last
# argument is the destination.
_WRITERS = {
    "tee": "append?",
    "touch": "write",
    "truncate": "write",
    "shred": "delete",
    "rm": "delete",
    "unlink": "delete",
    "rmdir": "delete",
    "sed": "sed",
}
_COPIERS = frozenset({"cp", "mv", "install", "ln", "rsync", "scp"})
# Programs whose plain arguments are all files, even without a slash (``cat shadow``).
_READERS = frozenset(
    {
        "cat",
        "tac",
        "less",
        "more",
        "head",
        "tail",
        "nl",
        "od",
        "xxd",
        "hexdump",
        "strings",
        "base64",
        "source",
        ".",
        "vi",
        "vim",
        "nano",
        "view",
    }
)


@dataclass(slots=True)
class Access:
    """A file a command reads or changes: op is read, write, append or delete."""

    op: str
    path: str  # resolved against the working directory; ``~`` for the home directory


def resolve(path: str, cwd: str) -> str:
    """``path`` made absolute against ``cwd`` and normalised; home stays ``~``."""
    if path == "~" or path.startswith("~/"):
        rest = posixpath.normpath("/" + path[2:])
        return "~" if rest == "/" else "~" + rest
    if not path.startswith("/"):
        path = posixpath.join(cwd, path)
    out = posixpath.normpath(path)
    return "/" if out == "//" else out


def looks_like_path(arg: str) -> bool:
    return (
        ("/" in arg or arg.startswith(("~", ".")))
        and "://" not in arg
        and not any(c in arg for c in " \t\n")
    )


def accesses(cmd: Simple) -> list[Access]:
    """The files ``cmd`` reads, writes, appends to or deletes, by what it is."""
    out: list[Access] = []
    for op, target in cmd.redirects:
        if target and not target.isdigit() and target != "-":
            kind = "append" if ">>" in op else "write" if ">" in op else "read"
            out.append(Access(kind, resolve(target, cmd.cwd)))
    args = [a for a in cmd.args if not a.startswith("-") or a.startswith(("-@",))]
    role = _WRITERS.get(cmd.prog)
    if cmd.prog == "sed" and not any(a.startswith("-i") or a == "--in-place" for a in cmd.args):
        role = None
    for k, a in enumerate(args):
        for piece in _path_pieces(a):
            if cmd.prog in _COPIERS and len(args) > 1:
                source = "delete" if cmd.prog == "mv" else "read"
                kind = "write" if k == len(args) - 1 else source
            elif cmd.prog == "dd":
                kind = "write" if a.startswith("of=") else "read"
            elif role == "append?":
                kind = "append" if "-a" in cmd.args or "--append" in cmd.args else "write"
            elif role == "sed":
                kind = "write" if k > 0 else None
            else:
                kind = role or "read"
            if kind and (looks_like_path(piece) or role or cmd.prog in _READERS):
                out.append(Access(kind, resolve(piece, cmd.cwd)))
    return out


def _path_pieces(arg: str) -> list[str]:
    """The paths inside one argument: ``of=/dev/sda``, ``file=@/etc/passwd``, ``@f``."""
    if "=" in arg and not arg.startswith(("/", "~", ".")):
        arg = arg.split("=", 1)[1]
    if arg.startswith("@"):
        arg = arg[1:]
    return [arg] if arg else []
