from pathlib import Path


def test_sorted_numerically():
    text = Path("/app/sorted.txt").read_text()
    assert text.rstrip("\n").split("\n") == ["3", "7", "9", "25", "42", "61", "100"]
