"""Sandboxes this process owns, closed at interpreter exit unless they were detached.

Embedded and remote sandboxes register here alike, so a script that forgets
``close()`` leaves nothing running, whichever face it used.
"""

from __future__ import annotations

import atexit
import weakref
from typing import Any

_owned: weakref.WeakSet[Any] = weakref.WeakSet()


def own(sandbox: Any) -> None:
    """Close ``sandbox`` at exit unless it is ``detached`` or closed before then."""
    _owned.add(sandbox)


def disown(sandbox: Any) -> None:
    _owned.discard(sandbox)


@atexit.register
def _close_owned() -> None:
    for sb in list(_owned):
        if not sb.detached:
            try:
                sb.close()
            except Exception:  # the engine or server may already be gone at interpreter exit
                pass
