"""Base images built without a registry.

Where Docker Hub cannot be reached, ``bootstrap`` makes the images openale
needs from Debian packages alone:

- ``openale/debian:bookworm``: a ``debootstrap --variant=minbase`` root file
  system that trusts the extra CA certificates of the settings (by default the
  host's bundle, so HTTPS through a TLS-inspecting proxy works), brought in
  with ``docker import``;
- ``openale/toolbox:bookworm``: that base plus Python, git, tmux, a compiler
  and the small tools agents reach for, built from
  ``dockerfiles/toolbox/Dockerfile``;
- aliases: names task Dockerfiles start ``FROM`` (``ubuntu:24.04``,
  ``python:3.12-slim``, the Terminal-Bench bases) tagged onto those images, so
  ``docker build`` finds them locally instead of pulling.

Images are told apart by name, not by the ``openale.sandbox`` label: image
labels are copied into every container started from the image, and that label
marks the containers openale manages.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from importlib import resources
from io import BytesIO
from pathlib import Path
from typing import Literal

import docker
import docker.errors
from pydantic import BaseModel

from openale.sandbox.engine import docker_client
from openale.sandbox.errors import SandboxError
from openale.sandbox.settings import DEFAULT_IMAGE, SandboxSettings

SUITE = "bookworm"
BASE_IMAGE = f"openale/debian:{SUITE}"
TOOLBOX_IMAGE = DEFAULT_IMAGE
SNAPSHOT_REPOSITORY = "openale/snapshot"
DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# Set on base and toolbox (and inherited by images built on them); an alias
# only ever moves an existing name that carries it, never an upstream image.
IMAGE_LABEL = "openale.image"

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_BASE_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    # Tools that bring their own CA store (pip, requests, node) read these.
    f"ENV SSL_CERT_FILE={CA_BUNDLE}",
    f"ENV REQUESTS_CA_BUNDLE={CA_BUNDLE}",
    f"ENV PIP_CERT={CA_BUNDLE}",
    f"ENV NODE_EXTRA_CA_CERTS={CA_BUNDLE}",
    'CMD ["bash"]',
    f"LABEL {IMAGE_LABEL}=base",
]
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s+(.+?)\s+-----END CERTIFICATE-----", re.S)
_LOG_TAIL_LINES = 40

Progress = Callable[[str], None]
ImageKind = Literal["base", "toolbox", "alias", "snapshot", "env"]


class ImageBuildError(SandboxError):
    """An image could not be built, imported or tagged; the message holds the log's tail."""

    status_code = 500


class ImageInfo(BaseModel):
    """One tag of an openale image on the engine."""

    tag: str
    id: str
    size_bytes: int
    created: datetime
    kind: ImageKind
    alias_of: str | None = None


RECIPE_LABEL = "openale.recipe"

# --- public API ----------------------------------------------------------------


