"""Ingestion: validate a batch, store the good events, dead-letter each bad record with its
reason. Two stages, ``check_events`` (validation, no store) and ``store_events``, so an import can
overlap them; ``ingest_events`` runs both, ``ingest_event_batches`` both for a group of requests."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from recsmith.config import EventSettings, Weight
from recsmith.events.columns import absent_mask, payload
from recsmith.events.latest import latest_items, latest_of_rows
from recsmith.events.schema import FieldError, IngestResult, Rejection
from recsmith.events.validate import validate_events, validate_items, validate_live_events
from recsmith.events.validate_small import frame_of_rows, takes_records, validate_small_rows
from recsmith.privacy import identify
from recsmith.privacy.screen import screen_events
from recsmith.store.base import EventStore
from recsmith.store.reused_ids import REASON, reused_ids, reused_in_rows

if TYPE_CHECKING:
    from recsmith.decisions.attribution import Attributor
    from recsmith.serving.online_state import OnlineState

#: What ``on_stored`` gets once a batch is durable: its events' (actor, item) pairs, oldest first
#: (``events.latest``), which the server's online state keeps.
OnStored = Callable[[list[tuple[str, str]]], None]
#: What ``on_attributed`` gets: the attributions of a batch (``Attributor.attribute``'s frame).
OnAttributed = Callable[[pd.DataFrame], None]


@dataclass(frozen=True, slots=True)
class CheckedEvents:
    """A batch after validation, before the store: what ``store_events`` needs to finish it.

    Validation needs no store, so an import validates its next chunk while the previous one is
    being written (``importers.base.import_source``)."""

    records: pd.DataFrame | Sequence[Mapping[str, Any]]
    #: the valid events; None for a small group until ``valid`` first builds it from ``rows``
    frame: pd.DataFrame | None
    #: position in ``records`` of each row of ``valid``
    positions: np.ndarray
    #: sorted by index, ``offset`` added
    rejected: list[Rejection]
    offset: int
    #: over ``valid``: stamped with the time received (live events sent without a timestamp)
    stamped: np.ndarray
    #: ``events.weights``: which stored events are a signal the online state keeps
    #: (``events.latest``: those weighing above 0)
    weights: Mapping[str, Weight]
    #: ``events.untracked``: events of erased or untracked people are dropped, not rejected
    drop_untracked: bool = False
    #: the batch's valid ``identify`` events (``privacy.identify``), linked once it is stored
    identify: tuple[identify.Identify, ...] = ()
    #: ``valid`` as plain rows, where validation made them (a small group): the store inserts
    #: them as they are (``EventStore.append``'s ``plain_rows``), and most groups need no frame
    rows: list[tuple[Any, ...]] | None = None
    #: over ``valid``, where known (a file's chunk): which rows came without an event_id, so
    #: their id is a content id (``reused_ids`` then compares only their context)
    content_ids: np.ndarray | None = None

    @property
    def valid(self) -> pd.DataFrame:
        """The valid events as a canonical frame (a small group's built on first use)."""
        if self.frame is None:
            object.__setattr__(self, "frame", frame_of_rows(self.rows or []))
        return cast(pd.DataFrame, self.frame)


def check_events(
    records: pd.DataFrame | Sequence[Mapping[str, Any]],
    settings: EventSettings,
    *,
    offset: int = 0,
    live: bool = False,
    typed_numbers: bool | None = None,
) -> CheckedEvents:
    """Validate one batch (no store involved). ``live`` events (HTTP) may come without a
    timestamp (``validate.validate_live_events``); imported ones may not. ``typed_numbers``
    (``live`` when None): a number sent as a string is refused, as JSON that came live has its
    numbers typed (a replayed dead letter's too, though it is not stamped as live)."""
    typed = live if typed_numbers is None else typed_numbers
    # item-less identify events are checked on their own and linked after the store
    rest, rest_at, identify_at = identify.split(records)
    rows = valid = content_ids = None
    if takes_records(rest):  # a few JSON records (HTTP): checked one by one, same verdicts
        rows, rejected, stamped = validate_small_rows(
            rest, settings, stamp_missing=live, typed_numbers=typed
        )
    elif live:
        valid, rejected, stamped = validate_live_events(rest, settings)
    else:
        valid, rejected = validate_events(rest, settings, typed_numbers=typed)
        stamped = np.zeros(len(valid), dtype=bool)
    refused = np.fromiter((r.index for r in rejected), np.int64, len(rejected))
    # the valid frame keeps the order of the records that passed validation
    kept = np.setdiff1d(np.arange(len(rest)), refused)
    positions = rest_at[kept]
    if isinstance(rest, pd.DataFrame) and not live:
        content_ids = _sent_without_id(rest)[kept]
    rejected = [replace(r, index=offset + int(rest_at[r.index])) for r in rejected]
    links: list[identify.Identify] = []
    if len(identify_at):
        links, bad = identify.check(records, identify_at, settings, offset)
        rejected = sorted([*rejected, *bad], key=lambda r: r.index)
    drop = settings.untracked == "drop"
    return CheckedEvents(
        records,
        valid,
        positions,
        rejected,
        offset,
        stamped,
        settings.weights,
        drop,
        tuple(links),
        rows,
        content_ids,
    )


def _sent_without_id(records: pd.DataFrame) -> np.ndarray:
    """Which records have no event_id (absent, as ``validate`` reads it: null or empty), so
    validation gave them a content id."""
    if "event_id" not in records:
        return np.ones(len(records), dtype=bool)
    return absent_mask(records["event_id"].to_numpy(dtype=object))


def store_events(
    store: EventStore,
    checked: CheckedEvents,
    *,
    source: str,
    on_stored: OnStored | None = None,
    attributor: Attributor | None = None,
) -> IngestResult:
    """Store a checked batch: valid events in one append, each rejection as a dead letter.

    ``on_stored`` gets the stored events' (actor, item) pairs once they are durable (the server
    updates its online state with them). With an ``attributor`` events naming a served list
    are checked against it and every event is attributed (``decisions.attribution``)."""
    positions, new, rejected, stamped, attributed = _store_checked(
        store, checked, on_stored, attributor
    )
    store.add_dead_letters(rejected, source)
    inserted = int(new.sum())
    return IngestResult(
        inserted,
        len(new) - inserted,
        tuple(rejected),
        int(stamped.sum()),
        _attributed(attributed, positions, checked.offset),
    )


def ingest_events(
    store: EventStore,
    records: pd.DataFrame | Sequence[Mapping[str, Any]],
    settings: EventSettings,
    *,
    source: str,
    offset: int = 0,
    on_stored: OnStored | None = None,
    attributor: Attributor | None = None,
) -> IngestResult:
    """Validate and store one batch. Valid events are stored even when neighbours are refused."""
    checked = check_events(records, settings, offset=offset)
    return store_events(store, checked, source=source, on_stored=on_stored, attributor=attributor)


def ingest_event_batches(
    store: EventStore,
    batches: Sequence[Sequence[Mapping[str, Any]]],
    settings: EventSettings,
    *,
    source: str | Sequence[str],
    on_stored: OnStored | None = None,
    attributor: Attributor | None = None,
    on_attributed: OnAttributed | None = None,
    state: OnlineState | None = None,
) -> list[IngestResult]:
    """Several requests' batches ingested as one: one validation, one store transaction (group
    commit). Each batch gets the result it would have got alone, its rejection indices counted in
    its own records; an event_id sent by two batches of the group is a duplicate (same content) or
    a rejected reuse (other content) in the later one, as inside one batch. The batches are live
    events: one without a timestamp gets the time received (``validate.STAMP_RULE``). ``state``:
    where identify events move their visitors' recent items (``privacy.identify``). ``source``
    names where dead letters came from, one for all or one per batch (a stream message each,
    which its dead letter must name: ``recsmith.streaming``)."""
    records = [record for batch in batches for record in batch]
    bounds = np.cumsum([0, *map(len, batches)])
    checked = check_events(records, settings, live=True)
    positions, new, rejected, stamped, attributed = _store_checked(
        store, checked, on_stored, attributor, state
    )
    if on_attributed is not None and len(attributed):
        on_attributed(attributed)
    owner = np.searchsorted(bounds, positions, side="right") - 1
    per_batch: list[list[tuple[int, str, str]]] = [[] for _ in batches]
    for index, rule, rid in _attributed(attributed, positions, 0):
        b = int(np.searchsorted(bounds, index, side="right")) - 1
        per_batch[b].append((index - int(bounds[b]), rule, rid))
    accepted = np.bincount(owner[new], minlength=len(batches))
    valid = np.bincount(owner, minlength=len(batches))
    timestamped = np.bincount(owner[stamped], minlength=len(batches))
    mine: list[list[Rejection]] = [[] for _ in batches]
    for r in rejected:  # few (bad records only); in index order, so each list stays sorted
        b = int(np.searchsorted(bounds, r.index, side="right")) - 1
        mine[b].append(replace(r, index=r.index - int(bounds[b])))
    if isinstance(source, str):
        store.add_dead_letters([r for own in mine for r in own], source)
    else:  # few (bad records only)
        for own, origin in zip(mine, source, strict=True):
            if own:
                store.add_dead_letters(own, origin)
    return [
        IngestResult(
            int(accepted[b]),
            int(valid[b] - accepted[b]),
            tuple(mine[b]),
            int(timestamped[b]),
            tuple(per_batch[b]),
        )
        for b in range(len(batches))
    ]


def _store_checked(
    store: EventStore,
    checked: CheckedEvents,
    on_stored: OnStored | None,
    attributor: Attributor | None = None,
    state: OnlineState | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Rejection], np.ndarray, pd.DataFrame]:
    """Refuse reused event_ids (and, with an ``attributor``, ids of served lists that are
    wrong), store the rest in one append, then attribute them.

    Returns the positions (in the checked records) of the events handed to the store, which of
    them it stored as new (the others were duplicates), the rejections sorted by index, not
    yet dead-lettered, which of the events handed over the server timestamped, and their
    attributions (``row`` indexes the events handed over). Duplicates are attributed again:
    attributions are idempotent on ``event_id``, so a batch retried after a failure between
    its append and its attributions gets them then. Identify events follow (``privacy.identify``:
    ``state`` is the online state their visitors' recent items move in), their positions after
    the events' and counted new when they made a link."""
    records, positions, rows = checked.records, checked.positions, checked.rows
    rejected, offset, stamped = checked.rejected, checked.offset, checked.stamped
    frame = checked.frame  # a small group's is built only if a step below needs it

    def valid() -> pd.DataFrame:
        nonlocal frame
        if frame is None:
            frame = frame_of_rows(rows or [])
        return frame

    count = len(positions)
    if rows is not None:  # ids all new and once, the usual group, need no frame to tell
        reused = reused_in_rows(store, rows, valid, stamped)
    else:
        reused = (
            reused_ids(store, valid(), stamped, checked.content_ids)
            if count
            else np.zeros(0, dtype=bool)
        )
    wrong = np.zeros(count, dtype=bool)
    refused: list[Rejection] = []
    shown = None
    # a small group naming no list and holding no outcome type has nothing to attribute
    attributes = (
        attributor is not None and count > 0 and (rows is None or attributor.concerns(rows))
    )
    if attributor is not None and attributes:
        refusals = attributor.check(valid())
        shown = refusals.shown
        for row, error in zip(refusals.rows.tolist(), refusals.errors, strict=True):
            if not reused[row]:  # a reused event_id says so first
                wrong[row] = True
                at = int(positions[row])
                refused.append(Rejection(offset + at, (error,), payload(_record(records, at))))
    drop = reused | wrong
    # erased or untracked people (``privacy.screen``): refused, and nothing about them kept
    private, withheld = screen_events(
        store,
        lambda: valid()["user_id"],
        positions,
        offset,
        skip=drop,
        drop=checked.drop_untracked,
    )
    drop |= private
    if drop.any():
        reuses = [_reuse(records, int(p), offset) for p in positions[reused]]
        rejected = sorted([*rejected, *reuses, *refused, *withheld], key=lambda r: r.index)
        if frame is not None:
            frame = frame[~drop].reset_index(drop=True)
        positions = positions[~drop]
        if rows is not None:
            rows = [row for row, out in zip(rows, drop.tolist(), strict=True) if not out]
        stamped = stamped[~drop]
    # a store binding the rows never reads the frame, so none is built for it
    stored = store.append(None if rows is not None and store.binds_rows else valid(), rows)
    if on_stored is not None and len(positions):
        weights = checked.weights
        on_stored(
            latest_of_rows(rows, weights) if rows is not None else latest_items(valid(), weights)
        )
    attributed = _NOTHING_ATTRIBUTED
    if attributor is not None and attributes and len(positions):
        attributed = attributor.attribute(valid(), shown)
        store.append_attributions(attributed)
    new = stored.new
    if checked.identify:  # after the events: a visitor's browsing in this batch moves too
        done, linked, unlinked = identify.apply(store, checked.identify, records, offset, state)
        at = np.asarray([x.position for x in checked.identify], np.int64)[done]
        positions = np.concatenate([positions, at])
        new = np.concatenate([new, linked[done]])
        stamped = np.concatenate([stamped, np.zeros(len(at), dtype=bool)])
        rejected = sorted([*rejected, *unlinked], key=lambda r: r.index)
    return positions, new, rejected, stamped, attributed


