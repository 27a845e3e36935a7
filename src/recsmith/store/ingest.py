"""Ingestion: validate a batch, store the good events, dead-letter each bad record with its
reason."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.columns import payload
from recsmith.events.schema import FieldError, IngestResult, Rejection
from recsmith.events.validate import validate_events, validate_items
from recsmith.store.base import EventStore
from recsmith.store.reused_ids import REASON, reused_ids


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
    reused = reused_ids(store, valid) if len(valid) else np.zeros(0, dtype=bool)
    if reused.any():
        # the valid frame keeps the order of the records that passed validation
        refused = np.fromiter((r.index - offset for r in rejected), np.int64, len(rejected))
        positions = np.setdiff1d(np.arange(len(records)), refused)
        rejected = sorted(
            [*rejected, *(_reuse(records, int(p), offset) for p in positions[reused])],
            key=lambda r: r.index,
        )
        valid = valid[~reused].reset_index(drop=True)
    stored = store.append(valid)
    store.add_dead_letters(rejected, source)
    if on_stored is not None and len(valid):
        on_stored(valid)
    return IngestResult(stored.inserted, stored.duplicates, tuple(rejected))


def _reuse(
    records: pd.DataFrame | Sequence[Mapping[str, Any]], position: int, offset: int
) -> Rejection:
    """The rejection of a record whose event_id names a different event, with its payload."""
    record = records.iloc[position] if isinstance(records, pd.DataFrame) else records[position]
    return Rejection(offset + position, (FieldError("event_id", REASON),), payload(record))


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
