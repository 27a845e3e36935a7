"""Refusing the events of people who were erased or withdrew tracking consent, at every ingest
(HTTP, import, quickstart) and again when training reads the store.

Checked against the process's privacy view (``privacy.view``), refreshed when older than a
second, so a re-imported old export of an erased person's events is refused as surely as a live
one. Nothing about a refused event is kept: its dead letter has its reason and no payload.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from recsmith.events.schema import FieldError, Rejection
from recsmith.privacy.marks import event_reason
from recsmith.privacy.view import PrivacyView, view_of
from recsmith.store.base import EventStore


def refused(view: PrivacyView, users: pd.Series) -> tuple[np.ndarray, list[str | None]]:
    """Which rows' user is erased or untracked, and per row the reason (None where kept).

    Each distinct user is hashed once (a factorised column), and only when the view holds
    marks: a store nobody was erased from or opted out of pays nothing."""
    if view.empty or len(users) == 0:
        return np.zeros(len(users), dtype=bool), [None] * len(users)
    codes, distinct = pd.factorize(users, use_na_sentinel=True)
    reasons: list[str | None] = []
    for user in distinct.tolist():
        mark = view.mark_of(str(user))
        reasons.append(event_reason(mark) if mark is not None and mark.refuses_events else None)
    per_row = [None if c < 0 else reasons[c] for c in codes.tolist()]
    return np.fromiter((r is not None for r in per_row), bool, len(per_row)), per_row


def screen_events(
    store: EventStore,
    users: Callable[[], pd.Series],
    positions: np.ndarray,
    offset: int,
    *,
    skip: np.ndarray,
    drop: bool,
) -> tuple[np.ndarray, list[Rejection]]:
    """The rows of a validated batch to leave out, and their rejections (none when ``drop``):
    field ``user_id``, the reason, and an empty payload so the dead letter names nobody. Rows
    in ``skip`` are refused for another reason already and get no second rejection.
    ``positions`` has a row's place in the records for each valid row; ``users`` gives their
    ``user_id`` column, asked for only when someone is erased or untracked (a small group's
    frame is then not built for nothing)."""
    view = view_of(store).fresh()
    if view.empty:
        return np.zeros(len(positions), dtype=bool), []
    mask, reasons = refused(view, users())
    mask &= ~skip
    if drop or not mask.any():
        return mask, []
    rows = np.flatnonzero(mask)
    return mask, [
        Rejection(offset + int(positions[r]), (FieldError("user_id", str(reasons[r])),), {})
        for r in rows.tolist()
    ]


def without_refused(store: EventStore, chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Event chunks read for training, less the events of people who were erased (an erasure
    racing the read) or withdrew tracking consent (what they sent before is not learnt from)."""
    view = view_of(store)
    view.refresh()
    for chunk in chunks:
        mask, _ = refused(view, chunk["user_id"])
        yield chunk[~mask].reset_index(drop=True) if mask.any() else chunk
