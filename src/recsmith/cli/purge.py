"""``recsmith purge``: delete what is past its ``[privacy]`` retention (``privacy.retention``)."""

from __future__ import annotations

from typing import Annotated

import typer

from recsmith.cli._common import (
    StoreOption,
    errors_as_exit,
    print_json,
    resolve_store_url,
    state,
    stdout,
)
from recsmith.privacy.retention import purge
from recsmith.store.open import open_store


def purge_command(
    ctx: typer.Context,
    store: StoreOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Delete events, decisions and dead letters older than privacy.retain_events_days,
    retain_decisions_days (default: decisions.retain_days) and retain_dead_letters_days; a kind
    without a setting is kept. Prints how many of each were removed; audited. `serve` runs the
    same on a timer when privacy.purge_interval_h is set."""
    cli = state(ctx)
    with errors_as_exit():
        db = open_store(resolve_store_url(store, cli.settings), cli.settings.store)
        try:
            removed = purge(db, cli.settings)
        finally:
            db.close()
    if json_out:
        print_json(removed)
        return
    kept = [k for k in ("events", "dead_letters") if k not in removed]
    stdout.print(
        "removed "
        + ", ".join(f"{n:,} {kind}" for kind, n in removed.items())
        + (f"; kept all {' and '.join(kept)} (no retention set)" if kept else ""),
        highlight=False,
    )
