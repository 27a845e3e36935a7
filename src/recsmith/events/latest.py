"""Who saw what, from a batch of stored events: the (actor, item) pairs the online state keeps.

The actor is the ``user_id``, or the ``session_id`` of an anonymous visitor (which is what such a
visitor asks recommendations with). Pairs come oldest first, so the state's "recent items" end
with the newest. Every group commit of the server computes them, so a small group's pairs come
from its plain rows (``latest_of_rows``) without building a frame for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsmith.events.schema import EVENT_COLUMNS

_USER, _SESSION, _ITEM, _TS = (
    EVENT_COLUMNS.index(name) for name in ("user_id", "session_id", "item_id", "ts")
)


def latest_items(events: pd.DataFrame) -> list[tuple[str, str]]:
    """(actor, item) pairs of a canonical frame, oldest first (stable for equal times)."""
    order = np.argsort(events["ts"].to_numpy(dtype=np.int64), kind="stable")  # not a frame sort:
    users = events["user_id"].to_numpy(dtype=object)[order]  # this runs in every group commit
    sessions = events["session_id"].to_numpy(dtype=object)[order]
    actors = np.where(pd.isna(users), sessions, users)
    items = events["item_id"].to_numpy(dtype=object)[order]
    return list(zip(actors.tolist(), items.tolist(), strict=True))


def latest_of_rows(rows: Sequence[tuple[Any, ...]]) -> list[tuple[str, str]]:
    """``latest_items`` of the same events as plain rows (``EVENT_COLUMNS`` order, as
    ``events.validate_small_rows`` makes them: an absent user is None)."""
    ordered = sorted(rows, key=lambda row: row[_TS])  # sorted() is stable, as argsort above
    return [(row[_SESSION] if row[_USER] is None else row[_USER], row[_ITEM]) for row in ordered]
