"""Per-key rate limits: a token bucket per (key, scope) in each server process.

``[auth.rate_limits] read = "100/s"`` gives every key 100 read requests a second, with bursts of
up to 100 (the bucket holds one period's worth); a request past it gets ``429`` and
``Retry-After`` (whole seconds until a token is back, at least 1). A key with several scopes has
one bucket per scope, charged by the scope the route needs.

The buckets live in the server process: with ``serving.workers = N`` (or N replicas) a key may
make up to N times its rate in all, since nothing is shared. That is the price of keeping the
check off the store and the network: it runs on every request, in well under a microsecond. A
server with a Redis (``serving.state_url``) shares them there instead
(``access.shared_rate_limit``).
Only the event loop's thread calls ``admit`` (the key check is ``async``), so there is no lock.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from recsmith.errors import ValidationError

_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)")
_PERIOD_S = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_PERIOD_S |= {"h": 3600.0, "hour": 3600.0}
#: Buckets kept per process at most; past it they are all dropped (each key starts full again).
MAX_BUCKETS = 100_000


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` requests per ``period_s`` seconds; also the bucket's size."""

    count: float
    period_s: float

    @property
    def per_s(self) -> float:
        return self.count / self.period_s


def parse_rate(text: str, field: str) -> Rate:
    """``"100/s"``, ``"6000/min"``, ``"10/h"`` (also ``sec``, ``m``, ``minute``, ``hour``)."""
    found = _RATE.fullmatch(text.strip().lower())
    if found is None:
        raise ValidationError(field, f"{text!r} is not a rate like 100/s, 6000/min or 10/h")
    count = float(found[1])
    if count < 1:
        raise ValidationError(field, f"{text!r}: at least 1 request per period")
    return Rate(count, _PERIOD_S[found[2]])


class TokenBuckets:
    """One token bucket per (key id, scope) for the scopes that have a rate (module docstring)."""

    def __init__(
        self, rates: Mapping[str, Rate], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rates = dict(rates)
        self._clock = clock
        self._buckets: dict[tuple[str, str], list[float]] = {}

    def admit(self, key_id: str, scope: str) -> float:
        """Take a token: 0.0 when the request may go, else the seconds until one is back."""
        rate = self._rates.get(scope)
        if rate is None:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get((key_id, scope))
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._buckets.clear()
            bucket = self._buckets[(key_id, scope)] = [rate.count, now]
        tokens = min(rate.count, bucket[0] + (now - bucket[1]) * rate.per_s)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / rate.per_s


class Buckets(Protocol):
    """What the key check charges: these buckets, or ones shared through Redis
    (``access.shared_rate_limit``)."""

    def admit(self, key_id: str, scope: str) -> float: ...


def retry_after(wait_s: float) -> str:
    """``Retry-After`` in whole seconds (the header takes no fractions), never 0."""
    return str(max(1, math.ceil(wait_s)))
