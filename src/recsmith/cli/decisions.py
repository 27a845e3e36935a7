"""``recsmith decisions export``: the decision log as a file, one row per shown item."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from recsmith.cli._common import (
    StoreOption,
    errors_as_exit,
    print_json,
    resolve_store_url,
    state,
    stderr,
)
from recsmith.decisions.ope_log import ope_log
from recsmith.decisions.outcomes import shown_and_attributed
from recsmith.decisions.timespec import parse_window
from recsmith.errors import ValidationError
from recsmith.store.open import open_store

app = typer.Typer(help="The decision log: every list served.", no_args_is_help=True)


class Format(StrEnum):
    parquet = "parquet"
    csv = "csv"


class OpeReward(StrEnum):
    click = "click"
    purchase = "purchase"
    revenue = "revenue"


@app.command("export")
def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="File to write.")],
    since: Annotated[
        str, typer.Option(help="Start: 7d, 12h, 30m back from now, or an ISO 8601 date-time.")
    ],
    until: Annotated[str | None, typer.Option(help="End (exclusive); default: now.")] = None,
    format: Annotated[Format, typer.Option(help="parquet or csv.")] = Format.parquet,
    store: StoreOption = None,
    for_ope: Annotated[
        OpeReward | None,
        typer.Option(
            help="Write `recsmith ope estimate`'s --log instead: round, position, action, "
            "reward (this attributed outcome of the item in its list), propensity."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary line.")] = False,
) -> None:
    """Write the lists served from --since up to --until: one row per shown item with
    recommendation_id, served_at (UTC), unit, unit_kind, route, placement, release, experiment,
    variant, latency_ms (request arrival to response built; empty where not timed, as for batch
    runs), assignment_propensity (the chance of its variant; empty outside experiments),
    arm, arm_propensity, arm_context (a \\[contextual] choice of list; empty without one),
    position, item_id, score, sources (|-separated) and propensity. A list that showed
    nothing is one row without an item. With --for-ope the file is an off-policy evaluation
    log (README: Exploration in serving)."""
    cli = state(ctx)
    with errors_as_exit():
        start, end = parse_window(since, until, ("--since", "--until"))
        if not out.parent.is_dir():
            raise ValidationError("--out", f"no such directory: {out.parent}")
        db = open_store(resolve_store_url(store, cli.settings))
        try:
            if for_ope is None:
                shown = written = db.scan_decisions(start, end)
            else:
                kinds = cli.settings.decisions.kinds()
                shown, attributed = shown_and_attributed(db, start, end, kinds)
                written = ope_log(shown, attributed, for_ope.value)
        finally:
            db.close()
        if format is Format.parquet:
            written.to_parquet(out, index=False)
        else:
            written.to_csv(out, index=False)
    lists = int(shown["recommendation_id"].nunique())
    if json_out:
        print_json({"lists": lists, "rows": len(written), "out": str(out)})
    elif not cli.quiet:
        stderr.print(f"wrote {len(written):,} rows ({lists:,} lists) to {out}")
