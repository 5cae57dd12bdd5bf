from pathlib import Path


def test_answer_is_word_count():
    assert Path("/app/answer.txt").read_text().strip() == "18"
