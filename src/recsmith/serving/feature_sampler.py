"""``FeatureSampler``: the ranker's feature rows of one query in ``[monitor]
feature_sample_every``, recorded off the request path for feature drift
(``monitoring.features``).

On the request path it costs a counter step per pipeline call (``pick``: no clock, no lock, no
allocation for a call with no sampled query); a sampled query's rows (``ROWS_PER_QUERY`` at most,
chosen by ``query_rows`` as the training profile chose them) are copied into a buffer under a
lock. One writer thread stores the buffer every ``FLUSH_S`` and applies retention
(``feature_retain_days``, ``feature_rows_kept``) every hour. At most ``feature_rows_per_minute``
rows a process (a token bucket): a busy server samples a steady trickle, not a flood. A store
that is down keeps the buffer for the next flush, up to ``MAX_BUFFERED`` rows (the oldest go):
a sample can lose rows without consequence, a request is never slowed for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from recsmith.config import MonitorSettings
from recsmith.errors import StoreUnavailable
from recsmith.monitoring.feature_rows import SampleRow, encode
from recsmith.monitoring.features import query_rows
from recsmith.store.base import EventStore

log = logging.getLogger(__name__)

#: How often the writer stores what gathered (seconds).
FLUSH_S = 5.0
#: How often retention runs (seconds).
RETENTION_EVERY_S = 3600.0
#: Rows waiting for the writer at most.
MAX_BUFFERED = 10_000


class FeatureSampler:
    """See module docstring. One per server process; ``start`` the writer, ``close`` to flush.
    ``pick`` and ``tap`` run on the event loop (the coalescer's flush), the writer on its own
    thread."""

    def __init__(
        self,
        store: EventStore,
        settings: MonitorSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self.settings, self._clock = store, settings, clock
        self.every = settings.feature_sample_every
        self._seen = 0  # queries counted so far
        self._rate = settings.feature_rows_per_minute / 60.0
        self._tokens = float(settings.feature_rows_per_minute)
        self._filled = clock()
        self._buffer: deque[SampleRow] = deque(maxlen=MAX_BUFFERED)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_retention = 0.0
        self.recorded = 0  # rows buffered
        self.limited = 0  # rows left out by the rate limit

    @property
    def enabled(self) -> bool:
        return self.every > 0

    def pick(self, n: int) -> np.ndarray | None:
        """Which of the next ``n`` queries are sampled (indices), None when none is."""
        if self.every <= 0:
            return None
        first = -self._seen % self.every
        self._seen += n
        if first >= n:
            return None
        return np.arange(first, n, self.every)

    def tap(self, release: str, picked: np.ndarray) -> Callable[[np.ndarray, np.ndarray], None]:
        """The ``Pipeline.answer(feature_tap=...)`` of a call whose ``picked`` queries are
        sampled, for ``release``."""

        def keep(features: np.ndarray, query: np.ndarray) -> None:
            rows = query_rows(query, picked)
            allowed = self._allowance(len(rows))
            self.limited += len(rows) - allowed
            if not allowed:
                return
            taken = encode(release, time.time_ns() // 1000, features[rows[:allowed]])
            with self._lock:
                self._buffer.extend(taken)
            self.recorded += allowed

        return keep

    def _allowance(self, wanted: int) -> int:
        now = self._clock()
        limit = float(self.settings.feature_rows_per_minute)
        self._tokens = min(limit, self._tokens + (now - self._filled) * self._rate)
        self._filled = now
        allowed = min(wanted, int(self._tokens))
        self._tokens -= allowed
        return allowed

    # ---- the writer ---------------------------------------------------------------------

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="recsmith-features", daemon=True)
        self._thread.start()

    def flush(self) -> int:
        """Store the buffered rows (all back in the buffer when the store is down); returns how
        many were stored."""
        with self._lock:
            batch = list(self._buffer)
            self._buffer.clear()
        if not batch:
            return 0
        try:
            return self._store.append_feature_samples(batch)
        except StoreUnavailable:
            with self._lock:  # the oldest go first when the buffer overflows
                self._buffer.extendleft(reversed(batch))
            return 0

    def retain(self) -> int:
        """Delete rows past ``feature_retain_days`` and beyond ``feature_rows_kept``."""
        cutoff = time.time_ns() // 1000 - int(self.settings.feature_retain_days * 86_400e6)
        return self._store.trim_feature_samples(cutoff, self.settings.feature_rows_kept)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the writer and store what is buffered (one try)."""
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self.enabled:
            try:
                self.flush()
            except Exception as exc:  # shutting down: say so, never raise
                log.warning("feature samples not stored at shutdown: %s", exc)

    def _run(self) -> None:
        while not self._wake.wait(FLUSH_S):
            try:
                self.flush()
                if time.monotonic() >= self._next_retention:
                    self.retain()
                    self._next_retention = time.monotonic() + RETENTION_EVERY_S
            except StoreUnavailable as exc:
                log.warning("feature samples: store unavailable (%s)", exc.cause)
            except Exception:  # never let the writer die: the next turn tries again
                log.exception("feature sample writer")