#: The attributions of a batch with none (most live groups): built once, since ``pd.DataFrame()``
#: costs ~30 µs a group; never changed by its readers.
_NOTHING_ATTRIBUTED = pd.DataFrame()


def _attributed(
    attributed: pd.DataFrame, positions: np.ndarray, offset: int
) -> tuple[tuple[int, str, str], ...]:
    """(index in the request or file, rule, recommendation_id) per attributed event."""
    if len(attributed) == 0:
        return ()
    at = positions[attributed["row"].to_numpy(dtype=np.int64)] + offset
    return tuple(
        zip(
            at.tolist(),
            attributed["rule"].tolist(),
            attributed["recommendation_id"].tolist(),
            strict=True,
        )
    )


def _record(
    records: pd.DataFrame | Sequence[Mapping[str, Any]], position: int
) -> pd.Series | Mapping[str, Any]:
    return records.iloc[position] if isinstance(records, pd.DataFrame) else records[position]


def _reuse(
    records: pd.DataFrame | Sequence[Mapping[str, Any]], position: int, offset: int
) -> Rejection:
    """The rejection of a record whose event_id names a different event, with its payload."""
    return Rejection(
        offset + position, (FieldError("event_id", REASON),), payload(_record(records, position))
    )


def ingest_items(
    store: EventStore,
    records: Sequence[Mapping[str, Any]],
    *,
    source: str | Sequence[str],
    offset: int = 0,
) -> IngestResult:
    """Validate and upsert catalog records; an item re-sent replaces the stored one (not a
    duplicate). ``source``: where dead letters came from, one for all or one per record (then
    each is its source's record 0: a stream message each, ``recsmith.streaming``)."""
    items, rejected = validate_items(records, offset=offset)
    if items:
        store.upsert_items(items)
    if isinstance(source, str):
        store.add_dead_letters(rejected, source)
    else:  # few (bad records only)
        for r in rejected:
            store.add_dead_letters([replace(r, index=0)], source[r.index - offset])
    return IngestResult(len(items), 0, tuple(rejected))
