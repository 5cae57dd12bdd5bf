"""`ale sandbox cp` scenarios shared by the embedded and the remote CLI tests.

The CLI uses only the sandbox API, so the same copy must behave the same with
and without ``ALE_SERVER``: one scenario, run by both test modules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

Ale = Callable[..., object]  # ale(*args, input=...) -> typer's Result


def cp_file_round_trip(ale: Ale, sandbox_id: str, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 64
    src = tmp_path / "blob.bin"
    src.write_bytes(payload)
    src.chmod(0o750)

    up = ale("cp", str(src), f"{sandbox_id}:/tmp/up/blob.bin")
    assert up.exit_code == 0, up.output
    check = ale("exec", sandbox_id, "stat -c '%s %a' /tmp/up/blob.bin")
    assert check.stdout.strip() == f"{len(payload)} 750"

    # An existing directory as destination receives the file under its own name.
    assert ale("cp", str(src), f"{sandbox_id}:/tmp").exit_code == 0
    assert ale("exec", sandbox_id, "cmp /tmp/blob.bin /tmp/up/blob.bin").exit_code == 0

    down = tmp_path / "down.bin"
    result = ale("cp", f"{sandbox_id}:/tmp/up/blob.bin", str(down))
    assert result.exit_code == 0, result.output
    assert down.read_bytes() == payload
    assert down.stat().st_mode & 0o777 == 0o750

    into = tmp_path / "into"
    into.mkdir()
    assert ale("cp", f"{sandbox_id}:/tmp/up/blob.bin", str(into)).exit_code == 0
    assert (into / "blob.bin").read_bytes() == payload

    # A symlink is followed: what arrives is the file it points to, under that file's name.
    assert ale("exec", sandbox_id, "ln -sf /tmp/up/blob.bin /tmp/link").exit_code == 0
    linked = tmp_path / "linked"
    linked.mkdir()
    assert ale("cp", f"{sandbox_id}:/tmp/link", str(linked)).exit_code == 0
    assert [p.name for p in linked.iterdir()] == ["blob.bin"]
    assert (linked / "blob.bin").read_bytes() == payload

    # Relative remote paths are relative to the sandbox's workdir; '-' is stdin/stdout.
    assert ale("cp", "-", f"{sandbox_id}:notes.txt", input="from stdin\n").exit_code == 0
    out = ale("cp", f"{sandbox_id}:/workspace/notes.txt", "-")
    assert out.exit_code == 0 and out.stdout == "from stdin\n"

    missing = ale("cp", f"{sandbox_id}:/no/such/file", str(tmp_path / "x"))
    assert missing.exit_code == 1 and "no such file" in missing.stderr
    assert not (tmp_path / "x").exists()


def cp_directory_round_trip(ale: Ale, sandbox_id: str, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "empty").mkdir()
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "deeper" / "b.bin").write_bytes(b"\x00\xff" * 1000)

    # A destination that does not exist becomes the copy ...
    assert ale("cp", str(tree), f"{sandbox_id}:/srv/copy").exit_code == 0
    # ... and an existing one receives the directory inside it, as with docker cp.
    assert ale("cp", str(tree), f"{sandbox_id}:/srv/copy").exit_code == 0
    listing = ale("exec", sandbox_id, "cd /srv/copy && find . | sort").stdout.split()
    assert {"./a.txt", "./empty", "./sub/deeper/b.bin", "./tree/a.txt", "./tree/empty"} <= set(
        listing
    )

    fresh = tmp_path / "fresh"
    assert ale("cp", f"{sandbox_id}:/srv/copy/tree", str(fresh)).exit_code == 0
    assert (fresh / "a.txt").read_text() == "alpha\n"
    assert (fresh / "sub" / "deeper" / "b.bin").read_bytes() == b"\x00\xff" * 1000
    assert (fresh / "empty").is_dir()

    existing = tmp_path / "existing"
    existing.mkdir()
    assert ale("cp", f"{sandbox_id}:/srv/copy/sub", str(existing)).exit_code == 0
    assert (existing / "sub" / "deeper" / "b.bin").read_bytes() == b"\x00\xff" * 1000
    # SRC/. copies only the contents.
    assert ale("cp", f"{sandbox_id}:/srv/copy/sub/.", str(existing)).exit_code == 0
    assert (existing / "deeper" / "b.bin").exists()
