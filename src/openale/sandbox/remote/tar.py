"""Directories as tar streams, both ways, for the remote SDK's ``upload_dir``/``download_dir``."""

from __future__ import annotations

import io
import posixpath
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from openale.sandbox.errors import FileTooLargeError, SandboxFileError

CHUNK = 1 << 20


def pack_dir(local: str | Path, max_bytes: int) -> tuple[tempfile.SpooledTemporaryFile, int]:
    """A tar of the contents of ``local`` (names relative to it) and its file bytes."""
    local = Path(local)
    if not local.is_dir():
        raise SandboxFileError(f"{local} is not a local directory")
    total = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
    if total > max_bytes:
        raise FileTooLargeError(
            f"{local}: {total} bytes exceeds the {max_bytes}-byte cap (ALE_MAX_FILE_BYTES)"
        )

    def anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
        # The server gives extracted files to the sandbox's user.
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    with tarfile.open(fileobj=spool, mode="w") as tar:
        for p in sorted(local.rglob("*")):
            tar.add(p, arcname=p.relative_to(local).as_posix(), recursive=False, filter=anonymous)
    return spool, total


def rereadable(spool: io.IOBase) -> Callable[[], Iterator[bytes]]:
    """A content factory over a spooled file: each call reads it again from the start."""

    def chunks() -> Iterator[bytes]:
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk

    return chunks


def unpack_dir(archive: io.IOBase, local: str | Path) -> int:
    """Extract the server's tar of a directory (names relative to it) into ``local``.

    Returns the bytes of the regular files extracted.
    """
    local = Path(local)
    local.mkdir(parents=True, exist_ok=True)
    archive.seek(0)
    total = 0
    with tarfile.open(fileobj=archive, mode="r:*") as tar:
        for member in tar:
            if posixpath.normpath(member.name) == ".":
                continue
            total += member.size if member.isfile() else 0
            # The "data" filter refuses absolute paths, escapes and devices.
            tar.extract(member, local, filter="data")
    return total
