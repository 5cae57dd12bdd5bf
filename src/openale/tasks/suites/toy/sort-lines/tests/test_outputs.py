from pathlib import Path


def test_sorted_alphabetically():
    text = Path("/app/sorted.txt").read_text()
    assert text.rstrip("\n").split("\n") == [
        "apple",
        "banana",
        "fig",
        "kiwi",
        "lemon",
        "mango",
        "pear",
    ]
