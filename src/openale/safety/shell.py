"""A shell command line, normalised for rules: simple commands with their programs.

This is not a shell: it reads a command the way a reviewer would, to see what
would run. It splits on ``;``, ``&&``, ``||``, ``&``, pipes and newlines; takes
quotes, backslashes and ``$(...)``/backticks apart; remembers simple variable
assignments (``X=nc; $X -e ...``); strips wrapper programs (``sudo``, ``env``,
``nohup``, ``timeout``, ``busybox``, ``xargs``...) and directories
(``/usr/bin/nc``); and reads nested code: ``bash -c``/``sh -c``/``eval``
strings, here-strings and here-documents fed to a shell, and literals decoded by
``echo ... | base64 -d`` (the decoded text is read as a command too, whether or
not it is piped to a shell). ``cd`` moves the working directory for the
commands after it, so paths resolve as they would.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from dataclasses import dataclass, field

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "fish"})
# Programs that run the rest of their arguments as a command: how many option
# words take a value (so ``timeout -s KILL 5 nc`` reaches ``nc``).
WRAPPERS = {
    "sudo": {"-u", "-g", "-C", "-h", "-p", "-r", "-t", "-U", "-D"},
    "doas": {"-u", "-C"},
    "env": {"-u", "-C", "-S", "--unset", "--chdir"},
    "nohup": set(),
    "setsid": set(),
    "exec": {"-a"},
    "command": set(),
    "builtin": set(),
    "time": {"-f", "-o"},
    "nice": {"-n"},
    "ionice": {"-c", "-n", "-p"},
    "stdbuf": {"-i", "-o", "-e"},
    "timeout": {"-s", "-k", "--signal", "--kill-after"},
    "busybox": set(),
    "xargs": {"-I", "-n", "-P", "-a", "-d", "-E", "-L", "-s", "--arg-file", "--max-args"},
    "watch": {"-n", "-d", "--interval"},
    "chronic": set(),
    "torsocks": set(),
    "proxychains": {"-f"},
    "proxychains4": {"-f"},
}
# Wrappers whose first plain argument is not yet the command (a duration).
_WRAPPER_POSITIONAL = {"timeout": 1}
KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\+?)=(.*)$", re.S)
_ASSIGN_HEAD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=")
_REDIRECT = re.compile(r"(\d*)(>>|>\||>&|&>>|&>|<<<|<<-|<<|<&|<>|>|<)")
_B64 = re.compile(r"^[A-Za-z0-9+/=\s_-]{8,}$")
# Programs that write (or delete) the paths they are given, and those whose last
# argument is the destination.
_WRITERS = {"tee": "append?", "touch": "write", "truncate": "write", "shred": "delete",
            "rm": "delete", "unlink": "delete", "rmdir": "delete", "sed": "sed"}
_COPIERS = frozenset({"cp", "mv", "install", "ln", "rsync", "scp"})
# Programs whose plain arguments are all files, even without a slash (``cat shadow``).
_READERS = frozenset({"cat", "tac", "less", "more", "head", "tail", "nl", "od", "xxd", "hexdump",
                      "strings", "base64", "source", ".", "vi", "vim", "nano", "view"})
_INTERPRETER = re.compile(r"^(?:python[\d.]*|perl|ruby|node|php|lua)$")
# A string literal handed to a shell from script code: os.system("..."), `...`.
_SCRIPT_SHELL = re.compile(
    r"(?:system|popen|call|run|check_output|Popen|exec|spawn|execSync|shell_exec|passthru)"
    r"\s*\(\s*(?:\[\s*)?([\"'])(.+?)\1"
)
MAX_DEPTH = 4  # nested shells deeper than this are not unwrapped further


@dataclass(slots=True)
class Simple:
    """One simple command: what runs, with what, reading and writing what."""

    prog: str  # the program's base name, wrappers stripped: "nc"
    argv: list[str]  # words after the wrappers, quotes removed; argv[0] as written
    via: list[str] = field(default_factory=list)  # wrappers stripped: ["sudo", "nohup"]
    assigns: dict[str, str] = field(default_factory=dict)  # NAME=value before it
    redirects: list[tuple[str, str]] = field(default_factory=list)  # (op, target)
    stdin: str | None = None  # a here-string or here-document, or piped-in literal
    piped_from: str | None = None  # the program before it in a pipeline
    piped_to: str | None = None  # the program after it
    cwd: str = "/"
    depth: int = 0  # 0: written directly; n: inside n levels of nested code

    @property
    def args(self) -> list[str]:
        return self.argv[1:]

    @property
    def arg_text(self) -> str:
        """The arguments and redirections as one line, for argument patterns."""
        parts = self.argv[1:] + [op + target for op, target in self.redirects]
        return " ".join(parts)

    @property
    def text(self) -> str:
        head = [f"{k}={v}" for k, v in self.assigns.items()] + self.via
        return " ".join(head + [self.prog] + ([self.arg_text] if self.arg_text else []))


@dataclass(slots=True)
class Access:
    """A file a command reads or changes: op is read, write, append or delete."""

    op: str
    path: str  # resolved against the working directory; ``~`` for the home directory


@dataclass(slots=True)
class Parsed:
    """A command line taken apart: its simple commands and every code text seen."""

    commands: list[Simple]
    texts: list[str]  # the line itself, then nested code and decoded payloads

    def accesses(self) -> list[Access]:
        out: list[Access] = []
        for c in self.commands:
            out.extend(accesses(c))
        return out


# -- words ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Word:
    parts: list[tuple[str, str]]  # ("lit"|"var"|"sub", text); "lit" parts are literal
    quoted: bool = False

    def literal_prefix(self) -> str:
        out = []
        for kind, text in self.parts:
            if kind != "lit":
                break
            out.append(text)
        return "".join(out)


@dataclass(slots=True)
class _Op:
    op: str


@dataclass(slots=True)
class _Redir:
    op: str
    target: _Word | None = None
    heredoc: str | None = None


def _matching(s: str, i: int, open_: str, close: str) -> int:
    """Index of the ``close`` that ends the group opened just before ``i``."""
    depth, n = 1, len(s)
    while i < n:
        ch = s[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'":
            j = s.find("'", i + 1)
            i = n if j < 0 else j + 1
            continue
        if ch == '"':
            i += 1
            while i < n and s[i] != '"':
                i += 2 if s[i] == "\\" else 1
            i += 1
            continue
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return n


def _dollar(s: str, i: int, parts: list[tuple[str, str]]) -> int:
    """Read a ``$`` expansion at ``s[i] == "$"``; return the index after it."""
    n = len(s)
    nxt = s[i + 1] if i + 1 < n else ""
    if s.startswith("$((", i):
        end = _matching(s, i + 3, "(", ")")
        end = s.find(")", end + 1) if end < n else n
        parts.append(("lit", s[i : end + 1]))
        return min(end + 1, n)
    if nxt == "(":
        end = _matching(s, i + 2, "(", ")")
        parts.append(("sub", s[i + 2 : end]))
        return end + 1
    if nxt == "{":
        end = s.find("}", i + 2)
        end = n if end < 0 else end
        name = s[i + 2 : end]
        parts.append(("var", name) if _NAME.fullmatch(name) else ("lit", s[i : end + 1]))
        return end + 1
    m = _NAME.match(s, i + 1)
    if m:
        parts.append(("var", m.group()))
        return m.end()
    if nxt == "'":  # $'...' ANSI-C quoting: decode the common escapes
        end = s.find("'", i + 2)
        end = n if end < 0 else end
        raw = s[i + 2 : end]
        try:
            text = raw.encode("latin-1", "backslashreplace").decode("unicode_escape")
        except (UnicodeDecodeError, UnicodeEncodeError):
            text = raw
        parts.append(("lit", text))
        return end + 1
    parts.append(("lit", "$"))
    return i + 1


def _tokens(s: str) -> list[_Word | _Op | _Redir]:
    out: list[_Word | _Op | _Redir] = []
    pending: list[_Redir] = []  # here-documents whose bodies start at the next newline
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch in " \t":
            i += 1
            continue
        if ch == "\\" and s.startswith("\\\n", i):
            i += 2
            continue
        if ch == "\n":
            out.append(_Op(";"))
            i += 1
            for redir in pending:
                delim = redir.target.literal_prefix() if redir.target else ""
                body_end = s.find("\n" + delim + "\n", i - 1)
                if body_end < 0:
                    stop = s.find("\n" + delim, i - 1)
                    body_end = stop if stop >= 0 and s.endswith(delim) else n
                redir.heredoc = s[i:body_end + 1] if body_end < n else s[i:]
                i = min(n, body_end + len(delim) + 2)
            pending.clear()
            continue
        if ch == "#" and (i == 0 or s[i - 1] in " \t\n;&|()"):
            j = s.find("\n", i)
            i = n if j < 0 else j
            continue
        m = _REDIRECT.match(s, i)
        if m:
            op = m.group(2)
            if s.startswith(("<(", ">("), i):
                end = _matching(s, i + 2, "(", ")")
                out.append(_Word([("sub", s[i + 2 : end])]))
                i = end + 1
                continue
            i = m.end()
            while i < n and s[i] in " \t":
                i += 1
            redir = _Redir(op)
            if i < n and s[i] not in ";&|\n()":
                redir.target, i = _word(s, i)
            if op in ("<<", "<<-"):
                pending.append(redir)
            out.append(redir)
            continue
        if ch in ";&|()":
            two = s[i : i + 2]
            if two in ("&&", "||", ";;", "|&"):
                out.append(_Op("|" if two == "|&" else ";"))
                i += 2
            else:
                out.append(_Op("|" if ch == "|" else ";"))
                i += 1
            continue
        word, i = _word(s, i)
        out.append(word)
    return out


def _word(s: str, i: int) -> tuple[_Word, int]:
    parts: list[tuple[str, str]] = []
    quoted = False
    n = len(s)
    buf: list[str] = []

    def flush() -> None:
        if buf:
            parts.append(("lit", "".join(buf)))
            buf.clear()

    while i < n:
        ch = s[i]
        if ch in " \t\n;&|()<>":
            break
        if ch == "\\":
            if i + 1 < n:
                buf.append(s[i + 1])
            i += 2
        elif ch == "'":
            quoted = True
            j = s.find("'", i + 1)
            j = n if j < 0 else j
            buf.append(s[i + 1 : j])
            i = j + 1
        elif ch == '"':
            quoted = True
            i += 1
            while i < n and s[i] != '"':
                c = s[i]
                if c == "\\" and i + 1 < n and s[i + 1] in '$`"\\\n':
                    buf.append(s[i + 1])
                    i += 2
                elif c == "$":
                    flush()
                    i = _dollar(s, i, parts)
                elif c == "`":
                    flush()
                    j = s.find("`", i + 1)
                    j = n if j < 0 else j
                    parts.append(("sub", s[i + 1 : j]))
                    i = j + 1
                else:
                    buf.append(c)
                    i += 1
            i += 1
        elif ch == "$":
            flush()
            i = _dollar(s, i, parts)
        elif ch == "`":
            flush()
            j = s.find("`", i + 1)
            j = n if j < 0 else j
            parts.append(("sub", s[i + 1 : j]))
            i = j + 1
        else:
            buf.append(ch)
            i += 1
    flush()
    return _Word(parts, quoted), i


# -- commands ---------------------------------------------------------------------------


class _Reader:
    """Turns tokens into ``Simple`` commands, following variables, ``cd`` and nesting."""

    def __init__(self, cwd: str, home: str):
        self.vars: dict[str, str] = {}
        self.cwd = cwd
        self.home = home
        self.commands: list[Simple] = []
        self.texts: list[str] = []

    def read(self, text: str, depth: int) -> None:
        self.texts.append(text)
        if depth > MAX_DEPTH:
            return
        pipeline: list[Simple] = []
        stage: list[_Word | _Redir] = []
        for tok in _tokens(text):
            if isinstance(tok, _Op):
                if stage:
                    pipeline.append(self._simple(stage, depth))
                    stage = []
                if tok.op != "|":
                    self._finish(pipeline, depth)
                    pipeline = []
                continue
            stage.append(tok)
        if stage:
            pipeline.append(self._simple(stage, depth))
        self._finish(pipeline, depth)

    def value(self, word: _Word, depth: int) -> str:
        out = []
        for kind, text in word.parts:
            if kind == "lit":
                out.append(text)
            elif kind == "var":
                if text in self.vars:
                    out.append(self.vars[text])
                elif text == "HOME":
                    out.append("~")
                elif text == "IFS":  # ${IFS} as a separator: nmap${IFS}-sS
                    out.append(" ")
                else:
                    out.append("$" + text)
            else:
                static = self._substitute(text, depth)
                out.append(static if static is not None else f"$({text})")
        return "".join(out)

    def _substitute(self, code: str, depth: int) -> str | None:
        """Read the code of ``$(...)``; its output when it is a literal (echo, base64 -d)."""
        start = len(self.commands)
        saved = self.cwd
        self.read(code, depth + 1)
        self.cwd = saved
        made = [c for c in self.commands[start:] if c.depth == depth + 1]
        return _static_output(made) if made else None

    def _simple(self, stage: list[_Word | _Redir], depth: int) -> Simple:
        words: list[str] = []
        redirects: list[tuple[str, str]] = []
        stdin = None
        assigns: dict[str, str] = {}
        for tok in stage:
            if isinstance(tok, _Redir):
                target = self.value(tok.target, depth) if tok.target else ""
                if tok.op in ("<<", "<<-"):
                    stdin = tok.heredoc
                elif tok.op == "<<<":
                    stdin = target
                else:
                    redirects.append((tok.op, target))
                continue
            value = self.value(tok, depth)
            if not words and _ASSIGN_HEAD.match(tok.literal_prefix()) and (m := _ASSIGN.match(value)):
                assigns[m.group(1)] = m.group(3)
                continue
            # An unquoted expansion splits into words, as the shell does.
            split = not tok.quoted and any(k != "lit" for k, _ in tok.parts) and " " in value
            words.extend(value.split() if split else [value])
        via: list[str] = []
        while words:
            name = posixpath.basename(words[0])
            if name in KEYWORDS or name in ("{", "}"):
                words.pop(0)
            elif name in WRAPPERS and len(words) > 1 and (rest := _unwrap(name, words)):
                words = rest
                via.append(name)
                if name == "env":  # env NAME=value ... cmd
                    while words and (m := _ASSIGN.match(words[0])):
                        assigns[m.group(1)] = m.group(3)
                        words.pop(0)
            else:
                break
        if not words:
            self.vars.update(assigns)
            prog, argv = "", []
        else:
            prog, argv = posixpath.basename(words[0]), words
            if prog == "export":
                for w in argv[1:]:
                    if m := _ASSIGN.match(w):
                        self.vars[m.group(1)] = m.group(3)
        return Simple(prog, argv, via, assigns, redirects, stdin, cwd=self.cwd, depth=depth)

    def _finish(self, pipeline: list[Simple], depth: int) -> None:
        """Link a pipeline's stages, feed literals through decoders, read nested code."""
        piped: str | None = None
        for k, cmd in enumerate(pipeline):
            if k:
                cmd.piped_from = pipeline[k - 1].prog
            if k + 1 < len(pipeline):
                cmd.piped_to = pipeline[k + 1].prog
            piped_in = None
            if cmd.stdin is None and piped is not None:
                cmd.stdin = piped_in = piped
            if not cmd.prog and not cmd.argv:
                piped = None
                if not cmd.redirects:
                    continue
            self.commands.append(cmd)
            if cmd.prog == "cd":
                self.cwd = resolve(cmd.args[0] if cmd.args else "~", self.cwd)
            piped = _static_output([cmd])
            decoded = _decoded(cmd)
            if decoded is not None:
                piped = decoded
                self.read(decoded, depth + 1)
            for code in _nested_code(cmd):
                if code == cmd.stdin and code is piped_in:
                    continue  # a decoded literal piped into a shell: already read
                saved = self.cwd
                self.read(code, depth + 1)
                self.cwd = saved


