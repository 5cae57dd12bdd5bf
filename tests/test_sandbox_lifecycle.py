"""Lifecycle: list, attach, snapshot/fork, TTL and deadline reaping, gc, audit log."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from openale.sandbox import (
    Sandbox,
    SandboxNotFoundError,
    SandboxNotRunningError,
    SandboxSettings,
    SandboxSpec,
    delete_snapshot,
    gc,
    load_snapshot,
)
from tests.conftest import BASE_IMAGE


def wait_for(predicate, timeout: float = 60, interval: float = 0.25):
    """Poll until ``predicate()`` is truthy; the bound only keeps a broken test from hanging."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def ids(infos) -> set[str]:
    return {i.id for i in infos}


def test_list_attach_and_close(engine):
    sb = Sandbox.create(SandboxSpec(image=BASE_IMAGE, labels={"team": "tests"}))
    listed = {i.id: i for i in Sandbox.list()}
    assert listed[sb.id].status == "running"
    assert listed[sb.id].spec.labels == {"team": "tests"}
    assert not listed[sb.id].detached

    other = Sandbox.attach(sb.id)
    assert other.spec == sb.spec
    other.files.write("from-attach.txt", "hi")
    assert sb.files.read("from-attach.txt") == b"hi"

    sb.close()
    sb.close()  # idempotent
    assert sb.id not in ids(Sandbox.list())
    with pytest.raises(SandboxNotRunningError):
        sb.commands.run("true")
    with pytest.raises(SandboxNotFoundError):
        Sandbox.attach(sb.id)


def test_attach_from_another_process(engine):
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE)) as sb:
        code = (
            "import sys; from openale.sandbox import Sandbox\n"
            "sb = Sandbox.attach(sys.argv[1])\n"
            "shell = sb.sessions.create()\n"
            "shell.run('cd /tmp && echo from-child > child.txt')\n"
            "print(sb.commands.run('hostname').stdout.strip())\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, sb.id],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ,
        )
        assert out.stdout.strip() == sb.id
        assert sb.files.read("/tmp/child.txt") == b"from-child\n"
        # An attaching process never removes what it did not create.
        assert sb.id in ids(Sandbox.list())


def test_snapshot_and_fork_keep_files_and_are_independent(engine):
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE, memory="256m")) as sb:
        sb.files.write("state/progress.txt", "step 3 of 5")
        sb.commands.run("echo 'built' > /opt/artifact")
        snap = sb.snapshot()
        sb.files.write("state/progress.txt", "changed after the snapshot")

    forks = Sandbox.fork(snap, 3)
    try:
        assert len({f.id for f in forks}) == 3
        for f in forks:
            assert f.files.read("state/progress.txt") == b"step 3 of 5"
            assert f.commands.run("cat /opt/artifact").stdout == "built\n"
            assert f.spec.memory == "256m" and f.spec.image == snap.image
        forks[0].files.write("state/progress.txt", "fork 0 moved on")
        assert forks[1].files.read("state/progress.txt") == b"step 3 of 5"
        assert load_snapshot(snap.id).spec.memory == "256m"
        by_id = Sandbox.fork(snap.id, 1)
        assert by_id[0].files.read("state/progress.txt") == b"step 3 of 5"
        by_id[0].close()
    finally:
        for f in forks:
            f.close()
        assert delete_snapshot(snap) and not delete_snapshot(snap)


def test_delete_snapshot_by_id_uses_the_given_settings(engine, monkeypatch):
    # The settings name the engine; the environment's default names none that answers.
    real = SandboxSettings().docker_host or os.environ.get(
        "DOCKER_HOST", "unix:///var/run/docker.sock"
    )
    settings = SandboxSettings(docker_host=real)
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE), settings=settings) as sb:
        snap = sb.snapshot()
    monkeypatch.setenv("ALE_DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert delete_snapshot(snap.id, settings)
    assert not delete_snapshot(snap, settings)


def test_idle_ttl_is_reaped_by_gc(engine):
    sb = Sandbox.create(SandboxSpec(image=BASE_IMAGE, ttl_s=1.5))
    busy = Sandbox.create(SandboxSpec(image=BASE_IMAGE, ttl_s=600))
    try:
        assert sb.id not in ids(gc(dry_run=True))
        time.sleep(2)
        planned = {i.id: i for i in gc(dry_run=True)}
        assert "idle" in planned[sb.id].reason and not planned[sb.id].removed
        assert sb.id in ids(Sandbox.list())  # a dry run removes nothing
        removed = {i.id: i for i in gc()}
        assert removed[sb.id].removed
        assert sb.id not in ids(Sandbox.list()) and busy.id in ids(Sandbox.list())
        assert any(e.action == "deleted" and "reaped" in e.detail for e in sb.audit.read(sb.id))
    finally:
        sb.close()
        busy.close()


def test_activity_keeps_a_sandbox_alive(engine):
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE, ttl_s=2)) as sb:
        for _ in range(4):
            time.sleep(0.7)
            sb.commands.run("true")
        assert sb.id not in ids(gc(dry_run=True))


