"""``ale serve-model``: the local policy behind an OpenAI-compatible API."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from openale.cli.common import console, user_errors


def serve_model_command(
    model: Annotated[
        str, typer.Option(help="smollm2, tiny-random, or a checkpoint folder.")
    ] = "smollm2",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="ALE_SERVE_TOKEN", help="Bearer token clients must send (generated if unset)."
        ),
    ] = None,
    record: Annotated[
        Path | None, typer.Option(help="Append every call (token ids, log-probs) to this JSONL.")
    ] = None,
    max_batch: Annotated[int, typer.Option(help="Requests decoded together at most.")] = 8,
) -> None:
    """Serve a local model at /v1/chat/completions, recording token ids and log-probs."""
    import uvicorn

    from openale.agent.models.local import LocalPolicy
    from openale.agent.serve import create_app

    with user_errors():
        if max_batch < 1:
            raise ValueError("--max-batch must be at least 1")
        if not token:
            token = secrets.token_urlsafe(24)
            console.print(f"token: {token}", highlight=False, soft_wrap=True)
        console.print(f"loading {model} ...", highlight=False, soft_wrap=True)
        policy = LocalPolicy.from_pretrained(model, max_batch=max_batch)
        app = create_app(policy, token=token, record=record)
    where = f"http://{host}:{port}/v1"
    note = f", recording to {record}" if record else ""
    console.print(f"serving {policy.name} at {where}{note}", highlight=False, soft_wrap=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level=os.environ.get("ALE_LOG_LEVEL", "warning"))
    finally:
        policy.close()


if __name__ == "__main__":  # pragma: no cover - `python -m openale.cli.serve_model`
    typer.run(serve_model_command)