def _unwrap(name: str, words: list[str]) -> list[str]:
    """The command a wrapper runs: its words after the wrapper's own options."""
    takes_value = WRAPPERS[name]
    positional = _WRAPPER_POSITIONAL.get(name, 0)
    i = 1
    while i < len(words):
        w = words[i]
        if w == "--":
            i += 1
            break
        if w.startswith("-") and len(w) > 1:
            i += 2 if w in takes_value else 1
            continue
        if name == "xargs" and w.startswith("-"):
            i += 1
            continue
        if positional:
            positional -= 1
            i += 1
            continue
        break
    return words[i:]


def _static_output(cmds: list[Simple]) -> str | None:
    """What a pipeline of literal producers writes: ``echo``/``printf``, then decoders."""
    out: str | None = None
    for cmd in cmds:
        if cmd.prog == "echo":
            out = " ".join(a for a in cmd.args if not re.fullmatch(r"-[neE]+", a))
        elif cmd.prog == "printf" and cmd.args:
            out = _unescape(cmd.args[0]) + " ".join(cmd.args[1:])
        elif cmd.prog in ("base64", "xxd", "rev") and out is not None:
            out = _decode(cmd, out)
        else:
            return None
    return out


def _decoded(cmd: Simple) -> str | None:
    """The text a decoder writes from a literal input, when it is one."""
    if cmd.stdin is None or cmd.prog not in ("base64", "xxd", "rev", "openssl"):
        return None
    return _decode(cmd, cmd.stdin)


