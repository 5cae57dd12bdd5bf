"""``sb.sessions``: persistent bash shells, each one ``BashSession`` inside the sandbox.

The shell runs under a pseudo-terminal of an attached ``docker exec``, so it has
job control: each command is its own process group, and a Ctrl-C (``\\x03``)
written to the terminal interrupts exactly that group while the shell lives
on. Each command is sent as ``eval $'<escaped>'``, so any text (unbalanced
quotes, heredocs, 100 kB scripts) is one line the shell reads whole; the end
of a command is a marker that ``PROMPT_COMMAND`` prints with a per-session
token, the command's sequence number and its exit status. Terminal echo and
canonical line editing are off, so nothing is echoed and no line limit
applies.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openale.sandbox.errors import SandboxError, SessionClosedError
from openale.sandbox.runtime import DockerRuntime
from openale.sandbox.spec import CommandResult
from openale.sandbox.streams import CappedBuffer, EndMarkers, recv_until

if TYPE_CHECKING:
    from openale.sandbox.sandbox import Sandbox

SHELL = ["bash", "--noprofile", "--norc", "--noediting", "-i"]
# Programs that would open a pager on a terminal must not wait for a keypress.
SESSION_ENV = {
    "TERM": "dumb",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "MANPAGER": "cat",
    "SYSTEMD_PAGER": "",
    "COLUMNS": "200",
    "LINES": "50",
}
_SAFE = frozenset(
    b'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-+=.,:/@%^*()[]{}<>|;&~#$`"?'
)
INTERRUPT_GRACE_S = 2.0


def ansi_c_quote(text: str) -> str:
    """Quote ``text`` as a bash ``$'...'`` word made only of printable ASCII."""
    out = []
    for b in text.encode():
        out.append(chr(b) if b in _SAFE else f"\\x{b:02x}")
    return "$'" + "".join(out) + "'"


@dataclass
class _Ending:
    seq: int
    status: int


class BashSession:
    """A persistent shell: ``cd``, variables, functions and background jobs persist."""

    def __init__(
        self,
        runtime: DockerRuntime,
        container: str,
        *,
        user: str | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        max_output_bytes: int = 1_000_000,
        heartbeat: Callable[[], None] | None = None,
    ):
        self.runtime = runtime
        self.container = container
        self.max_output_bytes = max_output_bytes
        self.heartbeat = heartbeat
        self.id = "sess-" + secrets.token_hex(4)
        self._token = secrets.token_hex(6)
        self._markers = EndMarkers(self._token)
        self._seq = 0
        self._lock = threading.Lock()
        self._interrupted = False
        self.closed = False
        self.stuck = False
        self.pid: int | None = None
        self._carry = bytearray()
        self._exec_id, self._sock = runtime.exec_start(
            container,
            SHELL,
            env={**SESSION_ENV, **(env or {})},
            workdir=cwd,
            user=user,
            tty=True,
            stdin=True,
        )
        setup = (
            "stty -echo -icanon min 1 time 0 -onlcr cols 200 rows 50 2>/dev/null; "
            "set +H +o history; unset HISTFILE; PS1=''; PS2=''; PS0=''; "
            f'PROMPT_COMMAND=\'printf "\\n__ALE_{self._token}_%s_%s__\\n" '
            '"${__ale_seq:-0}" "$?"\'; '
            "echo __ALE_PID_$$\n"
        )
        self._send(setup.encode())
        pending = bytearray()
        deadline = time.monotonic() + 30
        while not self._markers.pattern.search(pending):
            data = recv_until(self._sock, deadline)
            if not data:
                self._close_socket()
                raise SessionClosedError("the shell did not start (is bash in the image?)")
            pending += data
        pid = re.search(rb"__ALE_PID_(\d+)", pending)
        self.pid = int(pid.group(1)) if pid else None

    # -- public API -------------------------------------------------------------------

    def run(self, cmd: str, timeout: float | None = 120.0) -> CommandResult:
        """Run ``cmd`` in the shell; on timeout interrupt its process group and return."""
        with self._lock:
            if self.closed:
                raise SessionClosedError(f"session {self.id} has exited")
            self._seq += 1
            self._interrupted = False
            started = time.monotonic()
            self._send(f"__ale_seq={self._seq}; eval {ansi_c_quote(cmd)} < /dev/null\n".encode())
            out = CappedBuffer(self.max_output_bytes)
            deadline = None if timeout is None else started + timeout
            try:
                ending = self._read_until_end(out, deadline)
            except KeyboardInterrupt:
                # The caller was interrupted (Ctrl-C at a terminal): so is the command.
                self.interrupt()
                raise
            timed_out = False
            if ending is None and not self.closed:
                timed_out = True
                ending = self._stop_foreground(out)
            exit_code = ending.status if ending else None
            if self.closed and exit_code is None:
                exit_code = self.runtime.exec_exit_code(self._exec_id, wait_s=2.0)
            return CommandResult(
                exit_code=exit_code,
                output=out.text(),
                duration_s=time.monotonic() - started,
                truncated=out.truncated,
                timed_out=timed_out,
                interrupted=timed_out or self._interrupted,
            )

    def interrupt(self) -> None:
        """Send Ctrl-C to the running command (safe to call from another thread)."""
        self._interrupted = True
        self._send(b"\x03")

    def close(self) -> None:
        if not self.closed:
            try:
                self._send(b"exit 0\n")
            except OSError:
                pass
        self._close_socket()

    # -- internals --------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as e:
            self._close_socket()
            raise SessionClosedError(f"session {self.id} is gone: {e}") from None

    def _close_socket(self) -> None:
        self.closed = True
        try:
            self._sock.close()
        except OSError:
            pass

    def _read_until_end(self, out: CappedBuffer, deadline: float | None) -> _Ending | None:
        """Stream output into ``out`` until this command's end marker or the deadline."""
        pending = self._carry
        self._carry = bytearray()
        while True:
            found = self._markers.take(pending, self._seq, out)
            if found:
                status, self._carry = found
                return _Ending(self._seq, status)
            data = recv_until(self._sock, deadline, heartbeat=self.heartbeat)
            if data is None:
                self._carry = pending
                return None
            if data == b"":
                out.write(bytes(pending))
                self._close_socket()
                return None
            pending += data

    def _stop_foreground(self, out: CappedBuffer) -> _Ending | None:
        """Ctrl-C; then SIGKILL the terminal's foreground group; then the shell itself.

        Sets ``stuck`` when not even a helper process can start (pids exhausted).
        """
        self._send(b"\x03")
        ending = self._read_until_end(out, time.monotonic() + INTERRUPT_GRACE_S)
        if ending or self.closed or self.pid is None:
            return ending
        # Field 8 of /proc/PID/stat is the terminal's foreground process group;
        # when it is the shell's own group, the shell itself is what hangs.
        foreground = (
            f"set -- $(cat /proc/{self.pid}/stat); "
            f'if [ "$8" = "$5" ]; then kill -KILL {self.pid}; else kill -KILL -"$8"; fi'
        )
        for script in (foreground, f"kill -KILL {self.pid}"):
            try:
                self.runtime.exec_simple(self.container, ["sh", "-c", script])
            except SandboxError:
                self.stuck = True
                return None
            ending = self._read_until_end(out, time.monotonic() + INTERRUPT_GRACE_S)
            if ending or self.closed:
                return ending
        return None


