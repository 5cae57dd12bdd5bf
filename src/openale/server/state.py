"""What every route reaches through ``request.app.state.ale``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request, WebSocket

if TYPE_CHECKING:
    from openale.server.backend import SandboxBackend
    from openale.server.metrics import ServerMetrics
    from openale.server.routes.streaming import StreamedCommand
    from openale.server.settings import ServerSettings
    from openale.server.store import Store


@dataclass
class AppState:
    settings: ServerSettings
    store: Store
    backend: SandboxBackend
    metrics: ServerMetrics
    server_id: str
    # Streaming commands that can be interrupted, by command id.
    commands: dict[str, StreamedCommand] = field(default_factory=dict)
    commands_lock: threading.Lock = field(default_factory=threading.Lock)
    envhub: Any = None  # an ``openale.sandbox.envhub.EnvHub`` over the store, made on first use
    token_cache: Any = None  # an ``openale.server.auth.TokenCache``, made on first use

    def env_hub(self):
        if self.envhub is None:
            from openale.sandbox.envhub import EnvHub

            self.envhub = EnvHub(engine=self.store.engine, settings=self.settings.sandbox)
        return self.envhub


def app_state(request: Request | WebSocket) -> AppState:
    return request.app.state.ale
