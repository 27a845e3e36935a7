"""A Redis connection that fails soft: what the online state and the response cache share.

Both keep serving from in-process copies when Redis stops answering. ``RedisLink.run`` performs a
call and, on any Redis error, marks the link down: calls made in the next ``RETRY_S`` seconds
return their fallback at once instead of each waiting for a timeout, and the next call after that
tries Redis again. The link stays down (``degraded``: what readiness and the metrics report) until
a call succeeds, however long the server is idle meanwhile; ``probe`` pings when nothing else has
talked to Redis lately, so the state is true from start-up on and for an idle server too. Each
outage is logged when it starts and when it ends. Timeouts are 50 ms: a slow Redis must not hold a
request for longer than the pipeline itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from recsmith.errors import MissingExtraError

log = logging.getLogger(__name__)

T = TypeVar("T")


class RedisLink:
    """See module docstring. ``what`` names the component in logs (``online_state``, …)."""

    RETRY_S = 5.0
    #: ``probe`` pings only when no call has reached Redis for this long.
    PROBE_AFTER_S = 1.0

    def __init__(self, url: str, what: str, *, decode: bool) -> None:
        try:
            import redis
        except ImportError:
            raise MissingExtraError("redis", "redis") from None
        self.what = what
        self.client: Any = redis.Redis.from_url(
            url, socket_timeout=0.05, socket_connect_timeout=0.05, decode_responses=decode
        )
        self._errors = redis.RedisError
        self._down = False
        self._retry_at = 0.0  # while down: no call tries Redis before this (monotonic seconds)
        self._last_ok = float("-inf")
        self.probe()  # down from the start if Redis is: readiness must not say otherwise

    @property
    def degraded(self) -> bool:
        return self._down

    def run(self, call: Callable[[Any], T], fallback: T) -> T:
        """``call(client)``, or ``fallback`` while Redis is down or when this call fails."""
        now = time.monotonic()
        if self._down and now < self._retry_at:
            return fallback
        try:
            result = call(self.client)
        except self._errors as exc:
            if not self._down:
                log.warning("redis unavailable for %s (%s): in-process fallback", self.what, exc)
            self._down, self._retry_at = True, now + self.RETRY_S
            return fallback
        if self._down:
            log.warning("redis is back for %s", self.what)
        self._down, self._last_ok = False, time.monotonic()
        return result

    def probe(self) -> None:
        """Ping Redis unless a call reached it within ``PROBE_AFTER_S`` (or, while it is down,
        until the retry time): blocking for up to the 50 ms timeout, so call it off the event
        loop."""
        if not self._down and time.monotonic() - self._last_ok < self.PROBE_AFTER_S:
            return
        self.run(lambda client: client.ping(), None)

    def close(self) -> None:
        self.client.close()
