"""Parsing and building URL query strings (application/x-www-form-urlencoded)."""

from qsparse.core import build_qs, parse_qs, parse_qsl, quote, unquote

__all__ = ["build_qs", "parse_qs", "parse_qsl", "quote", "unquote"]
