"""``recsmith backup`` / ``restore``: the embedded SQLite store to one file and back.

Both run against a live store (see ``recsmith.store.backup``); a PostgreSQL store is pointed to
pg_dump / pg_restore, which already do this job well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recsmith.cli._common import errors_as_exit, print_json, state, stderr
from recsmith.store.backup import BackupSummary, backup, restore, sqlite_path

StoreOpt = Annotated[str | None, typer.Option(help="Store URL (default: config).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def backup_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Backup file to write (replaced if it exists).")],
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Copy the SQLite store to one file, consistent while a server writes to it."""
    cli = state(ctx)
    with errors_as_exit():
        summary = backup(sqlite_path(store or cli.settings.store.url, "--store"), out)
    _report("backed up to", summary, json_out, cli.quiet)


def restore_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A file written by `recsmith backup`.")],
    store: StoreOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a store that is not empty.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Replace the SQLite store's contents with a backup (stop servers using it first)."""
    cli = state(ctx)
    with errors_as_exit():
        summary = restore(
            file, sqlite_path(store or cli.settings.store.url, "--store"), force=force
        )
    _report("restored into", summary, json_out, cli.quiet)


def _report(what: str, summary: BackupSummary, json_out: bool, quiet: bool) -> None:
    if json_out:
        print_json({"path": str(summary.path), "rows": summary.rows, "bytes": summary.bytes})
    elif not quiet:
        rows = ", ".join(f"{n:,} {table}" for table, n in summary.rows.items())
        stderr.print(f"{what} {summary.path}: {rows} ({summary.bytes:,} bytes)")
