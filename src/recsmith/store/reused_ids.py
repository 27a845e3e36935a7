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
    store: EventStore,
    events: pd.DataFrame,
    stamped: np.ndarray | None = None,
    content_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Mask over ``events`` (a validated frame): the rows whose ``event_id`` is stored, or
    appears earlier in the batch, with different content. A ``stamped`` row's time is the
    server's (it came without one), so a retry of it a second later is still the same event.

    ``content_ids`` marks the rows whose id validation derived from their content (sent
    without one: ``validate.content_event_ids``). Such an id is a hash of every compared field
    but the context, so for these rows only the context is compared, and only it is read back
    (``EventStore.contexts_by_id``): a re-imported chunk of 100,000 no longer reads back and
    compares whole stored events. A batch where a sent id equals a derived one is compared
    whole, as before."""
    if content_ids is None or not content_ids.any():
        return _compared(store, events, stamped)
    ids = events["event_id"]
    if content_ids.all():
        return _reused_content_ids(store, ids, events["context"])
    sent = ~content_ids
    if not set(ids[sent].tolist()).isdisjoint(ids[content_ids].tolist()):
        return _compared(store, events, stamped)
    out = np.zeros(len(events), dtype=bool)
    out[content_ids] = _reused_content_ids(store, ids[content_ids], events["context"][content_ids])
    out[sent] = _compared(
        store,
        events[sent].reset_index(drop=True),
        None if stamped is None else stamped[sent],
    )
    return out


def _compared(store: EventStore, events: pd.DataFrame, stamped: np.ndarray | None) -> np.ndarray:
    """``reused_ids`` comparing every ``CONTENT`` field with the stored event."""
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
        if name == "context":
            equal = _same_contexts(rows[name].tolist(), against[name].tolist())
        else:
            a, b = rows[name], against[name]
            equal = ((a == b) | (a.isna() & b.isna())).to_numpy(dtype=bool, copy=True)
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


def _reused_content_ids(store: EventStore, ids: pd.Series, contexts: pd.Series) -> np.ndarray:
    """``reused_ids`` for rows whose ids are content ids: the same id is the same user,
    session, item, type, value and time, so only the context can differ."""
    out = np.zeros(len(ids), dtype=bool)
    names = ids.tolist()
    stored = store.contexts_by_id(names)
    repeated = ids.duplicated(keep=False).to_numpy()
    if not stored and not repeated.any():
        return out
    known = np.fromiter(map(stored.__contains__, names), bool, len(names))
    check = np.flatnonzero(repeated | known)
    sent = contexts.tolist()
    # what each id already names: the stored event, else the batch's first record of it
    first = dict(zip(reversed(names), reversed(sent), strict=True))
    reference = first | stored
    mine = [sent[n] for n in check.tolist()]
    theirs = [reference[names[n]] for n in check.tolist()]
    out[check] = ~_same_contexts(mine, theirs)
    return out


def _same_contexts(a: list[Any], b: list[Any]) -> np.ndarray:
    """Pairwise: the same context. Both absent, the same text, or (only where the texts
    differ) the same JSON once parsed."""
    left, right = np.fromiter(a, object, len(a)), np.fromiter(b, object, len(b))
    absent_left, absent_right = pd.isna(left), pd.isna(right)
    equal = (absent_left & absent_right) | np.asarray(left == right, dtype=bool)
    other = np.flatnonzero(~equal & ~absent_left & ~absent_right)
    equal[other] = [
        _canonical_json(x) == _canonical_json(y)
        for x, y in zip(left[other].tolist(), right[other].tolist(), strict=True)
    ]
    return equal


def _canonical_json(value: Any) -> Any:
    """A context as one spelling of its JSON (a store may hand back a parsed object)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    parsed = json.loads(value) if isinstance(value, str) else value
    return json.dumps(parsed, separators=(",", ":"), sort_keys=True)
