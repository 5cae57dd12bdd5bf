from pathlib import Path


def test_version_bumped():
    text = Path("/app/app.conf").read_text()
    assert text.rstrip("\n").split("\n") == ["name=shop", "version=2", "debug=false"]
