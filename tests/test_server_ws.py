"""The session WebSocket over real uvicorn, websockets and Docker: auth, isolation, audit."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from sqlalchemy import update
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from openale.sandbox import Sandbox
from openale.sandbox.errors import SandboxNotFoundError
from openale.sandbox.remote.core import ServerAuthError
from openale.server.auth import TokenCache
from openale.server.errors import Unauthorized
from openale.server.tables import TokenRow
from tests.test_server_support import SMALL, ServerThread

ANSWER_WAIT_S = 60  # bounds a hang; no test depends on how fast an answer comes


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine):
    with ServerThread(tmp_path_factory.mktemp("ws") / "server.db") as srv:
        yield srv


@pytest.fixture(scope="module")
def alice_token(server):
    return server.token("alice")


@pytest.fixture(scope="module")
def alice(server, alice_token):
    with server.client(alice_token) as c:
        yield c


@pytest.fixture(scope="module")
def sandbox_id(alice):
    r = alice.post("/v1/sandboxes", json={"spec": SMALL})
    assert r.status_code == 201, r.text
    yield r.json()["id"]
    alice.delete(f"/v1/sandboxes/{r.json()['id']}")


def new_session(client, sandbox_id: str) -> str:
    r = client.post(f"/v1/sandboxes/{sandbox_id}/sessions", json={})
    assert r.status_code == 200, r.text
    return r.json()["session_id"]


def ws_url(server, sandbox_id: str, session_id: str) -> str:
    return f"ws://127.0.0.1:{server.port}/v1/sandboxes/{sandbox_id}/sessions/{session_id}/ws"


def open_socket(server, token: str | None, sandbox_id: str, session_id: str):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return connect(ws_url(server, sandbox_id, session_id), additional_headers=headers, legacy=True)


def run(ws, cmd: str, **extra) -> dict:
    ws.send(json.dumps({"op": "run", "cmd": cmd, **extra}))
    return json.loads(ws.recv(timeout=ANSWER_WAIT_S))


def refusal(server, token, sandbox_id, session_id) -> tuple[int, dict]:
    with pytest.raises(InvalidStatus) as info:
        open_socket(server, token, sandbox_id, session_id)
    response = info.value.response
    return response.status_code, json.loads(response.body)


def test_socket_without_a_valid_token_is_refused(server, alice, sandbox_id):
    sid = new_session(alice, sandbox_id)
    for token in (None, "ale_not-a-real-token"):
        status, body = refusal(server, token, sandbox_id, sid)
        assert status == 401 and body["error"]["type"] == "Unauthorized"


def test_other_owners_sandbox_is_refused_like_404(server, alice, sandbox_id):
    sid = new_session(alice, sandbox_id)
    status, body = refusal(server, server.token("bob"), sandbox_id, sid)
    assert status == 404 and body["error"]["type"] == "SandboxNotFoundError"
    # The same answer as for a sandbox that does not exist at all.
    status, _ = refusal(server, server.token("bob"), "sb-000000000000", sid)
    assert status == 404
    status, _ = refusal(server, server.token("alice"), sandbox_id, "sess-nope")
    assert status == 404
    records = alice.get("/v1/audit", params={"sandbox": sandbox_id}).json()
    assert all(r["owner"] == "alice" for r in records)


def test_commands_keep_shell_state_and_are_audited(server, alice, alice_token, sandbox_id):
    sid = new_session(alice, sandbox_id)
    with open_socket(server, alice_token, sandbox_id, sid) as ws:
        assert run(ws, "cd /tmp && export X=42")["exit_code"] == 0
        result = run(ws, "echo $X $(pwd); exit_code() { return 3; }; exit_code")
        assert result["exit_code"] == 3 and result["output"].strip() == "42 /tmp"
        bad = json.loads((ws.send('{"op": "dance"}'), ws.recv(timeout=ANSWER_WAIT_S))[1])
        assert bad["error"]["status"] == 400
        # A bad message does not end the socket.
        assert run(ws, "true")["exit_code"] == 0
    records = alice.get("/v1/audit", params={"sandbox": sandbox_id}).json()
    runs = [r for r in records if r["op"] == "session.run" and r["detail"]["session"] == sid]
    assert [r["exit_code"] for r in runs] == [0, 3, 0]
    for r in runs:
        assert r["method"] == "WS" and r["owner"] == "alice" and r["status_code"] == 200
        assert r["bytes_in"] > 0 and r["bytes_out"] > 0 and r["token_id"].startswith("tok-")
    assert runs[1]["detail"]["cmd"].startswith("echo $X")
    connects = [r for r in records if r["op"] == "session.connect" and r["status_code"] == 101]
    assert connects and connects[-1]["detail"]["session"] == sid


def test_interrupt_stops_the_running_command(server, alice, alice_token, sandbox_id):
    sid = new_session(alice, sandbox_id)
    with open_socket(server, alice_token, sandbox_id, sid) as ws:
        ws.send(json.dumps({"op": "run", "cmd": "sleep 300; echo never"}))
        # One command at a time: a second run meanwhile is refused, the first goes on.
        busy = run(ws, "true")
        assert busy["error"]["status"] == 409
        ws.send(json.dumps({"op": "interrupt"}))
        result = json.loads(ws.recv(timeout=ANSWER_WAIT_S))
        assert result["interrupted"] and "never" not in result["output"]
        assert run(ws, "echo alive")["output"].strip() == "alive"


def test_client_going_away_interrupts_its_command(server, alice, alice_token, sandbox_id):
    sid = new_session(alice, sandbox_id)
    ws = open_socket(server, alice_token, sandbox_id, sid)
    ws.send(json.dumps({"op": "run", "cmd": "sleep 300"}))
    ws.close()
    # The shell is free again only if the sleep was interrupted.
    r = alice.post(
        f"/v1/sandboxes/{sandbox_id}/sessions/{sid}/run",
        json={"cmd": "echo free"},
        timeout=ANSWER_WAIT_S,
    )
    assert r.status_code == 200 and r.json()["output"].strip() == "free"


def test_revoked_token_is_refused_on_its_next_message(server, alice, sandbox_id):
    root = server.client(server.token("root", admin=True))
    made = root.post("/v1/tokens", json={"owner": "alice"}).json()
    sid = new_session(alice, sandbox_id)
    with open_socket(server, made["token"], sandbox_id, sid) as ws:
        assert run(ws, "true")["exit_code"] == 0
        assert root.delete(f"/v1/tokens/{made['id']}").status_code == 204
        refused = run(ws, "echo should-not-run")
        assert refused["error"]["type"] == "Unauthorized" and refused["error"]["status"] == 401
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=ANSWER_WAIT_S)
        assert closed.value.rcvd.code == 1008
    root.close()
    records = alice.get("/v1/audit", params={"sandbox": sandbox_id}).json()
    assert not any("should-not-run" in str(r["detail"].get("cmd")) for r in records)


def test_revocation_by_another_process_holds_within_the_cache_ttl(server):
    store = server.state.store
    made = store.create_token("erin")
    cache = TokenCache(store, ttl_s=0.5)
    assert cache.lookup(made.token).owner == "erin"
    # As another process would: straight to the database, so this process is not told.
    with store.session() as s:
        s.execute(update(TokenRow).where(TokenRow.id == made.id).values(revoked=True))
    refused = threading.Event()
    for _ in range(100):  # bounded: the cache must let go once its TTL has passed
        try:
            cache.lookup(made.token)
        except Unauthorized:
            refused.set()
            break
        threading.Event().wait(0.1)
    assert refused.is_set()


def test_sdk_sessions_run_over_the_socket(server, alice, alice_token):
    with Sandbox.create(SMALL, server=server.url, token=alice_token) as sb:
        shell = sb.sessions.create()
        assert shell.run("cd /tmp && echo $((6 * 7))").output.strip() == "42"
        assert shell.run("pwd").output.strip() == "/tmp"
        # An interrupt from another thread reaches a command waiting on the socket.
        timer = threading.Timer(1.0, shell.interrupt)
        timer.start()
        result = shell.run("sleep 300", timeout=ANSWER_WAIT_S)
        timer.join()
        assert result.interrupted and not result.timed_out
        records = alice.get("/v1/audit", params={"sandbox": sb.id}).json()
        runs = [r for r in records if r["op"] == "session.run"]
        assert len(runs) == 3 and all(r["method"] == "WS" for r in runs)
        shell.close()
        with pytest.raises(SandboxNotFoundError):
            shell.run("true")


def test_async_sdk_sessions_run_over_the_socket(server, alice, alice_token):
    from openale.sandbox import AsyncSandbox

    async def main() -> str:
        async with await AsyncSandbox.create(SMALL, server=server.url, token=alice_token) as sb:
            shell = await sb.sessions.create()
            await shell.run("cd /tmp; Y=7")
            assert (await shell.run("echo $(pwd) $Y")).output == "/tmp 7\n"
            runs = await asyncio.gather(*(shell.run(f"echo {i}") for i in range(4)))
            assert sorted(r.output for r in runs) == [f"{i}\n" for i in range(4)]
            await shell.close()
            return sb.id

    sandbox_id = asyncio.run(main())
    records = alice.get("/v1/audit", params={"sandbox": sandbox_id}).json()
    runs = [r for r in records if r["op"] == "session.run"]
    assert len(runs) == 6 and all(r["method"] == "WS" for r in runs)


def test_sdk_session_with_a_revoked_token_raises_auth_error(server):
    root = server.client(server.token("root", admin=True))
    made = root.post("/v1/tokens", json={"owner": "frank"}).json()
    sb = Sandbox.create(SMALL, server=server.url, token=made["token"])
    try:
        shell = sb.sessions.create()
        assert shell.run("true").exit_code == 0
        assert root.delete(f"/v1/tokens/{made['id']}").status_code == 204
        with pytest.raises(ServerAuthError):
            shell.run("true")
    finally:
        sb.closed = True  # the revoked token cannot delete it: the server side does
        server.state.backend.remove(sb.id)
        server.state.store.set_state(sb.id, "deleted")
        root.close()