def test_deadline_stops_the_sandbox_without_any_reaper(engine):
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE, deadline_s=2, ttl_s=None)) as sb:
        assert sb.info().status == "running"
        wait_for(lambda: sb.info().status == "stopped", timeout=30)
        reasons = {i.id: i.reason for i in gc()}
        assert sb.id in reasons


def test_the_in_process_reaper_removes_expired_sandboxes(engine):
    settings = SandboxSettings(reap_interval_s=0.5)
    sb = Sandbox.create(SandboxSpec(image=BASE_IMAGE, ttl_s=1), settings=settings)
    try:
        wait_for(lambda: sb.id not in ids(Sandbox.list()), timeout=60)
    finally:
        sb.close()


def test_gc_removes_sandboxes_whose_owner_died(engine):
    code = (
        "import sys, time; from openale.sandbox import Sandbox\n"
        "owned = Sandbox.create(image=sys.argv[1])\n"
        "kept = Sandbox.create(image=sys.argv[1], detach=True)\n"
        "print(owned.id, kept.id, flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, BASE_IMAGE], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    owned, kept = child.stdout.readline().split()
    try:
        assert owned not in ids(gc(dry_run=True))  # owner still alive
        child.send_signal(signal.SIGKILL)  # no atexit handler runs
        child.wait()
        result = {i.id: i for i in gc()}
        assert "owner process" in result[owned].reason and result[owned].removed
        assert kept not in result and kept in ids(Sandbox.list())
    finally:
        child.kill()
        Sandbox.attach(kept).close()


def test_a_process_closes_what_it_owns_at_exit_but_not_detached_sandboxes(engine):
    code = (
        "import sys; from openale.sandbox import Sandbox\n"
        "owned = Sandbox.create(image=sys.argv[1])\n"
        "kept = Sandbox.create(image=sys.argv[1], detach=True)\n"
        "print(owned.id, kept.id, flush=True)\n"
    )  # exits normally without close(): the at-exit handler decides
    done = subprocess.run(
        [sys.executable, "-c", code, BASE_IMAGE], capture_output=True, text=True, env=os.environ
    )
    owned, kept = done.stdout.split()
    try:
        assert done.returncode == 0, done.stderr
        listed = ids(Sandbox.list())
        assert owned not in listed and kept in listed
    finally:
        Sandbox.attach(kept).close()


def test_audit_log_records_everything(engine):
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE)) as sb:
        sb.commands.run("echo hello; exit 3")
        sb.sessions.create().run("echo in-session")
        sb.files.write("a.txt", "12345")
        sb.files.read("a.txt")
        sb_id, path = sb.id, sb.audit.path(sb.id)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    actions = [(e["kind"], e["action"]) for e in events]
    assert actions[:2] == [("lifecycle", "pending"), ("lifecycle", "running")]
    assert actions[-1] == ("lifecycle", "deleted")
    assert ("session", "create") in actions
    exec_event = next(e for e in events if e["kind"] == "command" and e["action"] == "exec")
    assert exec_event["exit_code"] == 3 and exec_event["detail"]["cmd"] == "echo hello; exit 3"
    assert exec_event["bytes_out"] == len("hello\n") and exec_event["duration_s"] > 0
    session_event = next(e for e in events if e["action"] == "session")
    assert session_event["exit_code"] == 0
    write = next(e for e in events if e["kind"] == "file" and e["action"] == "write")
    read = next(e for e in events if e["kind"] == "file" and e["action"] == "read")
    assert write["bytes_in"] == 5 and read["bytes_out"] == 5
    assert all(e["sandbox"] == sb_id and e["actor"] for e in events)
