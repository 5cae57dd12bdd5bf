from pathlib import Path


def test_usernames_field():
    text = Path("/app/usernames.txt").read_text()
    assert text.rstrip("\n").split("\n") == ["root", "alice", "bob", "www"]
