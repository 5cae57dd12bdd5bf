from pathlib import Path


def test_answer_is_first_line():
    assert Path("/app/answer.txt").read_text().strip() == "Olivia"
