from pathlib import Path


def test_current_conf_is_symlink_to_prod():
    link = Path("/app/current.conf")
    assert link.is_symlink()
    assert link.resolve() == Path("/app/configs/prod.conf")
    assert link.read_text() == "mode=prod\n"
