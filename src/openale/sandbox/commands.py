"""``sb.commands``: one-shot processes with separate stdout and stderr."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from openale.sandbox.spec import CommandResult
from openale.sandbox.streams import CappedBuffer, FrameDemuxer, recv_until

if TYPE_CHECKING:
    from openale.sandbox.sandbox import Sandbox

KILL_GRACE_S = 3.0
log = logging.getLogger("openale.sandbox")

StreamName = Literal["stdout", "stderr"]
OutputCallback = Callable[[StreamName, bytes], None]
"""``on_output(stream, data)``: called with each chunk of a command's output as it is read."""


class _Sink:
    """One output stream of a command: its capped buffer, and the callback if there is one."""

    def __init__(self, handle: CommandHandle, stream: StreamName, cap: int):
        self.handle = handle
        self.stream: StreamName = stream
        self.buffer = CappedBuffer(cap)

    def write(self, data: bytes) -> None:
        self.buffer.write(data)
        self.handle._deliver(self.stream, data)


class CommandHandle:
    """A running command. ``wait()`` returns its ``CommandResult`` with the real exit code.

    ``on_output(stream, data)``, given at creation, sees the output live:
    ``stream`` is ``"stdout"`` or ``"stderr"`` and ``data`` the bytes as they
    were read (whole Docker frames, not lines; UTF-8 may split between calls).

    - Nothing is missed: the callback is in place before the first byte is
      read, and output waits in the exec's socket until it is.
    - Every byte is passed, even past ``max_output_bytes`` (only the result is capped).
    - Calls come one at a time from the thread reading the command (its
      background thread, or the caller's in ``wait()``), in order per stream.
    - A slow callback slows the reading: the command blocks on a full pipe,
      nothing is dropped. While it blocks, the timeout is not checked.
    - If it raises, it is not called again; the command runs on and the
      result's ``error`` says so.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        cmd: str,
        *,
        timeout: float | None,
        env: dict[str, str],
        cwd: str | None,
        user: str | None,
        on_output: OutputCallback | None = None,
    ):
        self._sb = sandbox
        self.cmd = cmd
        self.timeout = timeout
        # Every process the command starts inherits this variable, so a
        # timeout can kill the whole tree, daemonized children included.
        self.token = secrets.token_hex(8)
        self._on_output = on_output
        self._callback_error: str | None = None
        cap = sandbox.settings.max_output_bytes
        self._stdout, self._stderr = _Sink(self, "stdout", cap), _Sink(self, "stderr", cap)
        self._demux = FrameDemuxer(self._stdout, self._stderr)
        self._started = time.monotonic()
        self._exec_id, self._sock = sandbox.runtime.exec_start(
            sandbox.container,
            ["sh", "-c", cmd],
            env={**env, "ALE_EXEC": self.token},
            workdir=cwd,
            user=user,
        )
        self._result: CommandResult | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _pump(self) -> None:
        deadline = None if self.timeout is None else self._started + self.timeout
        timed_out = not self._drain(deadline)
        error = None
        if timed_out:
            if self._sb.runtime.kill_by_token(self._sb.container, self.token):
                self._drain(time.monotonic() + KILL_GRACE_S)
            else:
                error = self._sb.recover_from_exhaustion()
        self._sock.close()
        exit_code = self._sb.runtime.exec_exit_code(self._exec_id)
        out, err = self._stdout.buffer, self._stderr.buffer
        self._result = self._sb.finish_command(
            "exec",
            self.cmd,
            CommandResult(
                exit_code=exit_code,
                stdout=out.text(),
                stderr=err.text(),
                duration_s=time.monotonic() - self._started,
                truncated=out.truncated or err.truncated,
                timed_out=timed_out,
                interrupted=timed_out,
                error="; ".join(e for e in (error, self._callback_error) if e) or None,
            ),
        )
        self._done.set()

    def _deliver(self, stream: StreamName, data: bytes) -> None:
        if self._on_output is None:
            return
        try:
            self._on_output(stream, data)
        except Exception as e:  # the consumer's failure must not lose the command's result
            self._on_output = None
            self._callback_error = (
                f"on_output raised {type(e).__name__}: {e}; later output was not passed to it"
            )
            log.warning("command %r: %s", self.cmd, self._callback_error)

    def _drain(self, deadline: float | None) -> bool:
        """Read until the stream ends (True) or the deadline passes (False)."""
        while True:
            data = recv_until(self._sock, deadline, heartbeat=self._sb.touch)
            if data is None:
                return False
            if not data:
                return True
            self._demux.feed(data)

    def _start_background(self) -> CommandHandle:
        self._thread = threading.Thread(
            target=self._pump, name=f"ale-cmd-{self.token}", daemon=True
        )
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> CommandResult:
        """Block until the command ends (or ``timeout`` seconds; then ``TimeoutError``)."""
        if self._thread is None:
            self._pump()
        elif not self._done.wait(timeout):
            raise TimeoutError(f"command still running after {timeout}s: {self.cmd!r}")
        assert self._result is not None
        return self._result

    def kill(self) -> None:
        """SIGKILL the command and everything it started."""
        self._sb.runtime.kill_by_token(self._sb.container, self.token)


class Commands:
    """``sb.commands.run(...)``: each call is a fresh ``sh -c`` process."""

    def __init__(self, sandbox: Sandbox):
        self._sb = sandbox

    def run(
        self,
        cmd: str,
        *,
        timeout: float | None = 600.0,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        user: str | None = None,
        background: bool = False,
        on_output: OutputCallback | None = None,
    ) -> CommandResult | CommandHandle:
        """Run ``cmd`` with ``sh -c``. ``background=True`` returns a ``CommandHandle`` at once.

        ``on_output(stream, data)`` receives the output live as well (see ``CommandHandle``).
        """
        self._sb.ensure_running()
        handle = CommandHandle(
            self._sb,
            cmd,
            timeout=timeout,
            env=env or {},
            cwd=cwd,
            user=user or self._sb.spec.user,
            on_output=on_output,
        )
        if background:
            return handle._start_background()
        return handle.wait()
