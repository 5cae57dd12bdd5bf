"""``sb.files``: binary-safe file and directory transfer through the engine's archive API.

Nothing has to be installed in the image for reads and writes: they are tar
streams handled by the engine. Written files belong to the sandbox's user.
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from openale.sandbox.errors import FileTooLargeError, SandboxFileError
from openale.sandbox.runtime import tar_single

if TYPE_CHECKING:
    from openale.sandbox.sandbox import Sandbox

_LIST = (
    'cd "$1" 2>/dev/null || { echo "no such directory: $1" >&2; exit 2; }; '
    'find . -mindepth 1 -maxdepth "$2" -printf "%y\\t%s\\t%m\\t%T@\\t%P\\0"'
)
_MAX_LINKS = 8
# Bits of the engine's stat "mode" (Go's os.ModeDir and os.ModeSymlink).
GO_MODE_DIR, GO_MODE_SYMLINK = 1 << 31, 1 << 27


class FileEntry(BaseModel):
    path: str
    name: str
    is_dir: bool
    size: int
    mode: int
    mtime: float
    kind: str  # find's %y: f file, d directory, l symlink, ...


class _ChunkReader(io.RawIOBase):
    """A file object over the engine's chunk iterator, counting bytes against a cap."""

    def __init__(self, chunks, cap: int, what: str):
        self._chunks = iter(chunks)
        self._buf = b""
        self.read_bytes = 0
        self._cap, self._what = cap, what

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
            self.read_bytes += len(self._buf)
            if self.read_bytes > self._cap + (1 << 20):  # tar headers and padding on top
                raise FileTooLargeError(f"{self._what} exceeds the {self._cap}-byte cap")
        n = min(len(b), len(self._buf))
        b[:n], self._buf = self._buf[:n], self._buf[n:]
        return n


def _engine_time(stamp: str) -> float:
    """Seconds since the epoch of the engine's RFC 3339 time (nanoseconds cut to micro)."""
    try:
        return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", stamp)).timestamp()
    except ValueError:
        return 0.0