def bootstrap(
    settings: SandboxSettings | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> list[str]:
    """Build the base and toolbox images where missing (all of them with ``force``),
    then tag the aliases. Returns the tags now in place: base, toolbox, aliases.

    Safe to run from several processes at once: a lock in ``settings.home``
    makes the others wait and then find the images built.
    """
    settings = settings or SandboxSettings()
    say = progress or _quiet
    client = docker_client(settings)
    with _bootstrap_lock(settings):
        replaced = []
        for tag, build in ((BASE_IMAGE, build_debian_base), (TOOLBOX_IMAGE, build_toolbox)):
            old = _image_id(client, tag)
            if old and not force and not _recipe_changed(client, tag):
                say(f"{tag}: present ({_short(old)})")
                continue
            build(settings, progress=progress)
            if old and old != _image_id(client, tag):
                replaced.append(old)
        aliases = apply_aliases(settings, progress=progress)
        # Children before parents: the old toolbox was built on the old base.
        for image_id in reversed(replaced):
            _remove_superseded(client, image_id, say)
    return [BASE_IMAGE, TOOLBOX_IMAGE, *aliases]


def ensure_images(
    settings: SandboxSettings | None = None, progress: Progress | None = None
) -> list[str]:
    """Make sure the base and toolbox images and the aliases exist.

    Cheap when they do (a few engine calls, no build), so the sandbox layer
    can call it before starting from a default or aliased image.
    """
    return bootstrap(settings, force=False, progress=progress)


def build_debian_base(
    settings: SandboxSettings | None = None, *, progress: Progress | None = None
) -> str:
    """Build ``openale/debian:bookworm`` with debootstrap and ``docker import``; returns its id."""
    settings = settings or SandboxSettings()
    say = progress or _quiet
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise ImageBuildError("building the base image runs debootstrap and chroot: run as root")
    client = docker_client(settings)
    cache = settings.home / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=cache))
    rootfs = workdir / "rootfs"
    try:
        with _step(say, f"debootstrap {SUITE} (minbase) from {settings.debian_mirror}"):
            debootstrap = ["debootstrap", "--variant=minbase", "--include=ca-certificates"]
            _run([*debootstrap, SUITE, str(rootfs), settings.debian_mirror], what="debootstrap")
        with _step(say, "configure root file system (CA certificates, apt sources)"):
            added = add_ca_certificates(rootfs, _read_pem_files(settings.extra_ca_files))
            say(f"added {added} CA certificate(s) the Debian bundle lacks")
            _configure_rootfs(rootfs, settings.debian_mirror)
        with _step(say, f"docker import {BASE_IMAGE}"):
            tarball = workdir / "rootfs.tar"
            tar = ["tar", "--create", "--numeric-owner", "--xattrs", "--xattrs-include=*"]
            # The engine provides /dev, /proc and /sys in every container.
            tar += ["--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*"]
            tar += ["--file", str(tarball), "--directory", str(rootfs), "."]
            _run(tar, what="tar of the root file system")
            repository, tag = split_image_ref(BASE_IMAGE)
            try:
                reply = client.api.import_image(
                    src=str(tarball), repository=repository, tag=tag, changes=_BASE_CHANGES
                )
            except docker.errors.APIError as e:
                raise ImageBuildError(f"docker import of {BASE_IMAGE} failed: {e}") from None
            _raise_on_stream_error(reply, f"docker import of {BASE_IMAGE}")
    finally:
        _remove_workdir(workdir)
    image_id = _image_id(client, BASE_IMAGE)
    if image_id is None:
        raise ImageBuildError(f"docker import finished but {BASE_IMAGE} is not on the engine")
    return image_id


def build_toolbox(
    settings: SandboxSettings | None = None, *, progress: Progress | None = None
) -> str:
    """Build ``openale/toolbox:bookworm`` on the base image; returns its id."""
    settings = settings or SandboxSettings()
    say = progress or _quiet
    client = docker_client(settings)
    if _image_id(client, BASE_IMAGE) is None:
        raise ImageBuildError(f"{BASE_IMAGE} is missing: build it first (ale images bootstrap)")
    recipe = _toolbox_recipe()
    # The recipe's digest goes into the image, so a warm machine notices when
    # the Dockerfile changed and rebuilds without --force.
    recipe += f"\nLABEL {RECIPE_LABEL}={_digest(recipe)}\n"
    with _step(say, f"docker build {TOOLBOX_IMAGE}"):
        return docker_build(client, recipe, TOOLBOX_IMAGE, progress=say)


def _toolbox_recipe() -> str:
    path = resources.files("openale.sandbox").joinpath("dockerfiles/toolbox/Dockerfile")
    return path.read_text()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _recipe_changed(client: docker.DockerClient, tag: str) -> bool:
    """True when ``tag`` is the toolbox and was built from another Dockerfile."""
    if tag != TOOLBOX_IMAGE:
        return False
    image = _image(client, tag)
    built_from = (image.labels or {}).get(RECIPE_LABEL) if image else None
    return built_from != _digest(_toolbox_recipe())


def apply_aliases(
    settings: SandboxSettings | None = None, *, progress: Progress | None = None
) -> dict[str, str]:
    """Tag every ``settings.image_aliases`` name onto its target where the target exists.

    A name already held by an image that openale did not build (a real
    ``ubuntu:24.04`` pulled on a connected machine) is left alone. Returns the
    aliases that now point at their targets, tagged now or before.
    """
    settings = settings or SandboxSettings()
    say = progress or _quiet
    client = docker_client(settings)
    applied: dict[str, str] = {}
    for name, target in settings.image_aliases.items():
        target_id = _image_id(client, target)
        if target_id is None:
            say(f"alias {name}: target {target} is missing, skipped")
            continue
        current = _image(client, name)
        if current is not None and current.id != target_id:
            if IMAGE_LABEL not in (current.labels or {}):
                say(f"alias {name}: an image not built by openale holds that name, left alone")
                continue
        if current is None or current.id != target_id:
            repository, tag = split_image_ref(name)
            try:
                client.images.get(target_id).tag(repository, tag)
            except docker.errors.APIError as e:
                raise ImageBuildError(f"cannot tag {target} as {name}: {e}") from None
            say(f"alias {name} -> {target}")
        applied[name] = target
    return applied


