"""``DecisionLog``: served lists recorded off the request path, in batches, by one writer thread.

A request only appends its ``Decision`` to a bounded in-memory buffer (a lock and a deque append:
microseconds); a background thread stores what gathered every ``flush_interval_s`` in one
transaction. Why not write per request: an insert per list would put a store round trip (and,
on SQLite, the one write lock and an fsync) into every recommendation's latency.

What this costs in durability, stated: a ``kill -9`` loses the decisions buffered since the last
flush, at most ``flush_interval_s`` of them (1 s at most, by the setting's bound). A clean
shutdown (SIGTERM, the server's lifespan ending) flushes everything first. Events are never at
risk: they keep their own path (acknowledged = committed, ``serving.group_commit``).

A full buffer (the store down for long, or slower than the traffic) drops the *oldest* decision
for each new one, counted in ``dropped`` (``/health/ready`` and the
``recsmith_decisions_dropped_total`` counter): the newest lists are the ones clients are about to
send events for, and a request is never blocked or failed for the log's sake. A store outage
(``StoreUnavailable``) keeps the batch in the buffer for the next flush; any other error is a bug,
logged with its traceback, and that batch is dropped (counted) rather than retried forever.

Decisions not stored yet stay findable (``pending``, ``pending_for``): an event may name a
``recommendation_id`` issued a moment ago, and attribution must not call it unknown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from recsmith.config import DecisionSettings
from recsmith.decisions.record import Decision
from recsmith.decisions.requests import RequestTally
from recsmith.errors import StoreUnavailable
from recsmith.store.base import EventStore

log = logging.getLogger(__name__)

#: How often the writer applies ``retain_days`` (seconds): deleting is cheap but not free.
RETENTION_EVERY_S = 3600.0
#: Decisions per store transaction at most: a long outage's backlog goes in bounded commits.
MAX_BATCH = 5000


@dataclass(frozen=True, slots=True)
class LogStatus:
    """What readiness reports of the log."""

    enabled: bool
    buffered: int
    dropped: int
    written: int
    last_error: str | None


class DecisionLog:
    """See module docstring. One per server process; ``start`` the writer, ``close`` to flush."""

    def __init__(
        self,
        store: EventStore,
        settings: DecisionSettings,
        *,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self._store = store
        self.settings = settings
        self._on_drop = on_drop
        self._buffer: deque[Decision] = deque()
        self._pending: dict[str, Decision] = {}  # buffered and in flight, by id
        self.requests = RequestTally()  # per experiment variant, stored with each flush
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._next_retention = 0.0
        self.dropped = 0
        self.written = 0
        self.last_error: str | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def start(self) -> None:
        """Start the writer thread (a daemon: a process that exits without ``close`` loses at
        most the buffer, as a kill would)."""
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="recsmith-decisions", daemon=True)
        self._thread.start()

    def record(self, decision: Decision) -> None:
        """Buffer one decision; never blocks on the store, never raises for it."""
        if not self.enabled:
            return
        dropped = 0
        with self._lock:
            if len(self._buffer) >= self.settings.buffer_size:
                old = self._buffer.popleft()
                self._pending.pop(old.recommendation_id, None)
                dropped = 1
            self._buffer.append(decision)
            self._pending[decision.recommendation_id] = decision
        if dropped:
            self._dropped(dropped)

    def store_now(self, decision: Decision) -> None:
        """Store one decision before returning (blocking: call it off the event loop), for a
        list that other server processes must see at once: a page view's (``recsmith.capping``).
        A store outage buffers it like ``record``; a bug is logged, never raised."""
        if not self.enabled:
            return
        try:
            self._store.append_decisions([decision])
        except StoreUnavailable:
            self.record(decision)
            return
        except Exception:
            log.exception("decision log: a page view's decision could not be stored")
            self.record(decision)
            return
        with self._lock:
            self.written += 1

    def pending(self, recommendation_id: str) -> Decision | None:
        """A decision recorded but not stored yet (None when stored, dropped or unknown)."""
        return self._pending.get(recommendation_id)

    def pending_for(self, units: Collection[str]) -> list[Decision]:
        """The not-yet-stored decisions shown to any of ``units`` (the window rule's share of the
        buffer: at most ``flush_interval_s`` of traffic, so a scan is cheap)."""
        if not self._pending:
            return []
        with self._lock:
            decisions = list(self._pending.values())
        return [d for d in decisions if d.unit is not None and d.unit in units]

    def status(self) -> LogStatus:
        return LogStatus(
            self.enabled, len(self._buffer), self.dropped, self.written, self.last_error
        )

    def flush(self) -> int:
        """Store what is buffered now, and the request counts (the writer's step; ``close`` and
        tests call it too). Returns the decisions stored; on a store outage they go back to the
        buffer."""
        self._flush_requests()
        stored = 0
        while True:
            with self._lock:
                batch = [self._buffer.popleft() for _ in range(min(MAX_BATCH, len(self._buffer)))]
            if not batch:
                return stored
            try:
                self._store.append_decisions(batch)
            except StoreUnavailable as exc:
                self._put_back(batch, exc.cause)
                return stored
            except Exception as exc:  # a bug: report it, do not retry the same batch forever
                log.exception("decision log: a batch of %d could not be stored", len(batch))
                self.last_error = repr(exc)
                self._forget(batch)
                self._dropped(len(batch))
                return stored
            self._forget(batch)
            self.last_error = None
            stored += len(batch)
            self.written += len(batch)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the writer and store everything buffered (one try: a store that is down now
        loses the buffer, and says so in the log)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self.enabled:
            self.flush()
            if self._buffer:
                log.warning(
                    "decision log: %d decisions not stored at shutdown (%s)",
                    len(self._buffer),
                    self.last_error,
                )

    def _flush_requests(self) -> None:
        """Add the request counts to the store's; an outage keeps them for the next flush."""
        taken = self.requests.take()
        if not taken:
            return
        try:
            self._store.add_request_counts(taken)
        except StoreUnavailable as exc:
            self.requests.put_back(taken)
            self.last_error = exc.cause
        except Exception as exc:  # a bug: report it, do not retry the same counts forever
            log.exception("decision log: %d request counts could not be stored", len(taken))
            self.last_error = repr(exc)

    # ---- the writer ---------------------------------------------------------------------

    def _run(self) -> None:
        """Flush on a fixed cadence (not ``interval`` after the last flush ended), so a slow
        commit does not stretch what a kill can lose beyond one interval plus that commit."""
        interval = self.settings.flush_interval_s
        due = time.monotonic() + interval
        while not self._stopping:
            self._wake.wait(max(0.0, due - time.monotonic()))
            due = max(due + interval, time.monotonic())
            if self._stopping:
                return
            try:
                self.flush()
                self._apply_retention()
            except Exception:  # never let the writer die: the next interval tries again
                log.exception("decision log writer")

    def _apply_retention(self) -> None:
        now = time.monotonic()
        if now < self._next_retention:
            return
        self._next_retention = now + RETENTION_EVERY_S
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.retain_days)
        try:
            self._store.delete_decisions_before(cutoff)
        except StoreUnavailable:
            self._next_retention = now  # try again at the next flush

    def _put_back(self, batch: list[Decision], cause: str) -> None:
        """A failed batch goes back to the front, oldest first; beyond the bound the oldest go."""
        self.last_error = cause
        dropped = 0
        with self._lock:
            self._buffer.extendleft(reversed(batch))
            while len(self._buffer) > self.settings.buffer_size:
                old = self._buffer.popleft()
                self._pending.pop(old.recommendation_id, None)
                dropped += 1
        if dropped:
            self._dropped(dropped)

    def _forget(self, batch: list[Decision]) -> None:
        with self._lock:
            for d in batch:
                self._pending.pop(d.recommendation_id, None)

    def _dropped(self, n: int) -> None:
        self.dropped += n
        if self._on_drop is not None:
            self._on_drop(n)
