from pathlib import Path


def test_renamed():
    assert Path("/app/final.txt").read_text() == "Dear team,\nthe release is ready.\n"
    assert not Path("/app/draft.txt").exists()
