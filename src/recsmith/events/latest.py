"""Who saw what, from a batch of stored events: the (actor, item) pairs the online state keeps.

The actor is the ``user_id``, or the ``session_id`` of an anonymous visitor (which is what such a
visitor asks recommendations with). Pairs come oldest first, so the state's "recent items" end
with the newest. Every group commit of the server computes them, so a small group's pairs come
from its plain rows (``latest_of_rows``) without building a frame for them.

An event weighing 0 or below (``events.weights``: a rating of 0 or below, a play of 0) gives
its item marked ``SEEN_MARK + item``: the state keeps it as seen, so a list leaves it out even
while the store's read is down, but no anchor to recommend from, as training's recent items
(``pipeline.training.recent_items``) count only a user's positively weighted items (issue #15:
a 0-star item fed the 'recent' sources online, never offline). The mark cannot clash with an
item: an id never holds a '/' (``ids.id_problem``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsmith.config import Weight
from recsmith.events.schema import EVENT_COLUMNS

#: Put before the item of an event weighing 0 or below: seen, no anchor (``online_state``).
SEEN_MARK = "/"

_USER, _SESSION, _ITEM, _TYPE, _VALUE, _TS = (
    EVENT_COLUMNS.index(name)
    for name in ("user_id", "session_id", "item_id", "event_type", "value", "ts")
)


def _signal_types(weights: Mapping[str, Weight]) -> tuple[frozenset[str], frozenset[str]]:
    """The event types whose every event weighs above 0 (a positive constant), and those
    weighed by their value (``value``, ``log_value``: above 0 exactly where the value is, as
    log(1 + v) > 0 iff v > 0); any other type's events (a constant of 0 or below) never do."""
    constant = frozenset(t for t, w in weights.items() if not isinstance(w, str) and w > 0)
    by_value = frozenset(t for t, w in weights.items() if isinstance(w, str))
    return constant, by_value


#: (the event types whose every event weighs above 0, those weighed by their value), each
#: sorted: ``_signal_types`` as the store's SQL takes it (``EventStore.users_items_weighed``)
Signal = tuple[tuple[str, ...], tuple[str, ...]]


def signal_of(weights: Mapping[str, Weight]) -> Signal:
    """Which events weigh above 0 under ``weights``, by type (``_signal_types``): built once per
    server, so a read of a user's items can tell, in SQL, which ones they rated 0 or below."""
    constant, by_value = _signal_types(weights)
    return tuple(sorted(constant)), tuple(sorted(by_value))


def latest_items(events: pd.DataFrame, weights: Mapping[str, Weight]) -> list[tuple[str, str]]:
    """(actor, item) pairs of a canonical frame's events, oldest first, the item marked
    (``SEEN_MARK``) where the event weighs 0 or below under ``weights``. At one instant the marked
    ones come last (then stable), so they are the newest: the store's tie rule
    (``store.user_items_sql.NEWEST_EVENT_FIRST``). Within one batch only: the state keeps no
    times, so a later batch's event decides even when it is no newer."""
    constant, by_value = _signal_types(weights)
    types = events["event_type"]
    value = pd.to_numeric(events["value"], errors="coerce").to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        signal = types.isin(list(constant)).to_numpy(bool) | (
            types.isin(list(by_value)).to_numpy(bool) & (value > 0)
        )
    order = np.lexsort((~signal, events["ts"].to_numpy(dtype=np.int64)))  # not a frame sort:
    users = events["user_id"].to_numpy(dtype=object)[order]  # this runs in every group commit
    sessions = events["session_id"].to_numpy(dtype=object)[order]
    actors = np.where(pd.isna(users), sessions, users)
    items = events["item_id"].to_numpy(dtype=object)
    items = np.where(signal, items, SEEN_MARK + items)[order]  # object arrays: str + str
    return list(zip(actors.tolist(), items.tolist(), strict=True))


def latest_of_rows(
    rows: Sequence[tuple[Any, ...]], weights: Mapping[str, Weight]
) -> list[tuple[str, str]]:
    """``latest_items`` of the same events as plain rows (``EVENT_COLUMNS`` order, as
    ``events.validate_small_rows`` makes them: an absent user is None)."""
    constant, by_value = _signal_types(weights)
    marked = [
        not (
            row[_TYPE] in constant
            or (row[_TYPE] in by_value and row[_VALUE] is not None and row[_VALUE] > 0)
        )
        for row in rows
    ]
    order = sorted(range(len(rows)), key=lambda n: (rows[n][_TS], marked[n]))  # stable, as above
    return [
        (
            rows[n][_SESSION] if rows[n][_USER] is None else rows[n][_USER],
            SEEN_MARK + rows[n][_ITEM] if marked[n] else rows[n][_ITEM],
        )
        for n in order
    ]
