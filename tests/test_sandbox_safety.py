"""Safe defaults: offline, few capabilities, no new privileges, hard limits."""

import subprocess

import pytest

from openale.sandbox import (
    ImageNotFoundError,
    InvalidSpecError,
    ResourceLimitError,
    Sandbox,
    SandboxSpec,
)
from openale.sandbox.runtime import CAPABILITIES
from tests.conftest import BASE_IMAGE, count_sandboxes

CAP_NUMBERS = {
    "CHOWN": 0,
    "DAC_OVERRIDE": 1,
    "FOWNER": 3,
    "FSETID": 4,
    "KILL": 5,
    "SETGID": 6,
    "SETUID": 7,
    "NET_BIND_SERVICE": 10,
    "NET_RAW": 13,
    "SYS_ADMIN": 21,
}


def status_field(sb, name: str) -> str:
    out = sb.commands.run(f"grep '^{name}:' /proc/self/status").stdout
    return out.split(":", 1)[1].strip()


def test_offline_by_default_only_loopback(sandbox):
    assert sandbox.commands.run("ls /sys/class/net").stdout.split() == ["lo"]
    routes = sandbox.commands.run("tail -n +2 /proc/net/route").stdout.strip()
    assert routes == ""
    r = sandbox.commands.run("bash -c 'exec 3<>/dev/tcp/1.1.1.1/80'", timeout=20)
    assert r.exit_code != 0 and "unreachable" in r.stderr.lower()


def test_bridge_network_when_asked(engine):
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE, network="bridge")) as sb:
        assert "eth0" in sb.commands.run("ls /sys/class/net").stdout.split()


def test_capabilities_are_the_allowlist_and_no_new_privileges(sandbox):
    expected = sum(1 << CAP_NUMBERS[c] for c in CAPABILITIES)
    assert int(status_field(sandbox, "CapEff"), 16) == expected
    assert int(status_field(sandbox, "CapBnd"), 16) == expected
    assert status_field(sandbox, "NoNewPrivs") == "1"
    assert status_field(sandbox, "Seccomp") == "2"
    assert not expected & (1 << CAP_NUMBERS["NET_RAW"] | 1 << CAP_NUMBERS["SYS_ADMIN"])
    assert sandbox.commands.run("mount -t tmpfs none /mnt").exit_code != 0


def test_limits_reach_the_engine(engine):
    spec = SandboxSpec(image=BASE_IMAGE, memory="300m", pids=100, cpus=0.5)
    with Sandbox.create(spec) as sb:
        host = engine.api.inspect_container(sb.container)["HostConfig"]
        assert host["Memory"] == host["MemorySwap"] == 300 << 20  # no swap
        assert host["PidsLimit"] == 100 and host["NanoCpus"] == 500_000_000
        assert not host["Privileged"] and "no-new-privileges" in host["SecurityOpt"]
        limit = sb.commands.run(
            "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"
        )
        assert limit.stdout.strip() == "100"


def test_memory_bomb_is_reported_as_oom(engine):
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE, memory="64m")) as sb:
        r = sb.commands.run("perl -e '$x = \"a\" x (400 * 1024 * 1024); print length $x'")
        assert r.exit_code == 137 and r.oom_killed
        shell = sb.sessions.create()
        r = shell.run("perl -e '$x = \"b\" x (400 * 1024 * 1024)'")
        assert r.exit_code == 137 and r.oom_killed
        assert shell.run("echo survived").output == "survived\n"
        plain_kill = sb.commands.run("kill -9 $$")
        assert plain_kill.exit_code == 137 and not plain_kill.oom_killed


def test_fork_bomb_is_contained_and_recovered(engine):
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE, pids=64, cpus=0.5)) as sb:
        sb.files.write("keep.txt", "kept")
        # bash retries failed forks, so this bomb keeps the sandbox saturated.
        r = sb.commands.run("bash -c 'bomb() { bomb | bomb & }; bomb'", timeout=5)
        assert r.exit_code is not None or r.timed_out
        assert sb.runtime.pids_current(sb.container) <= 64
        # The host keeps forking while the sandbox is saturated.
        assert subprocess.run(["true"]).returncode == 0
        # While saturated, a new command either squeezes in or fails clearly.
        try:
            sb.commands.run("echo squeezed", timeout=10)
        except ResourceLimitError as e:
            assert "pids limit" in str(e)
        sb.restart()
        after = sb.commands.run("echo usable; cat keep.txt")
        assert after.exit_code == 0 and after.stdout == "usable\nkept"
        assert sb.runtime.pids_current(sb.container) < 10
        assert [e.action for e in sb.audit.read(sb.id)].count("restarted") == 1


def test_fork_bomb_in_a_session(engine):
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE, pids=64, cpus=0.5)) as sb:
        shell = sb.sessions.create()
        r = shell.run("bomb() { bomb | bomb; }; bomb", timeout=5)
        assert r.timed_out
        assert sb.runtime.pids_current(sb.container) <= 64
        assert sb.commands.run("echo usable").stdout == "usable\n"


def test_missing_image_is_a_typed_error_and_leaves_nothing(engine):
    before = count_sandboxes(engine)
    with pytest.raises(ImageNotFoundError, match="ale images bootstrap"):
        Sandbox.create(SandboxSpec(image="openale/does-not-exist:1"))
    assert count_sandboxes(engine) == before


@pytest.mark.parametrize("fields", [{"cpus": 4096}, {"memory": "lots"}, {"network": "host"}])
def test_invalid_specs_are_rejected_before_anything_starts(engine, fields):
    before = count_sandboxes(engine)
    with pytest.raises(InvalidSpecError):
        Sandbox.create(image=BASE_IMAGE, **fields)
    assert count_sandboxes(engine) == before


def test_read_only_root_keeps_workdir_and_tmp_writable(engine):
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE, read_only_root=True)) as sb:
        assert sb.commands.run("touch /etc/evil").exit_code != 0
        assert sb.commands.run("touch /workspace/ok /tmp/ok").exit_code == 0
        sb.files.write("notes.txt", "fine")
        assert sb.commands.run("cat notes.txt").stdout == "fine"


def test_images_with_their_own_entrypoint_still_make_sandboxes(engine, tmp_path):
    (tmp_path / "Dockerfile").write_text(
        f'FROM {BASE_IMAGE}\nENTRYPOINT ["sh", "-c", "exit 3"]\nCMD ["ignored"]\n'
    )
    image, _ = engine.images.build(path=str(tmp_path), tag="openale/test-entrypoint:1", rm=True)
    try:
        with Sandbox.create(SandboxSpec(image="openale/test-entrypoint:1")) as sb:
            assert sb.commands.run("echo up").stdout == "up\n"
    finally:
        engine.images.remove(image.id, force=True)
