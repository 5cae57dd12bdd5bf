import sys
from decimal import Decimal

import pytest

sys.path.insert(0, "/app")

from shop import Cart, PriceBook  # noqa: E402


# ---- fail-to-pass ----------------------------------------------------------------


def test_default_items_not_shared():
    a = Cart("ana")
    a.add("apple", 2)
    b = Cart("ben")
    assert b.items == {}
    b.add("pear")
    assert a.items == {"apple": 2}
    assert Cart("cy").count() == 0


def test_seed_items_are_copied():
    seed = {"apple": 1}
    cart = Cart("ana", seed)
    cart.add("apple", 4)
    cart.add("kiwi")
    assert seed == {"apple": 1}
    seed["plum"] = 9
    assert cart.items == {"apple": 5, "kiwi": 1}
    other = Cart("ben", seed)
    assert other.items == {"apple": 1, "plum": 9}


def test_price_change_invalidates_quotes():
    book = PriceBook({"bolt": "0.10", "nut": "0.05"})
    assert book.quote("bolt", 10) == Decimal("1.00")
    assert book.quote("nut", 10) == Decimal("0.50")
    book.set_price("bolt", "0.12")
    assert book.quote("bolt", 10) == Decimal("1.20")
    book.set_price("nut", "0.07")
    assert book.quote("nut", 10) == Decimal("0.70")
    cart = Cart("ana", {"bolt": 10, "nut": 10})
    assert cart.total(book) == Decimal("1.90")


def test_new_tier_invalidates_quotes():
    book = PriceBook({"bolt": "0.10"})
    assert book.quote("bolt", 200) == Decimal("20.00")
    book.add_tier("bolt", 100, "10")
    assert book.quote("bolt", 200) == Decimal("18.00")
    book.add_tier("bolt", 150, "25")
    assert book.quote("bolt", 200) == Decimal("15.00")
    assert book.quote("bolt", 120) == Decimal("10.80")


def test_listeners_belong_to_their_book():
    one, two = PriceBook({"a": "1"}), PriceBook({"a": "1"})
    seen_one, seen_two = [], []
    one.subscribe(lambda *e: seen_one.append(e))
    two.subscribe(lambda *e: seen_two.append(e))
    two.set_price("a", "2")
    one.set_price("b", "3")
    assert seen_two == [("a", Decimal("1"), Decimal("2"))]
    assert seen_one == [("b", None, Decimal("3"))]
    assert PriceBook({"x": "1"}).set_price("x", "5") is None  # no stray listeners fire


# ---- caching must survive the fix ------------------------------------------------


def test_repeated_quotes_are_cached():
    book = PriceBook({"bolt": "0.10", "nut": "0.05"})
    for _ in range(5):
        book.quote("bolt", 10)
        book.quote("nut", 3)
    assert book.computations == 2


def test_cache_used_again_after_change():
    book = PriceBook({"bolt": "0.10"})
    book.quote("bolt", 10)
    book.set_price("bolt", "0.20")
    for _ in range(4):
        assert book.quote("bolt", 10) == Decimal("2.00")
    assert book.computations == 2
    book.set_price("bolt", "0.20")  # same price: the quote may be reused or recomputed
    assert book.quote("bolt", 10) == Decimal("2.00")
    assert book.computations <= 3


# ---- pass-to-pass ----------------------------------------------------------------


def test_tiers_and_rounding():
    book = PriceBook({"bolt": "0.10", "gear": "3.333"})
    book.add_tier("bolt", 100, "5")
    book.add_tier("bolt", 1000, "12.5")
    assert book.quote("bolt", 99) == Decimal("9.90")
    assert book.quote("bolt", 100) == Decimal("9.50")
    assert book.quote("bolt", 1000) == Decimal("87.50")
    assert book.quote("gear", 1) == Decimal("3.33")
    assert book.quote("gear", 5) == Decimal("16.67")
    with pytest.raises(ValueError):
        book.quote("bolt", 0)
    with pytest.raises(ValueError):
        book.add_tier("bolt", 0, "1")


def test_listener_change_only():
    book = PriceBook({"bolt": "0.10"})
    seen = []
    book.subscribe(lambda *e: seen.append(e))
    book.set_price("bolt", "0.10")
    book.set_price("bolt", "0.15")
    assert seen == [("bolt", Decimal("0.10"), Decimal("0.15"))]
    assert book.price("bolt") == Decimal("0.15")


def test_cart_operations():
    cart = Cart("ana", {"apple": 3})
    cart.add("pear", 2)
    cart.remove("apple", 1)
    assert cart.items == {"apple": 2, "pear": 2} and cart.count() == 4
    cart.remove("apple", 5)
    assert cart.items == {"pear": 2}
    with pytest.raises(KeyError):
        cart.remove("apple")
    with pytest.raises(ValueError):
        cart.add("pear", 0)
    book = PriceBook({"pear": "0.55"})
    assert cart.total(book) == Decimal("1.10")
    assert Cart("x").total(book) == Decimal("0.00")
