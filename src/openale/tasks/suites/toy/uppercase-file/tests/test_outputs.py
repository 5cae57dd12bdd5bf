from pathlib import Path


def test_loud_is_uppercase_copy():
    text = Path("/app/loud.txt").read_text()
    assert text.rstrip("\n") == "HELLO THERE\nTHIS TEXT IS QUIET\nPLEASE MAKE IT LOUD"
