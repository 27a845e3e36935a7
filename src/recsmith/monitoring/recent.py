"""One pass over the store's recent events, reduced to the counts the drift signals need.

Scanned in the store's batches and reduced batch by batch, so a busy day of events never sits in
memory as one frame: only distinct (user, item) pairs of the window are kept, which is what
popularity is measured in on both sides (``ReleaseView.item_users`` counts distinct users too).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from recsmith.store.base import EventStore, micros


@dataclass
class RecentTraffic:
    """Counts of the events in ``[since, now)`` plus how many came after training ended."""

    n_events: int = 0
    event_types: Counter[str] = field(default_factory=Counter)
    pairs: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"user_id": [], "item_id": []}, dtype=object)
    )
    users: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    item_events: pd.Series = field(default_factory=lambda: pd.Series(dtype=np.int64))
    newest_ts_us: int | None = None
    since_training: int = 0


def read_recent(store: EventStore, since: datetime, trained_until_us: int | None) -> RecentTraffic:
    """Reduce the events from ``min(since, end of training)`` on: the window's type mix, distinct
    pairs, users and per-item event counts, and the count of events newer than the training data
    (left at 0 when ``trained_until_us`` is unknown: the caller reports it as unknown)."""
    since_us = micros(since) or 0
    start_us = since_us if trained_until_us is None else min(since_us, trained_until_us + 1)
    out = RecentTraffic()
    pair_batches: list[pd.DataFrame] = []
    item_batches: list[pd.Series] = []
    start = datetime.fromtimestamp(start_us / 1e6, tz=UTC) if start_us else None
    for batch in store.scan(since=start):
        ts = batch["ts"].to_numpy(dtype=np.int64)
        if trained_until_us is not None:
            out.since_training += int(np.count_nonzero(ts > trained_until_us))
        if len(ts):
            newest = int(ts.max())
            out.newest_ts_us = newest if out.newest_ts_us is None else max(out.newest_ts_us, newest)
        window = batch[ts >= since_us]
        if window.empty:
            continue
        out.n_events += len(window)
        out.event_types.update(window["event_type"].value_counts().to_dict())
        known = window[window["user_id"].notna()]
        pair_batches.append(known[["user_id", "item_id"]].drop_duplicates())
        item_batches.append(window["item_id"].value_counts())
    if pair_batches:
        out.pairs = pd.concat(pair_batches, ignore_index=True).drop_duplicates()
        out.users = out.pairs["user_id"].unique()
        out.item_events = pd.concat(item_batches).groupby(level=0).sum()
    return out
