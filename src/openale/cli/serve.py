"""``ale serve``: the sandbox control plane, and ``ale serve token ...`` to manage its tokens.

Token commands work on the store directly (no server needed), so the first
admin token can be made before the server ever starts.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from openale.cli.common import console, print_error, user_errors

serve_app = typer.Typer(
    help="Run the sandbox control plane (REST API) and manage its tokens.",
    invoke_without_command=True,
)
token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
serve_app.add_typer(token_app, name="token")

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default sqlite:///$ALE_HOME/server.db)."),
]


def _settings(db: str | None = None, **fields):
    from openale.server.settings import ServerSettings

    values = {k: v for k, v in fields.items() if v is not None}
    if db:
        values["database_url"] = db
    return ServerSettings(**values)


def _store(db: str | None):
    from openale.server.store import Store

    return Store(_settings(db).database_url)


@serve_app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8765).")] = None,
    db: DbOption = None,
    max_upload_bytes: Annotated[
        int | None, typer.Option(help="Largest upload accepted (413 above).")
    ] = None,
    reap_interval: Annotated[
        float | None, typer.Option(help="Seconds between reaper passes; 0 = off.")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="Where sandboxes run: 'local' (this engine) or 'ray' (Docker nodes)."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster address for --backend ray (default: a local instance)."),
    ] = None,
) -> None:
    """Serve the control plane (run `ale serve token create --owner me --admin` first)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"db": db}
        return
    import uvicorn

    from openale.server.app import create_app

    with user_errors():
        settings = _settings(
            db,
            host=host,
            port=port,
            max_upload_bytes=max_upload_bytes,
            reap_interval_s=reap_interval,
            backend=backend,
            ray_address=ray_address,
        )
        app = create_app(settings)
    console.print(
        f"serving the openale control plane at http://{settings.host}:{settings.port}/v1 "
        f"(state: {settings.database_url}; sandboxes: {settings.backend})",
        highlight=False,
        soft_wrap=True,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=os.environ.get("ALE_LOG_LEVEL", "warning"),
        timeout_graceful_shutdown=5,
    )


def _db(ctx: typer.Context, db: str | None) -> str | None:
    return db or (ctx.obj or {}).get("db")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    owner: Annotated[str, typer.Option(help="Who the token acts for (sandboxes are per owner).")],
    admin: Annotated[bool, typer.Option("--admin", help="Grant the admin scope.")] = False,
    db: DbOption = None,
) -> None:
    """Create a token and print its secret (shown only this once)."""
    with user_errors():
        created = _store(_db(ctx, db)).create_token(owner, ["admin"] if admin else [])
    console.print(f"id:     {created.id}", highlight=False)
    console.print(f"owner:  {created.owner}", highlight=False)
    console.print(f"scopes: {' '.join(created.scopes) or '-'}", highlight=False)
    # The secret goes to stdout alone on the last line, so scripts can take it with `tail -1`.
    print(created.token)


@token_app.command("ls")
def token_ls(ctx: typer.Context, db: DbOption = None) -> None:
    """List tokens (never their secrets)."""
    with user_errors():
        tokens = _store(_db(ctx, db)).list_tokens()
    table = Table("id", "owner", "scopes", "created", "revoked")
    for t in tokens:
        table.add_row(
            t.id,
            t.owner,
            " ".join(t.scopes) or "-",
            t.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            "yes" if t.revoked else "",
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="Token id (from `ale serve token ls`).")],
    db: DbOption = None,
) -> None:
    """Revoke a token: the next request that uses it gets 401."""
    with user_errors():
        revoked = _store(_db(ctx, db)).revoke_token(token_id)
    if not revoked:
        print_error(f"no token {token_id!r}")
        raise typer.Exit(1)
    console.print(f"revoked {token_id}", highlight=False)


if __name__ == "__main__":  # pragma: no cover - `python -m openale.cli.serve`
    serve_app()
