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

from openale.safety.paths import Access, accesses, resolve
from openale.safety.shell_words import Operator, Redir, Word, tokens

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
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\+?)=(.*)$", re.S)
_ASSIGN_HEAD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=")
_B64 = re.compile(r"^[A-Za-z0-9+/=\s_-]{8,}$")
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
class Parsed:
    """A command line taken apart: its simple commands and every code text seen."""

    commands: list[Simple]
    texts: list[str]  # the line itself, then nested code and decoded payloads

    def accesses(self) -> list[Access]:
        out: list[Access] = []
        for c in self.commands:
            out.extend(accesses(c))
        return out


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
        stage: list[Word | Redir] = []
        for tok in tokens(text):
            if isinstance(tok, Operator):
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

    def value(self, word: Word, depth: int) -> str:
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

    def _simple(self, stage: list[Word | Redir], depth: int) -> Simple:
        words: list[str] = []
        redirects: list[tuple[str, str]] = []
        stdin = None
        assigns: dict[str, str] = {}
        for tok in stage:
            if isinstance(tok, Redir):
                target = self.value(tok.target, depth) if tok.target else ""
                if tok.op in ("<<", "<<-"):
                    stdin = tok.heredoc
                elif tok.op == "<<<":
                    stdin = target
                else:
                    redirects.append((tok.op, target))
                continue
            value = self.value(tok, depth)
            if (
                not words
                and _ASSIGN_HEAD.match(tok.literal_prefix())
                and (m := _ASSIGN.match(value))
            ):
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


def parse(command: str, cwd: str = "/", home: str = "~") -> Parsed:
    """Take ``command`` apart as it would run in ``cwd``."""
    reader = _Reader(cwd, home)
    reader.read(command, 0)
    return Parsed(reader.commands, reader.texts)
