"""The control plane's store on a real PostgreSQL server (the SQL must stay portable).

A throwaway cluster is started with the local ``initdb``/``pg_ctl``; the test is
skipped where PostgreSQL or the psycopg driver is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta

import pytest

from openale.sandbox import SandboxSpec, Snapshot
from openale.server.store import Store
from tests.test_server_support import SMALL, ServerThread, free_port

PG_BIN = "/usr/lib/postgresql/15/bin"


def _as_postgres(*argv: str) -> list[str]:
    # initdb refuses to run as root; the cluster belongs to the postgres user.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


@pytest.fixture(scope="module")
def pg_url():
    pytest.importorskip("psycopg")
    initdb = shutil.which("initdb") or os.path.join(PG_BIN, "initdb")
    pg_ctl = shutil.which("pg_ctl") or os.path.join(PG_BIN, "pg_ctl")
    if not (os.path.exists(initdb) and os.path.exists(pg_ctl)):
        pytest.skip("PostgreSQL is not installed")
    root = tempfile.mkdtemp(prefix="ale-pg-")
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = os.path.join(root, "data"), free_port()
    subprocess.run(
        _as_postgres(initdb, "-D", data, "-A", "trust", "-U", "ale"),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root}"
    subprocess.run(
        _as_postgres(pg_ctl, "-D", data, "-o", options, "-l", f"{root}/log", "-w", "start"),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://ale@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres(pg_ctl, "-D", data, "-m", "immediate", "stop"), check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_store_operations_on_postgres(pg_url):
    store = Store(pg_url)
    try:
        assert store.server_id() == Store(pg_url).server_id()
        made = store.create_token("erin", ["admin"])
        assert store.authenticate(made.token).owner == "erin"
        assert store.revoke_token(made.id) and store.authenticate(made.token) is None

        spec = SandboxSpec(**SMALL, deadline_s=60)
        store.add_sandbox("sb-pg1", "erin", spec, None)
        store.add_sandbox("sb-pg2", "erin", spec, None)
        store.set_state("sb-pg1", "running")
        assert store.count_by_state() == {"running": 1, "pending": 1}
        row = store.get_sandbox("sb-pg1")
        assert row.info().spec == spec and row.deadline_at > row.created_at
        assert store.claim_key("erin", "k", "sb-pg1") is None
        assert store.claim_key("erin", "k", "sb-pg2") == "sb-pg1"
        store.forget_sandbox("sb-pg2")
        assert [r.id for r in store.list_sandboxes("erin")] == ["sb-pg1"]

        snap = Snapshot(
            id="snap-pg",
            image="openale/snapshot:snap-pg",
            source_sandbox="sb-pg1",
            created_at=datetime.now(UTC),
            spec=spec,
        )
        store.add_snapshot(snap, "erin")
        assert store.get_snapshot("snap-pg").snapshot() == snap

        before = datetime.now(UTC) - timedelta(seconds=1)
        for code in (0, 1, 2):
            store.add_audit(
                owner="erin",
                token_id=None,
                method="POST",
                route="/v1/sandboxes/{sandbox_id}/commands",
                op="command",
                sandbox="sb-pg1",
                status_code=200,
                exit_code=code,
                detail={"cmd": f"exit {code}"},
            )
        records = list(store.query_audit("erin", "sb-pg1", since=before))
        assert [r.exit_code for r in records] == [0, 1, 2]
        assert records[2].detail == {"cmd": "exit 2"}
        assert len(list(store.query_audit("erin", limit=2))) == 2
        assert list(store.query_audit("someone-else")) == []
    finally:
        store.close()


def test_server_runs_on_postgres(pg_url, engine):
    with ServerThread(pg_url) as server:
        with server.client(server.token("frank")) as c:
            r = c.post("/v1/sandboxes", json={"spec": SMALL}, headers={"Idempotency-Key": "pg"})
            assert r.status_code == 201, r.text
            sid = r.json()["id"]
            again = c.post("/v1/sandboxes", json={"spec": SMALL}, headers={"Idempotency-Key": "pg"})
            assert again.status_code == 200 and again.json()["id"] == sid
            out = c.post(f"/v1/sandboxes/{sid}/commands", json={"cmd": "echo pg"}).json()
            assert out["stdout"] == "pg\n"
            assert c.delete(f"/v1/sandboxes/{sid}").status_code == 204
            ops = [r["op"] for r in c.get("/v1/audit", params={"sandbox": sid}).json()]
            assert ops == ["create", "create.replay", "command", "delete"]
