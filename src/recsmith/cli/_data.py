"""Events for ``train`` and ``evaluate``: from a file (validated on the way in) or from a store."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pandas as pd

from recsmith.cli._common import stderr
from recsmith.config import Settings
from recsmith.errors import ValidationError
from recsmith.events.importers.base import read_source
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events, validate_items
from recsmith.store.open import open_store


def load_events(data: Path | None, store_url: str | None, settings: Settings) -> pd.DataFrame:
    """A canonical event frame. Bad rows of a file are skipped with a count on stderr, never
    fatal."""
    if data is not None and store_url is not None:
        raise ValidationError("--data", "give either --data or --store, not both")
    if data is not None:
        if not data.exists():
            raise FileNotFoundError(f"--data: no such file: {data}")
        frames, rejected, total = [], 0, 0
        for chunk in read_source("events", data).events:
            valid, bad = validate_events(chunk.rows, settings.events, offset=chunk.offset)
            frames.append(valid)
            bad = [*chunk.rejections, *bad]
            if bad and rejected == 0:
                stderr.print(
                    f"skipping invalid rows; first: record {bad[0].index + 1}: {bad[0].reason}"
                )
            rejected += len(bad)
            total += len(chunk)
        if rejected:
            stderr.print(f"skipped {rejected} invalid row(s) of {total} in {data}")
        events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    else:
        store = open_store(store_url or settings.store.url)
        try:
            chunks = list(store.scan())
        finally:
            store.close()
        events = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()
    if events.empty:
        raise ValidationError("--data" if data else "--store", "no valid events to learn from")
    return events


def load_catalog(
    items: Path | None, data: Path | None, store_url: str | None, settings: Settings
) -> list[Item]:
    """Item metadata for content-aware models: the ``--items`` file, else the store's catalogue
    when events come from a store. Empty when there is none: models that need it say so."""
    catalog: list[Item] = []
    if items is not None:
        if not items.exists():
            raise FileNotFoundError(f"--items: no such file: {items}")
        for chunk in read_source("items", items).items:
            good, _ = validate_items(chunk.rows, offset=chunk.offset)
            catalog.extend(good)
    elif data is None:
        store = open_store(store_url or settings.store.url)
        try:
            catalog = store.items()
        finally:
            store.close()
    return catalog


#: Models that learn from item metadata alone, so cannot fit without a catalogue.
NEEDS_CATALOG = frozenset({"content"})


def require_catalog(models: Collection[str], catalog: list[Item]) -> None:
    """Fail as a usage error, before any fitting, when a model that needs item metadata has none:
    the model's own check fires mid-run as a bare ValueError that does not name the option."""
    needing = sorted(NEEDS_CATALOG.intersection(models))
    if needing and not catalog:
        raise ValidationError(
            "--items",
            f"the {', '.join(needing)} model needs item metadata: give --items FILE "
            "(or read events from a --store that holds the item catalogue)",
        )
