from pathlib import Path


def test_greeting():
    assert Path("/app/greeting.txt").read_text() == "hello from the old layout\n"


def test_seed_untouched():
    assert Path("/app/seed.txt").read_text() == "seed\n"
