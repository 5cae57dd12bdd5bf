from pathlib import Path


def test_calm_is_lowercase_copy():
    text = Path("/app/calm.txt").read_text()
    assert text.rstrip("\n") == "stop shouting\nthis is too loud\nuse small letters"
