from pathlib import Path


def test_answer_is_file_count():
    assert Path("/app/answer.txt").read_text().strip() == "7"
