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
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi.concurrency import run_in_threadpool

from recsmith.errors import StoreUnavailable
from recsmith.serving.coalesce import MAX_COALESCED
from recsmith.serving.gather import Gatherer
from recsmith.store.base import EventStore


def _retried_alone(exc: Exception) -> bool:
    """A store outage would fail each user's read again: not retried one by one."""
    return not isinstance(exc, StoreUnavailable)


class StoredItems:
    """See module docstring. One per server process and store."""

    def __init__(
        self,
        store: EventStore,
        company: Callable[[], bool],
        max_batch: int = MAX_COALESCED,
    ) -> None:
        self._store, self._company = store, company
        self._gatherer: Gatherer[str, list[str]] = Gatherer(
            store.users_items, max_batch=max_batch, split=_retried_alone
        )

    async def of(self, user_id: str) -> list[str]:
        """The distinct items ``user_id`` has in the store now (``EventStore.user_items``),
        read with whatever else is waiting, or alone at once when nothing is (module
        docstring); ``StoreUnavailable`` while the store fails."""
        store = self._store
        if not store.local:  # in the pool, never behind another request's read
            return await run_in_threadpool(store.user_items, user_id)
        if self._gatherer.waiting or self._company():
            return await self._gatherer.submit(user_id)
        return store.user_items(user_id)  # tens of microseconds: less than a thread-pool hop

    def now(self, user_ids: list[str]) -> list[list[str] | Exception]:
        """The users' stored items read at once, in the caller's turn, on an embedded store
        only (a coalescer's flush on the event loop: ``Coalescer.answer``'s ``stored``): one
        ``users_items`` query, or ``user_items`` for one user (a group of one would pay the
        group query's JSON for nothing); a failure is the failed users' outcome, as ``of``'s
        gathered read settles it (an outage fails them all at once)."""
        if not self._store.local:  # a networked store is read in the pool, never here
            raise TypeError("StoredItems.now reads an embedded store only")
        if len(user_ids) == 1:
            try:
                return [self._store.user_items(user_ids[0])]
            except Exception as exc:  # that user's outcome, as a group's read settles it
                return [exc]
        return self._gatherer.outcomes(user_ids)
