import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BASE = "http://127.0.0.1:8080"
SITE = Path("/app/site")


_state = {}


def wait_for_server():
    if "up" not in _state:
        _state["up"] = False
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(BASE + "/", timeout=2).close()
                _state["up"] = True
                break
            except urllib.error.HTTPError:
                _state["up"] = True
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
    assert _state["up"], f"no HTTP server answering on {BASE}"


def fetch(path):
    wait_for_server()
    try:
        with urllib.request.urlopen(BASE + path, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_latest_file_content():
    assert (SITE / "releases" / "latest.txt").read_bytes() == b"1.10.11\n"


def test_index_served():
    status, body = fetch("/")
    assert status == 200
    assert body == (SITE / "index.html").read_bytes()


def test_latest_served():
    status, body = fetch("/releases/latest.txt")
    assert status == 200 and body == b"1.10.11\n"


@pytest.mark.parametrize("path", ["/docs/guide.html", "/css/style.css", "/releases/tool-1.10.11.tar.gz",
                                  "/releases/tool-0.9.12.tar.gz"])
def test_files_served_byte_for_byte(path):
    status, body = fetch(path)
    assert status == 200
    assert body == (SITE / path.lstrip("/")).read_bytes()


def test_missing_is_404():
    status, _ = fetch("/releases/tool-9.9.9.tar.gz")
    assert status == 404
