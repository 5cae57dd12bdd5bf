"""Shell words: the lexer under ``openale.safety.shell``.

It splits a command line into words, operators and redirections the way a
shell would, keeping each word's pieces apart: literal text (quotes and
backslashes removed), ``$NAME`` expansions and ``$(...)``/backtick code, so
the reader above can substitute what it knows. Here-documents are attached
to their redirection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REDIRECT = re.compile(r"(\d*)(>>|>\||>&|&>>|&>|<<<|<<-|<<|<&|<>|>|<)")


@dataclass(slots=True)
class Word:
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
class Operator:
    op: str


@dataclass(slots=True)
class Redir:
    op: str
    target: Word | None = None
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


def _backtick(s: str, i: int, parts: list[tuple[str, str]]) -> int:
    """A `...` substitution starting at ``s[i]``: record it, return the index after it."""
    j = s.find("`", i + 1)
    j = len(s) if j < 0 else j
    parts.append(("sub", s[i + 1 : j]))
    return j + 1


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


def tokens(s: str) -> list[Word | Operator | Redir]:
    out: list[Word | Operator | Redir] = []
    pending: list[Redir] = []  # here-documents whose bodies start at the next newline
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
            out.append(Operator(";"))
            i += 1
            for redir in pending:
                delim = redir.target.literal_prefix() if redir.target else ""
                body_end = s.find("\n" + delim + "\n", i - 1)
                if body_end < 0:
                    stop = s.find("\n" + delim, i - 1)
                    body_end = stop if stop >= 0 and s.endswith(delim) else n
                redir.heredoc = s[i : body_end + 1] if body_end < n else s[i:]
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
                out.append(Word([("sub", s[i + 2 : end])]))
                i = end + 1
                continue
            i = m.end()
            while i < n and s[i] in " \t":
                i += 1
            redir = Redir(op)
            if i < n and s[i] not in ";&|\n()":
                redir.target, i = _word(s, i)
            if op in ("<<", "<<-"):
                pending.append(redir)
            out.append(redir)
            continue
        if ch in ";&|()":
            two = s[i : i + 2]
            if two in ("&&", "||", ";;", "|&"):
                out.append(Operator("|" if two == "|&" else ";"))
                i += 2
            else:
                out.append(Operator("|" if ch == "|" else ";"))
                i += 1
            continue
        word, i = _word(s, i)
        out.append(word)
    return out


def _word(s: str, i: int) -> tuple[Word, int]:
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
                    i = _backtick(s, i, parts)
                else:
                    buf.append(c)
                    i += 1
            i += 1
        elif ch == "$":
            flush()
            i = _dollar(s, i, parts)
        elif ch == "`":
            flush()
            i = _backtick(s, i, parts)
        else:
            buf.append(ch)
            i += 1
    flush()
    return Word(parts, quoted), i
