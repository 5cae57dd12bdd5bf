"""``ale serve`` killed with SIGKILL and started again: nothing is lost, nothing is orphaned."""

from __future__ import annotations

import signal

import httpx
import pytest

from openale.sandbox import SandboxSettings, SandboxSpec
from openale.server.backend import LocalBackend, new_sandbox_id
from openale.server.store import Store
from tests.test_server_support import SMALL, server_containers, start_server


@pytest.mark.slow
def test_sigkill_and_restart_adopts_fails_and_removes_orphans(tmp_path, engine):
    db_url = f"sqlite:///{tmp_path / 'server.db'}"
    log = tmp_path / "server.log"
    proc, url = start_server(db_url, log)
    store = Store(db_url)
    server_id = store.server_id()
    token = store.create_token("alice").token
    headers = {"Authorization": f"Bearer {token}"}
    backend = LocalBackend(SandboxSettings(reap_interval_s=0), server_id)
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
            kept = [c.post("/v1/sandboxes", json={"spec": SMALL}).json()["id"] for _ in range(3)]
            vanished = c.post("/v1/sandboxes", json={"spec": SMALL}).json()["id"]
            r = c.put(
                f"/v1/sandboxes/{kept[0]}/files",
                params={"path": "/workspace/survives.txt"},
                content=b"before the crash",
            )
            assert r.status_code == 204
            session = c.post(f"/v1/sandboxes/{kept[1]}/sessions", json={}).json()["session_id"]

        proc.send_signal(signal.SIGKILL)
        proc.wait()

        # While it is down: one container vanishes, an orphan carrying this
        # server's label appears, and a create was cut off half-way.
        engine.api.remove_container(f"openale-{vanished}", force=True)
        spec = SandboxSpec(**SMALL)
        orphan = new_sandbox_id()
        backend.create(orphan, spec, "alice")
        half_made = new_sandbox_id()
        store.add_sandbox(half_made, "alice", spec, None)
        backend.create(half_made, spec, "alice")
        never_started = new_sandbox_id()
        store.add_sandbox(never_started, "alice", spec, None)
        assert {orphan, half_made} <= server_containers(engine, server_id)

        proc, url = start_server(db_url, log)
        with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
            for sid in kept:
                info = c.get(f"/v1/sandboxes/{sid}").json()
                assert info["status"] == "running", info
                r = c.post(f"/v1/sandboxes/{sid}/commands", json={"cmd": "echo alive"})
                assert r.json()["stdout"] == "alive\n"
            got = c.get(
                f"/v1/sandboxes/{kept[0]}/files", params={"path": "/workspace/survives.txt"}
            )
            assert got.content == b"before the crash"
            # Sessions are processes of the old server: gone, and new ones work.
            old = c.post(f"/v1/sandboxes/{kept[1]}/sessions/{session}/run", json={"cmd": "true"})
            assert old.status_code == 404
            new = c.post(f"/v1/sandboxes/{kept[1]}/sessions", json={}).json()["session_id"]
            r = c.post(f"/v1/sandboxes/{kept[1]}/sessions/{new}/run", json={"cmd": "cd /; pwd"})
            assert r.json()["output"].strip() == "/"
            for sid in (vanished, half_made, never_started):
                info = c.get(f"/v1/sandboxes/{sid}").json()
                assert info["status"] == "failed", info
                r = c.post(f"/v1/sandboxes/{sid}/commands", json={"cmd": "true"})
                assert r.status_code == 409
            listed = {s["id"]: s["status"] for s in c.get("/v1/sandboxes").json()}
            assert listed == {
                **dict.fromkeys(kept, "running"),
                **dict.fromkeys((vanished, half_made, never_started), "failed"),
            }
            # No container of this server that the store does not account for.
            assert server_containers(engine, server_id) == set(kept)
            for sid in kept:
                assert c.delete(f"/v1/sandboxes/{sid}").status_code == 204
            assert server_containers(engine, server_id) == set()
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down cleanly, then re-raises the signal it caught.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
        for sid in server_containers(engine, server_id):
            backend.remove(sid)
        store.close()
