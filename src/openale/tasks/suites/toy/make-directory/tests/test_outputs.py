from pathlib import Path


def test_output_directory_exists():
    assert Path("/app/output").is_dir()
