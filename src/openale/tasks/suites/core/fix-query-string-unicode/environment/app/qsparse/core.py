"""A small, dependency-free query-string codec.

Text is UTF-8: a percent-escape ``%XX`` stands for one *byte*, and the bytes
of consecutive escapes together form UTF-8 text (``%C3%A9`` is ``é``).
"""

from __future__ import annotations

_HEX = "0123456789abcdefABCDEF"
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def unquote(text: str, plus_as_space: bool = True) -> str:
    """Decode percent-escapes in ``text``.

    - ``%XX`` (two hex digits, either case) is a byte; runs of bytes decode
      as UTF-8, and bytes that are not valid UTF-8 become U+FFFD.
    - A ``%`` not followed by two hex digits is kept literally.
    - ``+`` becomes a space when ``plus_as_space`` is true.
    - Any other character (including non-ASCII ones) is kept as is.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "%" and i + 3 < len(text) and text[i + 1] in _HEX and text[i + 2] in _HEX:
            out.append(chr(int(text[i + 1 : i + 3], 16)))
            i += 3
            continue
        if c == "+" and plus_as_space:
            out.append(" ")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def quote(text: str) -> str:
    """Encode ``text`` for a query string.

    Unreserved characters (ASCII letters, digits, ``-._~``) stay; a space
    becomes ``+``; every other character is UTF-8 encoded and each byte is
    written as ``%XX`` with upper-case hex digits.
    """
    out: list[str] = []
    for c in text:
        if c in _SAFE:
            out.append(c)
        elif c == " ":
            out.append("+")
        else:
            out.append("%%%02X" % ord(c))
    return "".join(out)


def parse_qsl(query: str) -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs of ``query``, in order.

    A leading ``?`` is ignored; pairs are separated by ``&``; empty pairs are
    skipped; a pair is split at its *first* ``=`` (a pair without ``=`` has
    the value ``""``); keys and values are then unquoted.
    """
    if query.startswith("?"):
        query = query[1:]
    pairs: list[tuple[str, str]] = []
    for chunk in query.split("&"):
        if not chunk:
            continue
        if "=" in chunk:
            parts = chunk.split("=")
            key, value = parts[0], parts[1]
        else:
            key, value = chunk, ""
        pairs.append((unquote(key), unquote(value)))
    return pairs


def parse_qs(query: str) -> dict[str, list[str]]:
    """Like ``parse_qsl``, grouped by key: keys in order of first appearance,
    each with all its values in order."""
    result: dict[str, list[str]] = {}
    for key, value in parse_qsl(query):
        result.setdefault(key, []).append(value)
    return result


def build_qs(params: dict[str, str | list[str]]) -> str:
    """The query string (no leading ``?``) for ``params``; a list value repeats its key."""
    parts: list[str] = []
    for key, value in params.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            parts.append(f"{quote(key)}={quote(v)}")
    return "&".join(parts)
