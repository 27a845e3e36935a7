"""Ingestion: validate a batch, store the good events, dead-letter each bad record with its
reason."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.schema import IngestResult
from recsmith.events.validate import validate_events, validate_items
from recsmith.store.base import EventStore


def ingest_events(
    store: EventStore,
    records: pd.DataFrame | Sequence[Mapping[str, Any]],
    settings: EventSettings,
    *,
    source: str,
    offset: int = 0,
    on_stored: Callable[[pd.DataFrame], None] | None = None,
) -> IngestResult:
    """Validate and store one batch. Valid events are stored even when neighbours are refused.

    ``on_stored`` gets the valid events once they are durable (the server updates its online
    state with them)."""
    valid, rejected = validate_events(records, settings, offset=offset)
    stored = store.append(valid)
    store.add_dead_letters(rejected, source)
    if on_stored is not None and len(valid):
        on_stored(valid)
    return IngestResult(stored.inserted, stored.duplicates, tuple(rejected))


def ingest_items(
    store: EventStore, records: Sequence[Mapping[str, Any]], *, source: str, offset: int = 0
) -> IngestResult:
    """Validate and upsert catalog records; an item re-sent replaces the stored one (not a
    duplicate)."""
    items, rejected = validate_items(records, offset=offset)
    if items:
        store.upsert_items(items)
    store.add_dead_letters(rejected, source)
    return IngestResult(len(items), 0, tuple(rejected))
