from pathlib import Path


def test_hello_file_content():
    path = Path("/app/hello.txt")
    assert path.is_file()
    assert path.read_text() in ("hello world", "hello world\n")
