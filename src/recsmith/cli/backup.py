"""``recsmith backup`` / ``restore``: the embedded SQLite store to one file and back.

Both run against a live store (see ``recsmith.store.backup``); a PostgreSQL store is pointed to
pg_dump / pg_restore, which already do this job well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recsmith.cli._common import StoreOption, errors_as_exit, print_json, state, stderr
from recsmith.config import Settings
from recsmith.errors import ValidationError
from recsmith.store.backup import BackupSummary, backup, restore, sqlite_path
from recsmith.store.url_scheme import sqlite_file

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def backup_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Backup file to write (replaced if it exists).")],
    store: StoreOption = None,
    json_out: JsonOpt = False,
) -> None:
    """Copy the SQLite store to one file, consistent while a server writes to it."""
    cli = state(ctx)
    with errors_as_exit():
        path, field = _sqlite_file(store, cli.settings)
        summary = backup(path, out, field=field)
    _report("backed up to", summary, json_out, cli.quiet)


def restore_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A file written by `recsmith backup`.")],
    store: StoreOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a store that is not empty.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Replace the SQLite store's contents with a backup (stop servers using it first)."""
    cli = state(ctx)
    with errors_as_exit():
        path, field = _sqlite_file(store, cli.settings)
        if sqlite_file(store or cli.settings.store.url)[1]:
            raise ValidationError(field, f"{path} is named read-only (?mode=ro): nothing restored")
        summary = restore(file, path, force=force, field=field)
    _report("restored into", summary, json_out, cli.quiet)


def _sqlite_file(store: str | None, settings: Settings) -> tuple[Path, str]:
    """The SQLite file of ``--store``, else of the config's ``store.url``, and which of the two
    gave it: its errors (a PostgreSQL URL, no store there) name that one."""
    url, field = (store, "--store") if store else (settings.store.url, "store.url")
    return sqlite_path(url, field), field


def _report(what: str, summary: BackupSummary, json_out: bool, quiet: bool) -> None:
    if json_out:
        print_json({"path": str(summary.path), "rows": summary.rows, "bytes": summary.bytes})
    elif not quiet:
        rows = ", ".join(f"{n:,} {table}" for table, n in summary.rows.items())
        stderr.print(f"{what} {summary.path}: {rows} ({summary.bytes:,} bytes)")
