"""The base image, ``openale/debian:bookworm``, made from Debian packages alone.

A ``debootstrap --variant=minbase`` root file system that trusts the extra CA
certificates of the settings (by default the host's bundle, so HTTPS through a
TLS-inspecting proxy works), brought in with ``docker import``: no registry
is needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import docker.errors

from openale.sandbox.engine import docker_client
from openale.sandbox.images.certs import CA_BUNDLE, der, read_pem_files, split_pem_certificates
from openale.sandbox.images.names import (
    BASE_IMAGE,
    IMAGE_LABEL,
    SUITE,
    ImageBuildError,
    find_image_id,
    split_image_ref,
)
from openale.sandbox.images.progress import Progress, quiet, step
from openale.sandbox.settings import SandboxSettings

DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
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


def build_debian_base(
    settings: SandboxSettings | None = None, *, progress: Progress | None = None
) -> str:
    """Build ``openale/debian:bookworm`` with debootstrap and ``docker import``; returns its id."""
    settings = settings or SandboxSettings()
    say = progress or quiet
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
        with step(say, f"debootstrap {SUITE} (minbase) from {settings.debian_mirror}"):
            debootstrap = ["debootstrap", "--variant=minbase", "--include=ca-certificates"]
            run_tool([*debootstrap, SUITE, str(rootfs), settings.debian_mirror], what="debootstrap")
        with step(say, "configure root file system (CA certificates, apt sources)"):
            added = add_ca_certificates(rootfs, read_pem_files(settings.extra_ca_files))
            say(f"added {added} CA certificate(s) the Debian bundle lacks")
            _configure_rootfs(rootfs, settings.debian_mirror)
        with step(say, f"docker import {BASE_IMAGE}"):
            tarball = workdir / "rootfs.tar"
            tar = ["tar", "--create", "--numeric-owner", "--xattrs", "--xattrs-include=*"]
            # The engine provides /dev, /proc and /sys in every container.
            tar += ["--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*"]
            tar += ["--file", str(tarball), "--directory", str(rootfs), "."]
            run_tool(tar, what="tar of the root file system")
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
    image_id = find_image_id(client, BASE_IMAGE)
    if image_id is None:
        raise ImageBuildError(f"docker import finished but {BASE_IMAGE} is not on the engine")
    return image_id


def add_ca_certificates(rootfs: Path, pems: Iterable[bytes]) -> int:
    """Make the root file system trust the given PEM certificates; returns how many were new.

    Only certificates missing from the rootfs's own bundle are added, each as
    a file under ``/usr/local/share/ca-certificates/openale/``, then
    ``update-ca-certificates`` runs in a chroot.
    """
    bundle = rootfs / CA_BUNDLE.lstrip("/")
    known = set()
    if bundle.exists():
        known = {der(pem) for pem in split_pem_certificates(bundle.read_bytes())}
    target = rootfs / "usr/local/share/ca-certificates/openale"
    added = 0
    for pem in pems:
        cert = der(pem)
        if cert in known:
            continue
        known.add(cert)
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{hashlib.sha256(cert).hexdigest()[:16]}.crt").write_bytes(pem + b"\n")
        added += 1
    if added:
        run_tool(
            ["chroot", str(rootfs), "update-ca-certificates"],
            what="update-ca-certificates",
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"},
        )
    return added


def run_tool(cmd: list[str], *, what: str, env: dict[str, str] | None = None) -> None:
    """Run a host tool (debootstrap, tar, chroot); a failure raises with its output."""
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=3600
    )
    if proc.returncode != 0:
        out = proc.stdout.decode(errors="replace")
        raise ImageBuildError(f"{what} failed (exit {proc.returncode}):", out)


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
