"""``recsmith import``: load a data set (events and catalog) into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recsmith.cli._common import (
    StoreOption,
    errors_as_exit,
    fail,
    print_json,
    resolve_store_url,
    state,
    stderr,
)
from recsmith.cli.reject_limit import OPTION as MAX_REJECTED
from recsmith.cli.reject_limit import RejectLimit
from recsmith.config import Settings
from recsmith.decisions.attribution import Attributor
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
    attributor = Attributor(store, settings.decisions) if settings.decisions.enabled else None
    try:
        if not progress:
            return import_source(store, source, settings.events, attributor=attributor)
        columns = (
            TextColumn("[bold]importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=stderr, transient=True) as bar:
            task = bar.add_task("events", total=source.total_events)
            return import_source(
                store,
                source,
                settings.events,
                on_progress=lambda n: bar.advance(task, n),
                attributor=attributor,
            )
    finally:
        store.close()


def import_command(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            help="File to import (CSV, TSV, JSONL or Parquet; CSV, TSV or JSONL may be .gz), "
            "or a data set's directory (--format movielens, lastfm-hetrec, retailrocket, "
            "diginetica)."
        ),
    ],
    format: Annotated[
        str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")
    ] = "events",
    store: StoreOption = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="End with one JSON line of counts.")
    ] = False,
    max_rejected: Annotated[
        str | None,
        typer.Option(
            MAX_REJECTED,
            metavar="N|P%",
            help="Exit 3 when more than N records (or P% of those read) are rejected; the "
            "accepted ones stay stored. Default: no limit.",
        ),
    ] = None,
) -> None:
    """Validate and store events, items or user profiles; bad ones go to the dead-letter table."""
    cli = state(ctx)
    with errors_as_exit():
        limit = RejectLimit.parse(max_rejected) if max_rejected is not None else None
        store_url = resolve_store_url(store, cli.settings)
        result = run_import(
            format,
            path,
            store_url,
            settings=cli.settings,
            progress=cli.show_progress and not json_out,
        )
    counts = result.as_counts()
    rejected_total = counts["rejected"] + counts["items_rejected"] + result.users_rejected_count
    read = (  # records read: stored, already stored, or refused
        counts["accepted"]
        + counts["duplicates"]
        + counts["rejected"]
        + counts["items_accepted"]
        + result.items.duplicates
        + counts["items_rejected"]
        + result.users.accepted
        + result.users_rejected_count
    )
    if not cli.quiet:
        stderr.print(
            f"events: {counts['accepted']:,} accepted, {counts['duplicates']:,} duplicates, "
            f"{counts['rejected']:,} rejected; items: {counts['items_accepted']:,} stored, "
            f"{counts['items_rejected']:,} rejected"
            + (
                f"; users: {counts['users_accepted']:,} stored, {counts['users_rejected']:,} "
                "rejected"
                if "users_accepted" in counts
                else ""
            )
        )
        shown = (("event", result.rejected), ("item", result.items.rejected))
        for kind, rejected in (*shown, ("user", result.users.rejected)):
            # records are numbered from 1 in file order, a CSV header not counted
            for rej in rejected[:SHOWN_REJECTIONS]:
                stderr.print(f"  {kind} record {rej.index + 1}: {rej.reason}", highlight=False)
        if rejected_total:
            # imported here: ``evaluation.report`` brings scipy.stats, ~1 s of CPU at every start
            from recsmith.evaluation.report import redact

            stderr.print(
                f"rejected {rejected_total:,} of {read:,} records; each is kept with its reasons "
                f"in the dead_letters table of {redact(store_url)}: SELECT source, record_index, "
                f"errors FROM dead_letters ORDER BY id DESC LIMIT {rejected_total} "
                "(record_index counts from 0)",
                highlight=False,
                soft_wrap=True,
            )
    if json_out:
        print_json(counts)
    if limit is not None and limit.exceeded(rejected_total, read):
        raise fail(
            f"{MAX_REJECTED}: {rejected_total:,} of {read:,} records rejected "
            f"({100 * rejected_total / read:.1f}%), more than {limit}; the "
            f"{read - rejected_total:,} others are stored",
            3,
        )
