"""The bandit counts through Redis when ``serving.state_url`` names one; the store stays the
source of truth.

Why both: the store's ``bandit_arms`` is what survives anything (a Redis restart without
persistence included) and what a fresh process trusts. But every worker of every replica reads
the whole table every second (``board.SYNC_INTERVAL_S``); with Redis configured they read a copy
of the totals in Redis instead, and the store is read once per ``RESEED_S`` by whichever process
finds the copy expired.

* **add**: increments go to the store first (an outage there keeps them in the board for the
  next sync, as without Redis), then are added to the Redis copy by a script that adds only while
  the copy exists, so a copy is never built from increments alone.
* **read**: the copy when it exists; otherwise the store's totals, which the reader also writes
  into Redis as the new copy (a script that writes only if no other process did meanwhile) with
  an expiry of ``RESEED_S``. With Redis down, reads and adds go to the store alone.

What the copy can get wrong, and for how long: an add that lands between another process's store
read and its reseed is counted twice in the copy (never in the store) until the copy expires,
at most ``RESEED_S`` later; the reseed then starts again from the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from recsmith.exploration.arm_rows import arm_counts
from recsmith.exploration.arms import ArmCounts
from recsmith.store.base import EventStore

#: Seconds a Redis copy of the totals lives before it is rebuilt from the store.
RESEED_S = 60
PREFIX = "recsmith:bandit:"
#: The copy: a marker (its expiry is the copy's) and one hash per count, field = arm.
KEYS = [f"{PREFIX}{name}" for name in ("copy", "shown", "clicks", "purchases")]

_ADD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 4 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 2])
  redis.call('HINCRBY', KEYS[4], ARGV[i], ARGV[i + 3])
end
return 1
"""
_SEED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
for i = 2, #ARGV, 4 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 3])
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return 1
"""


class RedisArms:
    """``add_arm_counts`` and ``arm_counts`` as ``BanditBoard`` calls them (see module
    docstring)."""

    def __init__(self, url: str, store: EventStore, reseed_s: int = RESEED_S) -> None:
        # imported here: ``recsmith.serving`` imports the app, which imports this module
        from recsmith.serving.redis_link import RedisLink

        self._link = RedisLink(url, "bandit counts", decode=True)
        self._store = store
        self._reseed_s = reseed_s

    def add_arm_counts(self, counts: Sequence[tuple[str, int, int, int]]) -> None:
        self._store.add_arm_counts(counts)  # the truth first: its outage keeps the increments
        if counts:
            flat = [str(x) for row in counts for x in row]
            self._link.run(lambda client: client.eval(_ADD, len(KEYS), *KEYS, *flat), 0)

    def arm_counts(self, version: int = 0) -> ArmCounts:
        copy = self._link.run(_read_copy, None)
        if copy is not None:
            return arm_counts(copy, version)
        found = self._store.arm_counts(version)
        rows = zip(found.arms, found.shown, found.clicks, found.purchases, strict=True)
        flat = [str(x) for row in rows for x in row]
        self._link.run(
            lambda client: client.eval(_SEED, len(KEYS), *KEYS, str(self._reseed_s), *flat), 0
        )
        return found

    def close(self) -> None:
        self._link.close()


def _read_copy(client: Any) -> list[tuple[str, int, int, int]] | None:
    """The copy's rows, or None when there is none (expired, never built, Redis flushed)."""
    pipe = client.pipeline(transaction=True)
    pipe.exists(KEYS[0])
    for key in KEYS[1:]:
        pipe.hgetall(key)
    exists, shown, clicks, purchases = pipe.execute()
    if not exists:
        return None
    return [
        (arm, int(n), int(clicks.get(arm, 0)), int(purchases.get(arm, 0)))
        for arm, n in shown.items()
    ]


def open_arms(state_url: str | None, store: EventStore) -> RedisArms | None:
    """``RedisArms`` when ``serving.state_url`` is a Redis URL (as the online state decides);
    None: the board shares the counts through the store alone."""
    if state_url is None or not state_url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return RedisArms(state_url, store)