def list_images(settings: SandboxSettings | None = None) -> list[ImageInfo]:
    """openale's images on the engine: base, toolbox, aliases, snapshots and environments."""
    settings = settings or SandboxSettings()
    client = docker_client(settings)
    summaries = client.api.images()
    # The engine lists `name:latest` for a name given without a tag.
    aliases = {_full_name(k): _full_name(v) for k, v in settings.image_aliases.items()}
    ids_by_tag = {t: s["Id"] for s in summaries for t in s.get("RepoTags") or []}
    infos = []
    for summary in summaries:
        for tag in summary.get("RepoTags") or []:
            kind, alias_of = _kind(tag, summary, aliases, ids_by_tag)
            if kind is None:
                continue
            infos.append(
                ImageInfo(
                    tag=tag,
                    id=summary["Id"],
                    size_bytes=summary.get("Size", 0),
                    created=datetime.fromtimestamp(summary.get("Created", 0), UTC),
                    kind=kind,
                    alias_of=alias_of,
                )
            )
    order = {"base": 0, "toolbox": 1, "alias": 2, "env": 3, "snapshot": 4}
    return sorted(infos, key=lambda i: (order[i.kind], i.tag))


# --- building blocks -----------------------------------------------------------


def split_image_ref(name: str) -> tuple[str, str]:
    """``repo[:tag]`` -> (repository, tag); the tag is after the last ':' past the last '/'.

    >>> split_image_ref("ghcr.io/laude-institute/t-bench/ubuntu-24-04:20250624")
    ('ghcr.io/laude-institute/t-bench/ubuntu-24-04', '20250624')
    >>> split_image_ref("localhost:5000/tools")
    ('localhost:5000/tools', 'latest')
    """
    if "@" in name:
        raise ImageBuildError(f"{name}: a digest reference cannot be tagged locally; use a tag")
    repository, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        return name, "latest"
    return repository, tag


def docker_build(
    client: docker.DockerClient,
    dockerfile: str,
    tag: str,
    *,
    progress: Progress | None = None,
    network_mode: str = "bridge",
) -> str:
    """Build a Dockerfile that needs no context from local images only; returns the image id.

    Step lines go to ``progress``; a failed build raises ``ImageBuildError``
    with the tail of the build log.
    """
    say = progress or _quiet
    log: list[str] = []
    image_id = None
    try:
        stream = client.api.build(
            fileobj=BytesIO(dockerfile.encode()),
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            network_mode=network_mode,
        )
        for chunk in stream:
            if "error" in chunk:
                log.append(chunk["error"])
                raise ImageBuildError(f"docker build {tag} failed:\n{_tail(log)}")
            text = chunk.get("stream", "")
            log.extend(text.splitlines())
            if text.startswith("Step "):
                say(_one_line(text))
            image_id = (chunk.get("aux") or {}).get("ID", image_id)
    except docker.errors.APIError as e:
        raise ImageBuildError(f"docker build {tag} failed: {e}\n{_tail(log)}") from None
    return image_id or _image_id(client, tag) or ""


def add_ca_certificates(rootfs: Path, pems: Iterable[bytes]) -> int:
    """Make the root file system trust the given PEM certificates; returns how many were new.

    Only certificates missing from the rootfs's own bundle are added, each as
    a file under ``/usr/local/share/ca-certificates/openale/``, then
    ``update-ca-certificates`` runs in a chroot.
    """
    bundle = rootfs / CA_BUNDLE.lstrip("/")
    known = set()
    if bundle.exists():
        known = {_der(pem) for pem in split_pem_certificates(bundle.read_bytes())}
    target = rootfs / "usr/local/share/ca-certificates/openale"
    added = 0
    for pem in pems:
        der = _der(pem)
        if der in known:
            continue
        known.add(der)
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{hashlib.sha256(der).hexdigest()[:16]}.crt").write_bytes(pem + b"\n")
        added += 1
    if added:
        _run(
            ["chroot", str(rootfs), "update-ca-certificates"],
            what="update-ca-certificates",
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"},
        )
    return added