class Files:
    def __init__(self, sandbox: Sandbox):
        self._sb = sandbox
        self._owner: tuple[int, int] | None = None

    # -- single files -----------------------------------------------------------------

    def write(self, path: str, data: bytes | str, mode: int | None = None) -> None:
        """Create or replace ``path`` (parents are created) with ``data``.

        A replaced file keeps its permissions unless ``mode`` is given; a new
        one gets ``mode`` or 0644. A directory is never replaced.
        """
        payload = data.encode() if isinstance(data, str) else bytes(data)
        self._check_size(len(payload), path)
        path = self._abs(path)
        started = time.monotonic()
        try:
            existing = self._sb.runtime.stat(self._sb.container, path)
        except SandboxFileError:
            existing = None  # e.g. a parent is a file: the write below says so
        if existing is not None and existing.get("mode", 0) & GO_MODE_DIR:
            raise SandboxFileError(f"{path!r} is a directory; it cannot be replaced by a file")
        if mode is None:
            mode = existing["mode"] & 0o7777 if existing is not None else 0o644
        uid, gid = self.owner()
        directory = posixpath.dirname(path)
        archive = tar_single(posixpath.basename(path), payload, mode, uid, gid)
        # Common case first: the parent exists and one request suffices.
        if not self._sb.runtime.put_archive(self._sb.container, directory, archive):
            parent, missing = self._existing_ancestor(directory)
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                self._add_dirs(tar, missing, parent, uid, gid)
                info = tarfile.TarInfo(posixpath.relpath(path, parent))
                info.size, info.mode, info.uid, info.gid = len(payload), mode, uid, gid
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(payload))
            self._sb.runtime.put_archive(self._sb.container, parent, buf.getvalue())
        self._sb.audit_file("write", path, bytes_in=len(payload), started=started)

    def read(self, path: str) -> bytes:
        """The bytes of ``path`` (symlinks are followed)."""
        path = self._abs(path)
        started = time.monotonic()
        for _ in range(_MAX_LINKS):
            chunks, stat = self._sb.runtime.get_archive(self._sb.container, path)
            if stat.get("mode", 0) & GO_MODE_DIR:
                raise SandboxFileError(f"{path!r} is a directory; use download_dir")
            self._check_size(stat.get("size", 0), path)
            reader = _ChunkReader(chunks, self._sb.settings.max_file_bytes, path)
            with tarfile.open(fileobj=io.BufferedReader(reader, 1 << 20), mode="r|") as tar:
                member = tar.next()
                if member is None:
                    raise SandboxFileError(f"the engine returned an empty archive for {path!r}")
                if member.issym():
                    path = posixpath.normpath(
                        posixpath.join(posixpath.dirname(path), member.linkname)
                    )
                    continue
                f = tar.extractfile(member)
                data = f.read() if f else b""
            self._sb.audit_file("read", path, bytes_out=len(data), started=started)
            return data
        raise SandboxFileError(f"too many levels of symbolic links at {path!r}")

    def exists(self, path: str) -> bool:
        return self._sb.runtime.stat(self._sb.container, self._abs(path)) is not None

    def stat(self, path: str) -> FileEntry | None:
        """``path`` with symlinks followed (``path`` is then the target), or None."""
        path = self._abs(path)
        for _ in range(_MAX_LINKS):
            stat = self._sb.runtime.stat(self._sb.container, path)
            if stat is None:
                return None
            mode = stat.get("mode", 0)
            if not mode & GO_MODE_SYMLINK:
                is_dir = bool(mode & GO_MODE_DIR)
                return FileEntry(
                    path=path,
                    name=posixpath.basename(path),
                    is_dir=is_dir,
                    size=stat.get("size", 0),
                    mode=mode & 0o7777,
                    mtime=_engine_time(stat.get("mtime", "")),
                    kind="d" if is_dir else "f",
                )
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), stat["linkTarget"]))
        raise SandboxFileError(f"too many levels of symbolic links at {path!r}")

    def list(self, path: str = ".", depth: int = 1) -> list[FileEntry]:
        """Entries under ``path`` down to ``depth`` levels, sorted by path."""
        path = self._abs(path)
        code, out = self._sb.runtime.exec_simple(
            self._sb.container,
            ["sh", "-c", _LIST, "sh", path, str(depth)],
            user=self._sb.spec.user or "",
        )
        if code != 0:
            raise SandboxFileError(out.decode(errors="replace").strip() or f"cannot list {path!r}")
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            kind, size, mode, mtime, rel = record.decode(errors="replace").split("\t", 4)
            entries.append(
                FileEntry(
                    path=posixpath.join(path, rel),
                    name=posixpath.basename(rel),
                    is_dir=kind == "d",
                    size=int(size),
                    mode=int(mode, 8),
                    mtime=float(mtime),
                    kind=kind,
                )
            )
        return sorted(entries, key=lambda e: e.path)

    # -- directories ------------------------------------------------------------------

    def upload_dir(self, local: str | Path, remote: str) -> int:
        """Copy the contents of a local directory into ``remote``; returns bytes sent."""
        local = Path(local)
        if not local.is_dir():
            raise SandboxFileError(f"{local} is not a local directory")
        remote = self._abs(remote)
        started = time.monotonic()
        total = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
        self._check_size(total, str(local))
        uid, gid = self.owner()
        parent, missing = self._existing_ancestor(remote)
        prefix = posixpath.relpath(remote, parent)

        def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
            return info

        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
            with tarfile.open(fileobj=spool, mode="w") as tar:
                self._add_dirs(tar, missing, parent, uid, gid)
                for p in sorted(local.rglob("*")):
                    arcname = posixpath.join(prefix, p.relative_to(local).as_posix())
                    tar.add(p, arcname=arcname, recursive=False, filter=owned)
            spool.seek(0)
            self._sb.runtime.put_archive(self._sb.container, parent, spool)
        self._sb.audit_file("upload_dir", remote, bytes_in=total, started=started)
        return total

    def download_dir(self, remote: str, local: str | Path) -> int:
        """Copy the contents of ``remote`` into a local directory; returns bytes received."""
        remote = self._abs(remote)
        local = Path(local)
        local.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        chunks, stat = self._sb.runtime.get_archive(self._sb.container, remote)
        if not stat.get("mode", 0) & GO_MODE_DIR:
            raise SandboxFileError(f"{remote!r} is not a directory; use read")
        reader = _ChunkReader(chunks, self._sb.settings.max_file_bytes, remote)
        top = posixpath.basename(remote.rstrip("/")) or "."
        total = 0
        with tarfile.open(fileobj=io.BufferedReader(reader, 1 << 20), mode="r|") as tar:
            for member in tar:
                rel = posixpath.relpath(member.name, top)
                if rel == ".":
                    continue
                member.name = rel
                total += member.size if member.isfile() else 0
                # The "data" filter refuses absolute paths, escapes and devices.
                tar.extract(member, local, filter="data")
        self._sb.audit_file("download_dir", remote, bytes_out=total, started=started)
        return total

    # -- helpers ----------------------------------------------------------------------

    def owner(self) -> tuple[int, int]:
        """(uid, gid) of the sandbox user, resolved once."""
        if self._owner is None:
            user = self._sb.spec.user or ""
            uid_gid = user.split(":")
            if user and all(part.isdigit() for part in uid_gid):
                self._owner = (int(uid_gid[0]), int(uid_gid[-1]) if len(uid_gid) > 1 else 0)
            elif not user or user in ("root", "0"):
                self._owner = (0, 0)
            else:
                code, out = self._sb.runtime.exec_simple(
                    self._sb.container, ["sh", "-c", "id -u; id -g"], user=user
                )
                ids = out.split()
                if code != 0 or len(ids) != 2:
                    raise SandboxFileError(f"cannot resolve user {user!r}: {out.decode()!r}")
                self._owner = (int(ids[0]), int(ids[1]))
        return self._owner

    def _abs(self, path: str) -> str:
        if "\0" in path:
            raise SandboxFileError("paths cannot contain NUL bytes")
        return posixpath.normpath(posixpath.join(self._sb.spec.workdir, path))

    def _check_size(self, size: int, what: str) -> None:
        if size > self._sb.settings.max_file_bytes:
            raise FileTooLargeError(
                f"{what}: {size} bytes exceeds the {self._sb.settings.max_file_bytes}-byte cap "
                "(ALE_MAX_FILE_BYTES)"
            )

    def _existing_ancestor(self, directory: str) -> tuple[str, list[str]]:
        """The nearest existing directory and the missing ones below it, top first."""
        missing: list[str] = []
        current = directory
        while True:
            stat = self._sb.runtime.stat(self._sb.container, current)
            if stat is not None:
                if not stat.get("mode", 0) & GO_MODE_DIR:
                    raise SandboxFileError(f"{current!r} exists and is not a directory")
                return current, list(reversed(missing))
            missing.append(current)
            current = posixpath.dirname(current)

    @staticmethod
    def _add_dirs(tar: tarfile.TarFile, dirs: list[str], parent: str, uid: int, gid: int) -> None:
        for d in dirs:
            info = tarfile.TarInfo(posixpath.relpath(d, parent))
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, gid
            info.mtime = int(time.time())
            tar.addfile(info)
