"""Online state: each user's latest items, updated the moment an event is ingested.

Recommendation requests read it to feed the 'recent' sources (what the user just viewed), so the
next list follows the new item at once. Two backends behind one interface:

- ``LocalState``: in-process, bounded (least recently updated users are forgotten first).
- ``RedisState``: shared by every server replica and kept across restarts (``redis://`` URL). It
  writes through to a ``LocalState`` as well, and when Redis stops answering it keeps serving
  from that local copy, marks itself degraded (readiness and metrics say so) and retries Redis
  every few seconds. What is ingested meanwhile is kept (up to ``BACKLOG``) and written to Redis
  first thing when it answers again, so the other replicas see it then. A Redis outage costs
  freshness across replicas, never a failed request.

An event weighing 0 or below comes marked (``events.latest.SEEN_MARK``): its item is seen (left
out of lists, even while the store's read is down) but no recent item, and it stops being one
if it was: a user's newest event on an item decides (at one instant within a batch, the one
weighing 0 or below: ``events.latest``), as training's net weight of the pair does where the
low rating comes last (view, then rate 0 or -2: the common order). Older events of
the pair are not summed: a view after a rating of -2 makes the item recent again online, never
offline (net weight -1).

An erased user is removed from both (``forget``); other processes drop them from their local
copies by salted hash when they learn of it (``forget_where``, ``recsmith.privacy.sync``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from recsmith.events.latest import SEEN_MARK
from recsmith.serving.redis_link import RedisLink


class OnlineState(Protocol):
    def push(self, updates: Iterable[tuple[str, str]]) -> None:
        """Record (user_id, item_id) pairs in time order: the last one is the newest; an item
        marked ``SEEN_MARK`` is seen, no recent item (module docstring)."""
        ...

    def recent(self, user_id: str, n: int) -> list[str]:
        """The user's ``n`` latest distinct recent items, newest first."""
        ...

    def recent_and_seen(self, user_id: str, n: int) -> tuple[list[str], list[str]]:
        """``recent`` and the items whose newest event weighed nothing (to leave out), from one
        read."""
        ...

    @property
    def degraded(self) -> bool: ...

    def probe(self) -> None:
        """Refresh ``degraded`` by reaching the backing service if nothing did lately
        (blocking)."""
        ...

    def forget(self, user_id: str) -> int:
        """Erase the user everywhere this process reaches (Redis and the local copy); returns
        the items removed (``recsmith.privacy``)."""
        ...

    def forget_where(self, erased: Callable[[str], bool]) -> int:
        """Drop the local copy's users for whom ``erased`` is true (another process erased them:
        this one knows only their salted hash); returns how many."""
        ...

    def close(self) -> None: ...


