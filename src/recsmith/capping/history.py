"""What a unit was shown lately, from the decision log: the stored lists and the pending ones.

Arrays rather than a frame: a request reads a few hundred rows, where pandas' fixed cost per
operation (concat, de-duplication, grouping: about a millisecond each) would be most of the work.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    stored = store.shown_to([unit], since_us, until_us)
    items = [stored["item_id"].to_numpy(dtype=object)]
    times = [stored["served_at"].to_numpy(dtype=np.int64)]
    views = [stored["page_view"].to_numpy(dtype=object)]
    if log is not None:
        known = set(stored["recommendation_id"].tolist())
        for d in log.pending_for({unit}):
            at = micros_of(d)
            if d.recommendation_id in known or not since_us <= at <= until_us:
                continue
            n = len(d.item_ids)
            items.append(np.asarray(d.item_ids, dtype=object))
            times.append(np.full(n, at, dtype=np.int64))
            views.append(np.full(n, d.page_view, dtype=object))
    return Shown(np.concatenate(items), np.concatenate(times), np.concatenate(views))
