import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

TOOL = "/app/wordstat.py"
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")

TEXT_A = """It was the best of times, it was the worst of times; it was the age of
wisdom, it was the age of foolishness. Wasn't it? IT WAS. rock'n'roll and
o'clock, 42 times 7 -- the_end.
"""
TEXT_B = "Zebra apple zebra Apple ZEBRA banana apple cherry cherry it\n"


def run(*args, stdin=None):
    return subprocess.run(["python3", TOOL, *args], input=stdin, capture_output=True, text=True)


def expected(texts, top=10, ignore_case=False, min_length=1):
    c = Counter()
    for t in texts:
        for w in WORD.findall(t):
            if len(w) >= min_length:
                c[w.lower() if ignore_case else w] += 1
    ranked = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:max(top, 0)]
    return sum(c.values()), len(c), [{"word": w, "count": n} for w, n in ranked]


@pytest.fixture()
def files(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b file.txt"
    a.write_text(TEXT_A)
    b.write_text(TEXT_B)
    return str(a), str(b)


def check_json(r, names, **kw):
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)  # exactly one JSON document, nothing else
    assert set(data) == {"files", "total_words", "unique_words", "top"}
    total, unique, top = expected([Path(n).read_text() if n != "-" else TEXT_B for n in names], **kw)
    assert data["files"] == list(names)
    assert data["total_words"] == total and data["unique_words"] == unique
    assert data["top"] == top
    return data


def test_json_single_file(files):
    check_json(run("--json", files[0]), [files[0]])


def test_json_multiple_files_and_options(files):
    a, b = files
    data = check_json(run("--ignore-case", a, b, "--json", "--top", "4"), [a, b], top=4, ignore_case=True)
    assert data["top"][0] == {"word": "it", "count": 7}
    check_json(run("--min-length", "5", b, a, "--json", "--top", "3"), [b, a], top=3, min_length=5)


def test_json_flag_last_and_all_words(files):
    a, _ = files
    data = check_json(run("--top", "100", a, "--json"), [a], top=100)
    assert {"word": "rock'n'roll", "count": 1} in data["top"]
    assert len(data["top"]) == data["unique_words"]


def test_json_top_zero(files):
    data = check_json(run("--json", "--top", "0", files[1]), [files[1]], top=0)
    assert data["top"] == []


def test_json_stdin():
    data = check_json(run("--json", "--ignore-case", "-", stdin=TEXT_B), ["-"], ignore_case=True)
    assert data["top"][:2] == [{"word": "apple", "count": 3}, {"word": "zebra", "count": 3}]


def test_json_missing_file(files):
    r = run("--json", files[0], "/nope/missing.txt")
    assert r.returncode == 1
    assert r.stdout == ""
    assert "cannot read /nope/missing.txt" in r.stderr


def test_text_mode_unchanged(files):
    a, b = files
    r = run("--top", "3", b)
    assert r.returncode == 0
    assert r.stdout == "total words: 10\nunique words: 8\n     2  apple\n     2  cherry\n     1  Apple\n"
    r = run("--ignore-case", "--top", "2", "--min-length", "6", a, b)
    assert r.stdout == "total words: 8\nunique words: 7\n     2  cherry\n     1  banana\n"
    r = run("/app/samples/fox.txt", "--top", "1")
    assert r.stdout == "total words: 23\nunique words: 17\n     3  dog\n"


def test_text_mode_errors_unchanged():
    r = run("/nope/missing.txt")
    assert r.returncode == 1 and r.stdout == "" and "cannot read /nope/missing.txt" in r.stderr


def test_help_mentions_json():
    assert "--json" in run("--help").stdout
