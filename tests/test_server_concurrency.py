"""Many clients at once: every session command's output comes back whole and to its caller."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from openale.server.store import Store
from tests.test_server_support import SMALL, start_server

CLIENTS = 32
COMMANDS = 100
SANDBOXES = 8  # CLIENTS / SANDBOXES sessions share each sandbox


@pytest.mark.slow
def test_32_clients_100_session_commands_each(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'server.db'}"
    proc, url = start_server(db_url, tmp_path / "server.log")
    store = Store(db_url)
    tokens = [store.create_token(f"owner{i % 4}").token for i in range(CLIENTS)]
    sandboxes: list[tuple[str, str]] = []  # (token, sandbox id)
    try:
        for i in range(SANDBOXES):
            with httpx.Client(base_url=url, headers=_auth(tokens[i]), timeout=120) as c:
                r = c.post("/v1/sandboxes", json={"spec": SMALL})
                assert r.status_code == 201, r.text
                sandboxes.append((tokens[i], r.json()["id"]))
        barrier = threading.Barrier(CLIENTS)

        def client(n: int) -> list[str]:
            # Client n uses the token of its sandbox's owner.
            token, sandbox = sandboxes[n % SANDBOXES]
            problems = []
            with httpx.Client(base_url=url, headers=_auth(token), timeout=300) as c:
                base = f"/v1/sandboxes/{sandbox}/sessions"
                sid = c.post(base, json={}).json()["session_id"]
                c.post(f"{base}/{sid}/run", json={"cmd": f"N={n}; cd /tmp"})
                barrier.wait()
                for i in range(COMMANDS):
                    # Output of several lines, built from the session's own state.
                    cmd = f"echo client $N cmd {i}; seq {i} {i + 5}; pwd; echo err-{n} >&2"
                    r = c.post(f"{base}/{sid}/run", json={"cmd": cmd})
                    want = (
                        f"client {n} cmd {i}\n"
                        + "".join(f"{k}\n" for k in range(i, i + 6))
                        + f"/tmp\nerr-{n}\n"
                    )
                    got = r.json() if r.status_code == 200 else {"output": r.text}
                    if got.get("output") != want or got.get("exit_code") != 0:
                        problems.append(f"client {n} cmd {i}: {got!r}")
                c.delete(f"{base}/{sid}")
            return problems

        with ThreadPoolExecutor(CLIENTS) as pool:
            problems = [p for ps in pool.map(client, range(CLIENTS)) for p in ps]
        assert problems == []
        with httpx.Client(base_url=url, headers=_auth(tokens[0]), timeout=60) as c:
            runs = [
                r
                for r in c.get("/v1/audit", params={"sandbox": sandboxes[0][1]}).json()
                if r["op"] == "session.run"
            ]
        # Each of the sandbox's clients: one setup run + COMMANDS runs, all audited.
        assert len(runs) == (CLIENTS // SANDBOXES) * (COMMANDS + 1)
    finally:
        for token, sandbox in sandboxes:
            httpx.delete(f"{url}/v1/sandboxes/{sandbox}", headers=_auth(token), timeout=60)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        store.close()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
