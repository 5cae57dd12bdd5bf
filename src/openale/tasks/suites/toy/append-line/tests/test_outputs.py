from pathlib import Path


def test_cherry_appended_as_last_line():
    text = Path("/app/fruits.txt").read_text()
    assert text.rstrip("\n").split("\n") == ["apple", "banana", "grape", "cherry"]
