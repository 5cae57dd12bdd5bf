from datetime import date

from pager import date_range, month_bounds


def test_date_range_includes_end():
    days = list(date_range(date(2024, 3, 1), date(2024, 3, 3)))
    assert days == [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)]


def test_date_range_empty_when_reversed():
    assert list(date_range(date(2024, 3, 5), date(2024, 3, 1))) == []


def test_month_bounds_february_leap_year():
    assert month_bounds(2024, 2) == (date(2024, 2, 1), date(2024, 2, 29))