# -- the public face: sb.sessions ------------------------------------------------------


class Sessions:
    """``sb.sessions.create()``: persistent bash shells in the sandbox."""

    def __init__(self, sandbox: Sandbox):
        self._sb = sandbox
        self._open: list[Session] = []

    def create(
        self, *, cwd: str | None = None, env: dict[str, str] | None = None, user: str | None = None
    ) -> Session:
        self._sb.ensure_running()
        started = time.monotonic()
        session = Session(
            self._sb,
            BashSession(
                self._sb.runtime,
                self._sb.container,
                user=user or self._sb.spec.user,
                cwd=cwd,
                env=env,
                max_output_bytes=self._sb.settings.max_output_bytes,
                heartbeat=self._sb.touch,
            ),
        )
        self._open.append(session)
        self._sb.audit.record(
            self._sb.id,
            "session",
            "create",
            detail={"session": session.id},
            duration_s=time.monotonic() - started,
        )
        return session

    def close_all(self) -> None:
        """Close every shell this sandbox handle opened (on close and restart)."""
        for s in self._open:
            s.close()
        self._open.clear()


class Session:
    """A persistent shell. ``run`` returns ``CommandResult`` with ``output`` (stdout+stderr)."""

    def __init__(self, sandbox: Sandbox, shell: BashSession):
        self._sb = sandbox
        self._shell = shell
        self.id = shell.id

    @property
    def closed(self) -> bool:
        return self._shell.closed

    def run(self, cmd: str, timeout: float | None = 120.0) -> CommandResult:
        result = self._shell.run(cmd, timeout=timeout)
        if self._shell.stuck:
            # Not even a helper process could start to stop the command: the
            # sandbox is out of pids. Recovering restarts it and ends this shell.
            result.error = self._sb.recover_from_exhaustion()
        elif result.timed_out and self._shell.closed:
            result.error = "the command could not be stopped, so its shell was killed"
        return self._sb.finish_command("session", cmd, result, session=self.id)

    def interrupt(self) -> None:
        self._shell.interrupt()

    def close(self) -> None:
        self._shell.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
