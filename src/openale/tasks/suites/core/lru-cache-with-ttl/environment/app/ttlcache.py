"""An LRU cache whose entries also expire after a time-to-live.

See /app/SPEC.md for the required behaviour.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Hashable


class TTLCache:
    def __init__(self, maxsize: int, ttl: float, clock: Callable[[], float] = time.monotonic):
        raise NotImplementedError

    def set(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        raise NotImplementedError

    def get(self, key: Hashable, default: Any = None) -> Any:
        raise NotImplementedError

    def delete(self, key: Hashable) -> bool:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError

    def keys(self) -> list:
        raise NotImplementedError

    def __contains__(self, key: Hashable) -> bool:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def stats(self) -> dict[str, int]:
        raise NotImplementedError