class LocalState:
    """In-process state (see module docstring)."""

    def __init__(self, per_user: int = 50, max_users: int = 200_000) -> None:
        self.per_user = per_user
        self.max_users = max_users
        self._users: OrderedDict[str, deque[str]] = OrderedDict()
        self._lock = threading.Lock()

    def push(self, updates: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            for user, item in updates:
                items = self._users.pop(user, None) or deque(maxlen=self.per_user)
                items.append(item)
                self._users[user] = items  # most recently updated last
                if len(self._users) > self.max_users:
                    self._users.popitem(last=False)

    def recent(self, user_id: str, n: int) -> list[str]:
        return self.recent_and_seen(user_id, n)[0]

    def recent_and_seen(self, user_id: str, n: int) -> tuple[list[str], list[str]]:
        with self._lock:
            items = list(self._users.get(user_id, ()))
        return _recent_and_seen(items, n)

    @property
    def degraded(self) -> bool:
        return False

    def probe(self) -> None:
        return None

    def forget(self, user_id: str) -> int:
        with self._lock:
            return len(self._users.pop(user_id, ()))

    def forget_where(self, erased: Callable[[str], bool]) -> int:
        with self._lock:
            doomed = [user for user in self._users if erased(user)]
            for user in doomed:
                del self._users[user]
        return len(doomed)

    def close(self) -> None:
        return None


class RedisState:
    """Redis-backed state with a local fallback (see module docstring)."""

    #: Events kept for Redis while it is down (the oldest go first beyond this).
    BACKLOG = 100_000

    def __init__(self, url: str, per_user: int = 50, ttl_s: int = 30 * 86_400) -> None:
        self.per_user = per_user
        self.ttl_s = ttl_s
        self.local = LocalState(per_user)
        self.link = RedisLink(url, "online_state", decode=True)
        # (user, item) pairs Redis missed during an outage, oldest first
        self._backlog: deque[tuple[str, str]] = deque(maxlen=self.BACKLOG)
        self._backlog_lock = threading.Lock()

    @staticmethod
    def key(user_id: str) -> str:
        return f"recsmith:recent:{user_id}"

    @property
    def degraded(self) -> bool:
        return self.link.degraded

    def probe(self) -> None:
        self.link.probe()
        if self._backlog and not self.link.degraded:
            self.push([])  # Redis is back: hand it what it missed

    def push(self, updates: Iterable[tuple[str, str]]) -> None:
        updates = list(updates)
        self.local.push(updates)
        if not self._backlog:  # the usual case: no lock around the round trip
            if updates and not self.link.run(lambda client: self._push(client, updates), False):
                with self._backlog_lock:
                    self._backlog.extend(updates)
            return
        with self._backlog_lock:
            pending = [*self._backlog, *updates]
            if self.link.run(lambda client: self._push(client, pending), False):
                self._backlog.clear()
            else:
                self._backlog.extend(updates)

    def _push(self, client: Any, updates: list[tuple[str, str]]) -> bool:
        pipe = client.pipeline(transaction=False)
        for user, item in updates:
            pipe.lpush(self.key(user), item)
        for user in {u for u, _ in updates}:
            pipe.ltrim(self.key(user), 0, self.per_user - 1)
            pipe.expire(self.key(user), self.ttl_s)
        pipe.execute()
        return True

    def forget(self, user_id: str) -> int:
        """The Redis list, the local copy and any backlog for Redis (an erasure during an outage
        must not be undone when Redis comes back)."""
        with self._backlog_lock:
            kept = [pair for pair in self._backlog if pair[0] != user_id]
            removed = len(self._backlog) - len(kept)
            self._backlog = deque(kept, maxlen=self.BACKLOG)
        remote = self.link.run(lambda client: int(client.llen(self.key(user_id))), 0)
        self.link.run(lambda client: client.delete(self.key(user_id)), None)
        return max(self.local.forget(user_id), remote) + removed

    def forget_where(self, erased: Callable[[str], bool]) -> int:
        with self._backlog_lock:
            self._backlog = deque(
                (pair for pair in self._backlog if not erased(pair[0])), maxlen=self.BACKLOG
            )
        return self.local.forget_where(erased)

    def recent(self, user_id: str, n: int) -> list[str]:
        return self.recent_and_seen(user_id, n)[0]

    def recent_and_seen(self, user_id: str, n: int) -> tuple[list[str], list[str]]:
        newest_first = self.link.run(
            lambda client: client.lrange(self.key(user_id), 0, self.per_user - 1), None
        )
        if newest_first is None:
            return self.local.recent_and_seen(user_id, n)
        return _recent_and_seen(list(reversed(newest_first)), n)

    def close(self) -> None:
        self.link.close()


def _recent_and_seen(oldest_first: list[str], n: int) -> tuple[list[str], list[str]]:
    """The ``n`` newest distinct items whose newest entry is unmarked, and every item whose
    newest entry is marked (``SEEN_MARK``): newest first both."""
    recent: list[str] = []
    seen: list[str] = []
    decided: set[str] = set()
    for entry in reversed(oldest_first):
        marked = entry.startswith(SEEN_MARK)
        item = entry[len(SEEN_MARK) :] if marked else entry
        if item in decided:
            continue
        decided.add(item)
        if marked:
            seen.append(item)
        elif len(recent) < n:
            recent.append(item)
    return recent, seen


def open_state(url: str | None, per_user: int = 50) -> OnlineState:
    """``redis://…`` → Redis with local fallback; None → in-process only."""
    if url is None:
        return LocalState(per_user)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisState(url, per_user)
    from recsmith.errors import ValidationError

    raise ValidationError("serving.state_url", f"unsupported URL {url!r} (redis://host:port/db)")
