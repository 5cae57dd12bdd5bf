"""Shopping carts."""

from __future__ import annotations

from decimal import Decimal

from shop.pricing import PriceBook


class Cart:
    """A customer's cart: quantities per SKU.

    ``items`` seeds the cart; the cart keeps its own copy, so neither later
    changes to the mapping passed in nor changes to the cart affect each other.
    """

    def __init__(self, owner: str, items: dict[str, int] = {}):
        self.owner = owner
        self.items = items

    def add(self, sku: str, qty: int = 1) -> None:
        if qty < 1:
            raise ValueError("qty must be at least 1")
        self.items[sku] = self.items.get(sku, 0) + qty

    def remove(self, sku: str, qty: int | None = None) -> None:
        """Remove ``qty`` units of ``sku`` (all of them when qty is None)."""
        if sku not in self.items:
            raise KeyError(sku)
        if qty is None or qty >= self.items[sku]:
            del self.items[sku]
        else:
            self.items[sku] -= qty

    def count(self) -> int:
        return sum(self.items.values())

    def total(self, book: PriceBook) -> Decimal:
        return sum((book.quote(sku, qty) for sku, qty in self.items.items()), Decimal("0.00"))
