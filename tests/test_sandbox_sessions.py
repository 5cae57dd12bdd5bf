"""Persistent bash sessions: state, exit codes, timeouts and interrupts."""

import threading
import time

import pytest

from openale.sandbox import SessionClosedError
from tests.conftest import processes


def test_state_persists_between_commands(sandbox):
    shell = sandbox.sessions.create()
    shell.run("cd /tmp && mkdir -p here && cd here")
    shell.run("export COLOR=blue; COUNT=3")
    shell.run('greet() { echo "hello $1"; }')
    shell.run("sleep 30 &")
    assert shell.run("pwd").output == "/tmp/here\n"
    assert shell.run('echo "$COLOR $COUNT"').output == "blue 3\n"
    assert shell.run("greet world").output == "hello world\n"
    assert "sleep 30" in shell.run("jobs").output


def test_exit_codes(sandbox):
    shell = sandbox.sessions.create()
    assert shell.run("true").exit_code == 0
    assert shell.run("false").exit_code == 1
    assert shell.run("(exit 42)").exit_code == 42
    r = shell.run("echo out; echo err >&2; exit_code_of_this=5; (exit 5)")
    assert r.exit_code == 5 and "out\n" in r.output and "err\n" in r.output


def test_any_text_is_one_command(sandbox):
    shell = sandbox.sessions.create()
    r = shell.run("echo 'unbalanced")
    assert r.exit_code == 2  # a syntax error, and the session is still in sync
    assert shell.run("echo ok").output == "ok\n"
    heredoc = "cat > /tmp/h.txt <<'EOF'\nline $1 'q' \"dq\" \\\\ !x\nEOF\ncat /tmp/h.txt"
    assert shell.run(heredoc).output == "line $1 'q' \"dq\" \\\\ !x\n"
    big = "x=" + "a" * 200_000 + "; echo ${#x}"
    assert shell.run(big).output == "200000\n"
    assert shell.run("printf 'caf\\xc3\\xa9 \\u2713\\n'").output == "café ✓\n"


def test_timeout_interrupts_and_the_session_lives_on(sandbox):
    shell = sandbox.sessions.create()
    shell.run("cd /tmp; KEEP=yes")
    r = shell.run("echo started; sleep 300; echo never", timeout=1)
    assert r.timed_out and r.interrupted and r.exit_code == 130
    assert "started" in r.output and "never" not in r.output
    assert shell.run("echo $KEEP $(pwd)").output == "yes /tmp\n"
    assert not [p for p in processes(sandbox) if p.startswith("sleep 300")]


def test_timeout_escalates_when_sigint_is_ignored(sandbox):
    shell = sandbox.sessions.create()
    shell.run("KEEP=still")
    r = shell.run("trap '' INT; sleep 300", timeout=1)
    assert r.timed_out and r.exit_code == 137
    assert shell.run("echo $KEEP").output == "still\n"


def test_interrupt_from_another_thread(sandbox):
    shell = sandbox.sessions.create()
    threading.Timer(0.5, shell.interrupt).start()
    started = time.monotonic()
    r = shell.run("sleep 300", timeout=60)
    assert r.interrupted and not r.timed_out and r.exit_code == 130
    assert time.monotonic() - started < 60
    assert shell.run("echo alive").output == "alive\n"


def test_stdin_is_not_the_protocol_channel(sandbox):
    shell = sandbox.sessions.create()
    r = shell.run("cat; read line; echo read=$?", timeout=10)
    assert not r.timed_out and "read=1" in r.output
    assert shell.run("echo fine").output == "fine\n"


def test_exit_closes_the_session(sandbox):
    shell = sandbox.sessions.create()
    r = shell.run("exit 3")
    assert r.exit_code == 3
    assert shell.closed
    with pytest.raises(SessionClosedError):
        shell.run("echo no")
    assert sandbox.sessions.create().run("echo new").output == "new\n"


def test_sessions_are_independent(sandbox):
    a, b = sandbox.sessions.create(), sandbox.sessions.create(cwd="/tmp", env={"WHO": "b"})
    a.run("X=a")
    assert b.run("echo ${X:-unset} $WHO $(pwd)").output == "unset b /tmp\n"


def test_a_hung_shell_is_killed_and_reported(sandbox):
    shell = sandbox.sessions.create()
    # A builtin loop runs in the shell itself, with SIGINT ignored: only
    # killing the shell ends it.
    r = shell.run("trap '' INT; while :; do :; done", timeout=1)
    assert r.timed_out and shell.closed
    assert "shell was killed" in r.error
    assert sandbox.sessions.create().run("echo next").output == "next\n"
