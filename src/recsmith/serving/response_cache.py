"""Response cache: a recommendation list computed once is served again while nothing it depends on
has changed — across requests, and with Redis across server replicas.

The key is a digest of *everything* the pipeline reads for a request: the deployed version and the
catalogue changes applied to it (``catalog_sync``), the user, ``k`` and the request options, the
items the store holds for the user now, and the recent items from the online state. A served list
is a pure function of those, so a hit returns exactly what the pipeline would compute, and an
ingested event (a new stored item, a new recent item) or catalogue change changes the key: no
invalidation, no stale list after the user or the shop acts. Entries expire after
``ttl_s`` only to bound memory. What is cached is the list without its ``recommendation_id``; each
response gets a fresh one, so impressions stay distinguishable.

Each key starts with a digest of the user (``user_tag``), so an erasure finds and removes that
user's lists (``forget``); a process that learns of an erasure made elsewhere knows only a salted
hash, and empties its in-process copy instead (``clear_local``: ``recsmith.privacy.sync``).

Backends as for the online state: in-process (bounded LRU) by default; with a ``redis://`` URL,
Redis behind a local copy, degrading to the local copy while Redis is down.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from recsmith.serving.redis_link import RedisLink


class ResponseCache(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...

    @property
    def degraded(self) -> bool: ...

    def probe(self) -> None:
        """Refresh ``degraded`` by reaching the backing service if nothing did lately
        (blocking)."""
        ...

    def forget(self, user_id: str) -> int:
        """Remove the user's lists everywhere this process reaches; returns how many
        (``recsmith.privacy``)."""
        ...

    def clear_local(self) -> None:
        """Empty this process's copy: another process erased someone, and its keys cannot be
        told from the salted hash this one learns."""
        ...

    def close(self) -> None: ...


def user_tag(user_id: str) -> str:
    """The prefix of the user's cache keys, so that an erasure finds their lists (a digest: no
    cache key holds an id in clear)."""
    return hashlib.blake2b(user_id.encode(), digest_size=8, person=b"rs-cache").hexdigest()


def cache_key(
    version: str,
    user_id: str,
    k: int,
    stored: Sequence[str],
    seen: Sequence[str],
    recent: Sequence[str],
    context: Mapping[str, Any],
    categories: Sequence[str],
    diversity: float | None,
    include_seen: bool,
    profile: Mapping[str, Any] | None = None,
) -> str:
    """The digest of a request's every input (see module docstring). ``stored``: the user's
    items in the store, apart from ``seen`` (every item masked, the stored ones leading), since a
    release that scores a visitor's history reads the stored items and only masks the rest
    (``exclude=``): the same ``seen`` split another way is another list (rv27c finding 1).
    ``profile``: the stored profile read for a user the release does not know (segment
    fallback), so a profile written since changes the key at once; None leaves the key as it
    always was."""
    inputs = [
        version,
        user_id,
        k,
        list(stored),
        list(seen),
        list(recent),
        sorted(context.items()),
        list(categories),
        diversity,
        include_seen,
    ]
    if profile is not None:
        inputs.append(sorted(profile.items()))
    text = json.dumps(inputs, separators=(",", ":"))
    return f"{user_tag(user_id)}:{hashlib.blake2b(text.encode(), digest_size=16).hexdigest()}"


class LocalCache:
    """In-process LRU of at most ``max_entries`` values, each kept ``ttl_s`` seconds of ``clock``
    (monotonic time; a test passes its own so expiry is checked without sleeping)."""

    def __init__(
        self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] < self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: str, value: bytes) -> None:
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    @property
    def degraded(self) -> bool:
        return False

    def probe(self) -> None:
        return None

    def forget(self, user_id: str) -> int:
        prefix = f"{user_tag(user_id)}:"
        with self._lock:
            doomed = [key for key in self._entries if key.startswith(prefix)]
            for key in doomed:
                del self._entries[key]
        return len(doomed)

    def clear_local(self) -> None:
        with self._lock:
            self._entries.clear()

    def close(self) -> None:
        return None


class RedisCache:
    """Redis shared by every replica, behind (and falling back to) a ``LocalCache``."""

    PREFIX = "recsmith:response:"

    def __init__(self, url: str, max_entries: int, ttl_s: float) -> None:
        self.local = LocalCache(max_entries, ttl_s)
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.link = RedisLink(url, "response_cache", decode=False)

    @property
    def degraded(self) -> bool:
        return self.link.degraded

    def probe(self) -> None:
        self.link.probe()

    def get(self, key: str) -> bytes | None:
        value = self.local.get(key)
        if value is None:
            value = self.link.run(lambda client: client.get(self.PREFIX + key), None)
            if value is not None:
                self.local.put(key, value)
        return value

    def put(self, key: str, value: bytes) -> None:
        self.local.put(key, value)
        self.link.run(lambda client: client.set(self.PREFIX + key, value, px=self.ttl_ms), None)

    def forget(self, user_id: str) -> int:
        """A SCAN for the user's prefix: an erasure is rare, a user's lists few."""
        pattern = f"{self.PREFIX}{user_tag(user_id)}:*"

        def drop(client: Any) -> int:
            keys = list(client.scan_iter(match=pattern, count=1000))
            return int(client.delete(*keys)) if keys else 0

        return max(self.local.forget(user_id), self.link.run(drop, 0))

    def clear_local(self) -> None:
        self.local.clear_local()

    def close(self) -> None:
        self.link.close()


def open_cache(url: str | None, max_entries: int, ttl_s: float) -> ResponseCache | None:
    """None when ``max_entries`` is 0 (caching off); Redis for a ``redis://`` URL (the same URL
    as the online state); in-process otherwise."""
    if max_entries == 0:
        return None
    if url is None:
        return LocalCache(max_entries, ttl_s)
    return RedisCache(url, max_entries, ttl_s)
