"""``create_app(settings)``: the control plane as a FastAPI application.

Routes follow ``notes/API.md``. Start-up reconciles the store with the engine
(adopt, fail, remove orphans) before the first request is served; a reaper
thread then enforces TTLs and deadlines.
"""

from __future__ import annotations

import importlib
import logging
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

import openale
from openale.server.audit import AuditMiddleware
from openale.server.backend import LocalBackend, SandboxBackend
from openale.server.errors import install_error_handlers
from openale.server.metrics import ServerMetrics
from openale.server.reconcile import Reaper, sync
from openale.server.routes import admin, files, sandboxes, streaming, ws
from openale.server.settings import ServerSettings
from openale.server.state import AppState
from openale.server.store import Store

log = logging.getLogger("openale.server")


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """Build the app: store, backend, metrics, routes, error handlers, audit, reaper."""
    settings = settings or ServerSettings()
    store = Store(settings.database_url)
    server_id = store.server_id()
    backend = make_backend(settings, server_id)
    state = AppState(
        settings=settings,
        store=store,
        backend=backend,
        metrics=ServerMetrics(store.count_by_state),
        server_id=server_id,
    )
    reaper = Reaper(state, settings.reap_interval_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        # Every running command holds a worker thread: the default 40 would cap concurrency.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.max_workers
        report = await anyio.to_thread.run_sync(lambda: sync(state, startup=True))
        log.info("reconciled with the engine: %s", report.model_dump(exclude_defaults=True))
        state.startup_report = report
        reaper.start()
        try:
            yield
        finally:
            reaper.stop()
            backend.close()

    app = FastAPI(
        title="openale control plane",
        version=getattr(openale, "__version__", "0"),
        description="Sandboxes over HTTP: see notes/API.md.",
        lifespan=lifespan,
    )
    app.state.ale = state
    install_error_handlers(app)
    app.add_middleware(AuditMiddleware, state_getter=lambda: state)
    for routes in (admin, sandboxes, streaming, files, ws):
        app.include_router(routes.router)
    _include_envhub(app)
    return app


def make_backend(settings: ServerSettings, server_id: str) -> SandboxBackend:
    """The configured backend: this host's engine, or the Docker nodes of a Ray cluster."""
    if settings.backend == "ray":
        from openale.server.backend_ray import RayBackend

        return RayBackend(
            settings.sandbox,
            server_id,
            address=settings.ray_address,
            placement_timeout_s=settings.ray_placement_timeout_s,
        )
    return LocalBackend(settings.sandbox, server_id)


def _include_envhub(app: FastAPI) -> None:
    try:
        module = importlib.import_module("openale.server.routes.envs")
    except ModuleNotFoundError as e:
        if e.name != "openale.server.routes.envs":
            raise
        return
    except ImportError as e:
        # The sandbox routes must not go down with the registry: serve without
        # /v1/envs and say why.
        log.warning("EnvHub routes are not served: %s", e)
        return
    app.include_router(module.router)
