"""Importing a file or dataset: pick a reader by format name, then ingest its chunks into a store.

Every reader is ``read_<format>(path, chunk_rows=100_000) -> ImportSource``: it checks the path and
layout at once (so a typo fails before anything is written) and reads the files lazily, chunk by
chunk, so memory stays flat however large the file is. ``import_source`` validates and stores those
chunks with ``store.ingest`` semantics: good records are kept, each bad one is dead-lettered with
its position in its file, and re-importing the same data only produces duplicates (content
event ids).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from recsmith.config import EventSettings
from recsmith.decisions.attribution import Attributor
from recsmith.errors import ValidationError
from recsmith.events.importers import diginetica, generic, lastfm, movielens, retailrocket
from recsmith.events.importers._common import ImportSource, RawChunk, SourceNotFound
from recsmith.events.profiles import store_profiles
from recsmith.events.schema import IngestResult, Rejection
from recsmith.store.base import EventStore
from recsmith.store.ingest import CheckedEvents, check_events, ingest_items, store_events

__all__ = [
    "FORMATS",
    "ImportResult",
    "ImportSource",
    "RawChunk",
    "Reader",
    "SourceNotFound",
    "import_source",
    "read_source",
]

#: ``read_<format>(path, chunk_rows)``: what every importer module provides.
Reader = Callable[..., ImportSource]

FORMATS: Mapping[str, Reader] = {
    "events": generic.read_events,
    "items": generic.read_items,
    "users": generic.read_users,
    "movielens": movielens.read_movielens,
    "lastfm-hetrec": lastfm.read_lastfm_hetrec,
    "retailrocket": retailrocket.read_retailrocket,
    "diginetica": diginetica.read_diginetica,
}

#: Rejections kept in memory for the returned result; the store keeps all of them (dead letters).
MAX_KEPT_REJECTIONS = 1000


@dataclass(frozen=True, slots=True)
class ImportResult(IngestResult):
    """An ``IngestResult`` for the events of a whole import, plus the catalog side.

    ``rejected`` is capped at ``MAX_KEPT_REJECTIONS`` (a broken million-row file must not fill the
    memory); ``rejected_count`` is the exact number, and every rejection is in the dead letters.
    """

    rejected_count: int = 0
    items: IngestResult = field(default_factory=lambda: IngestResult(0, 0))
    items_rejected_count: int = 0
    users: IngestResult = field(default_factory=lambda: IngestResult(0, 0))
    users_rejected_count: int = 0

    def as_counts(self) -> dict[str, int]:
        """Counts by kind; profile counts only when the source had profiles."""
        counts = {
            "accepted": self.accepted,
            "rejected": self.rejected_count,
            "duplicates": self.duplicates,
            "items_accepted": self.items.accepted,
            "items_rejected": self.items_rejected_count,
        }
        if self.users.accepted or self.users_rejected_count:
            counts |= {
                "users_accepted": self.users.accepted,
                "users_rejected": self.users_rejected_count,
            }
        return counts


def read_source(format: str, path: str | Path, chunk_rows: int = 100_000) -> ImportSource:
    """The reader for ``format`` applied to ``path``; an unknown format or no such path fails."""
    reader = FORMATS.get(format)
    if reader is None:
        raise ValidationError("format", f"unknown format {format!r} (known: {', '.join(FORMATS)})")
    path = Path(path)
    if not path.exists():
        raise SourceNotFound(f"no such file or directory: {path}")
    return reader(path, chunk_rows=chunk_rows)


class _Tally:
    """Sums chunk results; keeps the first rejections only, counts them all."""

    def __init__(self) -> None:
        self.accepted = 0
        self.duplicates = 0
        self.count = 0
        self.kept: list[Rejection] = []

    def add(self, accepted: int, duplicates: int, rejected: tuple[Rejection, ...]) -> None:
        self.accepted += accepted
        self.duplicates += duplicates
        self.count += len(rejected)
        room = MAX_KEPT_REJECTIONS - len(self.kept)
        if room > 0:
            self.kept.extend(rejected[:room])


def _store_chunk(
    store: EventStore,
    chunk: RawChunk[pd.DataFrame],
    checked: CheckedEvents | None,
    attributor: Attributor | None = None,
) -> tuple[IngestResult, int]:
    """The writer thread's part of a chunk: its unparsable records' dead letters, then its events
    (``checked`` is None when it has none). Returns the result and the number of records the
    chunk consumed (for progress)."""
    store.add_dead_letters(chunk.rejections, chunk.source)
    if checked is None:
        return IngestResult(0, 0, chunk.rejections), len(chunk)
    res = store_events(store, checked, source=chunk.source, attributor=attributor)
    return IngestResult(res.accepted, res.duplicates, chunk.rejections + res.rejected), len(chunk)


def _stored(
    tally: _Tally,
    storing: Future[tuple[IngestResult, int]],
    on_progress: Callable[[int], None] | None,
) -> None:
    """Wait for a chunk's store stage (its error, if any, is raised here) and count it."""
    res, consumed = storing.result()
    tally.add(res.accepted, res.duplicates, res.rejected)
    if on_progress is not None:
        on_progress(consumed)


def import_source(
    store: EventStore,
    source: ImportSource,
    settings: EventSettings,
    *,
    on_progress: Callable[[int], None] | None = None,
    attributor: Attributor | None = None,
) -> ImportResult:
    """Ingest all of ``source``: the catalog first (so events arrive for known items), then events.

    ``on_progress`` is called after each event chunk with the number of records it consumed (good
    and bad), i.e. an increment to add to a bar whose total is ``source.total_events``. Dead
    letters are labelled with the name of the file the record came from. With an
    ``attributor`` events naming a served list (``recommendation_id``, ``position``) are checked
    and every event attributed, as over HTTP (``decisions.attribution``).
    """
    items = _Tally()
    for chunk in source.items:
        store.add_dead_letters(chunk.rejections, chunk.source)
        items.add(0, 0, chunk.rejections)
        if chunk.rows:
            res = ingest_items(store, chunk.rows, source=chunk.source, offset=chunk.offset)
            items.add(res.accepted, res.duplicates, res.rejected)

    users = _Tally()
    for chunk in source.users:
        res = store_profiles(store, chunk.rows, source=chunk.source, offset=chunk.offset)
        store.add_dead_letters(chunk.rejections, chunk.source)
        users.add(res.accepted, 0, chunk.rejections + res.rejected)

    events = _Tally()
    # one writer thread: chunk N is stored (the database works with the GIL released) while this
    # thread reads and validates chunk N + 1; chunks are stored one at a time, in file order, so a
    # chunk's reused-id check sees every earlier chunk
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recsmith-import") as writer:
        storing: Future[tuple[IngestResult, int]] | None = None
        for chunk in source.events:
            checked = (
                check_events(chunk.rows, settings, offset=chunk.offset) if len(chunk.rows) else None
            )
            if storing is not None:
                _stored(events, storing, on_progress)
            storing = writer.submit(_store_chunk, store, chunk, checked, attributor)
        if storing is not None:
            _stored(events, storing, on_progress)

    return ImportResult(
        events.accepted,
        events.duplicates,
        tuple(events.kept),
        rejected_count=events.count,
        items=IngestResult(items.accepted, items.duplicates, tuple(items.kept)),
        items_rejected_count=items.count,
        users=IngestResult(users.accepted, 0, tuple(users.kept)),
        users_rejected_count=users.count,
    )
