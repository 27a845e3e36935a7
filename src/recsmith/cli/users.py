"""``recsmith users``: erase people, export what is held about one, record consent
(``recsmith.privacy``). The same operations as the ``/v1/users/{id}`` routes, for an operator
with store access; running servers pick them up within a second."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
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
    stdout,
)
from recsmith.config import Settings
from recsmith.errors import ValidationError
from recsmith.ids import check_id
from recsmith.privacy.consent import Consent, set_consent
from recsmith.privacy.erase import Reach, erase_people
from recsmith.privacy.export import export_person
from recsmith.serving.online_state import open_state
from recsmith.serving.response_cache import open_cache
from recsmith.store.base import EventStore
from recsmith.store.open import open_store

app = typer.Typer(help="Erase, export and consent of one person (privacy).", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@contextmanager
def _store(url: str | None, settings: Settings) -> Iterator[EventStore]:
    db = open_store(resolve_store_url(url, settings), settings.store)
    try:
        yield db
    finally:
        db.close()


def read_ids(given: list[str], file: Path | None) -> list[str]:
    """The ids from the arguments and the file (one per line, blank lines skipped), each held to
    the id rule, in order, each once."""
    ids = list(given)
    if file is not None:
        if not file.is_file():
            raise ValidationError("--file", f"no such file: {file}")
        ids += [line.strip() for line in file.read_text().splitlines() if line.strip()]
    if not ids:
        raise ValidationError("ID", "give at least one user id, or --file")
    for n, uid in enumerate(ids):
        try:
            check_id(uid)
        except ValueError as exc:
            raise ValidationError("ID", f"id {n + 1} ({uid!r}): {exc}") from None
    return list(dict.fromkeys(ids))


@app.command("delete")
def delete(
    ctx: typer.Context,
    user_ids: Annotated[list[str] | None, typer.Argument(metavar="ID...", help="User ids.")] = None,
    file: Annotated[Path | None, typer.Option(help="A file of user ids, one per line.")] = None,
    store: StoreOption = None,
    json_out: JsonOption = False,
) -> None:
    """Erase each person everywhere: events, profile, decisions, attributions, dead letters that
    name them, their online state and cached lists in Redis (serving.state_url); running servers
    drop their in-process copies within a second. Their events are refused from now on and every
    later training leaves them out (a tombstone keeps a salted hash, never the id). Takes
    privacy.erase_settle_s longer than the deletes: a second sweep catches what servers recorded
    meanwhile."""
    cli = state(ctx)
    serving = cli.settings.serving
    with errors_as_exit():
        ids = read_ids(user_ids or [], file)
        online = open_state(serving.state_url)
        cache = open_cache(serving.state_url, serving.cache_entries, serving.cache_ttl_s)
        try:
            with _store(store, cli.settings) as db:
                done = erase_people(
                    db,
                    ids,
                    reach=Reach(online, cache),
                    settle_s=cli.settings.privacy.erase_settle_s,
                )
        finally:
            online.close()
            if cache is not None:
                cache.close()
    if json_out:
        print_json(
            [
                {"user_id": u, "subject": e.subject, "removed": e.removed}
                for u, e in zip(ids, done, strict=True)
            ]
        )
        return
    for uid, erasure in zip(ids, done, strict=True):
        parts = ", ".join(f"{n} {kind}" for kind, n in sorted(erasure.removed.items()))
        stdout.print(f"{uid}: erased ({parts})", highlight=False)
    if not cli.quiet:
        stderr.print(f"{len(done)} person(s) erased; their events are refused from now on")


@app.command("export")
def export(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(metavar="ID", help="User id.")],
    out: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
    store: StoreOption = None,
) -> None:
    """Everything held about the person as one JSON document: events (in the shape `recsmith
    import` reads), profile, the lists shown to them, consent."""
    cli = state(ctx)
    with errors_as_exit():
        [uid] = read_ids([user_id], None)
        if out is not None and not out.parent.is_dir():
            raise ValidationError("--out", f"no such directory: {out.parent}")
        with _store(store, cli.settings) as db:
            document = export_person(db, uid)
    if out is None:
        print_json(document)
        return
    out.write_text(json.dumps(document, indent=2) + "\n")
    if not cli.quiet:
        stderr.print(
            f"wrote {len(document['events'])} event(s), {len(document['decisions'])} "
            f"decision(s) of {uid} to {out}"
        )


@app.command("consent")
def consent(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(metavar="ID", help="User id.")],
    personalization: Annotated[
        bool, typer.Option("--personalization/--no-personalization", help="Personalised lists.")
    ],
    tracking: Annotated[bool, typer.Option("--tracking/--no-tracking", help="Store their events.")],
    store: StoreOption = None,
) -> None:
    """Record the person's consent (as PUT /v1/users/{id}/consent does); audited."""
    cli = state(ctx)
    with errors_as_exit():
        [uid] = read_ids([user_id], None)
        with _store(store, cli.settings) as db:
            set_consent(db, uid, Consent(personalization, tracking))
    if not cli.quiet:
        stderr.print(
            f"{uid}: personalization {'on' if personalization else 'off'}, "
            f"tracking {'on' if tracking else 'off'}"
        )
