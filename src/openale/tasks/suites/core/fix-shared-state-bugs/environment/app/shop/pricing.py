"""Price books: unit prices per SKU, volume discount tiers, and cached quotes."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Callable

CENT = Decimal("0.01")

Listener = Callable[[str, Decimal | None, Decimal], None]


class PriceBook:
    """Unit prices and volume discounts.

    ``quote(sku, qty)`` is expensive in real deployments, so quotes are cached:
    asking for the same quote again without any change to the book in between
    must not recompute it. ``computations`` counts the quotes actually computed.
    Quotes must always reflect the book's current prices and tiers.

    Listeners registered with ``subscribe`` are called as
    ``listener(sku, old_price, new_price)`` whenever ``set_price`` changes a
    price of *this* book (``old_price`` is None for a new SKU).
    """

    _listeners: list[Listener] = []

    def __init__(self, prices: dict[str, str | Decimal]):
        self._prices = {sku: Decimal(str(p)) for sku, p in prices.items()}
        self._tiers: dict[str, list[tuple[int, Decimal]]] = {}
        self._cache: dict[tuple[str, int], Decimal] = {}
        self.computations = 0

    def price(self, sku: str) -> Decimal:
        return self._prices[sku]

    def set_price(self, sku: str, price: str | Decimal) -> None:
        old = self._prices.get(sku)
        new = Decimal(str(price))
        self._prices[sku] = new
        if old != new:
            for listener in self._listeners:
                listener(sku, old, new)

    def add_tier(self, sku: str, min_qty: int, percent_off: str | Decimal) -> None:
        """From ``min_qty`` units on, ``percent_off`` comes off the line; the best tier wins."""
        if min_qty < 1:
            raise ValueError("min_qty must be at least 1")
        self._tiers.setdefault(sku, []).append((min_qty, Decimal(str(percent_off))))

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def quote(self, sku: str, qty: int) -> Decimal:
        """Price of ``qty`` units of ``sku``, rounded half-up to the cent."""
        if qty < 1:
            raise ValueError("qty must be at least 1")
        key = (sku, qty)
        if key not in self._cache:
            self._cache[key] = self._compute(sku, qty)
        return self._cache[key]

    def _compute(self, sku: str, qty: int) -> Decimal:
        self.computations += 1
        gross = self._prices[sku] * qty
        off = max(
            (pct for min_qty, pct in self._tiers.get(sku, []) if qty >= min_qty), default=Decimal(0)
        )
        return (gross * (Decimal(100) - off) / Decimal(100)).quantize(CENT, rounding=ROUND_HALF_UP)
