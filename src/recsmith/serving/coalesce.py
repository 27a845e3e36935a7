"""Request coalescing: concurrent recommendation requests answered by one pipeline call.

The pipeline is vectorised over a batch of queries (the same code evaluates ten thousand users
offline), so most of a single request's cost is fixed overhead — sparse-matrix construction, one
LightGBM call, re-ranking set-up — that a batch of 16 pays once. Under load, requests whose bytes
arrive while the server is computing are parsed together on the next loop turn; each handler puts
its query here, and one flush, scheduled a loop turn later, answers every query that arrived in the
meantime. An idle server therefore answers a lone request at once (a batch of one, no timer, no
added wait), and a busy one in larger batches, which is where the throughput comes from. Requests
that arrive one by one but close together (an open loop, many clients) would each pay the call's
fixed cost alone: with ``max_wait_s`` (``serving.coalesce_max_wait_ms``) the flush waits for them
a bounded while when the measured arrival rate says more will come within it and recent waits
did gather queries (``gather_wait.py``; ``on_hold`` hears each wait, for ``/metrics``). The
gathering itself is ``gather.Gatherer``'s, shared with the group commit of events.

The flush runs on the event loop, like a single request did before: nothing else could use the CPU
meanwhile in this process (``serving.workers`` processes use the cores). Queries are grouped by
what the pipeline call shares — the deployed model (a hot swap may be mid-flight), ``k``, the
requested categories and diversity — and a group whose call fails is retried query by query, so
one request's bad input never fails another's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recsmith.bundle import Answer
from recsmith.errors import StoreUnavailable
from recsmith.exploration.arms import ArmCounts
from recsmith.exploration.explorer import ExploreRequest
from recsmith.rerank.rules import Rule
from recsmith.serving.feature_sampler import FeatureSampler
from recsmith.serving.gather import Gatherer

if TYPE_CHECKING:
    from recsmith.serving.stored_items import StoredItems

#: A batch never exceeds this many queries (bounds one flush's time and memory).
MAX_COALESCED = 64
#: how long a flush that answered several queries keeps the server ``crowded``: far longer than
#: the gap between a busy server's flushes (one pipeline call, milliseconds), short enough that
#: a server gone quiet soon reads a lone request alone again (the cost it saves is ~30 µs)
CROWD_FADES_S = 0.25


@dataclass(slots=True)
class UserQuery:
    """One request's query: who asks and what the server knows of them right now.

    Not frozen (never changed once built): one is built per request on the event loop, where
    a frozen class's ``__init__`` sets each field by ``object.__setattr__`` (BENCHMARKS §141)."""

    user_id: str
    seen: list[str]
    recent: list[str]
    context: dict[str, Any]
    request_id: str = ""  # the recommendation id: seeds an exploring pipeline's draws
    #: the stored profile of a user the release does not know (``Pipeline.needs_profile``)
    profile: dict[str, Any] | None = None
    #: of ``seen``, the items the user had (stored events): a user tower pools these, never a
    #: request's ``exclude=`` or capped items (``ModelBundle.answer``'s ``history``); only the
    #: liked ones for a release that weighs them (``weighs_history``)
    history: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Options:
    """What a batch shares: the request options that apply to the whole pipeline call."""

    k: int
    categories: tuple[str, ...] = ()
    diversity: float | None = None
    include_seen: bool | None = None
    rules: tuple[Rule, ...] = ()  # a request's own rules (``merchandising.request``)
    source: str | None = None  # a contextual arm's source (``exploration.contextual``)


@dataclass(slots=True)
class Slot:
    """A query's place in the answer of its batch: ``answer.lists.item_ids[index]`` is its list.
    ``first`` is true for exactly one query per pipeline call (who reports the call's metrics).
    For a query whose stored items the flush read (``Coalescer.answer``'s ``stored``): those
    items (answered as if ahead of its ``seen``; None: not read), and ``store_down`` when the
    store was unavailable (answered without them, as the route does: ``degraded: ["store"]``).

    Not frozen (never changed once built): one is built per request on the event loop, where
    a frozen class's ``__init__`` sets each field by ``object.__setattr__`` (BENCHMARKS §141)."""

    answer: Answer
    index: int
    first: bool
    batch_size: int
    stored: list[str] | None = None
    store_down: bool = False
    #: of ``stored``, what the release scored as history (``weighs_history``: the liked ones)
    history: list[str] | None = None


class StoredReadFailed(RuntimeError):
    """A query's stored items could not be read for a reason other than an outage (its
    ``__cause__``): that request fails with it, as its own read failing did; the others of its
    group are answered."""


