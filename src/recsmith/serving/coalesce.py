"""Request coalescing: concurrent recommendation requests answered by one pipeline call.

The pipeline is vectorised over a batch of queries (the same code evaluates ten thousand users
offline), so most of a single request's cost is fixed overhead — sparse-matrix construction, one
LightGBM call, re-ranking set-up — that a batch of 16 pays once. Under load, requests whose bytes
arrive while the server is computing are parsed together on the next loop turn; each handler puts
its query here, and one flush, scheduled a loop turn later, answers every query that arrived in the
meantime. An idle server therefore answers a lone request at once (a batch of one, no timer, no
added wait), and a busy one in larger batches, which is where the throughput comes from.

The flush runs on the event loop, like a single request did before: nothing else could use the CPU
meanwhile in this process (``serving.workers`` processes use the cores). Queries are grouped by
what the pipeline call shares — the deployed model (a hot swap may be mid-flight), ``k``, the
requested categories and diversity — and a group whose call fails is retried query by query, so
one request's bad input never fails another's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from recsmith.bundle import Answer

#: A batch never exceeds this many queries (bounds one flush's time and memory).
MAX_COALESCED = 64


@dataclass(frozen=True, slots=True)
class UserQuery:
    """One request's query: who asks and what the server knows of them right now."""

    user_id: str
    seen: list[str]
    recent: list[str]
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Options:
    """What a batch shares: the request options that apply to the whole pipeline call."""

    k: int
    categories: tuple[str, ...] = ()
    diversity: float | None = None


@dataclass(frozen=True, slots=True)
class Slot:
    """A query's place in the answer of its batch: ``answer.lists.item_ids[index]`` is its list.
    ``first`` is true for exactly one query per pipeline call (who reports the call's metrics)."""

    answer: Answer
    index: int
    first: bool
    batch_size: int


@dataclass
class _Pending:
    served: Any
    options: Options
    query: UserQuery
    future: asyncio.Future[Slot] = field(repr=False)


class Coalescer:
    """See module docstring. One per server process; safe to share across model swaps."""

    def __init__(self, max_batch: int = MAX_COALESCED) -> None:
        self.max_batch = max_batch
        self._pending: list[_Pending] = []
        self._scheduled = False

    async def answer(self, served: Any, query: UserQuery, options: Options) -> Slot:
        """The query's answer, computed together with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Slot] = loop.create_future()
        self._pending.append(_Pending(served, options, query, future))
        if not self._scheduled:
            self._scheduled = True
            # two turns: handlers started on this turn reach this point on the next one
            loop.call_soon(loop.call_soon, self._flush)
        return await future

    def _flush(self) -> None:
        pending, self._pending, self._scheduled = self._pending, [], False
        groups: dict[tuple[int, Options], list[_Pending]] = {}
        for p in pending:
            groups.setdefault((id(p.served), p.options), []).append(p)
        for group in groups.values():
            for start in range(0, len(group), self.max_batch):
                _answer_group(group[start : start + self.max_batch])


def _answer_group(group: list[_Pending]) -> None:
    """One pipeline call for ``group``; if it fails, one call per query, each failing alone."""
    try:
        answer = _call(group)
    except Exception as exc:
        if len(group) > 1:
            for p in group:
                _answer_group([p])
        elif not group[0].future.done():
            group[0].future.set_exception(exc)
        return
    for i, p in enumerate(group):
        if not p.future.done():  # the client may have gone (cancelled)
            p.future.set_result(Slot(answer, i, i == 0, len(group)))


def _call(group: list[_Pending]) -> Answer:
    served, options = group[0].served, group[0].options
    answer: Answer = served.answer(
        [p.query.user_id for p in group],
        options.k,
        extra_seen=[p.query.seen for p in group],
        recent=[p.query.recent for p in group],
        context=[p.query.context for p in group],
        categories=options.categories,
        diversity=options.diversity,
    )
    return answer
