"""``recsmith keys``: API keys for the HTTP API (stored hashed; the secret is shown once)."""

from __future__ import annotations

from typing import Annotated

import typer

from recsmith.cli._common import errors_as_exit, print_json, state, stderr, stdout
from recsmith.store.open import open_store

app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A label for the key (who uses it).")] = "default",
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: ingest, read, admin.")
    ] = "read,ingest",
    store: Annotated[str | None, typer.Option(help="Store URL (default: config).")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print key id and secret as JSON.")
    ] = False,
) -> None:
    """Create a key and print its secret (only once: only its hash is stored)."""
    from recsmith.serving.auth import create_api_key

    cli = state(ctx)
    with errors_as_exit():
        db = open_store(store or cli.settings.store.url)
        try:
            key, secret = create_api_key(
                db, name, [s.strip() for s in scopes.split(",") if s.strip()]
            )
        finally:
            db.close()
    if json_out:
        print_json(
            {"key_id": key.key_id, "name": key.name, "scopes": list(key.scopes), "secret": secret}
        )
        return
    stdout.print(secret)
    if not cli.quiet:
        stderr.print(
            f"key {key.key_id} ({', '.join(key.scopes)}) created; store the secret now, "
            "it cannot be shown again"
        )