@dataclass(slots=True)
class _Query:
    """A query waiting for its group's call.

    Not frozen (never changed once built): one is built per request on the event loop, where
    a frozen class's ``__init__`` sets each field by ``object.__setattr__`` (BENCHMARKS §141)."""

    served: Any
    options: Options
    query: UserQuery
    stored: StoredItems | None = None
    weighed: bool = False  # the stored items read with the liked ones (``weighs_history``)


class Coalescer:
    """See module docstring. One per server process; safe to share across model swaps."""

    def __init__(
        self,
        max_batch: int = MAX_COALESCED,
        arms: Callable[[], ArmCounts] = ArmCounts,
        sampler: FeatureSampler | None = None,
        max_wait_s: float = 0.0,
        on_hold: Callable[[float], None] | None = None,
    ) -> None:
        self._arms = arms  # the bandit counts an exploring pipeline draws from, now
        self._sampler = sampler  # feature drift: the ranker's rows of some queries
        self._gatherer: Gatherer[_Query, Slot] = Gatherer(
            self._call, max_batch=max_batch, max_wait_s=max_wait_s, on_hold=on_hold
        )

    @property
    def crowded(self) -> bool:
        """Whether requests arrive together: the latest flush answered more than one query, and
        it was recent. Requests answered without a flush (response-cache hits, explain) leave
        the latest flush as it was, so without the age a burst would keep a quiet server
        "crowded" for good."""
        taken = self._gatherer
        return taken.last_taken > 1 and time.monotonic() - taken.last_taken_at < CROWD_FADES_S

    async def answer(
        self,
        served: Any,
        query: UserQuery,
        options: Options,
        stored: StoredItems | None = None,
        weighed: bool = False,
    ) -> Slot:
        """The query's answer, computed together with whatever else is waiting. ``stored``:
        the flush reads the items ``query.user_id`` has in the store now, with its group's
        (``StoredItems.now``: one query), and puts them ahead of ``query.seen`` — the read the
        route would otherwise hand to ``StoredItems`` and wait a hand-off for (BENCHMARKS §111);
        ``weighed``: with the liked ones, its history (``StoredItems.now_weighed``)."""
        return await self._gatherer.submit(
            _Query(served, options, query, stored, weighed), key=(id(served), options)
        )

    def _call(self, group: list[_Query]) -> list[Slot | Exception]:
        """The stored items of the group's queries that ask for them read by one query
        (``_read_stored``), then one pipeline call for the queries whose read did not fail."""
        if all(p.stored is None for p in group):
            return list(self._answered(group, None, None))
        stored, down, failed = _read_stored(group)
        if not any(failed):
            return list(self._answered(group, stored, down))
        kept = [i for i, f in enumerate(failed) if f is None]
        slots = iter(
            self._answered(
                [group[i] for i in kept], [stored[i] for i in kept], [down[i] for i in kept]
            )
            if kept
            else ()
        )
        return [next(slots) if f is None else f for f in failed]

    def _answered(
        self,
        group: list[_Query],
        stored: list[Had | None] | None,
        down: list[bool] | None,
    ) -> list[Slot]:
        """One pipeline call for a group that shares the model and the options; an exploring
        pipeline (``[explore]``) gets each request's id and the current bandit counts, a ranked
        one the feature sampler's tap when one of the group's queries is sampled."""
        served = group[0].served
        extra: dict[str, Any] = {}
        if getattr(served, "explorer", None) is not None:
            ids = [p.query.request_id for p in group]
            extra["explore"] = ExploreRequest(ids, self._arms())
        sampler = self._sampler
        if sampler is not None and getattr(served, "ranker", None) is not None:
            picked = sampler.pick(len(group))
            if picked is not None:
                extra["feature_tap"] = sampler.tap(served.version, picked)
        return _call(group, extra, stored, down)


def in_time_order(served: Any) -> bool:
    """Whether ``served`` (a release) reads a user's stored items oldest first
    (``ModelBundle.history_in_time_order``: a user tower, a sequence model), so they are read
    by time (``EventStore.user_items(by_time=True)``); a pipeline, or any other single model,
    reads them as a set and keeps the cheaper read (BENCHMARKS §165)."""
    return bool(getattr(served, "history_in_time_order", False))