def _decode(cmd: Simple, data: str) -> str | None:
    args = cmd.args
    try:
        if cmd.prog == "base64" or cmd.prog == "openssl" and "base64" in args:
            if not any(a in ("-d", "--decode", "-D") or re.fullmatch(r"-\w*d\w*", a) for a in args):
                return None
            text = data.strip()
            if not _B64.match(text):
                return None
            return base64.b64decode(text + "=" * (-len(text) % 4)).decode("utf-8", "replace")
        if cmd.prog == "xxd" and "-r" in args:
            return binascii.unhexlify(re.sub(r"\s", "", data)).decode("utf-8", "replace")
        if cmd.prog == "rev":
            return data[::-1]
    except (binascii.Error, ValueError):
        return None
    return None


def _nested_code(cmd: Simple) -> list[str]:
    """Code a command runs as a shell would: ``sh -c STR``, ``eval``, a fed-in script."""
    prog, args = cmd.prog, cmd.args
    if prog in SHELLS:
        for k, a in enumerate(args):
            if a.startswith("-") and not a.startswith("--") and "c" in a[1:]:
                return [args[k + 1]] if k + 1 < len(args) else []
        if cmd.stdin is not None and not [a for a in args if not a.startswith("-")]:
            return [cmd.stdin]
        return []
    if prog == "eval" and args:
        return [" ".join(args)]
    if prog in ("su", "runuser") and "-c" in args:
        k = args.index("-c")
        return [args[k + 1]] if k + 1 < len(args) else []
    if _INTERPRETER.match(prog):  # python -c 'os.system("nc ...")': the string it runs
        return [m.group(2) for a in args for m in _SCRIPT_SHELL.finditer(a)]
    return []


def _unescape(fmt: str) -> str:
    """printf's escapes: \\n, \\x6e, \\156."""
    try:
        return fmt.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return fmt


# -- paths ------------------------------------------------------------------------------


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


def parse(command: str, cwd: str = "/", home: str = "~") -> Parsed:
    """Take ``command`` apart as it would run in ``cwd``."""
    reader = _Reader(cwd, home)
    reader.read(command, 0)
    return Parsed(reader.commands, reader.texts)
