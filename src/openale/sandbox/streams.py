"""Byte plumbing for attached ``docker exec`` streams: capped buffers and frame demuxing."""

from __future__ import annotations

import re
import select
import socket
import struct
import time
from collections.abc import Callable

HEARTBEAT_S = 30.0
TRUNCATION_MARKER = "\n[... openale: output truncated, {omitted} bytes omitted ...]\n"


class CappedBuffer:
    """Keeps the first and last ``cap/2`` bytes of a stream and counts what it drops.

    Agents need both ends of a long output: the head says what started, the
    tail says how it ended.
    """

    def __init__(self, cap: int):
        self.cap = cap
        self._head = bytearray()
        self._tail = bytearray()
        self.omitted = 0
        self.total = 0

    def write(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap // 2 - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if not data:
            return
        self._tail += data
        keep = self.cap - self.cap // 2
        if len(self._tail) > keep:
            drop = len(self._tail) - keep
            del self._tail[:drop]
            self.omitted += drop

    @property
    def truncated(self) -> bool:
        return self.omitted > 0

    def getvalue(self) -> bytes:
        if not self.omitted:
            return bytes(self._head + self._tail)
        marker = TRUNCATION_MARKER.format(omitted=self.omitted).encode()
        return bytes(self._head) + marker + bytes(self._tail)

    def text(self) -> str:
        return self.getvalue().decode("utf-8", errors="replace")


def raw_socket(stream) -> socket.socket:
    """The socket under what ``APIClient.exec_start(socket=True)`` returns."""
    return getattr(stream, "_sock", stream)


class AttachedSocket:
    """The hijacked connection of an attached exec, with the bytes read ahead of it.

    The HTTP client reads the upgrade response's headers through a buffered
    reader, which may already hold the first bytes of the stream (a fast
    command's whole output, on a busy machine). Those come first here; the
    rest is read from the socket itself.
    """

    def __init__(self, sock: socket.socket, pending: bytes = b"", keepalive: object = None):
        self.sock = sock
        self.pending = pending
        self._keepalive = keepalive  # the HTTP response: collecting it would close the socket

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, size: int) -> bytes:
        if self.pending:
            data, self.pending = self.pending[:size], self.pending[size:]
            return data
        return self.sock.recv(size)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)

    def close(self) -> None:
        self.sock.close()
        self._keepalive = None


def recv_until(
    sock: socket.socket,
    deadline: float | None,
    size: int = 65536,
    heartbeat: Callable[[], None] | None = None,
) -> bytes | None:
    """One ``recv``; ``None`` when the deadline passes first, ``b""`` at end of stream.

    While it waits, ``heartbeat`` is called every ``HEARTBEAT_S`` (a long
    command is activity: the idle reaper must not take its sandbox).
    """
    if getattr(sock, "pending", b""):
        return sock.recv(size)
    while True:
        wait = HEARTBEAT_S if heartbeat else None
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            wait = remaining if wait is None else min(wait, remaining)
        ready = select.select([sock], [], [], wait)[0] if wait is not None else [sock]
        if ready:
            break
        if heartbeat:
            heartbeat()
    try:
        return sock.recv(size)
    except (ConnectionResetError, BrokenPipeError):
        return b""


class FrameDemuxer:
    """Splits Docker's multiplexed stream (8-byte headers) into stdout and stderr."""

    def __init__(self, stdout: CappedBuffer, stderr: CappedBuffer):
        self._pending = bytearray()
        self._out = {1: stdout, 2: stderr}

    def feed(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= 8:
            kind, size = struct.unpack(">BxxxL", self._pending[:8])
            if len(self._pending) < 8 + size:
                return
            payload = bytes(self._pending[8 : 8 + size])
            del self._pending[: 8 + size]
            self._out.get(kind, self._out[1]).write(payload)


MARKER_WINDOW = 96  # longer than any end marker; kept unflushed until the marker is found


class EndMarkers:
    """The end-of-command markers a driven shell prints: ``\n__ALE_<token>_<seq>_<status>__\n``.

    Shared by the sandbox session and the host shell, which differ only in how
    bytes arrive.
    """

    def __init__(self, token: str):
        self.token = token
        self.pattern = re.compile(rb"\n__ALE_" + token.encode() + rb"_(\d+)_(\d+)__\n")

    def take(self, pending: bytearray, seq: int, out: CappedBuffer) -> tuple[int, bytearray] | None:
        """Move output before command ``seq``'s marker into ``out``.

        Returns ``(exit status, bytes after the marker)`` once the marker is in
        ``pending``; otherwise flushes all but a window that may hold a partial
        marker and returns None. Markers of earlier, abandoned commands are
        dropped with the output before them.
        """
        m = self.pattern.search(pending)
        while m and int(m.group(1)) < seq:
            del pending[: m.end()]
            m = self.pattern.search(pending)
        if m:
            out.write(bytes(pending[: m.start()]))
            return int(m.group(2)), pending[m.end() :]
        if len(pending) > MARKER_WINDOW:
            out.write(bytes(pending[:-MARKER_WINDOW]))
            del pending[:-MARKER_WINDOW]
        return None
