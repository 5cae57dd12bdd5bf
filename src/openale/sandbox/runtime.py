"""``DockerRuntime``: the few engine operations a sandbox is made of.

Everything that talks to the Docker API lives here; ``Sandbox`` composes these
calls and never touches the SDK itself. Calls go through the low-level
``APIClient`` to keep round trips to the minimum (one HTTP call each).
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import tarfile
import time
from datetime import UTC, datetime
from typing import Any

import docker.errors
from docker.types import Mount

from openale.sandbox.engine import LABEL, docker_client
from openale.sandbox.errors import (
    EngineUnavailableError,
    ImageNotFoundError,
    InvalidSpecError,
    ResourceLimitError,
    SandboxError,
    SandboxFileError,
    SandboxNotFoundError,
    SandboxNotRunningError,
)
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import SandboxSpec
from openale.sandbox.streams import AttachedSocket, raw_socket

# Docker's default set minus NET_RAW (raw sockets: spoofing, scanning), MKNOD,
# AUDIT_WRITE, SETFCAP, SETPCAP and SYS_CHROOT. What is left is what package
# managers and ordinary services need when the sandbox user is root.
CAPABILITIES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "NET_BIND_SERVICE",
]
SNAPSHOT_REPOSITORY = "openale/snapshot"
CONTAINER_PREFIX = "openale-"
# PID 1 (under the engine's init) only has to stay alive; a deadline makes it
# exit on time even when no openale process is left to enforce it.
FOREVER_S = 2_147_483_647

# Kills every process that inherited ALE_EXEC=<token>, i.e. one command and
# all its descendants, using only sh and /proc. Everything is stopped first
# and killed at once, so no process runs on between two kills.
_KILL_BY_TOKEN = (
    "pids=; for p in /proc/[0-9]*; do "
    'grep -qsa "ALE_EXEC=$1" "$p/environ" 2>/dev/null && '
    '{ kill -STOP "${p#/proc/}" 2>/dev/null; pids="$pids ${p#/proc/}"; }; '
    'done; [ -z "$pids" ] || kill -KILL $pids 2>/dev/null; true'
)
_OOM_COUNTER = (
    "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null"
)


def _api_error(e: docker.errors.APIError, what: str) -> SandboxError:
    msg = e.explanation or str(e)
    if isinstance(e, docker.errors.NotFound):
        return SandboxNotFoundError(f"{what}: {msg}")
    if e.status_code == 409 and "not running" in str(msg):
        return SandboxNotRunningError(f"{what}: {msg}")
    return SandboxError(f"{what}: {msg}")


class DockerRuntime:
    """Engine operations for sandboxes, over one pooled Docker client."""

    def __init__(self, settings: SandboxSettings | None = None):
        self.settings = settings or SandboxSettings()
        self.client = docker_client(self.settings)
        self.api = self.client.api

    # -- containers -------------------------------------------------------------------

    @property
    def engine_cpus(self) -> int:
        return _engine_cpus(self.settings.docker_host, self.api)

    def resolve_image(self, image: str) -> str:
        """The local image to start: ``image`` itself, its alias target, or an EnvHub env's."""
        if image.startswith("env:"):
            # `env:name@version` of the embedded owner; imported here because
            # only EnvHub users should pay for SQLAlchemy.
            from openale.sandbox.envhub import resolve_env

            return resolve_env(image, settings=self.settings)
        try:
            self.api.inspect_image(image)
            return image
        except docker.errors.ImageNotFound:
            target = self.settings.image_aliases.get(image)
            if target:
                try:
                    self.api.inspect_image(target)
                    return target
                except docker.errors.ImageNotFound:
                    pass
        raise ImageNotFoundError(
            f"image {image!r} is not on the engine and no registry is used; "
            "run `ale images bootstrap` or build it first"
        )

    def create(self, sandbox_id: str, spec: SandboxSpec, labels: dict[str, str]) -> str:
        """Create and start the container; returns its engine id."""
        if spec.cpus > self.engine_cpus:
            raise InvalidSpecError(
                f"cpus={spec.cpus} exceeds the {self.engine_cpus} CPUs the engine has"
            )
        image = self.resolve_image(spec.image)
        mounts = []
        if spec.read_only_root:
            # Volumes rather than tmpfs: the engine's archive API (files.*) can
            # write into volumes but not into tmpfs mounts.
            mounts = [Mount(spec.workdir, None, type="volume"), Mount("/tmp", None, type="volume")]
        host_config = self.api.create_host_config(
            init=True,
            privileged=False,
            cap_drop=["ALL"],
            cap_add=CAPABILITIES,
            security_opt=["no-new-privileges"],
            mem_limit=spec.memory_bytes,
            memswap_limit=spec.memory_bytes,  # equal to the limit: no swap
            pids_limit=spec.pids,
            nano_cpus=int(spec.cpus * 1e9),
            network_mode=spec.network,
            read_only=spec.read_only_root,
            mounts=mounts,
            ipc_mode="private",
        )
        lifetime = int(spec.deadline_s) if spec.deadline_s else FOREVER_S
        try:
            container = self.api.create_container(
                image,
                # The image's own entrypoint is replaced: it might be a server
                # or exit at once, and the sandbox must simply stay up.
                entrypoint=["sleep"],
                command=[str(lifetime)],
                name=CONTAINER_PREFIX + sandbox_id,
                hostname=sandbox_id,
                user=spec.user or "",
                working_dir=spec.workdir,
                environment=spec.env,
                labels={LABEL: sandbox_id, **labels},
                host_config=host_config,
                network_disabled=spec.network == "none",
            )
        except docker.errors.ImageNotFound as e:
            raise ImageNotFoundError(f"image {image!r}: {e.explanation}") from None
        except docker.errors.APIError as e:
            if e.status_code == 400:
                raise InvalidSpecError(f"the engine refused the spec: {e.explanation}") from None
            raise _api_error(e, "create") from None
        try:
            self.api.start(container["Id"])
        except docker.errors.APIError as e:
            self.api.remove_container(container["Id"], force=True, v=True)
            raise SandboxError(f"the sandbox failed to start: {e.explanation}") from None
        return container["Id"]

    def inspect(self, sandbox_id: str) -> dict[str, Any]:
        try:
            return self.api.inspect_container(CONTAINER_PREFIX + sandbox_id)
        except docker.errors.NotFound:
            raise SandboxNotFoundError(f"no sandbox {sandbox_id!r} on this engine") from None

    def list(self, all_states: bool = True) -> list[dict[str, Any]]:
        """Summaries of every openale container (``GET /containers/json``)."""
        return self.api.containers(all=all_states, filters={"label": LABEL})

    def remove(self, container: str) -> bool:
        """Force-remove a container and its anonymous volumes; False if it was gone."""
        try:
            self.api.remove_container(container, force=True, v=True)
            return True
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as e:
            if e.status_code == 409:  # removal already in progress elsewhere
                return False
            raise _api_error(e, "remove") from None

    def restart(self, container: str) -> None:
        self.api.restart(container, timeout=0)

    def pids_current(self, container: str) -> int | None:
        try:
            stats = self.api.stats(container, stream=False, one_shot=True)
        except docker.errors.APIError:
            return None
        return (stats.get("pids_stats") or {}).get("current")

    # -- exec -------------------------------------------------------------------------

    def exec_start(
        self,
        container: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        tty: bool = False,
        stdin: bool = False,
    ) -> tuple[str, AttachedSocket]:
        """Start a process in the container; returns its exec id and attached socket."""
        try:
            exec_id = self.api.exec_create(
                container,
                argv,
                stdin=stdin,
                tty=tty,
                environment=env or None,
                workdir=workdir,
                user=user or "",
            )["Id"]
            stream = self._attach_exec(exec_id, tty)
        except docker.errors.APIError as e:
            if "resource temporarily unavailable" in str(e.explanation).lower():
                raise ResourceLimitError(
                    "no process can start in the sandbox: its pids limit is exhausted; "
                    "Sandbox.restart() kills every process and keeps the files"
                ) from None
            raise _api_error(e, "exec") from None
        except docker.errors.DockerException as e:
            raise EngineUnavailableError(f"exec: {e}") from None
        return exec_id, stream

    def _attach_exec(self, exec_id: str, tty: bool) -> AttachedSocket:
        """``POST /exec/{id}/start`` upgraded to a raw stream, losing no byte.

        The SDK's ``exec_start(socket=True)`` hands back the socket under the
        HTTP client's buffered reader, so bytes that arrived with the response
        headers are lost. Here they are taken out of the buffer first.
        """
        api = self.api
        res = api._post_json(
            api._url("/exec/{0}/start", exec_id),
            headers={"Connection": "Upgrade", "Upgrade": "tcp"},
            data={"Tty": tty, "Detach": False},
            stream=True,
        )
        api._raise_for_status(res)
        try:
            reader = res.raw._fp.fp  # the io.BufferedReader that parsed the headers
            sock = raw_socket(reader.raw)
        except AttributeError:  # another transport: trust the SDK's own socket
            return AttachedSocket(raw_socket(api._get_raw_response_socket(res)), b"", res)
        sock.setblocking(False)
        try:
            # Only what is buffered already: the raw read under a non-blocking
            # socket returns nothing instead of waiting.
            pending = reader.read1(1 << 20) if reader.peek(1) else b""
        except (BlockingIOError, TypeError):
            pending = b""
        finally:
            sock.setblocking(True)
        return AttachedSocket(sock, pending or b"", res)

    def exec_exit_code(self, exec_id: str, wait_s: float = 5.0) -> int | None:
        """The exit code once the engine has reaped the process (it lags the stream's end)."""
        deadline = time.monotonic() + wait_s
        delay = 0.001
        while True:
            info = self.api.exec_inspect(exec_id)
            if not info.get("Running"):
                return info.get("ExitCode")
            if time.monotonic() > deadline:
                return None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def exec_simple(self, container: str, argv: list[str], user: str = "root") -> tuple[int, bytes]:
        """Run a short helper process to completion; returns (exit code, stdout+stderr)."""
        try:
            result = self.api.exec_create(container, argv, user=user)
            out = self.api.exec_start(result["Id"])
            return self.api.exec_inspect(result["Id"]).get("ExitCode", -1), out
        except docker.errors.APIError as e:
            raise _api_error(e, "exec") from None

    def kill_by_token(self, container: str, token: str) -> bool:
        """SIGKILL every process carrying ``ALE_EXEC=token``; False if no helper could start."""
        try:
            code, _ = self.exec_simple(container, ["sh", "-c", _KILL_BY_TOKEN, "sh", token])
            return code == 0
        except SandboxError:
            return False

    def oom_kills(self, container: str) -> int | None:
        """How many processes the kernel's OOM killer has killed in this sandbox."""
        try:
            code, out = self.exec_simple(container, ["sh", "-c", _OOM_COUNTER])
        except SandboxError:
            return None
        for line in out.decode(errors="replace").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return None

    # -- files ------------------------------------------------------------------------

    def put_archive(self, container: str, directory: str, data) -> bool:
        """Extract a tar into ``directory``; False when the directory does not exist."""
        try:
            self.api.put_archive(container, directory, data)
            return True
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as e:
            raise SandboxFileError(f"cannot write into {directory!r}: {e.explanation}") from None

    def get_archive(self, container: str, path: str) -> tuple[io.RawIOBase, dict[str, Any]]:
        """A tar stream of ``path`` and its stat, without reading the stream."""
        try:
            return self.api.get_archive(container, path, chunk_size=1 << 20)
        except docker.errors.NotFound:
            raise SandboxFileError(f"no such file or directory in the sandbox: {path!r}") from None
        except docker.errors.APIError as e:
            raise SandboxFileError(f"cannot read {path!r}: {e.explanation}") from None

    def stat(self, container: str, path: str) -> dict[str, Any] | None:
        """The engine's stat of ``path`` (name, size, mode, mtime), or None if absent."""
        # HEAD returns only the stat header; GET would start streaming the tree.
        res = self.api.head(
            self.api._url("/containers/{0}/archive", container), params={"path": path}
        )
        if res.status_code == 404:
            if "No such container" in res.text:
                raise SandboxNotFoundError(f"no container {container}")
            return None
        if res.status_code >= 400:
            raise SandboxFileError(f"cannot stat {path!r}: HTTP {res.status_code}")
        header = res.headers.get("x-docker-container-path-stat")
        return json.loads(base64.b64decode(header)) if header else None

    # -- images -----------------------------------------------------------------------

    def commit(self, container: str, tag: str, labels: dict[str, str]) -> str:
        changes = [f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()]
        try:
            result = self.api.commit(
                container, repository=SNAPSHOT_REPOSITORY, tag=tag, changes=changes
            )
        except docker.errors.APIError as e:
            raise _api_error(e, "snapshot") from None
        return result["Id"]

    def remove_image(self, image: str) -> bool:
        try:
            self.api.remove_image(image, force=True)
            return True
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as e:
            raise _api_error(e, "remove image") from None

    def image_labels(self, image: str) -> dict[str, str]:
        try:
            return self.api.inspect_image(image)["Config"].get("Labels") or {}
        except docker.errors.ImageNotFound:
            raise ImageNotFoundError(f"no image {image!r}") from None


@functools.lru_cache(maxsize=8)
def _engine_cpus(docker_host: str | None, api) -> int:
    # One `info` call per engine and process: it costs 10-20 ms, every create needs it.
    return int(api.info().get("NCPU") or os.cpu_count() or 1)


def now() -> datetime:
    return datetime.now(UTC)


def tar_single(name: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.uid, info.gid = len(data), mode, uid, gid
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
