#!/usr/bin/env python3
"""wordstat: word frequency statistics for text files.

    wordstat.py [--top N] [--ignore-case] [--min-length L] FILE [FILE ...]

A word is a run of ASCII letters, optionally with inner apostrophes
("don't"). Counts are aggregated over all files ("-" reads stdin). The most
frequent words are listed by count (highest first), ties in alphabetical
order.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter

WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wordstat", description="Word frequency statistics.")
    p.add_argument("files", nargs="+", metavar="FILE", help="text files ('-' for stdin)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="how many words to list (default 10)")
    p.add_argument("--ignore-case", action="store_true", help="count words case-insensitively")
    p.add_argument("--min-length", type=int, default=1, metavar="L", help="ignore words shorter than L")
    return p


def read_text(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    with open(name, encoding="utf-8") as f:
        return f.read()


def count_words(texts: list[str], ignore_case: bool, min_length: int) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        for word in WORD.findall(text):
            if len(word) < min_length:
                continue
            counts[word.lower() if ignore_case else word] += 1
    return counts


def top_words(counts: Counter, n: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(n, 0)]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    texts = []
    for name in args.files:
        try:
            texts.append(read_text(name))
        except OSError as e:
            print(f"wordstat: cannot read {name}: {e.strerror}", file=sys.stderr)
            return 1
    counts = count_words(texts, args.ignore_case, args.min_length)
    print(f"total words: {sum(counts.values())}")
    print(f"unique words: {len(counts)}")
    for word, n in top_words(counts, args.top):
        print(f"{n:>6}  {word}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
