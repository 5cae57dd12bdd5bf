"""Small helpers for paginating listings and iterating over calendar dates."""

from pager.dates import date_range, month_bounds
from pager.pages import Page, page_count, page_window, paginate

__all__ = ["Page", "date_range", "month_bounds", "page_count", "page_window", "paginate"]
