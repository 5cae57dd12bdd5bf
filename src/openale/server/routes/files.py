"""Routes for files and directory archives, streamed both ways.

Uploads are spooled (memory, then disk) while their size is counted: a body
over ``max_upload_bytes`` is refused with 413 before anything is written into
the sandbox. Downloads stream from the engine without being held whole.
"""

from __future__ import annotations

import posixpath
import shlex
import tempfile
import time
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from openale.sandbox import FileEntry, Sandbox
from openale.sandbox.errors import FileTooLargeError, SandboxFileError
from openale.sandbox.files import GO_MODE_DIR
from openale.sandbox.remote.wire import ExistsResponse
from openale.server.audit import note
from openale.server.errors import ERROR_RESPONSES, InvalidPathError, PayloadTooLarge
from openale.server.lifecycle import running_sandbox
from openale.server.state import app_state
from openale.server.tarstream import open_stream, relative_tar, single_file_tar

router = APIRouter(prefix="/v1", tags=["files"], responses=ERROR_RESPONSES)

IN_MEMORY_WRITE = 64 << 20  # up to this, sb.files.write (one request to the engine)
DRAIN_AFTER_LIMIT = 64 << 20  # read this much of a refused body so the client sees the 413
MAX_LINKS = 8

AbsPath = Annotated[str, Query(description="absolute path inside the sandbox; '..' is refused")]


def checked_path(path: str) -> str:
    """An absolute, normalized path without ``..`` components (else 400)."""
    if not path.startswith("/"):
        raise InvalidPathError(f"path {path!r} must be absolute")
    if "\0" in path:
        raise InvalidPathError("paths cannot contain NUL bytes")
    if ".." in path.split("/"):
        raise InvalidPathError(f"path {path!r} contains '..'; give the path itself")
    return posixpath.normpath(path)


async def spool_body(request: Request, limit: int) -> tempfile.SpooledTemporaryFile:
    """The request body in a spool (rewound), or 413 once it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    too_large = declared is not None and declared.isdigit() and int(declared) > limit
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if too_large or size > limit:
            too_large = True
            if size > limit + DRAIN_AFTER_LIMIT:
                break
            continue
        spool.write(chunk)
    if too_large:
        spool.close()
        raise PayloadTooLarge(f"the body exceeds the {limit}-byte upload limit")
    spool.seek(0)
    return spool


def _ensure_dir(sb: Sandbox, directory: str) -> None:
    result = sb.commands.run(f"mkdir -p -- {shlex.quote(directory)}", timeout=60)
    if result.exit_code != 0:
        raise SandboxFileError(f"cannot create {directory!r}: {result.stderr.strip()}")


def _write_streamed(sb: Sandbox, path: str, spool, size: int, mode: int | None) -> None:
    """Write a large upload as a tar streamed from the spool (never whole in memory)."""
    if size > sb.settings.max_file_bytes:
        raise FileTooLargeError(f"{path}: {size} bytes exceeds the sandbox's file cap")
    started = time.monotonic()
    existing = sb.runtime.stat(sb.container, path)
    if existing is not None and existing.get("mode", 0) & GO_MODE_DIR:
        raise SandboxFileError(f"{path!r} is a directory; it cannot be replaced by a file")
    if mode is None:
        mode = existing["mode"] & 0o7777 if existing is not None else 0o644
    directory = posixpath.dirname(path)
    _ensure_dir(sb, directory)
    uid, gid = sb.files.owner()
    stream = single_file_tar(posixpath.basename(path), spool, size, mode, uid, gid)
    sb.runtime.put_archive(sb.container, directory, stream)
    sb.audit_file("write", path, bytes_in=size, started=started)


def _raw_body(media_type: str, what: str) -> dict:
    schema = {"type": "string", "format": "binary", "description": what}
    return {"requestBody": {"required": True, "content": {media_type: {"schema": schema}}}}


@router.put(
    "/sandboxes/{sandbox_id}/files",
    status_code=204,
    openapi_extra=_raw_body("application/octet-stream", "the file's bytes"),
)
async def write_file(
    request: Request,
    path: AbsPath,
    sb: Annotated[Sandbox, Depends(running_sandbox)],
    mode: Annotated[
        int | None, Query(ge=0, le=0o7777, description="permission bits, e.g. 420")
    ] = None,
) -> Response:
    """Create or replace a file with the raw body (``application/octet-stream``)."""
    path = checked_path(path)
    spool = await spool_body(request, app_state(request).settings.max_upload_bytes)
    try:
        size = spool.seek(0, 2)
        spool.seek(0)
        if size <= IN_MEMORY_WRITE:
            data = spool.read()
            await anyio.to_thread.run_sync(lambda: sb.files.write(path, data, mode))
        else:
            await anyio.to_thread.run_sync(lambda: _write_streamed(sb, path, spool, size, mode))
    finally:
        spool.close()
    note(request, op="file.write", bytes_in=size, detail={"path": path})
    return Response(status_code=204)


def _open_file(sb: Sandbox, path: str):
    """``(tar, member)`` of a regular file, symlinks followed; raises 404/400 otherwise."""
    for _ in range(MAX_LINKS):
        chunks, stat = sb.runtime.get_archive(sb.container, path)
        if stat.get("mode", 0) & GO_MODE_DIR:
            raise SandboxFileError(f"{path!r} is a directory; use GET /archive")
        tar = open_stream(chunks)
        member = tar.next()
        if member is None:
            raise SandboxFileError(f"the engine returned an empty archive for {path!r}")
        if member.issym():
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
            tar.close()
            continue
        return tar, member, path
    raise SandboxFileError(f"too many levels of symbolic links at {path!r}")


@router.get(
    "/sandboxes/{sandbox_id}/files",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def read_file(
    request: Request, path: AbsPath, sb: Annotated[Sandbox, Depends(running_sandbox)]
) -> StreamingResponse:
    """The file's raw bytes, streamed (404 if it does not exist)."""
    path = checked_path(path)
    started = time.monotonic()
    tar, member, real = _open_file(sb, path)
    note(request, op="file.read", bytes_out=member.size, detail={"path": path})

    def body():
        try:
            f = tar.extractfile(member)
            while chunk := f.read(1 << 20):
                yield chunk
            sb.audit_file("read", real, bytes_out=member.size, started=started)
        finally:
            tar.close()

    return StreamingResponse(
        body(),
        media_type="application/octet-stream",
        headers={"Content-Length": str(member.size)},
    )


