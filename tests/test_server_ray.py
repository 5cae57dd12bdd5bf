"""``ale serve --backend ray``: the control plane placing sandboxes on a multi-node Ray cluster.

A local ``ray.cluster_utils.Cluster``: two Docker nodes with 1 CPU each and one
node without Docker. Everything goes through HTTP to a real uvicorn server.
The nodes share this machine's engine, so each container names the node it was
started from (``openale.server.node``) and the server reports it as ``node``.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import tarfile

import pytest

from openale.sandbox import SandboxSettings, SandboxSpec
from openale.sandbox.engine import LABEL
from openale.server.backend import LocalBackend, new_sandbox_id
from tests.test_server_support import BASE_IMAGE, ServerThread, server_containers

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.slow

GIB = 1024**3
ONE_CPU = {"image": BASE_IMAGE, "cpus": 1, "memory": "256m"}
# Starting an actor (a worker process importing openale) is slow on a loaded 2-core machine.
PLACEMENT_TIMEOUT_S = 20


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "memory": 2 * GIB, "resources": {"docker": 1}},
    )
    docker_node = c.add_node(num_cpus=1, memory=2 * GIB, resources={"docker": 1})
    plain = c.add_node(num_cpus=1, memory=2 * GIB)
    c.wait_for_nodes()
    yield c, {c.head_node.node_id, docker_node.node_id}, plain.node_id
    ray.shutdown()
    c.shutdown()


def _serve(cluster, db) -> ServerThread:
    c, _, _ = cluster
    return ServerThread(
        db, backend="ray", ray_address=c.address, ray_placement_timeout_s=PLACEMENT_TIMEOUT_S
    )


@pytest.fixture(scope="module")
def server(cluster, tmp_path_factory):
    with _serve(cluster, tmp_path_factory.mktemp("ray-serve") / "server.db") as srv:
        yield srv


@pytest.fixture
def alice(server):
    with server.client(server.token("alice")) as client:
        yield client


def _create(client, **spec) -> dict:
    r = client.post("/v1/sandboxes", json={"spec": {**ONE_CPU, **spec}})
    assert r.status_code == 201, r.text
    return r.json()


def _stop_keeping_sandboxes(srv: ServerThread) -> None:
    """Stop serving as a crash-free restart would: the containers stay."""
    srv._server.should_exit = True
    srv._thread.join(60)
    srv.state.store.close()


def test_placement_spreads_refuses_when_full_and_delete_frees(cluster, server, alice, engine):
    _, docker_nodes, plain = cluster
    a, b = _create(alice), _create(alice)
    try:
        # One CPU per Docker node: the second cannot share the first one's node.
        assert {a["node"], b["node"]} == docker_nodes and plain not in {a["node"], b["node"]}
        assert alice.get(f"/v1/sandboxes/{a['id']}").json()["node"] == a["node"]

        r = alice.post("/v1/sandboxes", json={"spec": ONE_CPU})
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["type"] == "PlacementError" and "1.0 CPUs" in error["message"]
        # Nothing left behind: no row, no container.
        assert {s["id"] for s in alice.get("/v1/sandboxes").json()} == {a["id"], b["id"]}
        assert server_containers(engine, server.state.server_id) == {a["id"], b["id"]}

        assert alice.delete(f"/v1/sandboxes/{a['id']}").status_code == 204
        assert server_containers(engine, server.state.server_id) == {b["id"]}
        c = _create(alice)  # the freed CPU takes it
        assert c["node"] == a["node"]
        assert alice.delete(f"/v1/sandboxes/{c['id']}").status_code == 204
    finally:
        alice.delete(f"/v1/sandboxes/{a['id']}")
        alice.delete(f"/v1/sandboxes/{b['id']}")


def _stream(client, sandbox_id: str, cmd: str, on_event=None) -> list[tuple[str, dict]]:
    events = []
    with client.stream(
        "POST", f"/v1/sandboxes/{sandbox_id}/commands/stream", json={"cmd": cmd}
    ) as r:
        assert r.status_code == 200
        name = None
        for line in r.iter_lines():  # event by event, as they come
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
                if on_event:
                    on_event(events[-1], events)
    return events


def test_commands_sessions_files_and_streaming_on_a_node(server, alice):
    sb = _create(alice)
    base = f"/v1/sandboxes/{sb['id']}"
    try:
        r = alice.post(f"{base}/commands", json={"cmd": "echo out; echo err >&2; exit 3"})
        assert r.json()["exit_code"] == 3
        assert (r.json()["stdout"], r.json()["stderr"]) == ("out\n", "err\n")

        sid = alice.post(f"{base}/sessions", json={}).json()["session_id"]
        alice.post(f"{base}/sessions/{sid}/run", json={"cmd": "cd /tmp && export X=42"})
        r = alice.post(f"{base}/sessions/{sid}/run", json={"cmd": "pwd; echo $X"})
        assert r.json()["output"].split() == ["/tmp", "42"]
        other = alice.post(f"{base}/sessions", json={"cwd": "/etc"}).json()["session_id"]
        assert alice.post(f"{base}/sessions/{other}/interrupt").status_code == 204
        assert alice.delete(f"{base}/sessions/{other}").status_code == 204
        r = alice.post(f"{base}/sessions/{other}/run", json={"cmd": "pwd"})
        assert r.status_code == 404

        payload = bytes(range(256)) * 256
        r = alice.put(f"{base}/files", params={"path": "/workspace/d/blob.bin"}, content=payload)
        assert r.status_code == 204, r.text
        assert alice.get(f"{base}/files", params={"path": "/workspace/d/blob.bin"}).content == (
            payload
        )
        missing = alice.get(f"{base}/files", params={"path": "/workspace/nope"})
        assert missing.status_code == 404
        listed = alice.get(f"{base}/files/list", params={"path": "/workspace/d"}).json()
        assert [(e["name"], e["size"]) for e in listed] == [("blob.bin", len(payload))]
        exists = alice.get(f"{base}/files/exists", params={"path": "/workspace/d/blob.bin"})
        assert exists.json() == {"exists": True}

        # Past the in-memory size the route streams a tar to the node piece by piece.
        big = secrets.token_bytes(1 << 20) * 64 + b"tail"
        r = alice.put(f"{base}/files", params={"path": "/workspace/big.bin"}, content=big)
        assert r.status_code == 204, r.text
        back = alice.get(f"{base}/files", params={"path": "/workspace/big.bin"}).content
        assert hashlib.sha256(back).digest() == hashlib.sha256(big).digest()
        del big, back

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("sub/hello.txt")
            info.size = 5
            tar.addfile(info, io.BytesIO(b"hello"))
        r = alice.put(f"{base}/archive", params={"path": "/workspace/up"}, content=buf.getvalue())
        assert r.status_code == 204, r.text
        r = alice.get(f"{base}/archive", params={"path": "/workspace"})
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            names = set(tar.getnames())
            hello = tar.extractfile("up/sub/hello.txt").read()
        assert {"d/blob.bin", "up/sub/hello.txt"} <= names and hello == b"hello"

        events = _stream(alice, sb["id"], "for i in 1 2 3; do echo line$i; done; echo oops >&2")
        kinds = [e for e, _ in events]
        assert kinds[0] == "start" and kinds[-1] == "exit"
        out = "".join(d["data"] for e, d in events if e == "stdout")
        assert out == "line1\nline2\nline3\n"
        assert "".join(d["data"] for e, d in events if e == "stderr") == "oops\n"
        assert events[-1][1]["exit_code"] == 0 and events[-1][1]["stdout"] == out

        def interrupt_when_ready(event, seen):
            if event[0] == "stdout" and "ready" in event[1]["data"]:
                command_id = seen[0][1]["command_id"]
                r = alice.post(f"{base}/commands/{command_id}/interrupt")
                assert r.status_code == 204

        events = _stream(alice, sb["id"], "echo ready; sleep 600", interrupt_when_ready)
        result = events[-1]
        assert result[0] == "exit" and result[1]["interrupted"] and result[1]["exit_code"] != 0

        # A restart ends the shells but keeps the files and the node.
        r = alice.post(f"{base}/restart")
        assert r.status_code == 200 and r.json()["node"] == sb["node"]
        r = alice.post(f"{base}/sessions/{sid}/run", json={"cmd": "true"})
        assert r.status_code in (404, 409)
        r = alice.post(f"{base}/commands", json={"cmd": "wc -c < /workspace/d/blob.bin"})
        assert r.json()["stdout"].strip() == str(len(payload))

        snap = alice.post(f"{base}/snapshot").json()
        forks = alice.post(f"/v1/snapshots/{snap['id']}/fork", json={"n": 1}).json()
        assert len(forks) == 1 and forks[0]["node"] and forks[0]["node"] != sb["node"]
        r = alice.post(
            f"/v1/sandboxes/{forks[0]['id']}/commands",
            json={"cmd": "cat /workspace/up/sub/hello.txt"},
        )
        assert r.json()["stdout"] == "hello"
        alice.delete(f"/v1/sandboxes/{forks[0]['id']}")
        assert alice.delete(f"/v1/snapshots/{snap['id']}").status_code == 204
    finally:
        alice.delete(base)


def test_restart_adopts_per_node_fails_the_stranded_removes_orphans(cluster, tmp_path, engine):
    _, docker_nodes, plain = cluster
    db = tmp_path / "restart.db"
    first = _serve(cluster, db).__enter__()
    server_id = first.state.server_id
    token = first.token("alice")
    with first.client(token) as alice:
        a, b = _create(alice), _create(alice)
    assert {a["node"], b["node"]} == docker_nodes
    # A container this server started on b's node but never recorded (as after a
    # crash between the two), with the labels a real one has.
    orphan = new_sandbox_id()
    LocalBackend(SandboxSettings(), server_id, node=b["node"]).create(
        orphan, SandboxSpec(**ONE_CPU), "alice"
    )
    assert orphan in server_containers(engine, server_id)
    # A recorded sandbox whose container names a node that cannot host sandboxes
    # (as if its Docker node had gone): it cannot be taken over.
    stranded = new_sandbox_id()
    first.state.store.add_sandbox(stranded, "alice", SandboxSpec(**ONE_CPU), None)
    first.state.store.set_state(stranded, "running")
    LocalBackend(SandboxSettings(), server_id, node=plain).create(
        stranded, SandboxSpec(**ONE_CPU), "alice"
    )
    _stop_keeping_sandboxes(first)

    second = _serve(cluster, db)
    try:
        second.__enter__()
        report = second.state.startup_report
        assert set(report.adopted) == {a["id"], b["id"]} and report.failed == [stranded]
        assert report.orphans_removed == [orphan]
        # Failed cleanly: the row says why, and its container is gone with the orphan.
        row = second.state.store.get_sandbox(stranded)
        assert row.state == "failed" and "could not take it over" in row.error
        assert server_containers(engine, server_id) == {a["id"], b["id"]}
        with second.client(token) as alice:
            for sb in (a, b):
                # Re-attached on the node that holds the container, and working.
                assert alice.get(f"/v1/sandboxes/{sb['id']}").json()["node"] == sb["node"]
                r = alice.post(f"/v1/sandboxes/{sb['id']}/commands", json={"cmd": "echo back"})
                assert r.json()["stdout"] == "back\n"
            # Both CPUs are held again by the adopted sandboxes: a third does not fit.
            r = alice.post("/v1/sandboxes", json={"spec": ONE_CPU})
            assert r.status_code == 503
    finally:
        second.__exit__(None, None, None)
        for c in engine.containers.list(all=True, filters={"label": f"{LABEL}={orphan}"}):
            c.remove(force=True)
    assert server_containers(engine, server_id) == set()
