#!/bin/bash
set -euo pipefail
cd /app
python3 - <<'PY'
from pathlib import Path

p = Path("shop/cart.py")
s = p.read_text()
s = s.replace("items: dict[str, int] = {}):", "items: dict[str, int] | None = None):")
s = s.replace("self.items = items", "self.items = dict(items or {})")
p.write_text(s)

p = Path("shop/pricing.py")
s = p.read_text()
s = s.replace("    _listeners: list[Listener] = []\n\n", "")
s = s.replace("        self._cache: dict[tuple[str, int], Decimal] = {}\n",
              "        self._cache: dict[tuple[str, int], Decimal] = {}\n"
              "        self._listeners: list[Listener] = []\n")
s = s.replace("        self._prices[sku] = new\n", "        self._prices[sku] = new\n        self._cache.clear()\n")
s = s.replace("        self._tiers.setdefault(sku, []).append((min_qty, Decimal(str(percent_off))))\n",
              "        self._tiers.setdefault(sku, []).append((min_qty, Decimal(str(percent_off))))\n"
              "        self._cache.clear()\n")
p.write_text(s)
PY
python3 -m pytest -q /app/tests
