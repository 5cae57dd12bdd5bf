import math
import re
import subprocess
from pathlib import Path

import pytest

APP = Path("/app")
TOOL = APP / "bin" / "tool"


@pytest.fixture(scope="module", autouse=True)
def build():
    subprocess.run(["make", "clean"], cwd=APP, capture_output=True)
    assert not TOOL.exists()
    r = subprocess.run(["make"], cwd=APP, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert TOOL.is_file()


def run(text, *args):
    return subprocess.run([str(TOOL), *args], input=text, capture_output=True, text=True, timeout=10)


def check(values, text=None):
    r = run(text if text is not None else "".join(f"{v}\n" for v in values))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    if not values:
        assert lines == ["count: 0"]
        return
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    assert lines[:4] == [f"count: {n}", f"sum: {sum(values)}", f"min: {min(values)}", f"max: {max(values)}"]
    assert len(lines) == 6
    m = re.fullmatch(r"mean: (-?\d+\.\d\d)", lines[4])
    s = re.fullmatch(r"stddev: (\d+\.\d\d)", lines[5])
    assert m and s, lines
    assert abs(float(m.group(1)) - mean) <= 0.0051
    assert abs(float(s.group(1)) - std) <= 0.0051


def test_flags_kept():
    out = subprocess.run(["make", "-B", "-n"], cwd=APP, capture_output=True, text=True).stdout
    for flag in ("-std=c11", "-Wall", "-Wextra", "-Werror"):
        assert flag in out


def test_readme_example():
    r = run("1\n2\n3\n4\n5\n")
    assert r.stdout == "count: 5\nsum: 15\nmin: 1\nmax: 5\nmean: 3.00\nstddev: 1.41\n"


def test_positive_values():
    check([7, 12, 9, 30, 8])
    check([42])


def test_negative_values():
    check([-5, -17, -3])
    check([-100, 250, 0, 3])


def test_large_values():
    check([2_000_000_000, 2_000_000_000, 1_999_999_999, -2_000_000_000])


def test_blank_and_comment_lines():
    check([4, 8, 15, 16, 23, 42], text="# lost\n4\n\n  8 \n\t15\n   # comment\n16\n23\n42")


def test_empty_input():
    check([], text="")
    check([], text="# nothing\n\n")


def test_invalid_line():
    r = run("1\n2\nabc\n4\n")
    assert r.returncode == 2
    assert "error: line 3: invalid number 'abc'" in r.stderr
    r = run("5\n6x\n")
    assert r.returncode == 2 and "line 2" in r.stderr


def test_file_argument(tmp_path):
    f = tmp_path / "nums.txt"
    f.write_text("10\n20\n30\n")
    r = subprocess.run([str(TOOL), str(f)], capture_output=True, text=True)
    assert r.stdout.splitlines()[:4] == ["count: 3", "sum: 60", "min: 10", "max: 30"]
