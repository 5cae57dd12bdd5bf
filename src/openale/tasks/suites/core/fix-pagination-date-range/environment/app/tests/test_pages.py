import pytest

from pager import page_count, page_window, paginate


def test_page_count_partial_last_page():
    assert page_count(21, 10) == 3


def test_page_count_exact_multiple():
    assert page_count(20, 10) == 2


def test_page_count_rejects_bad_per_page():
    with pytest.raises(ValueError):
        page_count(10, 0)


def test_first_page():
    page = paginate(list(range(25)), 1, 10)
    assert page.items == list(range(10))
    assert page.has_next and not page.has_prev
    assert page.total_pages == 3


def test_last_page_has_no_next():
    page = paginate(list(range(20)), 2, 10)
    assert page.items == list(range(10, 20))
    assert not page.has_next


def test_page_window_middle():
    assert page_window(5, 10) == [3, 4, 5, 6, 7]


def test_page_window_start():
    assert page_window(1, 10) == [1, 2, 3, 4, 5]
