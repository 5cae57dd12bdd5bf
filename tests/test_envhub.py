"""EnvHub on the real engine: register, build (log streamed), sandbox from name@version,
rebuild by digest, failures, duplicates, owners, deletion, and `ale envs`."""

from __future__ import annotations

import io
import json
import secrets
import tarfile
from datetime import timedelta
from pathlib import Path

import docker.errors
import pytest
from typer.testing import CliRunner

from openale.cli.main import app
from openale.sandbox import Sandbox
from openale.sandbox.envhub import (
    EnvBuildError,
    EnvExistsError,
    EnvHub,
    EnvNotFoundError,
    EnvStateError,
    InvalidEnvError,
    check_image_access,
    parse_ref,
)
from openale.sandbox.envhub.store import envs_table
from openale.sandbox.images import DIGEST_LABEL
from tests.conftest import BASE_IMAGE

runner = CliRunner()


@pytest.fixture
def hub(engine):
    """The default hub (the session's temp ALE_HOME); every env a test made is deleted after."""
    hub = EnvHub()
    yield hub
    for env in hub.list(owner=None):
        hub.delete(env.name, env.version, owner=env.owner, force=True)


def unique(prefix: str = "env") -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def folder(tmp_path: Path, dockerfile: str, **files: str) -> Path:
    root = tmp_path / unique("ctx")
    root.mkdir()
    (root / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


GOOD = f"FROM {BASE_IMAGE}\nCOPY hello.txt /opt/hello.txt\nRUN echo build-marker-42\n"


def build_good(hub: EnvHub, tmp_path: Path, name: str | None = None, version: str = "1.0"):
    name = name or unique()
    hub.register(name, version, context=folder(tmp_path, GOOD, **{"hello.txt": "hi from env\n"}))
    return hub.build(name, version)


def test_register_build_and_start_a_sandbox_from_name_at_version(hub, engine, tmp_path):
    name = unique()
    # A file unique to this run: no layer cached by an earlier run hides the RUN output.
    hello = f"hi from {name}\n"
    env = hub.register(name, "1.0", context=folder(tmp_path, GOOD, **{"hello.txt": hello}))
    assert env.status == "registered" and env.image == f"openale/env/local/{name}:1.0"
    assert env.digest and env.built_at is None

    seen: list[tuple[str, str]] = []  # (line, status of the record when the line arrived)

    def on_log(line: str) -> None:
        seen.append((line, hub.get(name, "1.0").status))

    env = hub.build(name, "1.0", on_log=on_log)

    # Lines arrive while the build runs, not after it.
    assert any("build-marker-42" in line for line, _ in seen)
    assert {status for _, status in seen} == {"building"}
    assert env.status == "ready" and env.built_at is not None and env.error is None
    labels = engine.api.inspect_image(env.image)["Config"]["Labels"]
    assert labels[DIGEST_LABEL] == env.digest
    assert "build-marker-42" in hub.build_log(name, "1.0")
    assert [e.ref for e in hub.list()] == [f"{name}@1.0"]

    with Sandbox.create(image=f"env:{name}@1.0", memory="256m") as sb:
        assert sb.commands.run("cat /opt/hello.txt").stdout == hello
    assert hub.sandbox_spec(f"{name}@1.0", memory="256m").image == env.image


def test_rebuild_with_unchanged_dockerfile_is_a_noop_and_force_rebuilds(hub, engine, tmp_path):
    env = build_good(hub, tmp_path)
    image_id = engine.api.inspect_image(env.image)["Id"]
    lines: list[str] = []
    again = hub.build(env.name, env.version, on_log=lines.append)
    assert again.built_at == env.built_at and again.digest == env.digest
    assert engine.api.inspect_image(env.image)["Id"] == image_id
    assert lines == [f"{env.image} is up to date (digest {env.digest})"]

    forced = hub.build(env.name, env.version, force=True)
    assert forced.built_at > env.built_at
    assert engine.api.inspect_image(env.image)["Id"] != image_id
    with pytest.raises(docker.errors.ImageNotFound):  # the superseded build is removed
        engine.api.inspect_image(image_id)


def test_failing_dockerfile_leaves_the_env_failed_with_error_and_log(hub, tmp_path):
    name = unique()
    # The first RUN writes one line in two pieces: the log still shows it whole.
    # (`: {name}` keeps the engine's layer cache from skipping it on a rerun.)
    bad = (
        f"FROM {BASE_IMAGE}\nRUN printf 'joined-'; sleep 1; printf 'line\\n'; : {name}\n"
        "RUN echo about-to-fail && exit 3\n"
    )
    hub.register(name, "1.0", context=folder(tmp_path, bad))
    lines: list[str] = []
    with pytest.raises(EnvBuildError, match="non-zero code: 3") as info:
        hub.build(name, "1.0", on_log=lines.append)
    assert "about-to-fail" in info.value.log and "joined-line" in lines
    env = hub.get(name, "1.0")
    assert env.status == "failed" and "non-zero code: 3" in env.error
    assert "about-to-fail" in hub.build_log(name, "1.0")
    with pytest.raises(EnvStateError, match="failed, not ready"):
        Sandbox.create(image=f"env:{name}@1.0")


def test_a_from_image_missing_on_the_engine_fails_without_pulling(hub, tmp_path):
    name = unique()
    hub.register(name, "1.0", context=folder(tmp_path, "FROM example.invalid/nothing:1\n"))
    with pytest.raises(EnvBuildError, match="not on the engine and no registry is used"):
        hub.build(name, "1.0")
    assert hub.get(name, "1.0").status == "failed"


def test_a_from_word_inside_a_run_instruction_is_no_base_image(hub, tmp_path):
    # The second line continues the RUN; a line-based FROM parser took it for
    # `FROM pathlib` and refused the build (no such image on the engine).
    name = unique()
    text = (
        f"FROM {BASE_IMAGE}\nRUN printf 'import os\\n\\\nfrom pathlib import Path\\n' > /opt/x.py\n"
    )
    hub.register(name, "1.0", context=folder(tmp_path, text))
    assert hub.build(name, "1.0").status == "ready"
    with Sandbox.create(image=f"env:{name}@1.0", memory="256m") as sb:
        assert sb.commands.run("cat /opt/x.py").stdout == "import os\nfrom pathlib import Path\n"


def test_a_build_cannot_start_or_be_deleted_while_one_runs(hub, tmp_path):
    name = unique()
    hub.register(name, "1.0", context=folder(tmp_path, GOOD, **{"hello.txt": "x"}))
    refused: list[str] = []

    def on_log(line: str) -> None:
        if not refused:
            for attempt in (lambda: hub.build(name, "1.0"), lambda: hub.delete(name, "1.0")):
                with pytest.raises(EnvStateError) as info:
                    attempt()
                refused.append(str(info.value))

    assert hub.build(name, "1.0", on_log=on_log).status == "ready"
    assert "already building" in refused[0] and "is building" in refused[1]


def test_a_build_left_behind_by_a_dead_process_does_not_block_forever(hub, tmp_path):
    name = unique()
    row = hub.register(name, "1.0", context=folder(tmp_path, GOOD, **{"hello.txt": "x"}))
    record = hub.store.row("local", name, "1.0")
    hub.store.update(record["id"], status="building")
    with pytest.raises(EnvStateError, match="already building"):
        hub.build(name, "1.0")
    # The same record, last touched longer ago than any build may take: a crashed builder.
    long_ago = row.created_at - hub.store.stale_after - timedelta(seconds=1)
    with hub.store.engine.begin() as conn:
        conn.execute(
            envs_table.update().where(envs_table.c.id == record["id"]).values(updated_at=long_ago)
        )
    assert hub.build(name, "1.0").status == "ready"


def test_duplicates_are_refused_and_owners_are_isolated(hub, tmp_path):
    name = unique()
    ctx = folder(tmp_path, GOOD, **{"hello.txt": "x"})
    hub.register(name, "1.0", context=ctx)
    with pytest.raises(EnvExistsError, match=f"{name}@1.0 is already registered"):
        hub.register(name, "1.0", context=ctx)
    hub.register(name, "2.0", context=ctx)
    bob = hub.register(name, "1.0", context=ctx, owner="Bob Smith")
    assert bob.image.startswith("openale/env/bob-smith-") and bob.image.endswith(f"/{name}:1.0")

    assert [e.version for e in hub.list()] == ["1.0", "2.0"]
    assert [(e.owner, e.version) for e in hub.list(owner="Bob Smith")] == [("Bob Smith", "1.0")]
    with pytest.raises(EnvNotFoundError):
        hub.get(name, "2.0", owner="Bob Smith")
    with pytest.raises(EnvNotFoundError):
        hub.delete(name, "2.0", owner="eve")


def test_delete_is_refused_while_a_sandbox_uses_the_image(hub, engine, tmp_path):
    env = build_good(hub, tmp_path)
    context_dirs = list(hub.contexts.iterdir())
    with Sandbox.create(image=f"env:{env.ref}", memory="256m") as sb:
        with pytest.raises(EnvStateError, match=sb.id):
            hub.delete(env.name, env.version)
        assert hub.get(env.name, env.version).status == "ready"
    hub.delete(env.name, env.version)
    with pytest.raises(EnvNotFoundError):
        hub.get(env.name, env.version)
    with pytest.raises(docker.errors.ImageNotFound):
        engine.api.inspect_image(env.image)
    assert len(list(hub.contexts.iterdir())) == len(context_dirs) - 1


def test_forced_delete_untags_and_the_running_sandbox_keeps_working(hub, engine, tmp_path):
    env = build_good(hub, tmp_path)
    with Sandbox.create(image=f"env:{env.ref}", memory="256m") as sb:
        hub.delete(env.name, env.version, force=True)
        with pytest.raises(docker.errors.ImageNotFound):
            engine.api.inspect_image(env.image)
        assert sb.commands.run("cat /opt/hello.txt").stdout == "hi from env\n"


def test_register_an_existing_image(hub, engine):
    name = unique()
    env = hub.register(name, "1.0", image=BASE_IMAGE)
    assert env.status == "ready" and env.source == "image" and env.source_image == BASE_IMAGE
    base_id = engine.api.inspect_image(BASE_IMAGE)["Id"]
    assert engine.api.inspect_image(env.image)["Id"] == base_id
    lines: list[str] = []
    assert hub.build(name, "1.0", on_log=lines.append).built_at == env.built_at
    assert "up to date" in lines[0]
    hub.delete(name, "1.0")
    assert engine.api.inspect_image(BASE_IMAGE)["Id"] == base_id  # only our tag went
    with pytest.raises(InvalidEnvError, match="not on the engine"):
        hub.register(name, "1.0", image="example.invalid/nothing:1")
    with pytest.raises(EnvNotFoundError):
        hub.get(name, "1.0")


def test_an_image_env_keeps_its_copy_when_the_source_tag_goes(hub, engine):
    source = f"openale/envhub-test-source:{secrets.token_hex(3)}"
    engine.api.tag(BASE_IMAGE, *source.split(":"))
    env = hub.register(unique(), "1.0", image=source)
    engine.api.remove_image(source)
    lines: list[str] = []
    assert hub.build(env.name, env.version, on_log=lines.append).status == "ready"
    assert "keeps the last copy" in lines[0]
    with Sandbox.create(image=f"env:{env.ref}", memory="256m") as sb:
        assert sb.commands.run("echo ok").stdout == "ok\n"


def test_other_owners_env_images_are_refused_by_tag():
    check_image_access("openale/env/alice/web:1.0", "alice")
    check_image_access(BASE_IMAGE, "bob")
    check_image_access("openale/env/count-lines:aa3d579b6cdddc0c", "bob")  # task images
    with pytest.raises(EnvNotFoundError):
        check_image_access("openale/env/alice/web:1.0", "bob")
    with pytest.raises(EnvNotFoundError):  # an owner whose name folds to another's
        check_image_access("openale/env/alice/web:1.0", "Alice")


def test_bad_names_folders_and_archives_are_refused(hub, tmp_path):
    for ref in ("Upper@1", "a b@1", "name", "name@", "name@-x"):
        with pytest.raises(InvalidEnvError):
            parse_ref(ref)
    with pytest.raises(InvalidEnvError, match="has no Dockerfile"):
        hub.register(unique(), "1.0", context=tmp_path)
    with pytest.raises(InvalidEnvError, match="not both"):
        hub.register(unique(), "1.0", context=tmp_path, image=BASE_IMAGE)

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, data in (("Dockerfile", GOOD.encode()), ("../escape.txt", b"x")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(InvalidEnvError, match="outside the destination"):
        hub.register_archive(unique(), "1.0", buf.getvalue())
    with pytest.raises(InvalidEnvError, match="not a valid tar"):
        hub.register_archive(unique(), "1.0", b"not a tar")
    assert hub.list() == []


def ale(*args: str):
    return runner.invoke(app, ["envs", *args])


def test_cli_register_build_ls_show_rm(hub, tmp_path):
    name = unique()
    ctx = folder(tmp_path, GOOD, **{"hello.txt": f"cli {name}\n"})
    result = ale("register", name, "1.0", str(ctx))
    assert result.exit_code == 0, result.output
    assert "registered" in result.stdout

    result = ale("build", f"{name}@1.0")
    assert result.exit_code == 0, result.output
    assert "build-marker-42" in result.stderr and "ready" in result.stdout

    result = ale("ls", "--json")
    assert [(e["name"], e["status"]) for e in json.loads(result.stdout)] == [(name, "ready")]
    result = ale("show", name, "1.0", "--json")
    assert json.loads(result.stdout)["image"] == f"openale/env/local/{name}:1.0"

    result = ale("register", name, "1.0", str(ctx))
    assert result.exit_code == 1 and "already registered" in result.stderr
    result = ale("register", name, "2.0")
    assert result.exit_code == 2 and "PATH" in result.stderr

    result = ale("rm", f"{name}@1.0")
    assert result.exit_code == 0, result.output
    assert ale("show", f"{name}@1.0").exit_code == 1


def test_cli_failed_build_exits_nonzero_and_show_prints_the_log(hub, tmp_path):
    name = unique()
    ctx = folder(tmp_path, f"FROM {BASE_IMAGE}\nRUN echo cli-fail && false\n")
    result = ale("register", name, "1.0", str(ctx), "--build")
    assert result.exit_code == 1
    assert "cli-fail" in result.stderr and "non-zero code: 1" in result.stderr
    result = ale("show", f"{name}@1.0", "--log")
    assert result.exit_code == 0 and "failed" in result.stdout and "cli-fail" in result.stdout
    result = ale("register", unique(), "1.0", "--image", BASE_IMAGE)
    assert result.exit_code == 0 and "ready" in result.stdout
