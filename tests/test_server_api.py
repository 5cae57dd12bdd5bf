"""The control plane over real HTTP (uvicorn + httpx) against the real Docker engine."""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from openale.sandbox import gc
from openale.server.reconcile import sync
from openale.server.routes import files as routes_files
from tests.conftest import PROCESS_LIST
from tests.test_server_support import SMALL, ServerThread, parse_sse, server_containers

UPLOAD_LIMIT = 4 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine):
    with ServerThread(
        tmp_path_factory.mktemp("server") / "server.db", max_upload_bytes=UPLOAD_LIMIT
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def alice(server):
    with server.client(server.token("alice")) as c:
        yield c


@pytest.fixture(scope="module")
def bob(server):
    with server.client(server.token("bob")) as c:
        yield c


@pytest.fixture(scope="module")
def root(server):
    with server.client(server.token("root", admin=True)) as c:
        yield c


@pytest.fixture(scope="module")
def sandbox_id(alice):
    r = alice.post("/v1/sandboxes", json={"spec": SMALL})
    assert r.status_code == 201, r.text
    yield r.json()["id"]
    alice.delete(f"/v1/sandboxes/{r.json()['id']}")


def run(client, sandbox_id: str, cmd: str) -> dict:
    r = client.post(f"/v1/sandboxes/{sandbox_id}/commands", json={"cmd": cmd})
    assert r.status_code == 200, r.text
    return r.json()


# -- auth ----------------------------------------------------------------------------


def test_missing_or_unknown_token_is_401(server):
    with server.client(None) as anon:
        r = anon.get("/v1/sandboxes")
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "Unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
        assert anon.get("/healthz").json() == {"ok": True}
        assert "/v1/sandboxes" in anon.get("/openapi.json").json()["paths"]
    with server.client("ale_not-a-real-token") as bad:
        assert bad.get("/v1/sandboxes").status_code == 401


def test_revoked_token_is_401(server, root):
    created = root.post("/v1/tokens", json={"owner": "carol"})
    assert created.status_code == 201
    with server.client(created.json()["token"]) as carol:
        assert carol.get("/v1/sandboxes").status_code == 200
        ids = [t["id"] for t in root.get("/v1/tokens").json()]
        assert created.json()["id"] in ids
        assert root.delete(f"/v1/tokens/{created.json()['id']}").status_code == 204
        r = carol.get("/v1/sandboxes")
        assert r.status_code == 401
    assert root.delete("/v1/tokens/tok-nope").status_code == 404


def test_other_owners_sandbox_is_404_and_admin_routes_are_403(alice, bob, root, sandbox_id):
    for method, path, body in [
        ("GET", f"/v1/sandboxes/{sandbox_id}", None),
        ("DELETE", f"/v1/sandboxes/{sandbox_id}", None),
        ("POST", f"/v1/sandboxes/{sandbox_id}/commands", {"cmd": "true"}),
        ("POST", f"/v1/sandboxes/{sandbox_id}/sessions", {}),
        ("GET", f"/v1/sandboxes/{sandbox_id}/files/exists", None),
        ("POST", f"/v1/sandboxes/{sandbox_id}/snapshot", None),
    ]:
        r = bob.request(method, path, json=body, params={"path": "/etc"})
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["type"] == "SandboxNotFoundError"
    assert sandbox_id not in [s["id"] for s in bob.get("/v1/sandboxes").json()]
    assert sandbox_id in [s["id"] for s in alice.get("/v1/sandboxes").json()]
    assert sandbox_id in [s["id"] for s in root.get("/v1/sandboxes?all=true").json()]
    assert sandbox_id not in [s["id"] for s in root.get("/v1/sandboxes").json()]
    for method, path in [
        ("GET", "/v1/sandboxes?all=true"),
        ("GET", "/metrics"),
        ("GET", "/v1/tokens"),
        ("POST", "/v1/tokens"),
        ("GET", "/v1/audit?all=true"),
    ]:
        r = bob.request(method, path, json={"owner": "mallory", "scopes": ["admin"]})
        assert r.status_code == 403, (method, path)
    # The sandbox survived bob's attempts.
    assert run(alice, sandbox_id, "echo still here")["stdout"] == "still here\n"


def test_token_cli_works_on_the_store(server):
    from typer.testing import CliRunner

    from openale.cli.serve import serve_app as app

    db = ["--db", server.settings.database_url]
    cli = CliRunner()
    made = cli.invoke(app, ["token", "create", "--owner", "dave", *db])
    assert made.exit_code == 0, made.output
    secret = made.output.strip().splitlines()[-1]
    token_id = made.output.split("id:", 1)[1].split()[0]
    with server.client(secret) as dave:
        assert dave.get("/v1/sandboxes").status_code == 200
        listed = cli.invoke(app, ["token", "ls", *db])
        assert token_id in listed.output and secret not in listed.output
        assert cli.invoke(app, ["token", "revoke", token_id, *db]).exit_code == 0
        assert dave.get("/v1/sandboxes").status_code == 401
    assert cli.invoke(app, ["token", "revoke", "tok-missing", *db]).exit_code == 1


# -- bad input -----------------------------------------------------------------------


def test_bad_create_requests_leave_nothing_behind(server, alice, engine):
    # Only this server's containers: other tests share the engine.
    before_containers = server_containers(engine, server.state.server_id)
    before_rows = len(server.state.store.list_sandboxes())
    r = alice.post(
        "/v1/sandboxes", content=b'{"spec": {', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["error"]["type"] == "ValidationError"
    assert alice.post("/v1/sandboxes", json={"spec": {"cpus": "many"}}).status_code == 422
    assert alice.post("/v1/sandboxes", json={"spec": {"memory": 5}}).status_code == 422
    assert alice.post("/v1/sandboxes", json={"spec": {"colour": "red"}}).status_code == 422
    r = alice.post("/v1/sandboxes", json={"spec": {"image": "no-such/image:1"}})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "ImageNotFoundError"
    r = alice.post("/v1/sandboxes", json={"spec": {**SMALL, "cpus": 256}})
    assert r.status_code == 400 and r.json()["error"]["type"] == "InvalidSpecError"
    assert server_containers(engine, server.state.server_id) == before_containers
    assert len(server.state.store.list_sandboxes()) == before_rows


def test_bad_paths_are_400_and_write_nothing(alice, sandbox_id):
    files = f"/v1/sandboxes/{sandbox_id}/files"
    for path in ["/workspace/../etc/evil", "relative.txt", "/workspace/a/../../evil"]:
        r = alice.put(files, params={"path": path}, content=b"x")
        assert r.status_code == 400, path
        assert r.json()["error"]["type"] == "InvalidPathError"
    assert alice.get(files, params={"path": "/etc/../etc/passwd"}).status_code == 400
    assert run(alice, sandbox_id, "ls /etc/evil /evil 2>&1; echo $?")["stdout"].endswith("2\n")


def test_oversize_upload_is_413_and_writes_nothing(alice, sandbox_id):
    files = f"/v1/sandboxes/{sandbox_id}/files"
    big = os.urandom(UPLOAD_LIMIT + 1)
    r = alice.put(files, params={"path": "/workspace/big.bin"}, content=big)
    assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"

    def chunked():  # no Content-Length: the limit is enforced while reading
        for i in range(0, len(big), 1 << 20):
            yield big[i : i + (1 << 20)]

    r = alice.put(files, params={"path": "/workspace/big2.bin"}, content=chunked())
    assert r.status_code == 413
    r = alice.put(f"/v1/sandboxes/{sandbox_id}/archive", params={"path": "/a"}, content=big)
    assert r.status_code == 413
    for path in ["/workspace/big.bin", "/workspace/big2.bin", "/a"]:
        exists = alice.get(f"{files}/exists", params={"path": path}).json()["exists"]
        assert exists is False, path


def test_unknown_session_and_command_are_404(alice, sandbox_id):
    base = f"/v1/sandboxes/{sandbox_id}"
    r = alice.post(f"{base}/sessions/sess-nope/run", json={"cmd": "true"})
    assert r.status_code == 404
    r = alice.post(f"{base}/commands/cmd-nope/interrupt")
    assert r.status_code == 404 and r.json()["error"]["type"] == "CommandNotFoundError"
    assert alice.delete(f"{base}/sessions/sess-nope").status_code == 404


# -- commands, sessions, files ----------------------------------------------------------


def test_command_result_has_exit_code_and_separate_streams(alice, sandbox_id):
    result = run(alice, sandbox_id, "echo out; echo err >&2; exit 7")
    assert (result["exit_code"], result["stdout"], result["stderr"]) == (7, "out\n", "err\n")
    r = alice.post(
        f"/v1/sandboxes/{sandbox_id}/commands",
        json={"cmd": "echo $X; pwd", "env": {"X": "y"}, "cwd": "/tmp"},
    )
    assert r.json()["stdout"] == "y\n/tmp\n"


def test_stream_delivers_output_live_and_exit(alice, sandbox_id):
    cmd = "for i in 1 2 3; do echo line$i; done; echo oops >&2; printf 'h\\303\\251'; exit 4"
    with alice.stream(
        "POST", f"/v1/sandboxes/{sandbox_id}/commands/stream", json={"cmd": cmd}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.iter_lines())
    assert events[0][0] == "start" and events[0][1]["command_id"].startswith("cmd-")
    stdout = "".join(d["data"] for e, d in events if e == "stdout")
    stderr = "".join(d["data"] for e, d in events if e == "stderr")
    assert stdout == "line1\nline2\nline3\nhé" and stderr == "oops\n"
    kind, result = events[-1]
    assert kind == "exit" and result["exit_code"] == 4 and result["stdout"] == stdout


def test_stream_interrupt_kills_the_command(alice, sandbox_id):
    cmd = "echo started; sleep 1000; echo never"
    with alice.stream(
        "POST", f"/v1/sandboxes/{sandbox_id}/commands/stream", json={"cmd": cmd}
    ) as r:
        lines = r.iter_lines()
        events = []
        for line in lines:  # read until the command has visibly started
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
                if name == "stdout":
                    break
        assert events[0][0] == "start" and events[-1] == ("stdout", {"data": "started\n"})
        command_id = events[0][1]["command_id"]
        stop = alice.post(f"/v1/sandboxes/{sandbox_id}/commands/{command_id}/interrupt")
        assert stop.status_code == 204
        rest = parse_sse(lines)
    kind, result = rest[-1]
    assert kind == "exit"
    assert result["interrupted"] is True and result["exit_code"] != 0
    assert "never" not in result["stdout"]
    procs = run(alice, sandbox_id, PROCESS_LIST)["stdout"]
    assert "sleep 1000" not in procs


def test_stream_client_going_away_kills_the_command(alice, sandbox_id):
    cmd = "echo up; exec sleep 4242"
    with alice.stream(
        "POST", f"/v1/sandboxes/{sandbox_id}/commands/stream", json={"cmd": cmd}
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and "up" in line:
                break
    # The response is closed mid-stream: the server must kill the command.
    for _ in range(100):
        if "sleep 4242" not in run(alice, sandbox_id, PROCESS_LIST)["stdout"]:
            break
        threading.Event().wait(0.2)
    assert "sleep 4242" not in run(alice, sandbox_id, PROCESS_LIST)["stdout"]


def test_session_keeps_cwd_env_and_can_be_interrupted(alice, sandbox_id):
    base = f"/v1/sandboxes/{sandbox_id}/sessions"
    sid = alice.post(base, json={"cwd": "/tmp"}).json()["session_id"]

    def srun(cmd: str, timeout: float = 60) -> dict:
        r = alice.post(f"{base}/{sid}/run", json={"cmd": cmd, "timeout": timeout})
        assert r.status_code == 200, r.text
        return r.json()

    assert srun("pwd")["output"].strip() == "/tmp"
    srun("mkdir -p /tmp/deep/er && cd /tmp/deep/er && export GREETING=hello")
    assert srun("pwd; echo $GREETING")["output"].split() == ["/tmp/deep/er", "hello"]
    assert srun("false")["exit_code"] == 1

    done = threading.Event()
    result = {}

    def long_run():
        result.update(srun("sleep 500"))
        done.set()

    t = threading.Thread(target=long_run)
    t.start()
    # Interrupt until the run comes back (the first may land before sleep starts).
    while not done.wait(0.5):
        assert alice.post(f"{base}/{sid}/interrupt").status_code == 204
    t.join()
    assert result["interrupted"] is True
    assert srun("pwd")["output"].strip() == "/tmp/deep/er"
    assert alice.delete(f"{base}/{sid}").status_code == 204
    assert alice.post(f"{base}/{sid}/run", json={"cmd": "pwd"}).status_code == 404


@pytest.mark.parametrize("streamed", [False, True], ids=["in-memory", "streamed-tar"])
def test_file_roundtrip_is_binary_safe(alice, sandbox_id, monkeypatch, streamed):
    if streamed:  # the path large uploads take, exercised with a small file
        monkeypatch.setattr(routes_files, "IN_MEMORY_WRITE", 1024)
    files = f"/v1/sandboxes/{sandbox_id}/files"
    data = bytes(range(256)) * 4096 + os.urandom(100_003)  # every byte value, odd length
    path = f"/workspace/bin/{'s' if streamed else 'm'}/data.bin"
    r = alice.put(files, params={"path": path, "mode": 0o600}, content=data)
    assert r.status_code == 204, r.text
    got = alice.get(files, params={"path": path})
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-length"] == str(len(data))
    entries = alice.get(f"{files}/list", params={"path": os.path.dirname(path)}).json()
    assert [(e["name"], e["size"], e["mode"]) for e in entries] == [("data.bin", len(data), 0o600)]
    assert run(alice, sandbox_id, f"sha256sum {path}")["stdout"].split()[0] == (
        __import__("hashlib").sha256(data).hexdigest()
    )


def test_file_errors_map_to_404_and_400(alice, sandbox_id):
    files = f"/v1/sandboxes/{sandbox_id}/files"
    r = alice.get(files, params={"path": "/workspace/missing.txt"})
    assert r.status_code == 404
    assert alice.get(f"{files}/list", params={"path": "/nope"}).status_code == 404
    assert alice.get(files, params={"path": "/etc"}).status_code == 400
    assert alice.get(f"{files}/exists", params={"path": "/nope"}).json() == {"exists": False}


def test_archive_roundtrip_keeps_tree_and_bytes(alice, sandbox_id):
    base = f"/v1/sandboxes/{sandbox_id}"
    buf = io.BytesIO()
    payload = {"a.txt": b"alpha\n", "sub/b.bin": os.urandom(70_000), "sub/deeper/c": b""}
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in payload.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    r = alice.put(f"{base}/archive", params={"path": "/srv/tree"}, content=buf.getvalue())
    assert r.status_code == 204, r.text
    got = alice.get(f"{base}/archive", params={"path": "/srv/tree"})
    assert got.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(got.content)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    assert files == payload
    assert alice.get(f"{base}/archive", params={"path": "/srv/tree/a.txt"}).status_code == 400


# -- lifecycle -------------------------------------------------------------------------


def test_snapshot_and_fork(alice, bob, sandbox_id):
    alice.put(
        f"/v1/sandboxes/{sandbox_id}/files",
        params={"path": "/workspace/state.txt"},
        content=b"checkpoint",
    )
    snap = alice.post(f"/v1/sandboxes/{sandbox_id}/snapshot")
    assert snap.status_code == 200, snap.text
    snap_id = snap.json()["id"]
    assert snap.json()["source_sandbox"] == sandbox_id
    assert bob.post(f"/v1/snapshots/{snap_id}/fork", json={"n": 1}).status_code == 404
    bad = alice.post(f"/v1/snapshots/{snap_id}/fork", json={"n": 1, "overrides": {"cpus": -1}})
    assert bad.status_code == 400
    forks = alice.post(
        f"/v1/snapshots/{snap_id}/fork", json={"n": 2, "overrides": {"env": {"FORK": "1"}}}
    )
    assert forks.status_code == 200, forks.text
    ids = [f["id"] for f in forks.json()]
    assert len(set(ids)) == 2 and sandbox_id not in ids
    for fid in ids:
        assert run(alice, fid, "cat /workspace/state.txt; echo $FORK")["stdout"] == (
            "checkpoint1\n"
        )
        assert alice.delete(f"/v1/sandboxes/{fid}").status_code == 204
        assert alice.get(f"/v1/sandboxes/{fid}").status_code == 404
    assert bob.delete(f"/v1/snapshots/{snap_id}").status_code == 404
    assert alice.delete(f"/v1/snapshots/{snap_id}").status_code == 204
    assert alice.post(f"/v1/snapshots/{snap_id}/fork", json={}).status_code == 404


def test_idempotent_create_returns_the_same_sandbox(server, alice, bob, engine):
    spec = {"spec": SMALL}
    first = alice.post("/v1/sandboxes", json=spec, headers={"Idempotency-Key": "job-1"})
    again = alice.post("/v1/sandboxes", json=spec, headers={"Idempotency-Key": "job-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = bob.post("/v1/sandboxes", json=spec, headers={"Idempotency-Key": "job-1"})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]

    def create(_):
        r = alice.post("/v1/sandboxes", json=spec, headers={"Idempotency-Key": "job-2"})
        return r.status_code, r.json()["id"]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(create, range(6)))
    assert len({sid for _, sid in results}) == 1
    assert sorted(code for code, _ in results) == [200] * 5 + [201]
    for sid in {first.json()["id"], results[0][1]}:
        alice.delete(f"/v1/sandboxes/{sid}")
    bob.delete(f"/v1/sandboxes/{other.json()['id']}")


def test_restart_keeps_files_and_ends_sessions(alice):
    sid = alice.post("/v1/sandboxes", json={"spec": SMALL}).json()["id"]
    session = alice.post(f"/v1/sandboxes/{sid}/sessions", json={}).json()["session_id"]
    run(alice, sid, "echo kept > /workspace/f")
    r = alice.post(f"/v1/sandboxes/{sid}/restart")
    assert r.status_code == 200 and r.json()["status"] == "running"
    assert run(alice, sid, "cat /workspace/f")["stdout"] == "kept\n"
    r = alice.post(f"/v1/sandboxes/{sid}/sessions/{session}/run", json={"cmd": "true"})
    assert r.status_code == 404
    assert alice.delete(f"/v1/sandboxes/{sid}").status_code == 204
    r = alice.post(f"/v1/sandboxes/{sid}/commands", json={"cmd": "true"})
    assert r.status_code == 404


def test_reaper_removes_idle_and_expired_sandboxes(server, alice, engine):
    idle = alice.post("/v1/sandboxes", json={"spec": {**SMALL, "ttl_s": 1}}).json()["id"]
    kept = alice.post("/v1/sandboxes", json={"spec": SMALL}).json()["id"]
    import time

    time.sleep(2.5)  # past the 1 s TTL
    # The embedded reaper leaves the control plane's sandboxes to the control plane.
    assert idle not in {item.id for item in gc()}
    report = sync(server.state)
    assert idle in report.reaped and kept not in report.reaped
    assert alice.get(f"/v1/sandboxes/{idle}").status_code == 404
    assert idle not in {c["Labels"]["openale.sandbox"] for c in engine.api.containers(all=True)}
    assert alice.get(f"/v1/sandboxes/{kept}").json()["status"] == "running"
    alice.delete(f"/v1/sandboxes/{kept}")


def test_reaper_thread_runs_on_its_own(tmp_path, engine):
    with ServerThread(tmp_path / "reaping.db", reap_interval_s=0.5) as server:
        with server.client(server.token("gina")) as c:
            sid = c.post("/v1/sandboxes", json={"spec": {**SMALL, "ttl_s": 1}}).json()["id"]
            for _ in range(300):  # until the reaper has taken it (bounded)
                if c.get(f"/v1/sandboxes/{sid}").status_code == 404:
                    break
                threading.Event().wait(0.1)
            assert c.get(f"/v1/sandboxes/{sid}").status_code == 404
            assert server.state.store.get_sandbox(sid).state == "deleted"
            records = c.get("/v1/audit", params={"sandbox": sid}).json()
            reaps = [r for r in records if r["op"] == "reap"]
            assert len(reaps) == 1 and "idle" in reaps[0]["detail"]["reason"]


# -- audit and metrics -----------------------------------------------------------------


def test_audit_records_every_sandbox_request(alice, bob, sandbox_id):
    run(alice, sandbox_id, "exit 5")
    alice.put(
        f"/v1/sandboxes/{sandbox_id}/files", params={"path": "/workspace/au.txt"}, content=b"12345"
    )
    records = alice.get("/v1/audit", params={"sandbox": sandbox_id}).json()
    assert all(r["sandbox"] == sandbox_id and r["owner"] == "alice" for r in records)
    command = [r for r in records if r["op"] == "command" and r["exit_code"] == 5][-1]
    assert command["status_code"] == 200 and command["detail"]["cmd"] == "exit 5"
    write = [r for r in records if r["op"] == "file.write"][-1]
    assert write["bytes_in"] == 5 and write["detail"]["path"] == "/workspace/au.txt"
    assert any(r["op"] == "create" for r in records)
    # bob's failed attempts on alice's sandbox are recorded as his, with their 404.
    bob.get(f"/v1/sandboxes/{sandbox_id}")
    assert alice.get("/v1/audit", params={"sandbox": sandbox_id}).json()[-1]["owner"] == "alice"
    theirs = bob.get("/v1/audit", params={"sandbox": sandbox_id}).json()
    assert theirs and all(r["status_code"] == 404 for r in theirs)
    export = alice.get("/v1/audit/export", params={"sandbox": sandbox_id})
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = export.text.splitlines()
    assert len(lines) >= len(records)
    assert json.loads(lines[0])["id"] == records[0]["id"]
    assert len(alice.get("/v1/audit", params={"limit": 2}).json()) == 2


def test_metrics_expose_states_latency_and_commands(root, alice, sandbox_id):
    run(alice, sandbox_id, "true")
    r = root.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'ale_sandboxes{state="running"}' in text
    assert "ale_sandbox_create_seconds_count" in text
    count = [ln for ln in text.splitlines() if ln.startswith('ale_commands_total{kind="exec"}')]
    assert count and float(count[0].split()[-1]) >= 1
    assert "ale_command_errors_total" in text
