"""Pagination helpers. Pages are numbered from 1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Page:
    items: list
    number: int
    total_pages: int
    total_items: int

    @property
    def has_next(self) -> bool:
        return self.number < self.total_pages

    @property
    def has_prev(self) -> bool:
        return self.number > 1


def page_count(total_items: int, per_page: int) -> int:
    """How many pages ``total_items`` items fill at ``per_page`` items a page.

    No items make no pages (0). ``per_page`` must be at least 1 and
    ``total_items`` must not be negative (ValueError otherwise).
    """
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    if total_items < 0:
        raise ValueError("total_items must not be negative")
    return total_items // per_page + 1


def paginate(items: Sequence, page: int, per_page: int) -> Page:
    """Page number ``page`` of ``items``.

    Page 1 of an empty sequence is an empty page with ``total_pages == 0``.
    A page number below 1, or above the last page of a non-empty sequence,
    raises ValueError.
    """
    total = len(items)
    pages = page_count(total, per_page)
    if page < 1 or (total and page > pages):
        raise ValueError(f"page {page} out of range (1..{pages})")
    start = (page - 1) * per_page
    return Page(list(items[start : start + per_page]), page, pages, total)


def page_window(current: int, total_pages: int, width: int = 5) -> list[int]:
    """Up to ``width`` consecutive page numbers around ``current`` for a pager UI.

    The window is centred on ``current`` where possible and shifted to stay
    within 1..total_pages.
    """
    if total_pages <= 0:
        return []
    width = min(width, total_pages)
    first = max(1, current - width // 2)
    first = min(first, total_pages - width + 1)
    return list(range(first, first + width))
