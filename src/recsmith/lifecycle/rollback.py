"""Automatic rollback: a release that fails or slows requests soon after a deploy is undone.

Each server process that swaps to a newly deployed release watches the model routes it answers
for ``[lifecycle] watch_window_s``. Once it has seen ``min_requests`` of them, a 5xx share above
``max_error_rate`` or a p99 above ``max_p99_ms`` rolls the registry back to the previous release
(every server follows within a second) and logs why. Judged per process: with several workers each
sees its share of the traffic, and rates do not depend on the share.

Only a release this process swapped *to* is watched (not the one it started with: nothing to go
back to that it knows is better), and the rollback happens under the registry lock and only if
that release is still current — several processes reaching the same verdict roll back once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from fastapi.concurrency import run_in_threadpool

from recsmith.config import LifecycleSettings
from recsmith.governance.audit import record_audit
from recsmith.governance.releases import ModelRegistry
from recsmith.lifecycle.registry_lock import registry_lock
from recsmith.store.base import EventStore

log = logging.getLogger(__name__)
#: The routes a release answers (its lists); events, catalogue and admin routes do not depend on it.
MODEL_ROUTE = re.compile(
    r"^/v1/(users/[^/]+/recommendations|items/[^/]+/(similar|together)|trending|popular)$"
)
#: Latencies kept per watch (a ring: the p99 of the newest this many requests).
KEPT = 20_000


@dataclass(frozen=True)
class Breach:
    version: str
    requests: int
    error_rate: float
    p99_ms: float
    reason: str


class RollbackGuard:
    """Counts model-route requests of the release being watched; ``breach`` judges them."""

    def __init__(self, registry: ModelRegistry, settings: LifecycleSettings) -> None:
        self.registry, self.settings = registry, settings
        self.version: str | None = None
        self._until = 0.0
        self._latency = np.zeros(KEPT, dtype=np.float64)
        self._requests = 0
        self._errors = 0
        #: told (breach, release now current) after each rollback: the server records it in the
        #: audit trail
        self.on_rollback: Callable[[Breach, str], None] | None = None

    def swapped(self, new: str, old: str | None) -> None:
        """The server now serves ``new`` instead of ``old``: watch it if that was a deploy.

        A deploy pushes the old release onto the registry's history; a rollback pops the newer
        one off it. So a swap whose ``old`` is in the history is a deploy; any other (a rollback,
        the first load) is not watched — else an overloaded machine would roll back release after
        release."""
        if old is not None and old in self.registry.history():
            self.watch_release(new)

    def watch_release(self, version: str) -> None:
        """Start watching ``version`` for ``watch_window_s``."""
        self.version = version
        self._until = time.monotonic() + self.settings.watch_window_s
        self._requests = self._errors = 0

    def watches(self, path: str) -> bool:
        """Whether a request to ``path`` is timed for the verdict: a model route's while a
        release is watched (``serving.edge`` asks at the request's start, then ``observe``s it;
        between deploys this is an attribute check)."""
        return self.version is not None and MODEL_ROUTE.match(path) is not None

    def observe(self, status: int, seconds: float) -> None:
        if self.version is None:
            return
        self._latency[self._requests % KEPT] = seconds
        self._requests += 1
        self._errors += status >= 500

    def breach(self) -> Breach | None:
        """The verdict so far: None while within thresholds, too few requests or not watching
        (a window that ended stops the watch)."""
        if self.version is None:
            return None
        if time.monotonic() > self._until:
            self.version = None
            return None
        n = self._requests
        if n < self.settings.min_requests:
            return None
        error_rate = self._errors / n
        p99_ms = float(np.quantile(self._latency[: min(n, KEPT)], 0.99)) * 1000
        reasons = []
        if error_rate > self.settings.max_error_rate:
            reasons.append(f"error rate {error_rate:.1%} > {self.settings.max_error_rate:.1%}")
        if p99_ms > self.settings.max_p99_ms:
            reasons.append(f"p99 {p99_ms:.0f} ms > {self.settings.max_p99_ms:.0f} ms")
        if not reasons:
            return None
        return Breach(self.version, n, error_rate, p99_ms, " and ".join(reasons))

    def roll_back(self, breach: Breach) -> str | None:
        """Back to the previous release if ``breach.version`` is still current (under the
        registry lock); returns the release now current, or None when nothing was done."""
        with registry_lock(self.registry.root, "lifecycle"):
            if self.registry.current() != breach.version or self.registry.previous() is None:
                return None
            back = self.registry.rollback()
            self.registry.request_reload()
        log.error(
            "rolled back %s to %s after %d requests: %s",
            breach.version,
            back,
            breach.requests,
            breach.reason,
        )
        if self.on_rollback is not None:
            self.on_rollback(breach, back)
        return back

    async def watch(self, interval_s: float = 1.0) -> None:
        """Judge every ``interval_s``; roll back on a breach (forever, cancelled by the
        lifespan)."""
        while True:
            await asyncio.sleep(interval_s)
            breach = self.breach()
            if breach is not None:
                self.version = None  # judged: the reloader's swap back starts no new watch
                try:
                    await run_in_threadpool(self.roll_back, breach)
                except Exception as exc:  # an unreachable registry must not end the watch
                    log.error("rollback of %s failed: %s", breach.version, exc)


def audit_rollback(store: EventStore, breach: Breach, back: str) -> None:
    """The audit record of an automatic rollback: no key asked for it, the detail says why."""
    record_audit(
        store,
        action="rollback",
        target=back,
        detail={
            "automatic": True,
            "from": breach.version,
            "reason": breach.reason,
            "requests": breach.requests,
        },
    )
