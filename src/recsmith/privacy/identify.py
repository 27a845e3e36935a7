"""The ``identify`` event: an anonymous visitor logs in, in the event stream itself.

``{"event_type": "identify", "user_id": "u42", "session_id": "s-81f2"}`` through ``POST
/v1/events`` or an import does what ``POST /v1/users/u42/aliases {"session_id": "s-81f2"}`` does
(``privacy.identity.link_alias``: the same rule for chains and conflicts, the same audit record,
the visitor's recent items moved to the user when the server has an online state). It names no
item, so it is no interaction: it is taken out of the batch before the events are validated
(``split``), checked at the door on its own (``check``), and applied after the batch's events are
stored (``apply``), which makes the link of a visitor whose browsing arrived in the same batch
carry that browsing over.

Counts: a link made is ``accepted``; one already in place is a ``duplicate`` (a retry is
harmless). Refusals are rejections like any event's: a field error for a missing or malformed id
or an item named, 409's reasons (another user's alias, the user itself) at ``session_id``, and
the person's erasure or withdrawn tracking consent at ``user_id`` with an empty payload, as
``privacy.screen`` refuses their other events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.columns import Errors, absent_mask, check_strings, missing_mask, payload
from recsmith.events.schema import EVENT_INPUT_FIELDS, FieldError, Rejection
from recsmith.events.validate import unknown_event_field
from recsmith.privacy.identity import AliasConflict, link_alias
from recsmith.privacy.screen import refused
from recsmith.privacy.view import view_of
from recsmith.store.base import EventStore

if TYPE_CHECKING:
    from recsmith.serving.online_state import OnlineState

IDENTIFY = "identify"
Records = pd.DataFrame | Sequence[Mapping[str, Any]]
#: Event fields an identify event may carry and ignores (an id for retries, a time, a context).
_IGNORED = ("event_id", "timestamp", "context")
#: Event fields that have no meaning without an item.
_NO_ITEM = ("item_id", "value", "recommendation_id", "position")


@dataclass(frozen=True, slots=True)
class Identify:
    """A checked identify event: its place in the batch (offset not added) and the link."""

    position: int
    user_id: str
    session_id: str


def split(records: Records) -> tuple[Records, np.ndarray, np.ndarray]:
    """The records that are not identify events, their positions in ``records``, and the
    positions of the identify events. A batch without one is returned as it is."""
    n = len(records)
    if isinstance(records, pd.DataFrame):
        types = (
            records["event_type"].to_numpy(dtype=object)
            if "event_type" in records
            else np.full(n, None, dtype=object)
        )
    else:
        types = np.fromiter((_type_of(r) for r in records), object, n)
    mask = types == IDENTIFY
    if not mask.any():
        return records, np.arange(n), np.zeros(0, np.int64)
    rest_at, identify_at = np.flatnonzero(~mask), np.flatnonzero(mask)
    if isinstance(records, pd.DataFrame):
        rest: Records = records.iloc[rest_at].reset_index(drop=True)
    else:
        rest = [records[i] for i in rest_at.tolist()]
    return rest, rest_at, identify_at


def _type_of(record: Any) -> Any:
    return record.get("event_type") if isinstance(record, Mapping) else None


def check(
    records: Records, at: np.ndarray, settings: EventSettings, offset: int
) -> tuple[list[Identify], list[Rejection]]:
    """The identify events at positions ``at`` of ``records``, checked at the door: ``user_id``
    and ``session_id`` required and valid ids, no item nor item-bound field, no unknown field."""
    rows = [_row(records, int(i)) for i in at.tolist()]
    errors = Errors(len(rows))
    names = dict.fromkeys(k for r in rows for k in r)

    def column(name: str) -> np.ndarray:
        return np.fromiter((r.get(name) for r in rows), object, len(rows))

    for name in ("user_id", "session_id"):
        check_strings(column(name), name, errors, settings.max_id_length, required=True)
    for name in _NO_ITEM:
        if name in names:
            errors.add(~absent_mask(column(name)), name, "an identify event names no item")
    for name in names:
        if name not in EVENT_INPUT_FIELDS:
            errors.add(~missing_mask(column(name)), str(name), unknown_event_field(name))
    bad = errors.bad
    rejected = [
        Rejection(offset + int(at[r.index]), r.errors, r.payload)
        for r in errors.rejections(rows.__getitem__, 0)
    ]
    links = [
        Identify(int(at[i]), str(rows[i]["user_id"]), str(rows[i]["session_id"]))
        for i in np.flatnonzero(~bad).tolist()
    ]
    return links, rejected


def _row(records: Records, position: int) -> dict[str, Any]:
    """One record as a dict of the fields it sets (a frame's empty cells left out)."""
    if isinstance(records, pd.DataFrame):
        return payload(records.iloc[position])
    return dict(records[position])


def apply(
    store: EventStore,
    links: Sequence[Identify],
    records: Records,
    offset: int,
    state: OnlineState | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Rejection]]:
    """Link each visitor to its user (``link_alias``, audited) in batch order; returns which
    went through (linked now or already), which made a new link, and the rejections of the
    others."""
    done = np.zeros(len(links), dtype=bool)
    changed = np.zeros(len(links), dtype=bool)
    rejected: list[Rejection] = []
    if not links:
        return done, changed, rejected
    private, reasons = refused(view_of(store).fresh(), pd.Series([x.user_id for x in links]))
    for n, link in enumerate(links):
        index = offset + link.position
        if private[n]:  # erased or untracked: refused as their events are, naming nobody
            rejected.append(Rejection(index, (FieldError("user_id", str(reasons[n])),), {}))
            continue
        try:
            linked = link_alias(store, link.user_id, link.session_id, "session", state=state)
        except AliasConflict as exc:
            error = FieldError(exc.field, exc.reason)
            rejected.append(Rejection(index, (error,), _row(records, link.position)))
            continue
        done[n], changed[n] = True, linked.changed
    return done, changed, rejected
