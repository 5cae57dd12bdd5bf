"""EnvHub over HTTP: a real control plane (uvicorn in this process), real Docker builds.

Register a Dockerfile folder (multipart tar.gz) or an image (JSON), build with the
log as server-sent events, start a sandbox from ``{"env": "name@version"}``, and
check owner isolation, conflicts and deletion."""

from __future__ import annotations

import io
import json
import secrets
import socket
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import BASE_IMAGE

DOCKERFILE = f"FROM {BASE_IMAGE}\nCOPY hello.txt /opt/hello.txt\nRUN echo http-marker-7\n"


class LiveServer:
    """``create_app`` served by uvicorn on a free port, in a thread of this process."""

    def __init__(self, home: Path):
        from openale.server.settings import ServerSettings

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = ServerSettings(
            port=self.port, database_url=f"sqlite:///{home / 'server.db'}", reap_interval_s=0
        )

    def __enter__(self) -> LiveServer:
        import uvicorn

        from openale.server.app import create_app

        self.app = create_app(self.settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the control plane did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join()

    def client(self, owner: str) -> httpx.Client:
        token = self.app.state.ale.store.create_token(owner).token
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)


@pytest.fixture(scope="module")
def server(engine):
    with LiveServer(Path(tempfile.mkdtemp(prefix="ale-envhub-server-"))) as live:
        yield live
        hub = live.app.state.ale.env_hub()
        for env in hub.list(owner=None):
            hub.delete(env.name, env.version, owner=env.owner, force=True)


@pytest.fixture(scope="module")
def alice(server):
    with server.client("alice") as c:
        yield c


@pytest.fixture(scope="module")
def bob(server):
    with server.client("bob") as c:
        yield c


