from pathlib import Path


def test_answer_is_last_line():
    assert Path("/app/answer.txt").read_text().strip() == "Cairo"
