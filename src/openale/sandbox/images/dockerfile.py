"""What a Dockerfile builds on: the images its ``FROM`` instructions name.

One parser for every build (toolbox, task environments, EnvHub), read the way
the engine reads a Dockerfile: instructions, not lines. A line continued with
the escape character belongs to the instruction above it (so a
``from x import y`` inside a multi-line ``RUN`` is no ``FROM``), comments
are skipped, and ``--platform=`` flags and ``AS`` stage names are understood.
"""

from __future__ import annotations

import re

_DIRECTIVE = re.compile(r"^#\s*(\w+)\s*=\s*(\S+)\s*$")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def from_images(text: str) -> list[str]:
    """Images named in ``FROM``, in order and once each.

    Left out: earlier build stages (``FROM build AS b`` then ``FROM b``),
    ``scratch``, and names built from an ``ARG`` without a default. An ``ARG``
    given before the first ``FROM`` with a default is filled in, as a build
    without ``--build-arg`` does.
    """
    args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    for words in _instructions(text):
        keyword, operands = words[0].upper(), words[1:]
        if keyword == "ARG" and not stages and not images:
            for operand in operands:
                name, sep, default = operand.partition("=")
                if sep:
                    args[name] = default.strip("\"'")
        elif keyword == "FROM":
            operands = [w for w in operands if not w.startswith("--")]
            if not operands:
                continue
            image = _VARIABLE.sub(lambda m: args.get(m[1] or m[2], m[0]), operands[0])
            if "$" not in image and image != "scratch" and image.lower() not in stages:
                if image not in images:
                    images.append(image)
            if len(operands) >= 3 and operands[1].lower() == "as":
                stages.add(operands[2].lower())
    return images


def _instructions(text: str) -> list[list[str]]:
    """Each instruction's words, continuation lines joined and comments dropped."""
    lines = text.splitlines()
    escape = "\\"
    for line in lines:
        # Parser directives come first, before any comment or instruction.
        match = _DIRECTIVE.match(line.strip())
        if match is None:
            break
        if match[1].lower() == "escape":
            escape = match[2]
    instructions: list[list[str]] = []
    pending = ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue
        body = line.rstrip()
        if body.endswith(escape):
            pending += body[: -len(escape)] + " "
            continue
        words = (pending + body).split()
        pending = ""
        if words:
            instructions.append(words)
    if pending.split():
        instructions.append(pending.split())
    return instructions
