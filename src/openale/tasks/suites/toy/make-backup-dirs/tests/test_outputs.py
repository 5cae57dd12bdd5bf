from pathlib import Path


def test_both_directories_exist():
    assert Path("/app/backup/daily").is_dir()
    assert Path("/app/backup/weekly").is_dir()
