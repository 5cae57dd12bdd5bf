"""A shell in an embedded sandbox on this process's terminal or pipes (``ale sandbox shell``).

``attach_shell`` starts bash (else sh) with ``docker exec`` and streams it both
ways: raw and resized with the local terminal when there is one, else piped
stdin in (then EOF) and stdout/stderr out. The shell is audited as one event.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import docker.errors

from openale.sandbox.streams import FrameDemuxer

if TYPE_CHECKING:
    from openale.sandbox.sandbox import Sandbox

SHELL_AUDIT_INPUT = 64 << 10  # how much of a shell's input the audit event keeps
ACTIVITY_TOUCH_S = 30.0


def attach_shell(sb: Sandbox) -> int | None:
    """Run the shell until it exits; its exit code (None if unknown).

    On a terminal Ctrl-C goes to the shell; with piped stdin it ends the
    shell here and is raised (``KeyboardInterrupt``) once the event is audited.
    """
    sb.ensure_running()
    code, _ = sb.runtime.exec_simple(sb.container, ["sh", "-c", "command -v bash"])
    argv = ["bash"] if code == 0 else ["sh"]
    interactive = isatty(sys.stdin) and isatty(sys.stdout)
    env = {"TERM": os.environ.get("TERM", "xterm")} if interactive else {}
    exec_id, sock = sb.runtime.exec_start(
        sb.container, argv, env=env, user=sb.spec.user, tty=interactive, stdin=True
    )
    started = time.monotonic()
    traffic = ShellTraffic(sb.audit.path(sb.id))
    exit_code = None
    try:
        if interactive:
            pump_tty(sock, exec_id, sb.runtime.api, traffic)
        else:
            pump_pipe(sock, traffic)
        exit_code = sb.runtime.exec_exit_code(exec_id)
    finally:
        sock.close()
        sb.audit.record(
            sb.id,
            "session",
            "shell",
            exit_code=exit_code,
            duration_s=time.monotonic() - started,
            bytes_in=traffic.sent,
            bytes_out=traffic.received,
            detail={
                "argv": argv,
                "tty": interactive,
                "input": traffic.typed.decode(errors="replace"),
                "input_truncated": traffic.sent > len(traffic.typed),
            },
        )
    return exit_code


class ShellTraffic:
    """Counts a shell's bytes, keeps the start of its input for the audit log, and keeps
    the sandbox's last-activity time fresh so the idle reaper spares a shell in use."""

    def __init__(self, audit_file: Path):
        self._file = audit_file
        self._touched = time.monotonic()
        self.typed = bytearray()
        self.sent = self.received = 0

    def on_input(self, data: bytes) -> None:
        self.sent += len(data)
        room = SHELL_AUDIT_INPUT - len(self.typed)
        if room > 0:
            self.typed += data[:room]
        self._touch()

    def on_output(self, data: bytes) -> None:
        self.received += len(data)
        self._touch()

    def _touch(self) -> None:
        if time.monotonic() - self._touched > ACTIVITY_TOUCH_S:
            self._touched = time.monotonic()
            with contextlib.suppress(FileNotFoundError):
                os.utime(self._file)


def pump_tty(sock: socket.socket, exec_id: str, api, traffic: ShellTraffic) -> None:
    """Raw local terminal <-> remote TTY until the remote shell exits."""
    import termios
    import tty

    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()

    def resize(*_):
        cols, rows = os.get_terminal_size(fd_out)
        # The shell may already have exited; a missed resize is harmless.
        with contextlib.suppress(docker.errors.APIError):
            api.exec_resize(exec_id, height=rows, width=cols)

    saved = termios.tcgetattr(fd_in)
    previous = signal.signal(signal.SIGWINCH, resize)
    try:
        resize()
        tty.setraw(fd_in, termios.TCSANOW)  # keep what was typed ahead
        reading = True
        while True:
            ready = select.select([sock, fd_in] if reading else [sock], [], [])[0]
            if sock in ready:
                data = recv(sock)
                if not data:
                    break
                traffic.on_output(data)
                write_fd(fd_out, data)
            if fd_in in ready:
                data = os.read(fd_in, 4096)
                if not data:
                    reading = False
                    continue
                traffic.on_input(data)
                sock.sendall(data)
    finally:
        termios.tcsetattr(fd_in, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)


def pump_pipe(sock: socket.socket, traffic: ShellTraffic) -> None:
    """Local stdin -> remote stdin (then EOF); remote stdout/stderr -> local ones."""
    source: BinaryIO = sys.stdin.buffer

    def feed() -> None:
        read = getattr(source, "read1", source.read)
        try:
            while data := read(65536):
                traffic.on_input(data)
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)  # the remote shell sees end of input
        except OSError:  # the remote side ended first
            pass

    threading.Thread(target=feed, name="ale-shell-stdin", daemon=True).start()
    out, err = sys.stdout.buffer, sys.stderr.buffer
    demux = FrameDemuxer(out, err)
    while data := recv(sock):
        traffic.on_output(data)
        demux.feed(data)
        out.flush()
        err.flush()


def recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return b""


def write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_stream(stream, data: bytes) -> None:
    """Bytes to a text stream's buffer, in order with what was printed to it before."""
    stream.flush()
    stream.buffer.write(data)
    stream.buffer.flush()


def isatty(stream) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):  # test runners replace the streams
        return False
