"""The items each served user has in the store now, read for a coalesced group by one query.

A list excludes what its user has in the store at the moment it is asked (an event ingested a
moment ago already counts), so every recommendation request read the store: one statement per
request, ~5 % of a worker's event-loop CPU under load (BENCHMARKS §100), paid again for each of
the ~15 requests a busy server answers together. Here each request hands its user to a
``gather.Gatherer``, and the users that arrive together are read by one ``users_items`` query,
a statement and a decode for the group.

Most lists computed at once (the response cache off, an exploring release, or a request with
its own rules, which the cache never serves) on an embedded store are not read here: the
coalescer's flush reads their users with the rest of their group (``Coalescer.answer``'s
``stored``, by ``now``), so the request waits one hand-off, not two (BENCHMARKS §111). Still
read here first (the route's ``in_flush``): a cached request (the response cache's key needs the
items before the list), an explained one (``?explain=true``), and one whose placement has a
contextual bandit (which counts the items before the list).

A request gathers only in company: while another request's read waits, or while requests
arrive together (``company``: the coalescer's latest flush answered more than one, lately).
Alone (an idle server, one client asking in turn) it reads its user by ``user_items`` at once:
a group of one would pay the hand-off (a future, two loop turns) and the group query's JSON for
nothing (~30 µs of loop CPU a lone request at load, BENCHMARKS §103). The signal is the load
of the latest flush, not whether a pipeline call waits now: the first request of a burst would
then read alone, reach the coalescer two turns ahead of the others and be answered by a
pipeline call of its own.

Only an embedded store (SQLite) gathers. Its reads run on the event loop, as the request read
it before (tens of microseconds; a thread-pool hop costs more), so a slow read (a user with
50,000 items) holds up the other requests whether it is read alone or in a group: gathering
adds no wait. A networked store (PostgreSQL) is read per request in the thread pool, as
before: its reads overlap, and a group read would have to wait for the one in flight, making
one slow statement (a user with 50,000 items, a lock wait) every request's wait — a 1-item
user's read went from 0.8 to 125 ms behind such a read (BENCHMARKS §103, correction); §103's
saving was measured on SQLite. A store that fails (``StoreUnavailable``) fails the whole group
at once, not user by user: every request of it then answers without its stored items, marked
``degraded: ["store"]`` (the route's rule); any other error is retried user by user, so one
user's failure stays that user's.

A release whose model reads a history's order (``coalesce.in_time_order``: two-tower, SASRec)
gets the items oldest first (``by_time``), a dearer read; every other one the plain set read
(BENCHMARKS §165). The two are gathered apart (a group shares one query).

A single-model release that scores a user from their items (``coalesce.weighs_history``) reads
them with the items they rated 0 or below (``weighed``: ``EventStore.users_items_weighed``,
oldest first), so its history holds only the others while every item stays seen (issue #15).
It is gathered and read in the coalescer's flush as the plain read is, by its own query.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from fastapi.concurrency import run_in_threadpool

from recsmith.config import EventSettings
from recsmith.errors import StoreUnavailable
from recsmith.events.latest import Signal, signal_of
from recsmith.serving.coalesce import MAX_COALESCED
from recsmith.serving.gather import Gatherer
from recsmith.store.base import EventStore


def _retried_alone(exc: Exception) -> bool:
    """A store outage would fail each user's read again: not retried one by one."""
    return not isinstance(exc, StoreUnavailable)


def liked(items: list[str], unliked: list[str]) -> list[str]:
    """``items`` without ``unliked`` (``users_items_weighed``'s pair), in their order: ``items``
    itself when the user rated nothing 0 or below (the usual case: no copy, no pass)."""
    if not unliked:
        return items
    out = set(unliked)
    return [item for item in items if item not in out]


class StoredItems:
    """See module docstring. One per server process and store."""

    def __init__(
        self,
        store: EventStore,
        company: Callable[[], bool],
        max_batch: int = MAX_COALESCED,
        signal: Signal | None = None,
    ) -> None:
        """``signal``: which events weigh above 0 (``events.latest.signal_of`` of the server's
        ``events.weights``; None: the default weights'), for ``weighed``."""
        self._store, self._company = store, company
        self._signal = signal_of(EventSettings().weights) if signal is None else signal
        self._gatherers: dict[bool, Gatherer[str, list[str]]] = {
            by_time: Gatherer(
                functools.partial(store.users_items, by_time=by_time),
                max_batch=max_batch,
                split=_retried_alone,
            )
            for by_time in (False, True)
        }
        self._weighing: Gatherer[str, tuple[list[str], list[str]]] = Gatherer(
            self._read_weighed, max_batch=max_batch, split=_retried_alone
        )

    async def of(self, user_id: str, by_time: bool = False) -> list[str]:
        """The distinct items ``user_id`` has in the store now (``EventStore.user_items``;
        ``by_time``: oldest first), read with whatever else is waiting, or alone at once when
        nothing is (module docstring); ``StoreUnavailable`` while the store fails."""
        store = self._store
        if not store.local:  # in the pool, never behind another request's read
            return await run_in_threadpool(
                functools.partial(store.user_items, user_id, by_time=by_time)
            )
        gatherer = self._gatherers[by_time]
        if gatherer.waiting or self._company():
            return await gatherer.submit(user_id)
        # tens of microseconds: less than a thread-pool hop
        return store.user_items(user_id, by_time=by_time)

    def _read_weighed(self, user_ids: list[str]) -> list[tuple[list[str], list[str]]]:
        return self._store.users_items_weighed(user_ids, self._signal)

    async def weighed(self, user_id: str) -> tuple[list[str], list[str]]:
        """The distinct items ``user_id`` has in the store now, oldest first, and the liked ones
        among them (those whose newest event weighs above 0: ``users_items_weighed``, ``liked``),
        read as ``of`` reads (gathered in company); ``StoreUnavailable`` while the store fails."""
        store = self._store
        if not store.local:
            ((items, unliked),) = await run_in_threadpool(self._read_weighed, [user_id])
        elif self._weighing.waiting or self._company():
            items, unliked = await self._weighing.submit(user_id)
        else:
            ((items, unliked),) = self._read_weighed([user_id])
        return items, liked(items, unliked)

    def now_weighed(self, user_ids: list[str]) -> list[tuple[list[str], list[str]] | Exception]:
        """``weighed`` of each of ``user_ids`` read at once, as ``now`` reads (a coalescer's
        flush, an embedded store only), one ``users_items_weighed`` query for them all."""
        if not self._store.local:  # a networked store is read in the pool, never here
            raise TypeError("StoredItems.now_weighed reads an embedded store only")
        return [
            got if isinstance(got, Exception) else (got[0], liked(*got))
            for got in self._weighing.outcomes(user_ids)
        ]

    def now(self, user_ids: list[str], by_time: bool = False) -> list[list[str] | Exception]:
        """The users' stored items (``by_time``: oldest first) read at once, in the caller's
        turn, on an embedded store only (a coalescer's flush on the event loop:
        ``Coalescer.answer``'s ``stored``): one ``users_items`` query, or ``user_items`` for
        one user (a group of one would pay the group query's JSON for nothing); a failure is
        the failed users' outcome, as ``of``'s gathered read settles it (an outage fails them
        all at once)."""
        if not self._store.local:  # a networked store is read in the pool, never here
            raise TypeError("StoredItems.now reads an embedded store only")
        if len(user_ids) == 1:
            try:
                return [self._store.user_items(user_ids[0], by_time=by_time)]
            except Exception as exc:  # that user's outcome, as a group's read settles it
                return [exc]
        return self._gatherers[by_time].outcomes(user_ids)
