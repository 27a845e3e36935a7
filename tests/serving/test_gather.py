"""Gathering: queries submitted together share one call, each gets its own result, one query's
failure stays its own, and blocking calls run one at a time with what arrives meanwhile grouped."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from recsmith.errors import StoreUnavailable
from recsmith.serving.gather import Gatherer


class Recorder:
    """A group call that squares numbers, refuses negatives, and records the groups it saw."""

    def __init__(self, fail_all: BaseException | None = None) -> None:
        self.groups: list[list[int]] = []
        self.fail_all = fail_all
        self.threads: set[int] = set()

    def __call__(self, queries: list[int]) -> list[int]:
        self.groups.append(list(queries))
        self.threads.add(threading.get_ident())
        if self.fail_all is not None:
            raise self.fail_all
        if any(q < 0 for q in queries):
            raise ValueError(f"negative in {queries}")
        return [q * q for q in queries]


@pytest.mark.parametrize("blocking", [False, True])
def test_queries_submitted_together_share_one_call(blocking: bool) -> None:
    call = Recorder()

    async def run() -> list[Any]:
        gatherer = Gatherer(call, max_batch=64, blocking=blocking)
        return await asyncio.gather(*(gatherer.submit(q) for q in (1, 2, 3, 4)))

    assert asyncio.run(run()) == [1, 4, 9, 16]
    assert call.groups == [[1, 2, 3, 4]]
    assert (threading.get_ident() in call.threads) is not blocking  # blocking: the thread pool


def test_keys_and_max_batch_cut_groups() -> None:
    call = Recorder()

    async def run() -> list[Any]:
        gatherer = Gatherer(call, max_batch=2)
        keyed = [(1, "a"), (2, "b"), (3, "a"), (4, "a"), (5, "b")]
        return await asyncio.gather(*(gatherer.submit(q, key=k) for q, k in keyed))

    assert asyncio.run(run()) == [1, 4, 9, 16, 25]
    assert call.groups == [[1, 3], [4], [2, 5]]


@pytest.mark.parametrize("blocking", [False, True])
def test_a_failing_query_fails_alone(blocking: bool) -> None:
    call = Recorder()

    async def run() -> list[Any]:
        gatherer = Gatherer(call, max_batch=64, blocking=blocking)
        return await asyncio.gather(
            *(gatherer.submit(q) for q in (2, -1, 3)), return_exceptions=True
        )

    good, bad, other = asyncio.run(run())
    assert (good, other) == (4, 9)
    assert isinstance(bad, ValueError) and str(bad) == "negative in [-1]"
    assert call.groups == [[2, -1, 3], [2], [-1], [3]]


@pytest.mark.parametrize("blocking", [False, True])
def test_a_call_answering_the_wrong_count_is_retried_alone_not_shifted(blocking: bool) -> None:
    """A group call that drops one result (a store answering fewer lists than users) would
    settle every later query with its neighbour's result, and leave the last one waiting: each
    query is asked alone instead, and one still answered wrongly fails on its own."""
    groups: list[list[int]] = []

    def drops_seven(queries: list[int]) -> list[int]:
        groups.append(list(queries))
        return [q * q for q in queries if q != 7]

    async def run() -> list[Any]:
        gatherer = Gatherer(drops_seven, max_batch=64, blocking=blocking)
        together = (gatherer.submit(q) for q in (2, 7, 3))
        return await asyncio.wait_for(asyncio.gather(*together, return_exceptions=True), 5)

    two, seven, three = asyncio.run(run())
    assert (two, three) == (4, 9) and isinstance(seven, RuntimeError)
    assert groups == [[2, 7, 3], [2], [7], [3]]


def test_an_error_split_declines_fails_the_group_once() -> None:
    down = StoreUnavailable("the store is down")
    call = Recorder(fail_all=down)

    async def run() -> list[Any]:
        gatherer = Gatherer(
            call,
            max_batch=64,
            blocking=True,
            split=lambda exc: not isinstance(exc, StoreUnavailable),
        )
        return await asyncio.gather(
            *(gatherer.submit(q) for q in (1, 2, 3)), return_exceptions=True
        )

    assert asyncio.run(run()) == [down, down, down]
    assert call.groups == [[1, 2, 3]]  # one attempt, not one more per query


def test_blocking_calls_run_one_at_a_time_and_group_what_waits() -> None:
    """While a call runs in a thread, later submissions wait for it and then share the next call;
    a lone submission on an idle gatherer is answered by a call of its own, without waiting."""
    started, release = threading.Event(), threading.Event()
    groups: list[list[int]] = []

    def call(queries: list[int]) -> list[int]:
        groups.append(list(queries))
        if queries == [0]:
            started.set()
            assert release.wait(10)
        return queries

    async def run() -> list[Any]:
        gatherer = Gatherer(call, max_batch=64, blocking=True)
        first = asyncio.ensure_future(gatherer.submit(0))
        while not started.is_set():
            await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(gatherer.submit(q)) for q in (1, 2, 3)]
        await asyncio.sleep(0.05)  # many loop turns: they still wait for the running call
        assert groups == [[0]]
        release.set()
        return await asyncio.gather(first, *later)

    assert asyncio.run(run()) == [0, 1, 2, 3]
    assert groups == [[0], [1, 2, 3]]


def test_a_group_is_taken_only_once_the_turn_is_held() -> None:
    """With a ``turn`` (another process writing), what arrives while the turn is awaited joins the
    group that waited for it: one call for all four, not [0] then [1, 2, 3]."""
    held, entered = threading.Lock(), threading.Event()
    groups: list[list[int]] = []

    class Turn:
        def __enter__(self) -> None:
            entered.set()
            assert held.acquire(timeout=10)

        def __exit__(self, *exc: object) -> None:
            held.release()

    def call(queries: list[int]) -> list[int]:
        groups.append(list(queries))
        return queries

    async def run() -> list[Any]:
        gatherer = Gatherer(call, max_batch=64, blocking=True, turn=Turn)
        held.acquire()  # "another process" writes
        first = asyncio.ensure_future(gatherer.submit(0))
        while not entered.is_set():
            await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(gatherer.submit(q)) for q in (1, 2, 3)]
        await asyncio.sleep(0.05)  # many loop turns: all of them wait for the turn
        assert groups == []
        held.release()
        return await asyncio.gather(first, *later)

    assert asyncio.run(run()) == [0, 1, 2, 3]
    assert groups == [[0, 1, 2, 3]]
    assert not held.locked()  # the turn was given back


def test_a_turn_that_cannot_be_taken_fails_the_waiting_queries_not_strands_them() -> None:
    """An error entering the turn is every waiting query's answer; the next submission gets a
    new drain (and the turn, now working)."""
    broken = [True]

    class Turn:
        def __enter__(self) -> None:
            if broken[0]:
                raise OSError("no locks on this file system")

        def __exit__(self, *exc: object) -> None:
            pass

    async def run() -> tuple[list[Any], Any]:
        gatherer = Gatherer(Recorder(), max_batch=64, blocking=True, turn=Turn)
        waiting = (gatherer.submit(q) for q in (1, 2))
        first = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 10)
        broken[0] = False
        return first, await asyncio.wait_for(gatherer.submit(3), 10)

    first, later = asyncio.run(run())
    assert [str(e) for e in first] == ["no locks on this file system"] * 2
    assert later == 9
