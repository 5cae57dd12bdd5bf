import sys

import pytest

sys.path.insert(0, "/app")

from qsparse import build_qs, parse_qs, parse_qsl, quote, unquote  # noqa: E402


# ---- fail-to-pass: unicode -------------------------------------------------------

@pytest.mark.parametrize(
    "raw,text",
    [
        ("Jos%C3%A9", "José"),
        ("%E6%9D%B1%E4%BA%AC", "東京"),
        ("%F0%9F%8E%89+party", "🎉 party"),
        ("caf%c3%a9", "café"),
        ("%C3%A9t%C3%A9", "été"),
        ("%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82", "Привет"),
    ],
)
def test_unquote_utf8(raw, text):
    assert unquote(raw) == text


def test_invalid_utf8_bytes_become_replacement_char():
    assert unquote("a%FFb") == "a\ufffdb"
    assert unquote("%C3") == "\ufffd"


def test_escape_at_end_of_text():
    assert unquote("100%25") == "100%"
    assert parse_qs("discount=50%25&note=x%21") == {"discount": ["50%"], "note": ["x!"]}
    assert unquote("%41") == "A"


@pytest.mark.parametrize(
    "text,encoded",
    [
        ("Zürich", "Z%C3%BCrich"),
        ("東京", "%E6%9D%B1%E4%BA%AC"),
        ("🎉", "%F0%9F%8E%89"),
        ("ß & €", "%C3%9F+%26+%E2%82%AC"),
    ],
)
def test_quote_utf8(text, encoded):
    assert quote(text) == encoded


def test_round_trip_unicode():
    params = {"q": "naïve café", "tags": ["日本", "a=b", "50% off", "x+y"], "ключ": "значение 🎉"}
    qs = build_qs(params)
    assert qs.isascii()
    back = parse_qs(qs)
    assert back == {"q": ["naïve café"], "tags": ["日本", "a=b", "50% off", "x+y"], "ключ": ["значение 🎉"]}


# ---- fail-to-pass: splitting -----------------------------------------------------

def test_split_at_first_equals():
    assert parse_qs("expr=a=b&token=abc==") == {"expr": ["a=b"], "token": ["abc=="]}
    assert parse_qsl("=x&k==") == [("", "x"), ("k", "=")]
    assert parse_qsl("f=%3D=1") == [("f", "==1")]


# ---- pass-to-pass ----------------------------------------------------------------

def test_basic_parsing():
    assert parse_qs("a=1&b=2&a=3") == {"a": ["1", "3"], "b": ["2"]}
    assert list(parse_qs("z=1&a=2&m=3")) == ["z", "a", "m"]
    assert parse_qsl("?x=1&&y=2&") == [("x", "1"), ("y", "2")]
    assert parse_qs("debug&page=2") == {"debug": [""], "page": ["2"]}
    assert parse_qs("") == {} and parse_qs("?") == {} and parse_qsl("&&") == []


def test_plus_handling():
    assert parse_qs("q=hello+world") == {"q": ["hello world"]}
    assert unquote("a%2Bb") == "a+b"
    assert unquote("a+b", plus_as_space=False) == "a+b"


def test_invalid_escapes_kept_literally():
    assert unquote("%zz") == "%zz"
    assert unquote("100%") == "100%"
    assert unquote("%4") == "%4"
    assert unquote("%%41") == "%A"
    assert unquote("%G1x") == "%G1x"


def test_raw_non_ascii_kept():
    assert unquote("naïve+東京") == "naïve 東京"
    assert parse_qs("ville=Zürich") == {"ville": ["Zürich"]}


def test_quote_ascii():
    assert quote("a b&c/d") == "a+b%26c%2Fd"
    assert quote("AZaz09-._~") == "AZaz09-._~"
    assert quote("a+b") == "a%2Bb"
    assert quote("") == ""


def test_build_qs():
    assert build_qs({"a": "1", "b": ["x", "y z"]}) == "a=1&b=x&b=y+z"
    assert build_qs({}) == ""
