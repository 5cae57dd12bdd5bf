"""``openale.sandbox.images`` against the real Docker engine, and its Dockerfile parser.

The module fixture builds the images once if they are missing (about two
minutes) and is a few engine calls when they exist; nothing here forces a
rebuild.
"""

from __future__ import annotations

import json
import os
import uuid
from io import BytesIO
from pathlib import Path

import docker.errors
import pytest
from typer.testing import CliRunner

from openale.cli.main import app
from openale.sandbox.engine import docker_client
from openale.sandbox.images import (
    BASE_IMAGE,
    TOOLBOX_IMAGE,
    BuildContext,
    ImageBuilder,
    ImageBuildError,
    apply_aliases,
    ensure_images,
    from_images,
    list_images,
    split_image_ref,
    split_pem_certificates,
)
from openale.sandbox.settings import SandboxSettings

REQUIRED_ALIASES = [
    "ubuntu:24.04",
    "ubuntu:22.04",
    "python:3.11-slim",
    "python:3.12-slim",
    "ghcr.io/laude-institute/t-bench/ubuntu-24-04:20250624",
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> SandboxSettings:
    return SandboxSettings(home=tmp_path_factory.mktemp("ale-home"))


@pytest.fixture(scope="module")
def client(settings):
    ensure_images(settings)
    return docker_client(settings)


@pytest.fixture
def scratch_tag(client):
    """A throwaway tag, untagged (or its image removed) after the test."""
    tag = f"openale-test/{uuid.uuid4().hex[:10]}:1"
    yield tag
    try:
        client.images.remove(tag, force=True)
    except docker.errors.ImageNotFound:
        pass


def run_in(client, image: str, command: str, **kwargs) -> str:
    out = client.containers.run(
        image, ["bash", "-c", command], remove=True, network_mode="none", **kwargs
    )
    return out.decode()


def test_ensure_images_builds_base_and_toolbox_and_is_idempotent(client, settings):
    base, toolbox = client.images.get(BASE_IMAGE), client.images.get(TOOLBOX_IMAGE)
    assert base.labels["openale.image"] == "base"
    assert toolbox.labels["openale.image"] == "toolbox"
    tags = ensure_images(settings)
    assert tags[:2] == [BASE_IMAGE, TOOLBOX_IMAGE]
    assert set(REQUIRED_ALIASES) <= set(tags)
    # Nothing was rebuilt by the second call.
    assert client.images.get(TOOLBOX_IMAGE).id == toolbox.id


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python3 --version", "Python 3."),
        ("python --version", "Python 3."),
        ("pip --version", "pip "),
        ("git --version", "git version"),
        ("echo '{\"a\": [1, 2]}' | jq -c '.a'", "[1,2]"),
        ("sqlite3 :memory: 'select 6*7'", "42"),
        ("tmux -V", "tmux "),
        ("make --version", "GNU Make"),
        ("gcc --version", "gcc"),
        ("curl --version", "curl "),
        ("ps -e -o comm=; true", "bash"),
        ("stat -c %a /workspace", "1777"),
    ],
)
def test_toolbox_has_the_tools(client, command, expected):
    assert expected in run_in(client, TOOLBOX_IMAGE, command)


def test_toolbox_compiles_c_and_allows_system_pip(client):
    out = run_in(
        client,
        TOOLBOX_IMAGE,
        "cd /tmp && printf '#include <stdio.h>\\nint main(){puts(\"hi\");}' > a.c "
        "&& gcc a.c -o a && ./a && echo $PIP_BREAK_SYSTEM_PACKAGES",
    )
    assert out.split() == ["hi", "1"]


def test_required_aliases_point_at_the_toolbox(client):
    toolbox_id = client.images.get(TOOLBOX_IMAGE).id
    for name in REQUIRED_ALIASES:
        assert client.images.get(name).id == toolbox_id, name


@pytest.mark.parametrize(
    "base",
    ["ubuntu:24.04", "python:3.12-slim", "ghcr.io/laude-institute/t-bench/ubuntu-24-04:20250624"],
)
def test_task_dockerfile_builds_from_alias_offline(client, scratch_tag, base):
    dockerfile = f"FROM {base}\nRUN echo built-from-{base.split(':')[0]} > /marker\n"
    client.images.build(
        fileobj=BytesIO(dockerfile.encode()),
        tag=scratch_tag,
        pull=False,
        forcerm=True,
        network_mode="none",
    )
    assert run_in(client, scratch_tag, "cat /marker").strip() == f"built-from-{base.split(':')[0]}"


