from pathlib import Path

CONTENT = "[server]\nhost = localhost\nport = 8000\n\n[log]\nlevel = info\n"


def test_backup_is_a_copy():
    assert Path("/app/config.ini.bak").read_text() == CONTENT


def test_original_kept():
    assert Path("/app/config.ini").read_text() == CONTENT
