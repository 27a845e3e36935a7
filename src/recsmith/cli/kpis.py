"""``recsmith kpis``: business KPIs of the lists served, from the decision log."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from recsmith.cli._common import (
    StoreOption,
    errors_as_exit,
    print_json,
    resolve_store_url,
    state,
    stdout,
)
from recsmith.decisions.kpis import BY, catalogue_size, kpis
from recsmith.decisions.timespec import parse_window
from recsmith.errors import ValidationError
from recsmith.store.open import open_store


def kpis_command(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="7d, 12h, … back from now, or an ISO date.")] = "7d",
    until: Annotated[str | None, typer.Option(help="End (exclusive); default: now.")] = None,
    by: Annotated[
        str | None, typer.Option(help="Group by release, variant, placement or day.")
    ] = None,
    k: Annotated[int, typer.Option(min=1, max=1000, help="Positions CTR@k counts.")] = 10,
    store: StoreOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Impressions, users, CTR and CTR@k, add-to-cart rate, conversion (users who bought /
    users), revenue per user and per impression, and catalogue coverage of what was shown.
    Outcomes are the events attributed to a list (README: Decision log and attribution)."""
    cli = state(ctx)
    with errors_as_exit():
        if by is not None and by not in BY:
            raise ValidationError("--by", f"must be one of {', '.join(BY)}")
        start, end = parse_window(since, until, ("--since", "--until"))
        db = open_store(resolve_store_url(store, cli.settings))
        try:
            table = kpis(
                db,
                cli.settings.decisions.kinds(),
                since=start,
                until=end,
                by=by,  # type: ignore[arg-type]
                k=k,
                catalogue_size=catalogue_size(db),
            )
        finally:
            db.close()
    rows = [
        {key: (None if value != value else value) for key, value in row.items()}
        for row in table.to_dict(orient="records")
    ]
    if json_out:
        print_json(
            {"since": start.isoformat() if start else None, "by": by, "k": k, "groups": rows}
        )
        return
    if not rows:
        stdout.print("no lists served in that period")
        return
    shown = Table(title=f"KPIs since {start:%Y-%m-%d %H:%M} UTC" if start else "KPIs")
    columns = ("group", "lists", "impressions", "users", "ctr", "ctr_at_k", "cart_rate")
    columns += ("conversion", "revenue_per_user", "revenue_per_impression", "coverage")
    for name in columns:
        shown.add_column(
            name.replace("_at_k", f"@{k}"), justify="left" if name == "group" else "right"
        )
    for row in rows:
        shown.add_row(*(_cell(row[name]) for name in columns))
    stdout.print(shown)
    for row in rows:
        if row["note"]:
            stdout.print(f"{row['group']}: {row['note']}")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
