from pathlib import Path


def test_latest_is_symlink_to_v2():
    link = Path("/app/latest")
    assert link.is_symlink()
    assert link.resolve() == Path("/app/releases/v2")
    assert (link / "VERSION").read_text() == "2.0\n"
