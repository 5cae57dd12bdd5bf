import gzip
import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = "/app/rotate.sh"


def rotate(*args, cwd=None):
    return subprocess.run(["bash", "-c", 'exec "$0" "$@"', SCRIPT, *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=30)


def archives(log: Path):
    return sorted(p.name for p in log.parent.iterdir() if p.name.startswith(log.name + "."))


def gz(path: Path) -> bytes:
    with gzip.open(path, "rb") as f:
        return f.read()


def test_executable():
    assert os.access(SCRIPT, os.X_OK)


def test_rotation_sequence(tmp_path):
    log = tmp_path / "app.log"
    contents = [f"generation {i}\n".encode() * (i + 1) for i in range(8)]
    for i, data in enumerate(contents):
        log.write_bytes(data)
        r = rotate(log, 4)
        assert r.returncode == 0, r.stderr
        assert log.exists() and log.stat().st_size == 0
        assert (tmp_path / "app.log.1").read_bytes() == data
        if i >= 1:
            assert gz(tmp_path / "app.log.2.gz") == contents[i - 1]
        if i >= 2:
            assert gz(tmp_path / "app.log.3.gz") == contents[i - 2]
        if i >= 3:
            assert gz(tmp_path / "app.log.4.gz") == contents[i - 3]
    assert archives(log) == ["app.log.1", "app.log.2.gz", "app.log.3.gz", "app.log.4.gz"]
    assert not (tmp_path / "app.log.1.gz").exists() and not (tmp_path / "app.log.5.gz").exists()


def test_default_keep_is_five(tmp_path):
    log = tmp_path / "svc.log"
    for i in range(9):
        log.write_text(f"run {i}\n")
        assert rotate(log).returncode == 0
    assert archives(log) == ["svc.log.1", "svc.log.2.gz", "svc.log.3.gz", "svc.log.4.gz", "svc.log.5.gz"]
    assert (tmp_path / "svc.log.1").read_text() == "run 8\n"
    assert gz(tmp_path / "svc.log.5.gz") == b"run 4\n"


def test_keep_one(tmp_path):
    log = tmp_path / "one.log"
    for i in range(3):
        log.write_text(f"v{i}\n")
        assert rotate(log, 1).returncode == 0
    assert archives(log) == ["one.log.1"]
    assert (tmp_path / "one.log.1").read_text() == "v2\n"


def test_shrinking_keep_removes_leftovers(tmp_path):
    log = tmp_path / "x.log"
    for i in range(7):
        log.write_text(f"{i}\n")
        assert rotate(log, 6).returncode == 0
    assert len(archives(log)) == 6
    log.write_text("final\n")
    assert rotate(log, 2).returncode == 0
    assert archives(log) == ["x.log.1", "x.log.2.gz"]
    assert (tmp_path / "x.log.1").read_text() == "final\n"
    assert gz(tmp_path / "x.log.2.gz") == b"6\n"


def test_empty_and_missing_log_untouched(tmp_path):
    log = tmp_path / "quiet.log"
    assert rotate(log, 3).returncode == 0
    assert not log.exists() and archives(log) == []
    log.write_text("")
    (tmp_path / "quiet.log.1").write_text("older\n")
    assert rotate(log, 3).returncode == 0
    assert archives(log) == ["quiet.log.1"]
    assert (tmp_path / "quiet.log.1").read_text() == "older\n"


def test_mode_preserved_and_other_files_untouched(tmp_path):
    log = tmp_path / "secure.log"
    log.write_text("secret\n")
    log.chmod(0o640)
    others = {"secure.log.bak": "keep me\n", "secure.logger": "me too\n", "other.log.1": "not ours\n",
              "secure.log.old.gz": "nope\n"}
    for name, text in others.items():
        (tmp_path / name).write_text(text)
    assert rotate(log, 3).returncode == 0
    assert (log.stat().st_mode & 0o777) == 0o640
    assert log.stat().st_size == 0
    for name, text in others.items():
        assert (tmp_path / name).read_text() == text


def test_spaces_and_relative_path(tmp_path):
    d = tmp_path / "my logs"
    d.mkdir()
    log = d / "web server.log"
    log.write_text("first\n")
    assert rotate("my logs/web server.log", 3, cwd=tmp_path).returncode == 0
    log.write_text("second\n")
    assert rotate("my logs/web server.log", 3, cwd=tmp_path).returncode == 0
    assert archives(log) == ["web server.log.1", "web server.log.2.gz"]
    assert gz(d / "web server.log.2.gz") == b"first\n"


def test_binary_content_round_trips(tmp_path):
    log = tmp_path / "bin.log"
    data = bytes(range(256)) * 50
    log.write_bytes(data)
    rotate(log, 3)
    log.write_bytes(b"next\n")
    rotate(log, 3)
    assert gz(tmp_path / "bin.log.2.gz") == data


@pytest.mark.parametrize("args", [[], ["a.log", "0"], ["a.log", "-1"], ["a.log", "x"], ["a.log", "3", "extra"],
                                  ["a.log", "2.5"]])
def test_usage_errors(tmp_path, args):
    (tmp_path / "a.log").write_text("data\n")
    r = rotate(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() != ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.log"]
    assert (tmp_path / "a.log").read_text() == "data\n"
