"""A tiny shop domain model: price books with volume discounts, and carts."""

from shop.cart import Cart
from shop.pricing import PriceBook

__all__ = ["Cart", "PriceBook"]
