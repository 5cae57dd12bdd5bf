from pathlib import Path


def test_empty_file_exists_and_is_empty():
    path = Path("/app/empty.txt")
    assert path.is_file()
    assert path.stat().st_size == 0
