"""``HostEnvironment``: the agent's tools acting on a host directory (``--workspace DIR``).

The same interface as ``SandboxEnvironment``, without isolation: use it only
on a directory you are willing to let the model change.

The shell is one local ``bash`` over pipes. Each command is sent as
``eval $'<escaped>' < /dev/null`` on one line and followed by a second line
that prints an end marker with a per-shell token, the command's sequence
number and ``$?``. ``set -m`` gives every job its own process group, so a
timed-out command can be signalled without touching the shell: a SIGINT to
the command's groups aborts the whole command line as Ctrl-C would (the
shell survives it because it traps INT), stubborn programs then get SIGKILL,
and only a shell that hangs by itself (a loop of builtins) is restarted.
"""

from __future__ import annotations

import os
import secrets
import select
import signal
import subprocess
import threading
import time
from pathlib import Path

from openale.sandbox import CommandResult, SessionClosedError
from openale.sandbox.session import SESSION_ENV, ansi_c_quote
from openale.sandbox.streams import CappedBuffer, EndMarkers

SHELL_INTERRUPT_GRACE_S = 2.0  # after SIGINT, before SIGKILL
SHELL_KILL_GRACE_S = 2.0  # SIGKILL rounds before the shell itself is restarted


class PathOutsideWorkspaceError(PermissionError):
    """A file path resolves outside the workspace and the environment does not allow that."""


