"""Rate limits shared by every server process and replica through Redis.

With ``serving.state_url = "redis://…"`` (the Redis the online state and the response cache
already share) a key's token bucket per scope lives in Redis, so ``[auth.rate_limits] read =
"100/s"`` holds for the key across all workers and replicas together, not per process. Each
request takes its token with one Lua script (``_TAKE``), atomic in Redis: it refills the bucket
for the time elapsed by Redis's own clock (``TIME``: one clock for all processes), takes a token
or says how long until one is back, and lets an idle bucket expire once it would be full again.

When Redis does not answer (``RedisLink``: 50 ms timeouts, then no retry for 5 s) each process
falls back to its own buckets (``TokenBuckets``): the limit still holds per process, up to N times
the rate over N processes, as without Redis; readiness lists ``rate_limits`` in ``degraded``
until Redis answers again. The cost is one Redis round trip per limited request (a scope without
a rate costs nothing), on the event loop like the online state's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recsmith.access.rate_limit import Rate, TokenBuckets
from recsmith.serving.redis_link import RedisLink

#: KEYS[1]: the bucket; ARGV: its size, its refill per second. Returns the seconds to wait as
#: text ("0" when a token was taken): Lua numbers returned to Redis are cut to integers.
_TAKE = """
local size = tonumber(ARGV[1])
local per_s = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1])
local at = tonumber(held[2])
if tokens == nil or at == nil then
  tokens, at = size, now
end
tokens = math.min(size, tokens + math.max(0, now - at) * per_s)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / per_s
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((size - tokens) / per_s * 1000) + 1000)
return tostring(wait)
"""
#: Where the buckets live in Redis (the online state and the cache use other prefixes).
PREFIX = "recsmith:rate:"


class SharedTokenBuckets:
    """``TokenBuckets``' ``admit`` with the buckets in Redis (module docstring)."""

    def __init__(self, url: str, rates: Mapping[str, Rate]) -> None:
        self._rates = dict(rates)
        self._local = TokenBuckets(rates)  # while Redis is down
        self.link = RedisLink(url, "rate_limits", decode=True)
        self._take: Any = self.link.client.register_script(_TAKE)

    def admit(self, key_id: str, scope: str) -> float:
        """Take a token: 0.0 when the request may go, else the seconds until one is back."""
        rate = self._rates.get(scope)
        if rate is None:
            return 0.0
        key = f"{PREFIX}{key_id}:{scope}"
        waited = self.link.run(
            lambda _: self._take(keys=[key], args=[rate.count, rate.per_s]), None
        )
        if waited is None:
            return self._local.admit(key_id, scope)
        return float(waited)

    @property
    def degraded(self) -> bool:
        return self.link.degraded

    def probe(self) -> None:
        self.link.probe()


def open_buckets(url: str | None, rates: Mapping[str, Rate]) -> TokenBuckets | SharedTokenBuckets:
    """Buckets in Redis when the server has one (``serving.state_url``) and some scope has a
    rate; the process's own otherwise."""
    if url and rates:
        return SharedTokenBuckets(url, rates)
    return TokenBuckets(rates)
