"""``recsmith import``: load a data set (events and catalog) into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recsmith.cli._common import errors_as_exit, print_json, state, stderr
from recsmith.config import Settings
from recsmith.events.importers.base import FORMATS, ImportResult, import_source, read_source
from recsmith.store.open import open_store

#: Rejections printed per kind (events, items); all of them are in the dead-letter table.
SHOWN_REJECTIONS = 5


def run_import(
    fmt: str, path: Path, store_url: str, *, settings: Settings, progress: bool
) -> ImportResult:
    """Import ``path`` into the store at ``store_url`` with an optional progress bar."""
    source = read_source(fmt, path)
    store = open_store(store_url, settings.store)
    try:
        if not progress:
            return import_source(store, source, settings.events)
        columns = (
            TextColumn("[bold]importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=stderr, transient=True) as bar:
            task = bar.add_task("events", total=source.total_events)
            return import_source(
                store, source, settings.events, on_progress=lambda n: bar.advance(task, n)
            )
    finally:
        store.close()


def import_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="File or directory to import (.gz read as is).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")
    ] = "events",
    store: Annotated[str | None, typer.Option(help="Store URL (default: from config).")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="End with one JSON line of counts.")
    ] = False,
) -> None:
    """Validate and store events (and items); bad records go to the dead-letter table."""
    cli = state(ctx)
    with errors_as_exit():
        result = run_import(
            format,
            path,
            store or cli.settings.store.url,
            settings=cli.settings,
            progress=cli.show_progress and not json_out,
        )
    counts = result.as_counts()
    if not cli.quiet:
        stderr.print(
            f"events: {counts['accepted']:,} accepted, {counts['duplicates']:,} duplicates, "
            f"{counts['rejected']:,} rejected; items: {counts['items_accepted']:,} stored, "
            f"{counts['items_rejected']:,} rejected"
        )
        for kind, rejected, total in (
            ("event", result.rejected, counts["rejected"]),
            ("item", result.items.rejected, counts["items_rejected"]),
        ):
            # records are numbered from 1 in file order, a CSV header not counted
            for rej in rejected[:SHOWN_REJECTIONS]:
                stderr.print(f"  {kind} record {rej.index + 1}: {rej.reason}", highlight=False)
            if total > SHOWN_REJECTIONS:
                stderr.print(f"  … every rejected {kind} record is in the store's dead letters")
    if json_out:
        print_json(counts)