def test_base_trusts_every_extra_ca(client, settings):
    assert settings.extra_ca_files, "the host CA bundle should be configured by default"
    container_bundle = run_in(client, BASE_IMAGE, "cat /etc/ssl/certs/ca-certificates.crt")
    inside = set(split_pem_certificates(container_bundle.encode()))
    for path in settings.extra_ca_files:
        host = split_pem_certificates(Path(path).read_bytes())
        assert host
        missing = [pem for pem in host if pem not in inside]
        assert not missing, f"{len(missing)} CA certificate(s) of {path} are not trusted"


def test_base_is_configured_for_the_mirror_and_ca_aware_tools(client, settings):
    env = client.images.get(BASE_IMAGE).attrs["Config"]["Env"]
    assert "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" in env
    assert "PIP_CERT=/etc/ssl/certs/ca-certificates.crt" in env
    sources = run_in(client, BASE_IMAGE, "cat /etc/apt/sources.list.d/debian.sources")
    assert f"URIs: {settings.debian_mirror}" in sources
    assert "bookworm-security" in sources
    # apt lists were cleaned to keep the image small.
    assert run_in(client, BASE_IMAGE, "ls /var/lib/apt/lists | grep -c _Packages || true") == "0\n"


def test_apply_aliases_tags_a_custom_name(client, settings, scratch_tag):
    custom = settings.model_copy(update={"image_aliases": {scratch_tag: BASE_IMAGE}})
    assert apply_aliases(custom) == {scratch_tag: BASE_IMAGE}
    assert client.images.get(scratch_tag).id == client.images.get(BASE_IMAGE).id
    listed = {i.tag: i for i in list_images(custom)}
    assert listed[scratch_tag].kind == "alias"
    assert listed[scratch_tag].alias_of == BASE_IMAGE


def test_apply_aliases_leaves_foreign_images_alone(client, settings, scratch_tag):
    client.images.build(
        fileobj=BytesIO(b"FROM scratch\nLABEL origin=upstream\n"),
        tag=scratch_tag,
        pull=False,
        forcerm=True,
    )
    foreign_id = client.images.get(scratch_tag).id
    custom = settings.model_copy(update={"image_aliases": {scratch_tag: TOOLBOX_IMAGE}})
    messages: list[str] = []
    assert apply_aliases(custom, progress=messages.append) == {}
    assert client.images.get(scratch_tag).id == foreign_id
    assert any("left alone" in m for m in messages)


def test_apply_aliases_skips_missing_targets(settings):
    custom = settings.model_copy(
        update={"image_aliases": {"openale-test/x:1": "openale/none:missing"}}
    )
    assert apply_aliases(custom) == {}


def test_failed_build_raises_with_log_tail(settings, scratch_tag, tmp_path):
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN echo marker-before-failure && exit 3\n"
    )
    with pytest.raises(ImageBuildError) as err:
        ImageBuilder(settings).build(BuildContext(tmp_path), scratch_tag, timeout_s=300)
    assert "marker-before-failure" in str(err.value)
    assert "returned a non-zero code: 3" in str(err.value)
    assert "marker-before-failure" in err.value.log


def test_digest_covers_files_modes_and_from_image_ids(settings, client, scratch_tag, tmp_path):
    builder = ImageBuilder(settings)
    context = BuildContext(tmp_path, exclude=frozenset({"tests"}))
    (tmp_path / "Dockerfile").write_text(f"FROM {scratch_tag}\nCOPY run.sh /run.sh\n")
    (tmp_path / "run.sh").write_text("echo hi\n")
    client.images.get(BASE_IMAGE).tag(*split_image_ref(scratch_tag))
    first = builder.digest(context)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test.sh").write_text("secret\n")  # excluded: no new image
    os.utime(tmp_path / "run.sh", (0, 0))  # a timestamp is not content
    assert builder.digest(context) == first
    (tmp_path / "run.sh").chmod(0o755)
    by_mode = builder.digest(context)
    assert by_mode != first
    client.images.get(TOOLBOX_IMAGE).tag(*split_image_ref(scratch_tag))  # a rebuilt base
    assert builder.digest(context) not in {first, by_mode}
    assert [p.name for p in context.files()] == ["Dockerfile", "run.sh"]


def test_from_images_skip_build_stages():
    text = "FROM ubuntu:24.04 AS build\nRUN make\nFROM python:3.12-slim\nCOPY --from=build /x /x\n"
    assert from_images(text) == ["ubuntu:24.04", "python:3.12-slim"]
    assert from_images("FROM build AS b\nFROM b\n") == ["build"]


