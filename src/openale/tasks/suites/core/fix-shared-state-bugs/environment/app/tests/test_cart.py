from decimal import Decimal

import pytest

from shop import Cart, PriceBook


def test_add_and_count():
    cart = Cart("ana")
    cart.add("apple", 3)
    cart.add("pear")
    cart.add("apple")
    assert cart.items == {"apple": 4, "pear": 1}
    assert cart.count() == 5


def test_new_carts_start_empty():
    first = Cart("ana")
    first.add("apple", 2)
    second = Cart("ben")
    assert second.items == {}


def test_remove():
    cart = Cart("ana", {"apple": 3})
    cart.remove("apple", 1)
    assert cart.items == {"apple": 2}
    cart.remove("apple")
    assert cart.items == {}
    with pytest.raises(KeyError):
        cart.remove("apple")


def test_total():
    book = PriceBook({"apple": "0.40", "pear": "0.55"})
    cart = Cart("ana", {"apple": 3, "pear": 2})
    assert cart.total(book) == Decimal("2.30")
