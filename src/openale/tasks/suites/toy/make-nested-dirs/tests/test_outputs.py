from pathlib import Path


def test_nested_directories_exist():
    assert Path("/app/project/src/utils").is_dir()
