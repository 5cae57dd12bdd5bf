from pathlib import Path


def test_names_column():
    text = Path("/app/names.txt").read_text()
    assert text.rstrip("\n").split("\n") == ["alice", "bob", "carol", "dave"]
