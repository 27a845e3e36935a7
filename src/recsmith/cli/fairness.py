"""``recsmith fairness report``: who got exposure and how well each group was served, live."""

from __future__ import annotations

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
from recsmith.decisions.timespec import parse_time
from recsmith.errors import ValidationError
from recsmith.evaluation.grouping import parse_group_spec
from recsmith.fairness.report import figure, report_from_store
from recsmith.store.open import open_store

app = typer.Typer(help="Fairness of what was served: exposure, calibration, parity.")


@app.command("report")
def report(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(help="Start: 30d, 12h, 30m back from now, or an ISO 8601 date-time.")
    ] = "30d",
    item_groups: Annotated[
        str, typer.Option(help="category (default) or property:NAME (e.g. property:brand).")
    ] = "category",
    last: Annotated[
        int, typer.Option(min=1, help="Narrowing: the latest N lists of a unit vs the N before.")
    ] = 5,
    html: Annotated[
        Path | None, typer.Option(help="Also write the report as an HTML page.")
    ] = None,
    store: StoreOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Exposure by item group and its Gini over items, calibration of the lists to each user's
    events, per-user narrowing (the filter-bubble signal) and outcomes per list by user activity,
    from the decisions served since --since and the events and attributions of the same window."""
    cli = state(ctx)
    with errors_as_exit():
        start = parse_time(since, "--since")
        spec = parse_group_spec(item_groups, "--item-groups", "category")
        if html is not None and not html.parent.is_dir():
            raise ValidationError("--html", f"no such directory: {html.parent}")
        db = open_store(resolve_store_url(store, cli.settings))
        try:
            result = report_from_store(db, start, spec, window=f"since {since}", last=last)
        finally:
            db.close()
        if html is not None:
            html.write_text(result.to_html())
    if json_out:
        print_json(result.to_json())
        return
    if cli.quiet:
        return
    payload = result.to_json()
    exp = payload["exposure"]
    stderr.print(f"{payload['lists']:,} lists since {since}; groups: {spec.label}")
    stderr.print(
        f"exposure Gini over items: {figure(exp['gini'])}, "
        f"catalogue shown: {figure(exp['catalogue_shown'])}"
    )
    for group, share in exp["group_share"].items():
        stderr.print(f"  {group}: {share:.1%} of slots")
    stderr.print(f"mean miscalibration: {figure(payload['calibration']['mean'])}")
    n = payload["narrowing"]
    stderr.print(
        f"narrowing: {figure(n['share_narrowing'])} of {n['units']} units "
        f"(median {figure(n['median'])})"
    )
    for bucket, row in payload["parity"].items():
        stderr.print(
            f"  {bucket}: {row['lists']} lists, {row['outcomes_per_list']:.3f} outcomes/list"
        )
    for note in payload["notes"]:
        stderr.print(f"note: {note}")
