"""The decision log's recent window, kept in memory and read incrementally.

The server's background watches (exposure gauges and the amortised boost in
``fairness.watch``, the score drift in ``monitoring.gauges``) each want "every item shown since
``now - window``" on every refresh. Reading that window whole each time is a scan of up to
millions of rows into pandas, in every worker; under load it was most of the workers' busy time.
So this keeps the last answer and, on the next ask, reads only what may have changed since: the
rows served after the previous read (less ``SETTLE_S``, since a decision is stored up to
``decisions.flush_interval_s`` after it was served), drops the rows that fell out of the window,
and keeps the rest.

The answer is the one a full ``scan_decisions(since)`` would give, row for row and in its order.
Kept rows can change only by a late write (a writer that buffered through a store outage) or a
delete (retention, erasure); both change how many decisions the store holds in the kept span, so
each incremental read first counts them (one index range count) and reads the window whole when
the count disagrees. A wider window than the kept one reads only the part before it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pandas as pd

from recsmith.store.base import EventStore

#: Re-read this much before the previous read: decisions served then may still have been in a
#: writer's buffer (flushed within ``decisions.flush_interval_s``, at most 1 s).
SETTLE_S = 5.0


class DecisionWindow:
    """``scan_decisions(since)`` of one store, answered from memory plus what is new."""

    def __init__(self, store: EventStore, settle_s: float = SETTLE_S) -> None:
        self.store = store
        self.settle = timedelta(seconds=settle_s)
        self._lock = threading.Lock()  # the two watches run in worker threads
        self._frame: pd.DataFrame | None = None
        self._since: datetime | None = None
        self._read_at: datetime | None = None
        self.full_reads = 0  # how often the whole window was read (tests, benchmarks)

    def scan(self, since: datetime, now: datetime) -> pd.DataFrame:
        """Every shown item served at or after ``since`` (``scan_decisions``' frame); ``now`` is
        the time of this read (the clock the next read's overlap is measured from)."""
        with self._lock:
            frame = self._incremental(since)
            if frame is None:
                frame = self.store.scan_decisions(since)
                self.full_reads += 1
            self._frame, self._since, self._read_at = frame, since, now
            return frame

    def _incremental(self, since: datetime) -> pd.DataFrame | None:
        """The window from the kept rows and reads of the recent ones (and of the older ones,
        for a window wider than the kept one: the two watches ask for different spans); None
        when a full read is needed (nothing kept, or the kept span changed in the store)."""
        if self._frame is None or self._since is None or self._read_at is None:
            return None
        frame = self._frame
        if since < self._since:
            frame = _joined(self.store.scan_decisions(since, self._since), frame)
        cut = max(self._read_at - self.settle, since)
        served = frame["served_at"]
        kept = frame[(served >= since) & (served < cut)]
        ids = kept["recommendation_id"]
        lists = int((ids != ids.shift()).sum())  # sorted by time and id: one run per decision
        if lists != self.store.count_decisions(since, cut):
            return None
        return _joined(kept, self.store.scan_decisions(cut))


def _joined(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Two ``scan_decisions`` frames of consecutive spans as one, in order."""
    if before.empty:
        return after.reset_index(drop=True)
    if after.empty:
        return before.reset_index(drop=True)
    return pd.concat([before, after], ignore_index=True)


class WindowedStore:
    """A store whose open-ended ``scan_decisions(since)`` reads through a ``DecisionWindow``;
    everything else goes to the store. One per server process, shared by its watches."""

    def __init__(
        self, store: EventStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._store = store
        self.window = DecisionWindow(store)
        self.clock = clock  # the time of a read: the decision log's clock (a benchmark's own)

    def scan_decisions(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        if since is None or until is not None:
            return self._store.scan_decisions(since, until)
        return self.window.scan(since, self.clock())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def windowed(
    store: EventStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> EventStore:
    """``store`` with its decision window read incrementally (``WindowedStore``)."""
    return cast(EventStore, WindowedStore(store, clock))