def split_pem_certificates(data: bytes) -> list[bytes]:
    """The ``BEGIN CERTIFICATE`` blocks of a PEM bundle, each normalised to one block."""
    blocks = []
    for m in _PEM_CERT.finditer(data):
        body = base64.encodebytes(base64.b64decode(b"".join(m.group(1).split())))
        blocks.append(b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----")
    return blocks


# --- helpers -------------------------------------------------------------------


def _quiet(_: str) -> None:
    pass


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _full_name(name: str) -> str:
    return ":".join(split_image_ref(name))


def _image(client: docker.DockerClient, name: str):
    try:
        return client.images.get(name)
    except docker.errors.ImageNotFound:
        return None


def _image_id(client: docker.DockerClient, name: str) -> str | None:
    image = _image(client, name)
    return image.id if image is not None else None


def _kind(
    tag: str, summary: dict, aliases: dict[str, str], ids_by_tag: dict[str, str]
) -> tuple[ImageKind | None, str | None]:
    if tag == BASE_IMAGE:
        return "base", None
    if tag == TOOLBOX_IMAGE:
        return "toolbox", None
    repository, _ = split_image_ref(tag)
    if repository == SNAPSHOT_REPOSITORY:
        return "snapshot", None
    target = aliases.get(tag)
    if target is not None and ids_by_tag.get(target) == summary["Id"]:
        return "alias", target
    if repository.startswith("openale/"):
        return "env", None
    return None, None


def _der(pem: bytes) -> bytes:
    m = _PEM_CERT.search(pem)
    if m is None:
        raise ImageBuildError("not a PEM certificate")
    try:
        return base64.b64decode(b"".join(m.group(1).split()), validate=True)
    except binascii.Error:
        raise ImageBuildError("malformed PEM certificate (bad base64)") from None


def _read_pem_files(paths: Iterable[Path]) -> list[bytes]:
    pems = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ImageBuildError(f"cannot read CA file {path}: {e.strerror}") from None
        found = split_pem_certificates(data)
        if not found:
            raise ImageBuildError(f"{path} holds no PEM certificate")
        pems.extend(found)
    return pems


def _configure_rootfs(rootfs: Path, mirror: str) -> None:
    """apt sources on the configured mirror, no daemons started by package scripts, no caches."""
    apt = rootfs / "etc/apt"
    (apt / "sources.list").unlink(missing_ok=True)
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    (apt / "sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: {mirror}\nSuites: {SUITE} {SUITE}-updates\n"
        f"Components: main\nSigned-By: {keyring}\n\n"
        f"Types: deb\nURIs: {DEBIAN_SECURITY_MIRROR}\nSuites: {SUITE}-security\n"
        f"Components: main\nSigned-By: {keyring}\n"
    )
    # A postinst that starts its service would fail (or linger) inside `docker build`.
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    # The engine bind-mounts these per container; the host's copies must not leak in.
    for name in ("etc/resolv.conf", "etc/hostname"):
        (rootfs / name).unlink(missing_ok=True)
        (rootfs / name).touch()
    for pattern in (
        "var/lib/apt/lists/*",
        "var/cache/apt/*.bin",
        "var/cache/apt/archives/*.deb",
        "var/cache/apt/archives/partial/*",
        "var/log/bootstrap.log",
        "var/cache/debconf/*-old",
    ):
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _run(cmd: list[str], *, what: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=3600
    )
    if proc.returncode != 0:
        out = proc.stdout.decode(errors="replace").splitlines()
        raise ImageBuildError(f"{what} failed (exit {proc.returncode}):\n{_tail(out)}")


def _one_line(text: str, width: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def _tail(lines: list[str]) -> str:
    return "\n".join(line.rstrip() for line in lines[-_LOG_TAIL_LINES:])


def _raise_on_stream_error(reply: str, what: str) -> None:
    for line in reply.splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            message = json.loads(line)
            if isinstance(message, dict) and "error" in message:
                raise ImageBuildError(f"{what} failed: {message['error']}")


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def _remove_workdir(workdir: Path) -> None:
    # A debootstrap killed half-way can leave /proc or /sys mounted in the
    # target; deleting through a mount would delete the host's files.
    for point in _mounts_under(workdir):
        subprocess.run(["umount", "--lazy", point], check=False)
    if _mounts_under(workdir):
        raise ImageBuildError(f"{workdir} still has mounts under it; unmount and delete it by hand")
    shutil.rmtree(workdir)


def _remove_superseded(client: docker.DockerClient, image_id: str, say: Progress) -> None:
    image = _image(client, image_id)
    if image is None or image.tags:
        return
    try:
        client.images.remove(image_id, noprune=False)
        say(f"removed superseded image {_short(image_id)}")
    except docker.errors.APIError as e:
        say(f"kept superseded image {_short(image_id)}: {e.explanation or e}")


@contextlib.contextmanager
def _step(say: Progress, what: str) -> Iterator[None]:
    say(f"{what} ...")
    start = time.monotonic()
    yield
    say(f"{what}: done in {time.monotonic() - start:.1f}s")


@contextlib.contextmanager
def _bootstrap_lock(settings: SandboxSettings) -> Iterator[None]:
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / "images.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
