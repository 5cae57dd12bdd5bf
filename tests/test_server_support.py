"""Helpers for the control-plane tests: a real uvicorn server in a thread, SSE parsing.

No tests here; ``tests/test_server_*.py`` import these.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from openale.server.app import create_app
from openale.server.settings import ServerSettings

BASE_IMAGE = "openale/debian:bookworm"
SMALL = {"image": BASE_IMAGE, "memory": "256m"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server at {url} did not become healthy")
        time.sleep(0.1)


class ServerThread:
    """``create_app(settings)`` served by uvicorn on a free port, in this process."""

    def __init__(self, db_path: Path | str, **settings):
        """``db_path``: a SQLite file, or any database URL."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = ServerSettings(
            host="127.0.0.1",
            port=self.port,
            database_url=db_path if "://" in str(db_path) else f"sqlite:///{db_path}",
            **{"reap_interval_s": 0, **settings},
        )
        self.app = create_app(self.settings)
        self.state = self.app.state.ale
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        wait_healthy(self.url)
        return self

    def __exit__(self, *exc) -> None:
        # Remove every sandbox the tests left, then stop serving.
        for row in self.state.store.list_sandboxes(states=("pending", "running", "stopped")):
            self.state.backend.remove(row.id)
            self.state.store.set_state(row.id, "deleted")
        self._server.should_exit = True
        self._thread.join(30)
        self.state.store.close()

    def token(self, owner: str, admin: bool = False) -> str:
        return self.state.store.create_token(owner, ["admin"] if admin else []).token

    def client(self, token: str | None, **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **kw)


def parse_sse(lines) -> list[tuple[str, dict]]:
    """``[(event, data)]`` from an iterator of SSE lines."""
    events, event = [], None
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            events.append((event, json.loads(line[len("data: ") :])))
    return events


def server_containers(engine, server_id: str) -> set[str]:
    """Sandbox ids of every container labelled as this server's."""
    rows = engine.api.containers(
        all=True, filters={"label": ["openale.sandbox", f"openale.server={server_id}"]}
    )
    return {c["Labels"]["openale.sandbox"] for c in rows}


def start_server(db_url: str, log_path) -> tuple[subprocess.Popen, str]:
    """`python -m openale.cli.serve` on a free port; returns (process, base url)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openale.cli.serve",
            "--port",
            str(port),
            "--db",
            db_url,
            "--reap-interval",
            "0",
        ],
        stdout=open(log_path, "ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "ALE_LOG_LEVEL": "info"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, timeout_s=120)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(open(log_path).read()) from None
    return proc, url
