"""Spec validation happens before the engine is touched."""

import pytest

from openale.sandbox import InvalidSpecError, SandboxSpec
from openale.sandbox.spec import parse_memory


@pytest.mark.parametrize(
    "text,expected",
    [
        ("512m", 512 << 20),
        ("1g", 1 << 30),
        ("2GiB", 2 << 30),
        ("64MB", 64 << 20),
        ("1.5g", int(1.5 * (1 << 30))),
        (4096 << 10, 4096 << 10),
    ],
)
def test_memory_sizes(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"memory": "lots"}, "memory"),
        ({"memory": "1m"}, "memory"),
        ({"cpus": 0}, "cpus"),
        ({"pids": 1}, "pids"),
        ({"network": "host"}, "network"),
        ({"workdir": "relative/dir"}, "workdir"),
        ({"env": {"BAD-NAME": "x"}}, "env"),
        ({"user": "root; rm -rf /"}, "user"),
        ({"image": ""}, "image"),
        ({"ttl_s": -1}, "ttl_s"),
        ({"privileged": True}, "privileged"),
    ],
)
def test_invalid_fields_are_named(fields, field):
    with pytest.raises(InvalidSpecError) as e:
        SandboxSpec.parse(**fields)
    assert field in str(e.value)


def test_defaults_are_safe():
    spec = SandboxSpec()
    assert spec.network == "none"
    assert spec.memory_bytes == 1 << 30
    assert spec.pids <= 1024
    assert spec.ttl_s is not None
