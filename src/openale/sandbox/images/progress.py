"""Progress messages of long image work (debootstrap, builds), for the CLI to show."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """A ``Progress`` that shows nothing."""


@contextlib.contextmanager
def step(say: Progress, what: str) -> Iterator[None]:
    """Say ``what`` when it starts and how long it took when it ends."""
    say(f"{what} ...")
    start = time.monotonic()
    yield
    say(f"{what}: done in {time.monotonic() - start:.1f}s")


def one_line(text: str, width: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 3] + "..."
