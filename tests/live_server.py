"""A real control plane for tests: ``create_app`` served by uvicorn in this process."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``create_app`` served by uvicorn in a thread; stop and start it again at will."""

    def __init__(self, home: Path, port: int | None = None):
        from openale.server.settings import ServerSettings

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = ServerSettings(
            port=self.port, database_url=f"sqlite:///{home / 'server.db'}", reap_interval_s=0
        )
        self._server = None
        self._thread: threading.Thread | None = None

    def token(self, owner: str = "alice") -> str:
        from openale.server.store import Store

        return Store(self.settings.database_url).create_token(owner).token

    def start(self) -> LiveServer:
        import uvicorn

        from openale.server.app import create_app

        config = uvicorn.Config(
            create_app(self.settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()