def weighs_history(served: Any, user_id: str) -> bool:
    """Whether ``served`` (a release) scores ``user_id`` from their stored items as history
    (``ModelBundle.weighs_history``: a user it does not know, by a user tower or a model
    scoring a visitor's items), so they are read with the items the user rated 0 or below, to
    leave those out of it (``StoredItems.weighed``); a pipeline's sources read the stored items
    as seen only."""
    weighs = getattr(served, "weighs_history", None)
    return weighs is not None and bool(weighs(user_id))


#: A user's stored items and, of them, their history (``StoredItems.weighed``: the liked ones)
Had = tuple[list[str], list[str]]


def _read_stored(
    group: list[_Query],
) -> tuple[list[Had | None], list[bool], list[Exception | None]]:
    """For each query of ``group``: its user's stored items and their history where it asks
    for them (``_Query.stored``; None: not asked, or the store was unavailable), read for the
    group at once (a ``weighed`` query's by their own query: ``StoredItems.now_weighed``; the
    others' history is their items); whether the store was unavailable (the query then goes
    without them, as the route reading alone did); the failure of a query whose read failed
    otherwise (``StoredReadFailed``)."""
    asking = [i for i, p in enumerate(group) if p.stored is not None and not p.weighed]
    weighing = [i for i, p in enumerate(group) if p.stored is not None and p.weighed]
    reader = group[(asking or weighing)[0]].stored
    assert reader is not None
    by_time = in_time_order(group[0].served)  # a group shares its release
    read: list[Had | Exception] = [
        got if isinstance(got, Exception) else (got, got)
        for got in (reader.now([group[i].query.user_id for i in asking], by_time) if asking else ())
    ]
    if weighing:
        read += reader.now_weighed([group[i].query.user_id for i in weighing])
    stored: list[Had | None] = [None] * len(group)
    down = [False] * len(group)
    failed: list[Exception | None] = [None] * len(group)
    for i, got in zip(asking + weighing, read, strict=True):
        if isinstance(got, StoreUnavailable):
            down[i] = True
        elif isinstance(got, Exception):
            failure = StoredReadFailed(f"reading the stored items of {group[i].query.user_id!r}")
            failure.__cause__ = got
            failed[i] = failure
        else:
            stored[i] = got
    return stored, down, failed


def _call(
    group: list[_Query],
    explore: dict[str, Any],
    stored: list[Had | None] | None = None,
    down: list[bool] | None = None,
) -> list[Slot]:
    """One pipeline call for a group that shares the model and the options; ``stored``: items
    read for the queries, put ahead of their ``seen``, and their history ahead of their
    ``history`` only for a release that reads it (``ModelBundle.reads_history``; a ``Pipeline``
    does not: a list copy a query saved)."""
    served, options = group[0].served, group[0].options
    queries = [p.query for p in group]
    arguments = answer_arguments(queries, options)
    n = len(group)
    stored = stored if stored is not None else [None] * n
    down = down if down is not None else [False] * n
    if any(had is not None for had in stored):
        arguments["extra_seen"] = [
            q.seen if had is None else [*had[0], *q.seen]
            for q, had in zip(queries, stored, strict=True)
        ]
        if getattr(served, "reads_history", True):
            arguments["history"] = [
                q.history if had is None else [*had[1], *q.history]
                for q, had in zip(queries, stored, strict=True)
            ]
    answer: Answer = served.answer([q.user_id for q in queries], options.k, **arguments, **explore)
    slots = []
    for i, had in enumerate(stored):
        items, history = (None, None) if had is None else had
        slots.append(Slot(answer, i, i == 0, n, items, down[i], history))
    return slots


def answer_arguments(queries: Sequence[UserQuery], options: Options) -> dict[str, Any]:
    """The keyword arguments of ``answer`` for ``queries`` asked with ``options``: one place, so
    the coalesced call, ``?explain=true``'s traced call and a shadow release's call cannot drift
    apart (a request's rules or contextual arm missing from one of them)."""
    arguments: dict[str, Any] = {
        "extra_seen": [q.seen for q in queries],
        "recent": [q.recent for q in queries],
        "context": [q.context for q in queries],
        "categories": options.categories,
        "diversity": options.diversity,
        "include_seen": options.include_seen,
        "rules": options.rules,
        # the user's own stored items, apart from ``seen``: a user tower or a sequence model
        # reads them as history (``ModelBundle.answer``), a pipeline ignores them
        "history": [q.history for q in queries],
    }
    if options.source is not None:  # only a pipeline with ``[contextual]`` chooses arms
        arguments["source"] = options.source
    if any(q.profile is not None for q in queries):  # only a pipeline with segments asks
        arguments["profiles"] = [q.profile for q in queries]
    return arguments
