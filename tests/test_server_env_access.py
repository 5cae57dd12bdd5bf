"""EnvHub images over the control plane: a caller starts only their own environments.

``spec.image`` is whatever a caller sends, so ``env:name@version`` there must
resolve in the server's hub for the caller (never the host's own embedded hub),
and an EnvHub tag ``openale/env/<owner>/...`` of another owner must be refused.
"""

from __future__ import annotations

import secrets

import pytest

from openale.sandbox.envhub import EnvHub
from tests.test_server_support import SMALL, ServerThread, server_containers


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerThread(tmp_path_factory.mktemp("env-access") / "server.db") as srv:
        yield srv


def _env(name: str) -> str:
    return f"{name}-{secrets.token_hex(3)}"


def test_env_in_spec_image_resolves_for_the_caller_only(server, engine):
    alice, bob = server.client(server.token("alice")), server.client(server.token("bob"))
    name = _env("shared")
    r = bob.post("/v1/envs", json={"name": name, "version": "1", "image": SMALL["image"]})
    assert r.status_code == 201, r.text
    bob_image = r.json()["image"]
    assert bob_image == f"openale/env/bob/{name}:1"

    # Bob starts his env through spec.image, exactly as through the body's env field.
    r = bob.post("/v1/sandboxes", json={"spec": {**SMALL, "image": f"env:{name}@1"}})
    assert r.status_code == 201, r.text
    assert r.json()["image"] == bob_image
    bob.delete(f"/v1/sandboxes/{r.json()['id']}")

    before = server_containers(engine, server.state.server_id)
    # Alice has no such env: the name does not reach Bob's.
    r = alice.post("/v1/sandboxes", json={"spec": {**SMALL, "image": f"env:{name}@1"}})
    assert r.status_code == 404 and r.json()["error"]["type"] == "EnvNotFoundError"
    # ...nor does Bob's tag.
    r = alice.post("/v1/sandboxes", json={"spec": {**SMALL, "image": bob_image}})
    assert r.status_code == 404 and r.json()["error"]["type"] == "EnvNotFoundError"
    assert server_containers(engine, server.state.server_id) == before
    assert alice.get("/v1/sandboxes").json() == []

    # Naming the env twice is refused rather than guessed.
    r = bob.post(
        "/v1/sandboxes", json={"spec": {**SMALL, "image": f"env:{name}@1"}, "env": f"{name}@1"}
    )
    assert r.status_code == 400


def test_host_local_hub_envs_are_not_reachable(server, engine):
    name = _env("hostonly")
    local = EnvHub().register(name, "1", image=SMALL["image"])  # the host's embedded hub
    assert local.owner == "local" and local.status == "ready"
    alice = server.client(server.token("alice"))
    before = server_containers(engine, server.state.server_id)
    for image in (f"env:{name}@1", local.image):
        r = alice.post("/v1/sandboxes", json={"spec": {**SMALL, "image": image}})
        assert r.status_code == 404, (image, r.text)
        assert r.json()["error"]["type"] == "EnvNotFoundError"
    assert server_containers(engine, server.state.server_id) == before
    assert alice.get("/v1/sandboxes").json() == []
