"""What a unit was shown lately, from the decision log: the stored lists and the pending ones.

Plain rows from the store (``EventStore.shows_of``) into arrays, never a frame: a request reads a
few hundred rows, where pandas' fixed cost (building a frame, concat, de-duplication, grouping:
about a millisecond each) was most of the work (BENCHMARKS "Capping").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recsmith.decisions.log import DecisionLog
from recsmith.decisions.rows import micros_of
from recsmith.store.base import EventStore


@dataclass(frozen=True, slots=True)
class Shown:
    """One row per (list, item) shown: the item, when (µs) and the list's page view."""

    item_id: np.ndarray  # object
    served_at: np.ndarray  # int64
    page_view: np.ndarray  # object (None outside page views)


def shown_since(
    store: EventStore, log: DecisionLog | None, unit: str, since_us: int, until_us: int
) -> Shown:
    """Every (list, item) shown to ``unit`` with ``since_us <= served_at <= until_us``: the
    store's index range plus this process's decisions not stored yet. A decision in both (stored
    while we read) counts once: the stored copy."""
    stored = store.shows_of(unit, since_us, until_us)
    ids, items, times, views = _columns(stored)
    if log is not None:
        known = set(ids)
        for d in log.pending_for({unit}):
            at = micros_of(d)
            if d.recommendation_id in known or not since_us <= at <= until_us:
                continue
            items.extend(d.item_ids)
            times.extend([at] * len(d.item_ids))
            views.extend([d.page_view] * len(d.item_ids))
    return Shown(_objects(items), np.asarray(times, dtype=np.int64), _objects(views))


def _columns(rows: list[tuple[str, str, int, str | None]]) -> tuple[list[Any], ...]:
    """The four ``SHOWS_COLUMNS`` of ``rows`` as lists (four empty ones for no rows)."""
    if not rows:
        return [], [], [], []
    return tuple(list(column) for column in zip(*rows, strict=True))


def _objects(values: list[Any]) -> np.ndarray:
    """An object array of ``values`` (``np.asarray`` would make strings fixed-width, and
    ``None`` among strings an error in ``np.unique``'s sort)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
