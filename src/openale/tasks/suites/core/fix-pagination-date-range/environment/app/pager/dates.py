"""Calendar helpers."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Iterator


def date_range(start: date, end: date, step: int = 1) -> Iterator[date]:
    """Dates from ``start`` to ``end``, both inclusive, ``step`` days apart.

    The last date yielded is the last one not after ``end``; nothing is
    yielded when ``start`` is after ``end``. ``step`` must be a positive
    number of days (ValueError otherwise).
    """
    if step < 1:
        raise ValueError("step must be a positive number of days")
    current = start
    while current < end:
        yield current
        current += timedelta(days=step)


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """The first and the last day of a month."""
    last = calendar.monthrange(year, month)[1]
    return date(year, month, 1), date(year, month, last)
