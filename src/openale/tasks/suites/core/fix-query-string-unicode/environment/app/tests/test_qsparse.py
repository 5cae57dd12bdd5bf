from qsparse import build_qs, parse_qs, parse_qsl, quote, unquote


def test_simple_pairs():
    assert parse_qs("a=1&b=2&a=3") == {"a": ["1", "3"], "b": ["2"]}


def test_leading_question_mark_and_empty_pairs():
    assert parse_qsl("?x=1&&y=2&") == [("x", "1"), ("y", "2")]


def test_flag_without_value():
    assert parse_qs("debug&page=2") == {"debug": [""], "page": ["2"]}


def test_plus_and_space():
    assert parse_qs("q=hello+world") == {"q": ["hello world"]}
    assert unquote("a%2Bb") == "a+b"


def test_value_containing_equals():
    assert parse_qs("expr=a=b&token=abc==") == {"expr": ["a=b"], "token": ["abc=="]}


def test_utf8_escapes():
    assert parse_qs("name=Jos%C3%A9") == {"name": ["José"]}


def test_quote_ascii():
    assert quote("a b&c/d") == "a+b%26c%2Fd"


def test_build_unicode():
    assert build_qs({"city": "Zürich"}) == "city=Z%C3%BCrich"
