"""Gathering: calls that arrive together in one server process are answered by one call per group.

Much of what a request costs is fixed per call — a pipeline call's set-up (``coalesce.py``), or an
event batch's validation and its store transaction with one fsync (``group_commit.py``) — so
answering the requests that are in flight together with one call is where a busy server's
throughput comes from. Each handler submits its query here and awaits its own result.

A lone query on an idle server is answered at once: the first submission schedules the flush two
loop turns later (handlers whose bytes arrived on the same turn reach ``submit`` on the next one),
with no timer and no added wait. Under load (``max_wait_s`` > 0, event-loop calls only) the flush
may instead be held a short, bounded while so that the queries arriving next join the call
(``gather_wait.WaitPolicy``: from the measured arrival rate and the calls' fixed and per-query
CPU); the two turns follow the hold, and a group that reaches the policy's target is flushed at
once. Queries are grouped by a key (what one call must share) and cut
into groups of at most ``max_batch``. A group whose call raises is retried query by query, so one
request's bad input never fails another's; ``split`` may decline that retry for errors every query
would meet again (a store that is down), which then fail the whole group at once.

Two ways to run a group call: on the event loop (``blocking=False``; the call is CPU work that
nothing else in this process could overlap anyway), or in the thread pool (``blocking=True``; the
call waits on I/O such as an fsync). Blocking calls run one at a time: what arrives meanwhile waits
for the running call and is then answered by the next call, all together — so the group grows with
the load instead of the number of calls, which is what group commit needs. ``turn`` (blocking mode)
is entered before each group is taken and left after its call: where several processes' calls
serialise anyway (SQLite's one writer), a process takes its group only once it may write, so what
arrived while another process was writing joins that group instead of forming one of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from fastapi.concurrency import run_in_threadpool

from recsmith.serving.gather_wait import WaitPolicy

Q = TypeVar("Q")
R = TypeVar("R")


@dataclass
class _Pending(Generic[Q, R]):
    key: Hashable
    query: Q
    future: asyncio.Future[R] = field(repr=False)


def _always(_: Exception) -> bool:
    return True


class Gatherer(Generic[Q, R]):
    """See module docstring. ``call`` maps a group of queries sharing a key to one result each."""

    def __init__(
        self,
        call: Callable[[list[Q]], Sequence[R]],
        *,
        max_batch: int,
        blocking: bool = False,
        split: Callable[[Exception], bool] = _always,
        turn: Callable[[], AbstractContextManager[object]] | None = None,
        max_wait_s: float = 0.0,
        on_hold: Callable[[float], None] | None = None,
    ) -> None:
        if max_wait_s and blocking:  # a blocking call's queue already grows with the load
            raise ValueError("max_wait_s holds event-loop calls only (blocking=False)")
        self.max_batch = max_batch
        self._call = call
        self._blocking = blocking
        self._split = split
        self._turn = turn
        self._pending: list[_Pending[Q, R]] = []
        self._scheduled = False
        self._running = False
        self._drainer: asyncio.Task[None] | None = None  # held: the loop keeps only a weak ref
        #: when calls wait for company (None: never, as ``max_wait_s`` = 0 asks)
        self.policy = WaitPolicy(max_wait_s, max_batch) if max_wait_s > 0 else None
        self._hold: asyncio.TimerHandle | None = None  # the held flush's timer
        self._target = 0  # the held group's size that ends the hold
        self._held_since: float | None = None  # when the held take's hold began
        self._unheld: int | None = None  # what an unheld flush would have taken (None: not yet)
        self._splits = 0  # group calls retried query by query: their time is no call's cost
        #: told each held take's hold, in seconds, as it ends (the holds metric)
        self._on_hold = on_hold
        #: the hold the latest group was given, in seconds (0: flushed without one)
        self.last_wait = 0.0
        #: how many queries the latest take found waiting (all groups): the load, as it gathers
        self.last_taken = 0
        #: when that take was (``time.monotonic``): a load seen long ago is no load now
        self.last_taken_at = 0.0

    @property
    def waiting(self) -> bool:
        """Whether a query waits for its group call (submitted, not yet answered)."""
        return bool(self._pending) or self._running

    async def submit(self, query: Q, key: Hashable = None) -> R:
        """The query's result, computed together with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append(_Pending(key, query, future))
        policy = self.policy
        if policy is not None:
            policy.arrived(time.monotonic())
        if not self._scheduled and not self._running:
            self._scheduled = True
            wait, self._target = policy.plan() if policy is not None else (0.0, 1)
            self.last_wait = wait
            if wait > 0:
                self._hold = loop.call_later(wait, self._soon)
                self._held_since, self._unheld = time.monotonic(), None
                loop.call_soon(loop.call_soon, self._would_flush)  # when ``_start`` would run
            else:
                loop.call_soon(self._soon)
        elif self._hold is not None and len(self._pending) >= self._target:
            self._hold.cancel()  # the group is as large as it was waiting to be
            self._hold = None
            loop.call_soon(self._soon)
        return await future

    def _soon(self) -> None:
        """The flush on the next turn: handlers started on this turn reach ``submit`` on it."""
        self._hold = None
        asyncio.get_running_loop().call_soon(self._start)

    def _would_flush(self) -> None:
        """Two turns into a hold, where an unheld flush would take the group: what it would get."""
        if self._hold is not None:
            self._unheld = len(self._pending)

    def _start(self) -> None:
        self._scheduled = False
        if not self._blocking:
            policy = self.policy
            groups = self._take()
            if policy is not None:
                self._judge_hold(policy)
            for group in groups:
                queries = [p.query for p in group]
                if policy is None:
                    _settle(group, self.outcomes(queries))
                    continue
                began, splits = time.thread_time(), self._splits
                outcomes = self.outcomes(queries)
                if splits == self._splits:  # a failed call and its retries are not one call
                    policy.called(len(queries), time.thread_time() - began)
                _settle(group, outcomes)
            return
        self._running = True
        self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def _judge_hold(self, policy: WaitPolicy) -> None:
        """Tell ``policy`` what the take just made found, and what its hold (if any) gained."""
        policy.taken(self.last_taken)
        if self._held_since is None:
            return
        if self._unheld is not None:  # else the hold ended before an unheld flush would have
            policy.held(self.last_taken - self._unheld)
        if self._on_hold is not None:
            self._on_hold(time.monotonic() - self._held_since)
        self._held_since = None

    async def _drain(self) -> None:
        """Blocking calls, one at a time, until nothing is waiting (see module docstring)."""
        try:
            while self._pending:
                with ExitStack() as held:
                    if self._turn is not None:  # waits in a thread: it may block on another process
                        try:
                            await run_in_threadpool(held.enter_context, self._turn())
                        except Exception as exc:  # answered, never left waiting on a dead drain
                            for group in self._take():
                                _settle(group, [exc] * len(group))
                            continue
                    for group in self._take():
                        await self._run(group)
        finally:
            self._running = False

    async def _run(self, group: list[_Pending[Q, R]]) -> None:
        """One blocking call for ``group``, in the thread pool; settles every query of it."""
        queries = [p.query for p in group]
        try:
            outcomes = await run_in_threadpool(self.outcomes, queries)
        except BaseException as exc:  # the task itself is cancelled (shutdown)
            _settle(group, [RuntimeError(f"group call abandoned: {exc!r}")] * len(group))
            raise
        _settle(group, outcomes)

    def _take(self) -> list[list[_Pending[Q, R]]]:
        """Everything waiting, as groups of one key and at most ``max_batch`` queries."""
        pending, self._pending = self._pending, []
        self.last_taken, self.last_taken_at = len(pending), time.monotonic()
        groups: dict[Hashable, list[_Pending[Q, R]]] = {}
        for p in pending:
            groups.setdefault(p.key, []).append(p)
        return [
            group[start : start + self.max_batch]
            for group in groups.values()
            for start in range(0, len(group), self.max_batch)
        ]

    def outcomes(self, queries: list[Q]) -> list[R | Exception]:
        """One result per query, in order (an exception is that query's failure): one call for
        ``queries``; if it fails (and ``split`` allows), one call per query."""
        try:
            results = list(self._call(queries))
            if len(results) != len(queries):  # settled by position: never shifted, never stranded
                raise RuntimeError(f"{len(results)} results for a group of {len(queries)}")
        except Exception as exc:
            if len(queries) > 1 and self._split(exc):
                self._splits += 1
                return [out for q in queries for out in self.outcomes([q])]
            return [exc] * len(queries)
        return results  # type: ignore[return-value]


def _settle(group: list[_Pending[Q, R]], outcomes: list[R | Exception]) -> None:
    for p, out in zip(group, outcomes, strict=True):
        if p.future.done():  # the client went away (its handler was cancelled)
            continue
        if isinstance(out, Exception):
            p.future.set_exception(out)
        else:
            p.future.set_result(out)