class HostEnvironment:
    """Tools acting on ``workdir`` on this machine through a persistent local bash."""

    def __init__(
        self,
        workdir: str | Path,
        *,
        allow_outside: bool = False,
        env: dict[str, str] | None = None,
        max_output_bytes: int = 1_000_000,
    ):
        root = Path(workdir).expanduser().resolve()
        if not root.is_dir():
            raise NotADirectoryError(f"workspace {str(workdir)!r} is not a directory")
        self.workdir = str(root)
        self.allow_outside = allow_outside
        self.max_output_bytes = max_output_bytes
        self._env = {**os.environ, **SESSION_ENV, **(env or {})}
        self._lock = threading.Lock()
        self._shell: _LocalShell | None = None

    # -- the shell --------------------------------------------------------------------

    def shell(self, cmd: str, timeout: float | None = 120.0) -> CommandResult:
        with self._lock:
            if self._shell is None or self._shell.closed:
                self._shell = _LocalShell(self.workdir, self._env, self.max_output_bytes)
            return self._shell.run(cmd, timeout)

    # -- files ------------------------------------------------------------------------

    def resolve(self, path: str) -> Path:
        """``path`` (relative to the workspace) as an absolute path, symlinks resolved.

        Raises ``PathOutsideWorkspaceError`` for a path outside the workspace
        unless the environment was created with ``allow_outside=True``.
        """
        if "\0" in path:
            raise ValueError("paths cannot contain NUL bytes")
        resolved = (Path(self.workdir) / Path(path).expanduser()).resolve()
        if not self.allow_outside and not resolved.is_relative_to(self.workdir):
            raise PathOutsideWorkspaceError(
                f"{path!r} is outside the workspace {self.workdir}; "
                "only paths inside it can be read or written"
            )
        return resolved

    def read(self, path: str) -> bytes:
        return self.resolve(path).read_bytes()

    def write(self, path: str, data: bytes | str) -> None:
        target = self.resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Writing in place (not replace-by-rename) keeps an existing file's mode.
        target.write_bytes(data.encode() if isinstance(data, str) else bytes(data))

    def exists(self, path: str) -> bool:
        return self.resolve(path).exists()

    def close(self) -> None:
        with self._lock:
            if self._shell is not None:
                self._shell.close()

    def __enter__(self) -> HostEnvironment:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _LocalShell:
    """One ``bash`` process; ``run`` is not thread-safe (the environment holds a lock)."""

    def __init__(self, cwd: str, env: dict[str, str], max_output_bytes: int):
        self.max_output_bytes = max_output_bytes
        self.closed = False
        self._token = secrets.token_hex(6)
        self._markers = EndMarkers(self._token)
        self._seq = 0
        self._carry = bytearray()
        self._proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            # Started under nohup or as a background job, we ignore SIGINT, and bash
            # could neither trap it nor let the commands it runs be interrupted by it.
            preexec_fn=_default_sigint if _ignoring_sigint() else None,
        )
        self._fd = self._proc.stdout.fileno()
        setup = self.run("set -m; trap : INT; PS1=; PS2=", timeout=30)
        if setup.exit_code != 0:
            self.close()
            raise SessionClosedError(f"the local shell did not start: {setup.output!r}")

    def run(self, cmd: str, timeout: float | None) -> CommandResult:
        self._seq += 1
        started = time.monotonic()
        out = CappedBuffer(self.max_output_bytes)
        before = self._job_groups()
        # The marker is a line of its own: after a SIGINT the shell drops the
        # rest of the command's line but still reads the next one.
        self._send(
            f"eval {ansi_c_quote(cmd)} < /dev/null\n"
            f"printf '\\n__ALE_{self._token}_{self._seq}_%s__\\n' \"$?\"\n"
        )
        deadline = None if timeout is None else started + timeout
        status = self._read_until_end(out, deadline)
        timed_out = status is None and not self.closed
        error = None
        if timed_out:
            status = self._stop(before, out)
            if status is None:
                self.close()
                error = "the command could not be stopped, so its shell was restarted"
        if status is None and error is None and self.closed:
            status = self._proc.returncode  # the command ran `exit`
        return CommandResult(
            exit_code=status,
            output=out.text(),
            duration_s=time.monotonic() - started,
            truncated=out.truncated,
            timed_out=timed_out,
            interrupted=timed_out,
            error=error,
        )

    def close(self) -> None:
        if self.closed:
            return
        if self._proc.poll() is None:
            for group in self._job_groups():
                _signal_group(group, signal.SIGKILL)
            _signal_group(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            stream.close()
        self.closed = True

    # -- internals --------------------------------------------------------------------

    def _send(self, text: str) -> None:
        try:
            self._proc.stdin.write(text.encode())
            self._proc.stdin.flush()
        except OSError as e:
            self.close()
            raise SessionClosedError(f"the local shell is gone: {e}") from None

    def _read_until_end(self, out: CappedBuffer, deadline: float | None) -> int | None:
        """Stream output into ``out`` until this command's marker; its ``$?``, or None."""
        pending = self._carry
        self._carry = bytearray()
        while True:
            found = self._markers.take(pending, self._seq, out)
            if found:
                status, self._carry = found
                return status
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._fd], [], [], wait)
            if not ready:
                self._carry = pending
                return None
            data = os.read(self._fd, 1 << 16)
            if not data:
                out.write(bytes(pending))
                self.close()  # the shell exited (the command ran `exit`)
                return None
            pending += data

    def _stop(self, before: set[int], out: CappedBuffer) -> int | None:
        """SIGINT the command's process groups, then SIGKILL them; None if the shell hangs."""
        for sig, grace in (
            (signal.SIGINT, SHELL_INTERRUPT_GRACE_S),
            (signal.SIGKILL, SHELL_KILL_GRACE_S),
        ):
            end = time.monotonic() + grace
            while time.monotonic() < end:
                for group in self._job_groups() - before:
                    _signal_group(group, sig)
                # Short rounds: after a SIGKILL the rest of the command line goes
                # on, and each next program is a new group to stop.
                status = self._read_until_end(out, min(end, time.monotonic() + 0.1))
                if status is not None or self.closed:
                    return status
        return None

    def _job_groups(self) -> set[int]:
        """Process groups of the shell's descendants (each job has its own under ``set -m``)."""
        table = _process_table()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        groups, stack = set(), list(children.get(self._proc.pid, []))
        while stack:
            pid = stack.pop()
            groups.add(table[pid][1])
            stack.extend(children.get(pid, []))
        groups.discard(self._proc.pid)
        return groups


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every visible process."""
    table: dict[int, tuple[int, int]] = {}
    if os.path.isdir("/proc/self"):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue  # exited meanwhile
            # Fields after the command name, which may itself hold spaces and ')'.
            fields = stat[stat.rfind(b")") + 2 :].split()
            table[int(entry)] = (int(fields[1]), int(fields[2]))
        return table
    ps = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,pgid="], capture_output=True, text=True)
    for line in ps.stdout.splitlines():
        pid, ppid, pgid = (int(x) for x in line.split())
        table[pid] = (ppid, pgid)
    return table


def _ignoring_sigint() -> bool:
    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
