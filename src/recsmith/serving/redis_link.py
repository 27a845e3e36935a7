"""A Redis connection that fails soft: what the online state and the response cache share.

Both keep serving from in-process copies when Redis stops answering. ``RedisLink.run`` performs a
call and, on any Redis error, marks the link down for ``RETRY_S`` seconds — calls made meanwhile
return their fallback at once instead of each waiting for a timeout — and logs once per outage.
Timeouts are 50 ms: a slow Redis must not hold a request for longer than the pipeline itself.
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
        self._down_until = 0.0

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._down_until

    def run(self, call: Callable[[Any], T], fallback: T) -> T:
        """``call(client)``, or ``fallback`` while Redis is down or when this call fails."""
        if self.degraded:
            return fallback
        try:
            return call(self.client)
        except self._errors as exc:
            if not self.degraded:
                log.warning("redis unavailable for %s (%s): in-process fallback", self.what, exc)
            self._down_until = time.monotonic() + self.RETRY_S
            return fallback

    def close(self) -> None:
        self.client.close()
