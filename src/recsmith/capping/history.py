"""What a unit was shown lately, from the decision log: the stored lists and the pending ones."""

from __future__ import annotations

import pandas as pd

from recsmith.decisions.log import DecisionLog
from recsmith.decisions.rows import LOOKUP_COLUMNS, lookup_rows, micros_of
from recsmith.store.base import EventStore


def shown_since(
    store: EventStore, log: DecisionLog | None, unit: str, since_us: int, until_us: int
) -> pd.DataFrame:
    """Every (list, item) shown to ``unit`` with ``since_us <= served_at <= until_us``
    (``LOOKUP_COLUMNS``): the store's index range plus this process's decisions not stored yet.
    A decision in both (stored while we read) appears once."""
    frames = [store.shown_to([unit], since_us, until_us)]
    if log is not None:
        pending = log.pending_for({unit})
        frames += [lookup_rows(d) for d in pending if since_us <= micros_of(d) <= until_us]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in LOOKUP_COLUMNS})
    shown = pd.concat(frames, ignore_index=True)
    return shown.drop_duplicates(["recommendation_id", "item_id"], ignore_index=True)
