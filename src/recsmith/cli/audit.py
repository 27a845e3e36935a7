"""``recsmith audit``: read the audit trail; and ``audited``, how commands write to it.

Commands that change what is served or who may call the API (deploy, rollback, experiment start
and stop, key create and revoke, dead-letter replay) record themselves in the configured store's
audit trail, named as ``cli:<os user>``, with their outcome: ``ok``, or the error that stopped
them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from recsmith.cli._common import (
    StoreOption,
    errors_as_exit,
    print_json,
    resolve_store_url,
    state,
    stdout,
)
from recsmith.config import Settings
from recsmith.decisions.timespec import parse_time
from recsmith.errors import RecsmithError, StoreUnavailable
from recsmith.governance.audit import action_filter, record_audit
from recsmith.store.open import open_store


@dataclass
class Action:
    """What an audited block acted on, filled in by the block when it learns it (a deploy of
    ``--model-dir`` knows its version only once it has published it)."""

    target: str
    detail: dict[str, Any] = field(default_factory=dict)


@contextmanager
def audited(
    settings: Settings, action: str, target: str = "", store_url: str | None = None
) -> Iterator[Action]:
    """Record the block's action in the audit trail of ``store_url`` (default: the configured
    store) once it ends: ``ok``, or the recsmith error (or missing file) that stopped it, which
    is then raised on. A store that cannot take the record turns a success into an error saying
    the action was done but not recorded."""
    act = Action(target)
    url = resolve_store_url(store_url, settings)
    try:
        yield act
    except (RecsmithError, FileNotFoundError) as exc:
        _record(url, settings, action, act, str(exc) or type(exc).__name__)
        raise
    _record(url, settings, action, act, "ok")


def _record(url: str, settings: Settings, action: str, act: Action, outcome: str) -> None:
    try:
        store = open_store(url, settings.store)
        try:
            record_audit(
                store, action=action, target=act.target, outcome=outcome, detail=act.detail
            )
        finally:
            store.close()
    except StoreUnavailable as exc:
        done = "done" if outcome == "ok" else f"failed ({outcome})"
        raise RecsmithError(
            f"{action} {act.target}: {done}, but not recorded in the audit trail: {exc}"
        ) from exc


def audit_command(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(help="Only records from: 7d, 12h, 30m back from now, or an ISO 8601 date."),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(help="Only this action (key also finds key.create and key.revoke)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="The latest this many records.")] = 1000,
    store: StoreOption = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per line, oldest first.")
    ] = False,
) -> None:
    """Show the audit trail: who (API key id and name, or cli:<user>) did what, to what, when,
    and how it ended."""
    cli = state(ctx)
    with errors_as_exit():
        start = parse_time(since, "--since")
        wanted = action_filter(action, "--action")
        db = open_store(resolve_store_url(store, cli.settings))
        try:
            records = db.scan_audit(start, wanted, limit)
        finally:
            db.close()
    if json_out:
        for record in records:
            print_json(record.to_json())
        return
    table = Table(title=f"audit trail ({len(records)} records)")
    for column in ("at (UTC)", "key", "name", "action", "target", "outcome"):
        table.add_column(column)
    for r in records:
        when = r.at.strftime("%Y-%m-%d %H:%M:%S")
        cells = (when, r.key_id or "", r.key_name or "", r.action, r.target, r.outcome)
        table.add_row(*(escape(c) for c in cells))
    stdout.print(table)