def test_from_images_reads_instructions_not_lines():
    # Both old copies matched `^FROM` per line: a continued RUN line that
    # starts with Python's `from` became a base image.
    text = "FROM ubuntu:24.04\nRUN printf 'import os\\n\\\nfrom pathlib import Path' > x.py\n"
    assert from_images(text) == ["ubuntu:24.04"]
    # The tasks copy took an `as` anywhere in the file for a stage name.
    assert from_images("FROM python:3.12-slim\nRUN echo run as python:3.12-slim\n") == [
        "python:3.12-slim"
    ]
    assert from_images("# FROM commented:1\nFROM --platform=linux/amd64 a:1 AS x\nFROM x\n") == [
        "a:1"
    ]
    assert from_images("FROM scratch\nCOPY x /x\n") == []
    assert from_images("# escape=`\nFROM a:1 AS b\nRUN echo `\nfrom c\nFROM b\n") == ["a:1"]


def test_from_images_fills_in_global_arg_defaults():
    # The old copies skipped (EnvHub) or kept verbatim (tasks) `$BASE`, so a
    # rebuilt base never changed the digest.
    text = "ARG BASE=ubuntu:24.04\nARG TAG\nFROM ${BASE}\nFROM python:$TAG\n"
    assert from_images(text) == ["ubuntu:24.04"]


def test_list_images_kinds(client, settings):
    by_tag = {i.tag: i for i in list_images(settings)}
    assert by_tag[BASE_IMAGE].kind == "base"
    assert by_tag[TOOLBOX_IMAGE].kind == "toolbox"
    assert by_tag["ubuntu:24.04"].kind == "alias"
    assert by_tag["ubuntu:24.04"].alias_of == TOOLBOX_IMAGE
    assert by_tag[TOOLBOX_IMAGE].size_bytes > 100_000_000
    assert not any(t.startswith("openale-test/") for t in by_tag)


def test_list_images_shows_snapshots(client, settings):
    tag = f"openale/snapshot:test-{uuid.uuid4().hex[:8]}"
    client.images.get(BASE_IMAGE).tag(*split_image_ref(tag))
    try:
        by_tag = {i.tag: i for i in list_images(settings)}
        assert by_tag[tag].kind == "snapshot"
    finally:
        client.images.remove(tag)


def test_cli_ls_json(client, monkeypatch, settings):
    monkeypatch.setenv("ALE_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["images", "ls", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["tag"]: row for row in json.loads(result.stdout)}
    assert rows[BASE_IMAGE]["kind"] == "base"
    assert rows[TOOLBOX_IMAGE]["kind"] == "toolbox"
    assert rows["ghcr.io/laude-institute/t-bench/ubuntu-24-04:20250624"]["kind"] == "alias"
    assert rows[TOOLBOX_IMAGE]["id"].startswith("sha256:")


def test_cli_bootstrap_is_a_fast_no_op(client, monkeypatch, settings):
    monkeypatch.setenv("ALE_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["images", "bootstrap"])
    assert result.exit_code == 0, result.output
    assert "present" in result.output and "ready" in result.output
    assert "debootstrap" not in result.output


def test_cli_reports_sandbox_errors_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("ALE_HOME", str(tmp_path))
    monkeypatch.setenv("ALE_DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    result = CliRunner().invoke(app, ["images", "ls"])
    assert result.exit_code == 1
    assert "error:" in result.output and "Traceback" not in result.output


def test_split_image_ref():
    assert split_image_ref("ghcr.io/laude-institute/t-bench/ubuntu-24-04:20250624") == (
        "ghcr.io/laude-institute/t-bench/ubuntu-24-04",
        "20250624",
    )
    assert split_image_ref("ubuntu:24.04") == ("ubuntu", "24.04")
    assert split_image_ref("localhost:5000/tools") == ("localhost:5000/tools", "latest")
    assert split_image_ref("python") == ("python", "latest")
    with pytest.raises(ImageBuildError):
        split_image_ref("ubuntu@sha256:" + "0" * 64)


@pytest.mark.slow
def test_pip_over_https_through_the_proxy(client):
    """pip inside the toolbox trusts the proxy CA the base image added."""
    out = client.containers.run(
        TOOLBOX_IMAGE,
        ["bash", "-c", "pip download --no-deps six -d /tmp/x && ls /tmp/x"],
        remove=True,
        network_mode="bridge",
        environment={k: v for k, v in os.environ.items() if k.lower().endswith("_proxy")},
    )
    assert b"six-" in out
