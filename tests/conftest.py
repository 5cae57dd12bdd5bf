"""Shared fixtures. Tests talk to the real Docker engine; `make test` starts it."""

from __future__ import annotations

import os
import tempfile

import pytest

# Every test run gets its own state directory (audit logs, config), set before
# anything reads the settings. The in-process reaper is off unless a test
# turns it on, so it cannot remove sandboxes other tests are using.
os.environ["ALE_HOME"] = tempfile.mkdtemp(prefix="ale-test-home-")
os.environ["ALE_REAP_INTERVAL_S"] = "0"
# Converted model checkpoints are kept across runs: converting SmolLM2 takes ~30 s.
os.environ.setdefault("ALE_MODELS_DIR", os.path.expanduser("~/.cache/openale/models"))

BASE_IMAGE = "openale/debian:bookworm"
TOOLBOX_IMAGE = "openale/toolbox:bookworm"


@pytest.fixture(scope="session")
def engine():
    from openale.sandbox.engine import docker_client

    return docker_client()


@pytest.fixture
def sandbox(engine):
    from openale.sandbox import Sandbox, SandboxSpec

    with Sandbox.create(SandboxSpec(image=BASE_IMAGE, memory="512m")) as sb:
        yield sb


def count_sandboxes(engine) -> int:
    from openale.sandbox.engine import LABEL

    return len(engine.api.containers(all=True, filters={"label": LABEL}))


PROCESS_LIST = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done"


def processes(sb) -> list[str]:
    """Command lines of every process in the sandbox (the base image has no ps)."""
    return [line.strip() for line in sb.commands.run(PROCESS_LIST).stdout.splitlines()]
