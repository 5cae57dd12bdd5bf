from pathlib import Path


def test_port_line_appended():
    text = Path("/app/server.conf").read_text()
    assert text.rstrip("\n").split("\n") == ["host=0.0.0.0", "workers=4", "port=8080"]
