"""``BanditBoard``: one server process's link to the shared bandit counts in the store.

Requests read ``counts`` (an immutable snapshot: no store round trip on the serving path) and
report what they showed; the event path reports attributed outcomes; ``sync`` — every
``SYNC_INTERVAL_S`` on the server's loop, off the request path — adds this process's increments
to the store's ``bandit_arms`` (an UPSERT that adds, so workers and replicas never overwrite each
other) and reads the totals back. An outcome therefore reaches every worker's posterior within
about two intervals, and the counts survive a restart because they live in the store.

What counts: an item becomes an arm the first time an exploring slot shows it; from then on its
impressions in exploring lists are its trials, and its attributed clicks and purchases (any
list) its successes. What a kill can lose: the increments of the last interval, as with the
decision log; an event re-sent after its first attribution counts again (attribution itself is
idempotent; these counters are not).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
import pandas as pd
from fastapi.concurrency import run_in_threadpool

from recsmith.errors import StoreUnavailable
from recsmith.exploration.arms import ArmCounts
from recsmith.store.base import EventStore

log = logging.getLogger(__name__)

#: Seconds between syncs with the store (the "within seconds" of learning).
SYNC_INTERVAL_S = 1.0


class ArmTable(Protocol):
    """Where the shared counts live: the store itself, or ``redis_arms.RedisArms`` over it."""

    def add_arm_counts(self, counts: Sequence[tuple[str, int, int, int]]) -> None: ...
    def arm_counts(self, version: int = 0) -> ArmCounts: ...


class BanditBoard:
    """See module docstring. ``kinds`` maps event types to outcome kinds (``[decisions]``);
    ``table``: where the counts are shared (default: the store's ``bandit_arms``)."""

    def __init__(
        self, store: EventStore, kinds: Mapping[str, str], table: ArmTable | None = None
    ) -> None:
        self._table: ArmTable = store if table is None else table
        self._kinds = dict(kinds)
        self._lock = threading.Lock()
        self._shown: list[np.ndarray] = []
        self._clicks: list[np.ndarray] = []
        self._purchases: list[np.ndarray] = []
        #: items a flush took from ``_shown`` into the store, until a read of the counts holds
        #: them: an outcome attributed in between still finds its arm
        self._in_flight: list[np.ndarray] = []
        self.counts = ArmCounts()

    def shown(self, item_ids: Sequence[str], explored: Sequence[bool]) -> None:
        """One exploring list's items: the explored ones, and those already arms, are trials."""
        ids = np.asarray(item_ids, dtype=object)
        if len(ids) == 0:
            return
        known = self.counts.arms
        is_arm = np.isin(ids, known) if len(known) else np.zeros(len(ids), bool)
        counted = ids[np.asarray(explored, bool) | is_arm]
        if len(counted):
            with self._lock:
                self._shown.append(counted)

    def attributed(self, frame: pd.DataFrame) -> None:
        """A batch of attributions (``Attributor.attribute``'s frame, with ``item_id``): clicks
        and purchases of arms (known, or shown since the last sync) are successes."""
        if len(frame) == 0 or not self.active:
            return  # no arms yet (a deployment that does not explore): nothing to count
        kind = frame["event_type"].map(self._kinds).to_numpy(dtype=object)
        ids = frame["item_id"].to_numpy(dtype=object)
        with self._lock:
            waiting = [*self._shown, *self._in_flight]
            pending = np.concatenate(waiting) if waiting else np.zeros(0, object)
            arms = np.union1d(self.counts.arms, pending) if len(pending) else self.counts.arms
            is_arm = np.isin(ids, arms) if len(arms) else np.zeros(len(ids), bool)
            self._clicks.append(ids[is_arm & (kind == "click")])
            self._purchases.append(ids[is_arm & (kind == "purchase")])

    @property
    def active(self) -> bool:
        """Whether this process has arms or increments (an experiment's exploring variant shows
        items even when the deployed model does not explore)."""
        return bool(len(self.counts.arms) or self._shown or self._in_flight)

    def increments(self) -> list[tuple[str, int, int, int]]:
        """Take what gathered since the last call as ``(arm, shown, clicks, purchases)`` rows."""
        with self._lock:
            parts = [self._shown, self._clicks, self._purchases]
            self._in_flight.extend(self._shown)
            self._shown, self._clicks, self._purchases = [], [], []
        joined = [np.concatenate(p) if p else np.zeros(0, object) for p in parts]
        every = np.concatenate(joined)
        if len(every) == 0:
            return []
        arms, inverse = np.unique(every.astype(str), return_inverse=True)
        which = np.repeat(np.arange(3), [len(j) for j in joined])
        table = np.zeros((len(arms), 3), np.int64)
        np.add.at(table, (inverse, which), 1)
        return list(zip(arms.tolist(), *(table[:, c].tolist() for c in range(3)), strict=True))

    def sync(self) -> None:
        """Add this process's increments to the store and read the shared totals back; a store
        outage keeps the increments for the next sync and serves the last snapshot."""
        if not self.flush():
            return
        try:
            fresh = self._table.arm_counts(self.counts.version + 1)
        except StoreUnavailable as exc:
            log.warning("bandit counts not read (%s): serving the last snapshot", exc.cause)
            return
        with self._lock:  # the read holds every arm flushed before it
            if not _same(fresh, self.counts):
                self.counts = fresh
            self._in_flight = []

    def flush(self) -> bool:
        """Add this process's increments to the store; False (increments kept) on an outage."""
        rows = self.increments()
        try:
            if rows:
                self._table.add_arm_counts(rows)
        except StoreUnavailable as exc:
            self._put_back(rows)
            log.warning("bandit counts not stored (%s): kept for the next sync", exc.cause)
            return False
        return True

    def _put_back(self, rows: list[tuple[str, int, int, int]]) -> None:
        if not rows:
            return
        arms = np.asarray([r[0] for r in rows], dtype=object)
        table = np.asarray([r[1:] for r in rows], np.int64)
        with self._lock:
            for column, target in enumerate((self._shown, self._clicks, self._purchases)):
                target.append(np.repeat(arms, table[:, column]))


def _same(a: ArmCounts, b: ArmCounts) -> bool:
    """Whether two snapshots hold the same numbers (then the old version, and its cached
    posterior draws, stay)."""
    return (
        len(a.arms) == len(b.arms)
        and bool(np.all(a.arms == b.arms))
        and all(
            np.array_equal(x, y)
            for x, y in ((a.shown, b.shown), (a.clicks, b.clicks), (a.purchases, b.purchases))
        )
    )


class Synced(Protocol):
    """What the sync loop drives: ``BanditBoard``, ``contextual.ContextualBoards``."""

    @property
    def active(self) -> bool: ...
    def sync(self) -> None: ...


async def keep_synced(
    board: Synced, exploring: Callable[[], bool], interval_s: float = SYNC_INTERVAL_S
) -> None:
    """The server's sync loop (a task of its lifespan): ``sync`` in the thread pool every
    ``interval_s`` while the served model explores or the board is ``active`` (a deployment
    without ``[explore]`` pays nothing). At shutdown the server calls ``flush`` once more."""
    while True:
        if exploring() or board.active:
            await run_in_threadpool(board.sync)
        await asyncio.sleep(interval_s)


def explores(served: object) -> bool:
    """Whether a served model is an exploring pipeline (``[explore]``)."""
    return getattr(served, "explorer", None) is not None
