from pathlib import Path


def test_top_has_first_three_lines():
    text = Path("/app/top.txt").read_text()
    assert text.rstrip("\n").split("\n") == ["08:00 boot", "08:01 network up", "08:02 disk mounted"]
