"""``recsmith deadletters list | replay``: records the store refused, and why; and storing
those that pass now (after a fix to the settings or the sender)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
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
from recsmith.cli.audit import audited
from recsmith.decisions.timespec import parse_time
from recsmith.store.open import open_store

app = typer.Typer(help="Refused records: see why, replay after a fix.", no_args_is_help=True)

SinceOpt = Annotated[
    str | None,
    typer.Option(help="Only those received from: 7d, 12h, 30m back from now, or an ISO date."),
]
ReasonOpt = Annotated[
    str | None,
    typer.Option(help="Only those whose errors contain this text (e.g. 'unknown event_type')."),
]


@app.command("list")
def list_letters(
    ctx: typer.Context,
    since: SinceOpt = None,
    reason: ReasonOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="The first this many, oldest first.")] = 100,
    store: StoreOption = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per dead letter, one per line.")
    ] = False,
) -> None:
    """Show dead letters: when, from which source (file or route), the record's index there,
    every field error, and the payload as kept."""
    cli = state(ctx)
    with errors_as_exit():
        start = parse_time(since, "--since")
        db = open_store(resolve_store_url(store, cli.settings), cli.settings.store)
        try:
            letters = db.dead_letters(limit, since=start, reason=reason)
        finally:
            db.close()
    if json_out:
        for d in letters:
            print_json(d.to_json())
        return
    table = Table(title=f"dead letters ({len(letters)})")
    for column in ("id", "received (UTC)", "source", "index", "errors", "payload"):
        table.add_column(column)
    for d in letters:
        errors = "; ".join(f"{e['field']}: {e['reason']}" for e in d.errors)
        payload = json.dumps(d.payload)
        cells = (
            str(d.letter_id),
            d.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            d.source,
            str(d.record_index),
            errors,
            payload if len(payload) <= 80 else f"{payload[:79]}…",
        )
        table.add_row(*(escape(c) for c in cells))
    stdout.print(table)


@app.command("replay")
def replay(
    ctx: typer.Context,
    since: SinceOpt = None,
    reason: ReasonOpt = None,
    store: StoreOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Validate refused event records again under the current config and store those that pass
    now (their dead letters are removed); the rest stay. Safe to run twice: stored events are
    never stored again."""
    from recsmith.store.dead_letter_replay import replay_dead_letters, replay_target

    cli = state(ctx)
    audit = audited(cli.settings, "deadletters.replay", replay_target(since, reason), store)
    with errors_as_exit(), audit as act:
        start = parse_time(since, "--since")
        db = open_store(resolve_store_url(store, cli.settings), cli.settings.store)
        try:
            result = replay_dead_letters(db, cli.settings.events, since=start, reason=reason)
        finally:
            db.close()
        act.detail = result.to_json()
    if json_out:
        print_json(result.to_json())
    elif not cli.quiet:
        counts = result.to_json()
        stderr.print(
            f"replayed {counts['examined']} dead letters: {counts['stored']} stored, "
            f"{counts['duplicates']} already stored, {counts['refused_again']} refused again "
            f"(event_id reused), {counts['still_refused']} still refused, "
            f"{counts['not_kept_whole']} not kept whole"
        )
        for why, n in result.still_refused.most_common(5):
            stderr.print(f"  {n} × {escape(why)}")
