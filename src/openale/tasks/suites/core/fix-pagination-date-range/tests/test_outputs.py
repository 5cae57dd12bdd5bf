import sys
from datetime import date

import pytest

sys.path.insert(0, "/app")

from pager import Page, date_range, month_bounds, page_count, page_window, paginate  # noqa: E402


# ---- fail-to-pass: page counting -------------------------------------------------


@pytest.mark.parametrize(
    "total,per_page,expected",
    [
        (20, 10, 2),
        (10, 10, 1),
        (0, 10, 0),
        (0, 1, 0),
        (1, 1, 1),
        (7, 1, 7),
        (100, 25, 4),
        (99, 33, 3),
    ],
)
def test_page_count_exact(total, per_page, expected):
    assert page_count(total, per_page) == expected


def test_last_full_page_has_no_next():
    page = paginate(list(range(30)), 3, 10)
    assert page.items == list(range(20, 30))
    assert page.total_pages == 3
    assert not page.has_next and page.has_prev


def test_page_past_exact_end_is_rejected():
    with pytest.raises(ValueError):
        paginate(list(range(20)), 3, 10)


def test_empty_sequence():
    page = paginate([], 1, 10)
    assert page == Page([], 1, 0, 0)
    assert not page.has_next and not page.has_prev


# ---- fail-to-pass: date ranges ---------------------------------------------------


def test_date_range_inclusive_end():
    assert list(date_range(date(2024, 3, 1), date(2024, 3, 3))) == [
        date(2024, 3, 1),
        date(2024, 3, 2),
        date(2024, 3, 3),
    ]


def test_date_range_single_day():
    assert list(date_range(date(2023, 7, 4), date(2023, 7, 4))) == [date(2023, 7, 4)]


def test_date_range_step_landing_on_end():
    got = list(date_range(date(2024, 1, 1), date(2024, 1, 10), step=3))
    assert got == [date(2024, 1, 1), date(2024, 1, 4), date(2024, 1, 7), date(2024, 1, 10)]


def test_date_range_step_not_landing_on_end():
    got = list(date_range(date(2024, 1, 1), date(2024, 1, 9), step=3))
    assert got == [date(2024, 1, 1), date(2024, 1, 4), date(2024, 1, 7)]


def test_date_range_across_leap_day_and_year():
    got = list(date_range(date(2024, 2, 27), date(2024, 3, 1)))
    assert got == [date(2024, 2, 27), date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)]
    got = list(date_range(date(2023, 12, 30), date(2024, 1, 2)))
    assert len(got) == 4 and got[-1] == date(2024, 1, 2)


def test_date_range_is_lazy_iterator():
    it = date_range(date(2024, 1, 1), date(9999, 12, 31))
    assert next(it) == date(2024, 1, 1)
    assert next(it) == date(2024, 1, 2)


# ---- pass-to-pass: behaviour that already worked ---------------------------------


def test_partial_pages():
    assert page_count(21, 10) == 3
    assert page_count(1, 10) == 1
    page = paginate(list(range(25)), 3, 10)
    assert page.items == [20, 21, 22, 23, 24]
    assert not page.has_next


def test_first_page():
    page = paginate("abcdefg", 1, 3)
    assert page.items == ["a", "b", "c"]
    assert page.has_next and not page.has_prev and page.total_items == 7


@pytest.mark.parametrize("args", [(10, 0), (10, -1), (-1, 10)])
def test_page_count_rejects_bad_input(args):
    with pytest.raises(ValueError):
        page_count(*args)


def test_paginate_rejects_page_zero():
    with pytest.raises(ValueError):
        paginate([1, 2, 3], 0, 2)
    with pytest.raises(ValueError):
        paginate([1, 2, 3], 3, 2)


def test_page_window():
    assert page_window(5, 10) == [3, 4, 5, 6, 7]
    assert page_window(1, 10) == [1, 2, 3, 4, 5]
    assert page_window(10, 10) == [6, 7, 8, 9, 10]
    assert page_window(2, 3) == [1, 2, 3]
    assert page_window(1, 0) == []


def test_date_range_reversed_and_bad_step():
    assert list(date_range(date(2024, 3, 5), date(2024, 3, 1))) == []
    with pytest.raises(ValueError):
        list(date_range(date(2024, 3, 1), date(2024, 3, 5), step=0))


def test_month_bounds():
    assert month_bounds(2024, 2) == (date(2024, 2, 1), date(2024, 2, 29))
    assert month_bounds(2023, 2) == (date(2023, 2, 1), date(2023, 2, 28))
    assert month_bounds(2023, 12) == (date(2023, 12, 1), date(2023, 12, 31))
