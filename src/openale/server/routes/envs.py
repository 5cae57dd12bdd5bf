"""EnvHub over HTTP: register, build (log as server-sent events), list, get, delete.

Each owner sees only their own environments; another owner's ``name@version``
answers 404, as an unknown one does. The records live in the control plane's
database, through the ``EnvHub`` that ``AppState.env_hub()`` makes over the
store's engine. A sandbox starts from a built env with
``POST /v1/sandboxes {"env": "name@version"}``.
"""

from __future__ import annotations

import json
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from openale.sandbox.envhub import Env, EnvHub, EnvStateError, InvalidEnvError
from openale.server.audit import note
from openale.server.auth import Principal, principal
from openale.server.errors import ERROR_RESPONSES, Forbidden, PayloadTooLarge, exception_body
from openale.server.routes.sse import EventChannel, event_stream, sse
from openale.server.schemas import ADMIN_SCOPE
from openale.server.state import app_state

router = APIRouter(prefix="/v1", tags=["envhub"], responses=ERROR_RESPONSES)
Caller = Annotated[Principal, Depends(principal)]
SSE_LOG, SSE_DONE, SSE_ERROR = "log", "done", "error"


class RegisterEnvRequest(BaseModel):
    """``POST /v1/envs`` as JSON: an image already on the engine becomes ``name@version``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    image: str = Field(description="a local image (or alias) to register as this env")


def hub(request: Request) -> EnvHub:
    return app_state(request).env_hub()


_MULTIPART_BODY = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["name", "version", "context"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "context": {
                    "type": "string",
                    "format": "binary",
                    "description": "tar(.gz) of a folder with a Dockerfile at its top",
                },
            },
        }
    },
    "application/json": {"schema": RegisterEnvRequest.model_json_schema()},
}


@router.post(
    "/envs",
    status_code=201,
    response_model=Env,
    openapi_extra={"requestBody": {"required": True, "content": _MULTIPART_BODY}},
)
async def register_env(request: Request, who: Caller) -> Env:
    """Register a Dockerfile folder (multipart: ``name``, ``version``, ``context`` = tar.gz)
    or an existing image (JSON ``{"name", "version", "image"}``). 409 if it exists."""
    envhub = hub(request)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        name, version, archive = await _read_multipart(request)
        env = await run_in_threadpool(
            envhub.register_archive, name, version, archive, owner=who.owner
        )
    else:
        body = await _read_json(request)
        env = await run_in_threadpool(
            lambda: envhub.register(body.name, body.version, image=body.image, owner=who.owner)
        )
    note(request, op="env.register", detail={"env": env.ref})
    return env


@router.post(
    "/envs/{name}/{version}/build",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def build_env(
    name: str,
    version: str,
    request: Request,
    who: Caller,
    force: Annotated[bool, Query(description="rebuild without the layer cache")] = False,
) -> StreamingResponse:
    """Build the env. Events: ``log`` {line} per build log line, then ``done`` with the Env
    (``error`` with the error body if the build fails). A no-op when nothing changed."""
    envhub = hub(request)
    # Unknown envs and running builds answer with a status code, before the stream starts.
    env = await run_in_threadpool(lambda: envhub.get(name, version, owner=who.owner))
    if env.status == "building":
        raise EnvStateError(f"{env.ref} is already building")
    # Should the server shut down mid-build, the channel drops the events; the record ends right.
    channel = EventChannel()

    def run() -> None:
        try:
            built = envhub.build(
                name,
                version,
                owner=who.owner,
                force=force,
                on_log=lambda line: channel.emit(SSE_LOG, {"line": line}),
            )
            channel.emit(SSE_DONE, built.model_dump(mode="json"))
        except Exception as e:  # reported to the client as an error event
            channel.emit(SSE_ERROR, exception_body(e)[1])

    # A build outlives a client that goes away: the env must not stay `building`.
    threading.Thread(target=run, name=f"ale-envhub-build-{name}", daemon=True).start()
    note(request, op="env.build", detail={"env": env.ref, "force": force})

    async def events():
        while True:
            event, data = await channel.get()
            yield sse(event, data)
            if event != SSE_LOG:
                return

    return event_stream(events())


@router.get("/envs", response_model=list[Env])
def list_envs(
    request: Request,
    who: Caller,
    all: Annotated[bool, Query(description="everyone's environments (admin scope)")] = False,
) -> list[Env]:
    if all and not who.admin:
        raise Forbidden(f"?all=true needs a token with the {ADMIN_SCOPE!r} scope")
    return hub(request).list(owner=None if all else who.owner)


@router.get("/envs/{name}/{version}", response_model=Env)
def get_env(name: str, version: str, request: Request, who: Caller) -> Env:
    return hub(request).get(name, version, owner=who.owner)


@router.get("/envs/{name}/{version}/log", response_class=PlainTextResponse)
def get_env_log(name: str, version: str, request: Request, who: Caller) -> str:
    """The last build's log (its last lines), as plain text."""
    return hub(request).build_log(name, version, owner=who.owner)


@router.delete("/envs/{name}/{version}", status_code=204)
def delete_env(
    name: str,
    version: str,
    request: Request,
    who: Caller,
    force: Annotated[bool, Query(description="delete even while sandboxes use it")] = False,
) -> Response:
    """Delete the record and the image tag; 409 while a build runs or a sandbox uses it."""
    hub(request).delete(name, version, owner=who.owner, force=force)
    note(request, op="env.delete", detail={"env": f"{name}@{version}", "force": force})
    return Response(status_code=204)


async def _read_json(request: Request) -> RegisterEnvRequest:
    try:
        return RegisterEnvRequest.model_validate(json.loads(await request.body()))
    except json.JSONDecodeError as e:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"malformed JSON: {e}", "type": "json_invalid"}]
        ) from None
    except ValidationError as e:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in e.errors()]
        raise RequestValidationError(errors) from None


async def _read_multipart(request: Request) -> tuple[str, str, bytes]:
    cap = app_state(request).settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        # Refused before the body is read, not after it was spooled to disk.
        raise PayloadTooLarge(f"the upload is {declared} bytes, over the {cap} cap")
    form = await request.form(max_files=1, max_fields=8)
    try:
        name, version, context = form.get("name"), form.get("version"), form.get("context")
        if not isinstance(name, str) or not isinstance(version, str):
            raise InvalidEnvError("multipart registration needs 'name' and 'version' fields")
        if not isinstance(context, UploadFile):
            raise InvalidEnvError("multipart registration needs a 'context' file (tar.gz)")
        if context.size is not None and context.size > cap:
            raise PayloadTooLarge(f"the context is {context.size} bytes, over the {cap} cap")
        return name, version, await context.read()
    finally:
        await form.close()