@router.get("/sandboxes/{sandbox_id}/files/list", response_model=list[FileEntry])
def list_files(
    request: Request,
    path: AbsPath,
    sb: Annotated[Sandbox, Depends(running_sandbox)],
    depth: Annotated[int, Query(ge=1, le=64)] = 1,
) -> list[FileEntry]:
    path = checked_path(path)
    note(request, op="file.list", detail={"path": path})
    return sb.files.list(path, depth=depth)


@router.get("/sandboxes/{sandbox_id}/files/exists", response_model=ExistsResponse)
def file_exists(
    request: Request, path: AbsPath, sb: Annotated[Sandbox, Depends(running_sandbox)]
) -> ExistsResponse:
    path = checked_path(path)
    note(request, op="file.exists", detail={"path": path})
    return ExistsResponse(exists=sb.files.exists(path))


@router.put(
    "/sandboxes/{sandbox_id}/archive",
    status_code=204,
    openapi_extra=_raw_body("application/x-tar", "a tar; names relative to the directory"),
)
async def upload_archive(
    request: Request, path: AbsPath, sb: Annotated[Sandbox, Depends(running_sandbox)]
) -> Response:
    """Extract the tar body under the directory ``path`` (created if missing)."""
    path = checked_path(path)
    spool = await spool_body(request, app_state(request).settings.max_upload_bytes)
    started = time.monotonic()
    try:
        size = spool.seek(0, 2)
        spool.seek(0)

        def put() -> None:
            _ensure_dir(sb, path)
            sb.runtime.put_archive(sb.container, path, spool)

        await anyio.to_thread.run_sync(put)
    finally:
        spool.close()
    sb.audit_file("upload_dir", path, bytes_in=size, started=started)
    note(request, op="archive.write", bytes_in=size, detail={"path": path})
    return Response(status_code=204)


@router.get(
    "/sandboxes/{sandbox_id}/archive",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-tar": {}}}},
)
def download_archive(
    request: Request, path: AbsPath, sb: Annotated[Sandbox, Depends(running_sandbox)]
) -> StreamingResponse:
    """A tar of the directory's contents; member names are relative to ``path``."""
    path = checked_path(path)
    chunks, stat = sb.runtime.get_archive(sb.container, path)
    if not stat.get("mode", 0) & GO_MODE_DIR:
        raise SandboxFileError(f"{path!r} is not a directory; use GET /files")
    top = posixpath.basename(path.rstrip("/")) or "."
    note(request, op="archive.read", detail={"path": path})

    def body():
        tar = open_stream(chunks)
        try:
            yield from relative_tar(tar, top)
        finally:
            tar.close()

    return StreamingResponse(body(), media_type="application/x-tar")
