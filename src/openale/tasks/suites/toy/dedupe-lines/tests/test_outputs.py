from pathlib import Path


def test_unique_sorted_colors():
    text = Path("/app/unique.txt").read_text()
    assert text.rstrip("\n").split("\n") == ["black", "blue", "green", "red", "yellow"]
