"""Tar streams built and rewritten chunk by chunk, so no file is held whole in memory."""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
from collections.abc import Iterable, Iterator
from typing import BinaryIO

BLOCK = 512
CHUNK = 1 << 20


class IterReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the engine's archive stream)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n], self._buf = self._buf[:n], self._buf[n:]
        return n


def open_stream(chunks: Iterable[bytes]) -> tarfile.TarFile:
    return tarfile.open(fileobj=io.BufferedReader(IterReader(chunks), CHUNK), mode="r|")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def single_file_tar(
    name: str, source: BinaryIO, size: int, mode: int, uid: int, gid: int
) -> Iterator[bytes]:
    """A tar of one regular file whose bytes are read from ``source`` as they are sent."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid = size, mode, uid, gid
    info.mtime = int(time.time())
    yield info.tobuf(tarfile.PAX_FORMAT)
    sent = 0
    while sent < size:
        chunk = source.read(min(CHUNK, size - sent))
        if not chunk:
            raise OSError(f"the upload ended after {sent} of {size} bytes")
        sent += len(chunk)
        yield chunk
    yield _padding(size)
    yield b"\0" * (2 * BLOCK)


def relative_tar(tar: tarfile.TarFile, top: str) -> Iterator[bytes]:
    """Re-emit a directory's tar with member names relative to the directory itself.

    The engine names members ``<basename>/...``; clients get the directory's
    contents, the same layout ``PUT /archive`` extracts.
    """
    for member in tar:
        rel = posixpath.relpath(member.name, top) if top != "." else member.name
        if rel == "." or rel.startswith("../"):
            continue
        member.name = rel
        if member.islnk():
            member.linkname = posixpath.relpath(member.linkname, top)
        yield member.tobuf(tarfile.PAX_FORMAT)
        if member.isreg():
            f = tar.extractfile(member)
            while chunk := f.read(CHUNK):
                yield chunk
            yield _padding(member.size)
    yield b"\0" * (2 * BLOCK)