def context_tgz(dockerfile: str, **files: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in {"Dockerfile": dockerfile, **files}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def register(client: httpx.Client, name: str, dockerfile: str = DOCKERFILE, **files: str):
    return client.post(
        "/v1/envs",
        data={"name": name, "version": "1.0"},
        files={"context": ("ctx.tar.gz", context_tgz(dockerfile, **files), "application/gzip")},
    )


def build_events(client: httpx.Client, name: str, on_event=None) -> list[tuple[str, dict]]:
    """POST .../build and parse the event stream; ``on_event`` sees each event as it arrives."""
    events = []
    with client.stream("POST", f"/v1/envs/{name}/1.0/build") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((event, json.loads(line.removeprefix("data: "))))
                if on_event:
                    on_event(*events[-1])
    return events


def unique() -> str:
    return f"web-{secrets.token_hex(3)}"


def error_type(response: httpx.Response) -> str:
    return response.json()["error"]["type"]


def test_register_build_streamed_and_start_a_sandbox_from_env(server, alice):
    name = unique()
    r = register(alice, name, **{"hello.txt": f"over http {name}\n"})
    assert r.status_code == 201, r.text
    env = r.json()
    assert (env["owner"], env["status"], env["image"]) == (
        "alice",
        "registered",
        f"openale/env/alice/{name}:1.0",
    )

    statuses: list[str] = []  # the env's status when each log event arrived

    def on_event(event: str, data: dict) -> None:
        if event == "log" and not statuses:
            statuses.append(alice.get(f"/v1/envs/{name}/1.0").json()["status"])

    events = build_events(alice, name, on_event)
    assert statuses == ["building"]  # log lines stream while the build runs
    assert any("http-marker-7" in data["line"] for event, data in events if event == "log")
    assert events[-1][0] == "done" and events[-1][1]["status"] == "ready"
    assert events[-1][1]["digest"] and events[-1][1]["built_at"]
    assert "http-marker-7" in alice.get(f"/v1/envs/{name}/1.0/log").text

    # Unchanged: a no-op, by digest.
    again = build_events(alice, name)
    assert [e for e, _ in again] == ["log", "done"] and "up to date" in again[0][1]["line"]
    assert again[-1][1]["built_at"] == events[-1][1]["built_at"]

    r = alice.post("/v1/sandboxes", json={"env": f"{name}@1.0", "spec": {"memory": "256m"}})
    assert r.status_code == 201, r.text
    sandbox = r.json()
    assert sandbox["image"] == f"openale/env/alice/{name}:1.0"
    try:
        r = alice.post(
            f"/v1/sandboxes/{sandbox['id']}/commands", json={"cmd": "cat /opt/hello.txt"}
        )
        assert r.json()["stdout"] == f"over http {name}\n"

        r = alice.delete(f"/v1/envs/{name}/1.0")
        assert r.status_code == 409 and sandbox["id"] in r.json()["error"]["message"]
    finally:
        assert alice.delete(f"/v1/sandboxes/{sandbox['id']}").status_code == 204
    assert alice.delete(f"/v1/envs/{name}/1.0").status_code == 204
    assert alice.get(f"/v1/envs/{name}/1.0").status_code == 404
    assert name not in [e["name"] for e in alice.get("/v1/envs").json()]


def test_owners_never_see_each_others_envs(server, alice, bob):
    name = unique()
    assert register(alice, name, **{"hello.txt": "x"}).status_code == 201
    for method, path in (
        ("GET", f"/v1/envs/{name}/1.0"),
        ("GET", f"/v1/envs/{name}/1.0/log"),
        ("POST", f"/v1/envs/{name}/1.0/build"),
        ("DELETE", f"/v1/envs/{name}/1.0"),
    ):
        r = bob.request(method, path)
        assert r.status_code == 404 and error_type(r) == "EnvNotFoundError", (method, path)
    r = bob.post("/v1/sandboxes", json={"env": f"{name}@1.0"})
    assert r.status_code == 404
    assert name not in [e["name"] for e in bob.get("/v1/envs").json()]
    assert bob.get("/v1/envs?all=true").status_code == 403
    # The same name@version is free for another owner, under another image tag.
    r = register(bob, name, **{"hello.txt": "y"})
    assert r.status_code == 201 and r.json()["image"] == f"openale/env/bob/{name}:1.0"
    assert alice.get(f"/v1/envs/{name}/1.0").json()["owner"] == "alice"


def test_conflicts_and_bad_input(server, alice):
    name = unique()
    assert register(alice, name, **{"hello.txt": "x"}).status_code == 201
    r = register(alice, name, **{"hello.txt": "x"})
    assert r.status_code == 409 and error_type(r) == "EnvExistsError"
    r = alice.post("/v1/sandboxes", json={"env": f"{name}@1.0"})
    assert r.status_code == 409 and "not ready" in r.json()["error"]["message"]

    r = alice.post("/v1/envs", json={"name": "Bad Name", "version": "1", "image": BASE_IMAGE})
    assert r.status_code == 400 and error_type(r) == "InvalidEnvError"
    r = alice.post("/v1/envs", json={"name": unique(), "version": "1"})
    assert r.status_code == 422
    r = alice.post("/v1/envs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = alice.post(
        "/v1/envs",
        data={"name": unique(), "version": "1"},
        files={"context": ("x.tgz", b"not a tar", "application/gzip")},
    )
    assert r.status_code == 400 and "not a valid tar" in r.json()["error"]["message"]
    r = httpx.get(f"{server.url}/v1/envs")
    assert r.status_code == 401

    settings = server.app.state.ale.settings
    cap, settings.max_upload_bytes = settings.max_upload_bytes, 1000
    try:
        r = register(alice, unique(), **{"big.txt": secrets.token_hex(5000)})
        assert r.status_code == 413 and error_type(r) == "PayloadTooLarge"
    finally:
        settings.max_upload_bytes = cap


def test_register_an_image_as_json(server, alice, engine):
    name = unique()
    r = alice.post("/v1/envs", json={"name": name, "version": "1.0", "image": BASE_IMAGE})
    assert r.status_code == 201, r.text
    env = r.json()
    assert env["status"] == "ready" and env["source_image"] == BASE_IMAGE
    assert (
        engine.api.inspect_image(env["image"])["Id"] == engine.api.inspect_image(BASE_IMAGE)["Id"]
    )
    r = alice.post("/v1/envs", json={"name": unique(), "version": "1", "image": "nope.invalid/x:1"})
    assert r.status_code == 400 and "not on the engine" in r.json()["error"]["message"]
    assert alice.delete(f"/v1/envs/{name}/1.0").status_code == 204


def test_failed_build_streams_an_error_event_and_keeps_the_log(server, alice):
    name = unique()
    assert register(alice, name, f"FROM {BASE_IMAGE}\nRUN echo http-fail && exit 5\n").is_success
    events = build_events(alice, name)
    assert any("http-fail" in data["line"] for event, data in events if event == "log")
    event, data = events[-1]
    assert event == "error" and data["error"]["type"] == "EnvBuildError"
    assert "non-zero code: 5" in data["error"]["message"]
    env = alice.get(f"/v1/envs/{name}/1.0").json()
    assert env["status"] == "failed" and "non-zero code: 5" in env["error"]
    assert "http-fail" in alice.get(f"/v1/envs/{name}/1.0/log").text
