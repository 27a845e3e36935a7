"""An ``event_id`` names one event: a re-send is a no-op, a reuse for other content is refused.

Idempotent ingestion lets a client retry a batch without double counting, so a stored id is
skipped. But an id sent again with a different item, user, type, value, time or context is not a
retry: it is a client bug (a counter reset, ids reused across tenants), and skipping it would lose
the new event without a word. Such records are rejected, naming ``event_id``, and land in the
dead letters with the rest. Only records whose id is repeated in the batch or already stored are
compared, so a batch of new events costs only an index lookup of its ids.

Two batches racing with the same new id and different content can still both pass this check;
the store keeps the first to commit and counts the other as a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsmith.store.base import EventStore, ids_in

#: What makes two records the same event (``event_id`` aside).
CONTENT = ("user_id", "session_id", "item_id", "event_type", "value", "ts", "context")
REASON = (
    "already used by a different event (an event_id names one event: re-send it unchanged, "
    "or give a new event its own id)"
)


def reused_ids(
    store: EventStore, events: pd.DataFrame, stamped: np.ndarray | None = None
) -> np.ndarray:
    """Mask over ``events`` (a validated frame): the rows whose ``event_id`` is stored, or
    appears earlier in the batch, with different content. A ``stamped`` row's time is the
    server's (it came without one), so a retry of it a second later is still the same event."""
    out = np.zeros(len(events), dtype=bool)
    unique = list(dict.fromkeys(events["event_id"].tolist()))
    stored = store.events_by_id(unique)
    if len(stored) == 0 and len(unique) == len(events):
        return out  # every id new and once: nothing to compare (a group of new events, mostly)
    ids = events["event_id"]
    repeated = ids.duplicated(keep=False).to_numpy()
    check = np.flatnonzero(repeated | ids_in(ids, stored["event_id"].tolist()))
    if len(check) == 0:
        return out
    rows = events.iloc[check].reset_index(drop=True)
    # what each id already names: the stored event, else the batch's first record of it
    reference = pd.concat([stored, events[~ids.duplicated()]], ignore_index=True)
    reference = reference.drop_duplicates("event_id").set_index("event_id")
    against = reference.reindex(rows["event_id"]).reset_index(drop=True)
    same = np.ones(len(rows), dtype=bool)
    for name in CONTENT:
        a, b = rows[name], against[name]
        equal = ((a == b) | (a.isna() & b.isna())).to_numpy(dtype=bool, copy=True)
        if name == "context":  # the same text is the same context; other texts compared parsed
            other = np.flatnonzero(~equal & a.notna().to_numpy() & b.notna().to_numpy())
            equal[other] = [
                _canonical_json(x) == _canonical_json(y)
                for x, y in zip(a.iloc[other].tolist(), b.iloc[other].tolist(), strict=True)
            ]
        if name == "ts" and stamped is not None:
            equal |= stamped[check]
        same &= equal
    out[check] = ~same
    return out


def reused_in_rows(
    store: EventStore,
    rows: Sequence[tuple[Any, ...]],
    frame: Callable[[], pd.DataFrame],
    stamped: np.ndarray | None = None,
) -> np.ndarray:
    """``reused_ids`` of a small group given as plain rows (``events.validate_small_rows``;
    ``frame`` builds the same events' frame). A group of ids all new and each sent once, which
    is what live traffic is, is told by one lookup of its ids, without a frame."""
    ids = [row[0] for row in rows]
    if not ids or (len(set(ids)) == len(ids) and len(store.events_by_id(ids)) == 0):
        return np.zeros(len(ids), dtype=bool)
    return reused_ids(store, frame(), stamped)


def _canonical_json(value: Any) -> Any:
    """A context as one spelling of its JSON (a store may hand back a parsed object)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    parsed = json.loads(value) if isinstance(value, str) else value
    return json.dumps(parsed, separators=(",", ":"), sort_keys=True)
