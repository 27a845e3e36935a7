"""The consumer loop: fetch a batch, store it, acknowledge it; the same for every broker.

Acknowledged means stored: a batch is acknowledged only after ``ingest_messages`` returned, i.e.
after the store committed its events, items and dead letters. A consumer killed at any point
before that leaves its batch unacknowledged, and the broker delivers it to another consumer of
the group (after the claim timeout), where storing it again is a no-op. A store that is down
(``StoreUnavailable``) fails the batch as a whole: it is released to the broker and retried after
a pause, never acknowledged. A broker call that fails (the broker restarting, a timeout) is
retried after the same pause: a batch stored but not acknowledged then is delivered again, a
no-op. Any other error is a bug and stops the consumer with its batch unacknowledged.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recsmith.config import EventSettings
from recsmith.errors import StoreUnavailable
from recsmith.store.base import EventStore
from recsmith.store.ingest import OnStored
from recsmith.streaming.broker import Broker
from recsmith.streaming.ingest import ingest_messages
from recsmith.streaming.metrics import StreamMetrics

if TYPE_CHECKING:
    from recsmith.decisions.attribution import Attributor
    from recsmith.serving.online_state import OnlineState

log = logging.getLogger(__name__)


@dataclass
class ConsumerTotals:
    """What one consumer did since it started (its ``--json`` line)."""

    messages: int = 0
    acked: int = 0
    events_stored: int = 0
    events_duplicate: int = 0
    items_stored: int = 0
    rejected: int = 0
    already_rejected: int = 0
    store_failures: int = 0
    broker_failures: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class StreamConsumer:
    """One consumer of a group (module docstring). Not thread-safe: one loop per instance."""

    broker: Broker
    store: EventStore
    settings: EventSettings
    metrics: StreamMetrics = field(default_factory=StreamMetrics.create)
    batch_size: int = 500
    wait_s: float = 1.0
    #: how often the group's lag is read from the broker (one round trip)
    lag_every_s: float = 5.0
    #: pause before a batch the store refused is retried
    retry_after_s: float = 1.0
    on_stored: OnStored | None = None
    attributor: Attributor | None = None
    state: OnlineState | None = None
    totals: ConsumerTotals = field(default_factory=ConsumerTotals)
    _lag_due: float = 0.0
    _since_lag: tuple[float, int] = (0.0, 0)  # (monotonic time, events stored) at the last one

    def step(self) -> int:
        """Fetch, store and acknowledge one batch; the number of messages it held."""
        messages = self.broker.fetch(self.batch_size, self.wait_s)
        if not messages:
            return 0
        try:
            outcome = ingest_messages(
                self.store,
                messages,
                self.settings,
                label=self.broker.label,
                on_stored=self.on_stored,
                attributor=self.attributor,
                state=self.state,
            )
        except StoreUnavailable as exc:
            log.warning("store unavailable (%s): %d messages released", exc.cause, len(messages))
            self.broker.release(messages)
            self.metrics.store_failures.inc()
            self.totals.store_failures += 1
            time.sleep(self.retry_after_s)
            return 0
        self.broker.ack(messages)
        self.metrics.count(outcome, len(messages))
        t = self.totals
        t.messages += len(messages)
        t.acked += len(messages)
        t.events_stored += outcome.events_stored
        t.events_duplicate += outcome.events_duplicate
        t.items_stored += outcome.items_stored
        t.rejected += outcome.rejected
        t.already_rejected += outcome.already_rejected
        return len(messages)

    def refresh_lag(self, *, force: bool = False) -> bool:
        """Read the group's lag into the gauges when due (or ``force``); whether it is drained."""
        now = time.monotonic()
        if not force and now < self._lag_due:
            return False
        self._lag_due = now + self.lag_every_s
        lag = self.broker.lag()
        self.metrics.show_lag(lag)
        then, stored_then = self._since_lag
        if then:
            rate = (self.totals.events_stored - stored_then) / max(now - then, 1e-9)
            self.metrics.events_per_second.set(rate)
        self._since_lag = (now, self.totals.events_stored)
        return lag.drained

    def run(self, stop: threading.Event, *, until_drained: bool = False) -> ConsumerTotals:
        """Consume until ``stop`` is set (between batches) or, with ``until_drained``, until a
        fetch finds nothing and the group has nothing pending nor undelivered."""
        while not stop.is_set():
            try:
                got = self.step()
                self.refresh_lag()
                if not got and until_drained and self.refresh_lag(force=True):
                    break
            except self.broker.errors as exc:  # stored but not acknowledged is redelivered
                log.warning(
                    "broker %s: %s %s; retrying", self.broker.label, type(exc).__name__, exc
                )
                self.metrics.broker_failures.inc()
                self.totals.broker_failures += 1
                stop.wait(self.retry_after_s)
        return self.totals
