"""Sandboxes placed on the nodes of a real multi-node Ray cluster on this machine."""

from __future__ import annotations

import docker
import pytest

from openale.sandbox import SandboxFileError, SandboxSpec
from openale.sandbox.ray.backend import PlacementError, RaySandboxBackend

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.slow

GIB = 1024**3
SPEC = dict(image="openale/toolbox:bookworm", cpus=1, memory="512m")


@pytest.fixture(scope="module")
def cluster():
    """Two Docker nodes (1 CPU, 2 GiB each) and one node without Docker."""
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "memory": 2 * GIB, "resources": {"docker": 1}},
    )
    docker_node = c.add_node(num_cpus=1, memory=2 * GIB, resources={"docker": 1})
    plain_node = c.add_node(num_cpus=1, memory=2 * GIB)
    c.wait_for_nodes()
    backend = RaySandboxBackend(c.address, placement_timeout_s=15)  # actors start slowly under load
    yield c, backend, {docker_node.node_id, c.head_node.node_id}, plain_node.node_id
    backend.close_all()
    ray.shutdown()
    c.shutdown()


def _containers(sandbox_id: str) -> list:
    client = docker.from_env()
    return client.containers.list(all=True, filters={"label": f"openale.sandbox={sandbox_id}"})


def test_only_docker_nodes_are_listed(cluster):
    _, backend, docker_nodes, plain = cluster
    nodes = backend.nodes()
    assert {n["node_id"] for n in nodes} == docker_nodes
    assert all(n["cpus"] == 1 and n["memory"] == 2 * GIB for n in nodes)
    assert plain not in {n["node_id"] for n in nodes}


def test_sandboxes_spread_by_cpu_and_work_through_the_actor(cluster):
    _, backend, docker_nodes, _ = cluster
    a = backend.create(SPEC)
    b = backend.create(SPEC)
    try:
        # One CPU per node: the second sandbox cannot share the first one's node.
        assert {a.node_id, b.node_id} == docker_nodes
        assert a.commands.run("echo hi").stdout == "hi\n"
        with a.sessions.create() as shell:
            shell.run("cd /tmp && export X=42")
            result = shell.run("pwd; echo $X")
        assert result.output.split() == ["/tmp", "42"]
        payload = bytes(range(256)) * 64
        b.files.write("/workspace/blob.bin", payload)
        assert b.files.read("/workspace/blob.bin") == payload
        assert b.info().status == "running"
        with pytest.raises(SandboxFileError):
            b.files.read("/workspace/missing")
    finally:
        a.close()
        b.close()
    assert _containers(a.id) == [] and _containers(b.id) == []


def test_a_full_cluster_refuses_with_a_clear_error_and_frees_on_close(cluster):
    _, backend, _, _ = cluster
    first, second = backend.create(SPEC), backend.create(SPEC)
    try:
        with pytest.raises(PlacementError, match="1.0 CPUs"):
            backend.create(SPEC)
        assert len(backend.list()) == 2
        first.close()
        third = backend.create(SPEC)  # the freed CPU takes it
        assert third.node_id == first.node_id
        third.close()
    finally:
        first.close()
        second.close()


def test_memory_is_a_placement_resource(cluster):
    _, backend, _, _ = cluster
    with pytest.raises(PlacementError, match="3g"):
        backend.create({**SPEC, "memory": "3g"})
    half = backend.create({**SPEC, "cpus": 0.5, "memory": "1536m"})
    try:
        # 1.5 GiB is taken on that node: another 1.5 GiB must go to the other node.
        other = backend.create({**SPEC, "cpus": 0.5, "memory": "1536m"})
        assert other.node_id != half.node_id
        other.close()
    finally:
        half.close()


def test_spec_errors_surface_as_themselves(cluster):
    _, backend, _, _ = cluster
    with pytest.raises(Exception) as info:
        backend.create(SandboxSpec(image="openale/no-such-image:1", cpus=0.5, memory="64m"))
    assert "no-such-image" in str(info.value)
    assert backend.list() == []
