"""``recsmith keys create | list | revoke``: API keys for the HTTP API (stored hashed; the secret
is shown once). Creating and revoking are written to the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from recsmith.cli._common import (
    StoreOption,
    errors_as_exit,
    print_json,
    resolve_store_url,
    state,
    stderr,
    stdout,
)
from recsmith.store.open import open_store

app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A label for the key (who uses it).")] = "default",
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: ingest, read, admin.")
    ] = "read,ingest",
    expires: Annotated[
        str | None,
        typer.Option(
            help="When it stops working: 90d, 12h, 2w from now, or an ISO 8601 date-time "
            "(default: never)."
        ),
    ] = None,
    store: StoreOption = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print key id and secret as JSON.")
    ] = False,
) -> None:
    """Create a key and print its secret (only once: only its hash is stored)."""
    from recsmith.governance.keys import create_api_key, expiry

    cli = state(ctx)
    with errors_as_exit():
        expires_at = None if expires is None else expiry(expires, datetime.now(UTC))
        db = open_store(resolve_store_url(store, cli.settings))
        try:
            key, secret = create_api_key(
                db,
                name,
                [s.strip() for s in scopes.split(",") if s.strip()],
                expires_at=expires_at,
            )
        finally:
            db.close()
    until = None if key.expires_at is None else key.expires_at.isoformat()
    if json_out:
        print_json(
            {
                "key_id": key.key_id,
                "name": key.name,
                "scopes": list(key.scopes),
                "expires_at": until,
                "secret": secret,
            }
        )
        return
    stdout.print(secret)
    if not cli.quiet:
        stderr.print(
            f"key {key.key_id} ({', '.join(key.scopes)}) created"
            f"{'' if until is None else f', expires {until}'}; store the secret now, "
            "it cannot be shown again"
        )


@app.command("list")
def list_keys(
    ctx: typer.Context,
    store: StoreOption = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per key, one per line.")
    ] = False,
) -> None:
    """List keys (id, name, scopes, created, expires, state): never a secret or a hash."""
    from recsmith.governance.keys import key_json

    cli = state(ctx)
    with errors_as_exit():
        db = open_store(resolve_store_url(store, cli.settings))
        try:
            keys = db.api_keys()
        finally:
            db.close()
    now = datetime.now(UTC)
    shown = [key_json(k, now) for k in keys]
    if json_out:
        for row in shown:
            print_json(row)
        return
    table = Table(title=f"API keys ({len(shown)})")
    for column in ("key_id", "name", "scopes", "created_at", "expires_at", "state"):
        table.add_column(column)
    for row in shown:
        table.add_row(
            row["key_id"],
            row["name"],
            ",".join(row["scopes"]),
            row["created_at"][:19],
            (row["expires_at"] or "never")[:19],
            row["state"],
        )
    stdout.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[
        str, typer.Argument(help="The key's id (keys list; rsk_<id>_… in a secret).")
    ],
    store: StoreOption = None,
) -> None:
    """Revoke a key: every server over this store refuses it within a second."""
    from recsmith.governance.keys import revoke_api_key

    cli = state(ctx)
    with errors_as_exit():
        db = open_store(resolve_store_url(store, cli.settings))
        try:
            key = revoke_api_key(db, key_id)
        finally:
            db.close()
    if not cli.quiet:
        when = key.revoked_at.isoformat() if key.revoked_at is not None else "before"
        stderr.print(f"key {key.key_id} ({key.name}) revoked at {when}")
