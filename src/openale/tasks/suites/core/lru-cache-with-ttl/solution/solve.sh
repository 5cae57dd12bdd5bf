#!/bin/bash
set -euo pipefail
cat > /app/ttlcache.py <<'PY'
"""An LRU cache whose entries also expire after a time-to-live.

See /app/SPEC.md for the required behaviour.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Hashable


class TTLCache:
    def __init__(self, maxsize: int, ttl: float, clock: Callable[[], float] = time.monotonic):
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 1:
            raise ValueError("maxsize must be an integer >= 1")
        if not ttl > 0:
            raise ValueError("ttl must be > 0")
        self.maxsize = maxsize
        self.ttl = ttl
        self._clock = clock
        self._data: OrderedDict[Hashable, tuple[Any, float]] = OrderedDict()
        self._hits = self._misses = self._evictions = 0

    def _live(self, key: Hashable, now: float) -> bool:
        item = self._data.get(key)
        if item is None:
            return False
        if now >= item[1]:
            del self._data[key]
            return False
        return True

    def _purge(self, now: float) -> None:
        for key in [k for k, (_, exp) in self._data.items() if now >= exp]:
            del self._data[key]

    def set(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        if ttl is None:
            ttl = self.ttl
        elif not ttl > 0:
            raise ValueError("ttl must be > 0")
        now = self._clock()
        if key in self._data:
            self._data[key] = (value, now + ttl)
            self._data.move_to_end(key)
            return
        if len(self._data) >= self.maxsize:
            self._purge(now)
            while len(self._data) >= self.maxsize:
                self._data.popitem(last=False)
                self._evictions += 1
        self._data[key] = (value, now + ttl)

    def get(self, key: Hashable, default: Any = None) -> Any:
        if self._live(key, self._clock()):
            self._hits += 1
            self._data.move_to_end(key)
            return self._data[key][0]
        self._misses += 1
        return default

    def delete(self, key: Hashable) -> bool:
        if self._live(key, self._clock()):
            del self._data[key]
            return True
        return False

    def clear(self) -> None:
        self._data.clear()

    def keys(self) -> list:
        now = self._clock()
        return [k for k, (_, exp) in self._data.items() if now < exp]

    def __contains__(self, key: Hashable) -> bool:
        item = self._data.get(key)
        return item is not None and self._clock() < item[1]

    def __len__(self) -> int:
        return len(self.keys())

    @property
    def stats(self) -> dict[str, int]:
        return {"hits": self._hits, "misses": self._misses, "evictions": self._evictions}
PY
cd /app && python3 -c "from ttlcache import TTLCache; c = TTLCache(2, 1.0); c.set('a', 1); assert c.get('a') == 1"
