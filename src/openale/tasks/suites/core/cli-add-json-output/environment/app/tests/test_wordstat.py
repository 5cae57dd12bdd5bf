import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent.parent
TOOL = APP / "wordstat.py"
FOX = APP / "samples" / "fox.txt"


def run(*args, stdin=None):
    return subprocess.run([sys.executable, str(TOOL), *args], input=stdin,
                          capture_output=True, text=True)


def test_text_report():
    r = run("--top", "3", str(FOX))
    assert r.returncode == 0
    assert r.stdout == (
        "total words: 23\n"
        "unique words: 17\n"
        "     3  dog\n"
        "     3  fox\n"
        "     2  The\n"
    )


def test_ignore_case_and_min_length():
    r = run("--top", "2", "--ignore-case", "--min-length", "4", str(FOX))
    assert r.stdout.splitlines() == ["total words: 8", "unique words: 8", "     1  brown", "     1  care"]


def test_stdin():
    r = run("-", stdin="b a b\n")
    assert r.stdout == "total words: 3\nunique words: 2\n     2  b\n     1  a\n"


def test_missing_file():
    r = run("/nonexistent.txt")
    assert r.returncode == 1
    assert r.stdout == ""
    assert "cannot read /nonexistent.txt" in r.stderr
