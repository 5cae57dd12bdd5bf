from decimal import Decimal

from shop import PriceBook


def test_quote_with_tiers():
    book = PriceBook({"bolt": "0.10"})
    book.add_tier("bolt", 100, "5")
    book.add_tier("bolt", 1000, "12.5")
    assert book.quote("bolt", 99) == Decimal("9.90")
    assert book.quote("bolt", 100) == Decimal("9.50")
    assert book.quote("bolt", 1000) == Decimal("87.50")


def test_quotes_are_cached():
    book = PriceBook({"bolt": "0.10"})
    book.quote("bolt", 10)
    book.quote("bolt", 10)
    book.quote("bolt", 10)
    assert book.computations == 1


def test_quote_follows_price_change():
    book = PriceBook({"bolt": "0.10"})
    assert book.quote("bolt", 10) == Decimal("1.00")
    book.set_price("bolt", "0.12")
    assert book.quote("bolt", 10) == Decimal("1.20")


def test_listener_sees_price_change():
    book = PriceBook({"bolt": "0.10"})
    seen = []
    book.subscribe(lambda sku, old, new: seen.append((sku, old, new)))
    book.set_price("bolt", "0.15")
    assert seen == [("bolt", Decimal("0.10"), Decimal("0.15"))]
