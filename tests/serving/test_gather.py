"""Gathering: queries submitted together share one call, each gets its own result, one query's
failure stays its own, and blocking calls run one at a time with what arrives meanwhile grouped."""

from __future__ import annotations

import asyncio
import random
import threading
import time
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


# Dynamic batching (``max_wait_s``): a real event loop and real timers. The bound here is long
# (0.3 s) so that a machine busy with other work cannot blur a held call into one that was not.
BOUND = 0.3


def _burning(
    fixed_s: float, per_query_s: float, groups: list[list[int]], began: list[float]
) -> Any:
    """A group call that burns ``fixed_s + per_query_s × n`` of this thread's CPU (what the hold
    policy fits), answers each query with itself, and notes when it began (``time.monotonic``)."""

    def call(queries: list[int]) -> list[int]:
        began.append(time.monotonic())
        groups.append(list(queries))
        end = time.thread_time() + fixed_s + per_query_s * len(queries)
        while time.thread_time() < end:
            pass
        return queries

    return call


async def _burst(gatherer: Gatherer[int, int], queries: range) -> list[int]:
    """Queries submitted on one loop turn: each arrival a gap of 0 (the gatherer gets loaded)."""
    return await asyncio.gather(*(gatherer.submit(q) for q in queries))


async def _spaced(gatherer: Gatherer[int, int], queries: list[int], gap_s: float) -> float:
    """Queries submitted ``gap_s`` apart, each answered with its own result (``Recorder``'s square
    or ``_burning``'s echo); the seconds from the first submission to the last answer."""
    began = time.monotonic()
    waiting = []
    for i, q in enumerate(queries):
        if i:
            await asyncio.sleep(gap_s)
        waiting.append(asyncio.ensure_future(gatherer.submit(q)))
    answers = await asyncio.wait_for(asyncio.gather(*waiting), 10 * BOUND)
    assert answers in ([q * q for q in queries], queries)
    return time.monotonic() - began


def test_a_lone_query_on_an_idle_server_is_answered_without_the_wait() -> None:
    call = Recorder()

    async def run() -> tuple[float, float]:
        gatherer = Gatherer(call, max_batch=64, max_wait_s=BOUND)
        began = time.monotonic()
        assert await gatherer.submit(3) == 9
        return time.monotonic() - began, gatherer.last_wait

    took, wait = asyncio.run(run())
    assert wait == 0.0 and took < BOUND / 3
    assert call.groups == [[3]]


@pytest.mark.parametrize("max_wait_s", [BOUND, 0.0])
def test_under_load_a_burst_within_the_window_is_answered_by_one_call(max_wait_s: float) -> None:
    """After a burst has loaded the gatherer (its mean gap far below the bound) and a lone call,
    three queries 40 ms apart: held, they share one call; with ``max_wait_s`` = 0 (today's
    behaviour) the first is called alone on its loop turns, and the other two by calls of their
    own. The calls cost 5 ms each, whatever their size: batching pays for any group."""
    groups: list[list[int]] = []

    async def run() -> float:
        gatherer = Gatherer(_burning(0.005, 0.0, groups, []), max_batch=64, max_wait_s=max_wait_s)
        await _burst(gatherer, range(32))
        await _spaced(gatherer, [99], 0.0)  # after a call of 32, none held: the call is lone
        return await _spaced(gatherer, [100, 101, 102], 0.04)

    took = asyncio.run(run())
    assert groups[:2] == [list(range(32)), [99]]
    if max_wait_s:
        assert groups[2:] == [[100, 101, 102]]
        assert 0.08 < took < BOUND + 0.15
    else:
        assert groups[2:] == [[100], [101], [102]]


def test_the_wait_never_exceeds_its_bound() -> None:
    """Loaded, the calls' cost all fixed (worth a group of 64), the latest call lone: a lone
    query is held for the bound, then answered, though the group never grew."""
    groups: list[list[int]] = []

    async def run() -> tuple[float, float]:
        gatherer = Gatherer(_burning(0.005, 0.0, groups, []), max_batch=64, max_wait_s=BOUND)
        await _burst(gatherer, range(32))
        await _spaced(gatherer, [6], 0.0)  # after a call of 32, none held: the call is lone
        took = await _spaced(gatherer, [7], 0.0)
        return took, gatherer.last_wait

    took, wait = asyncio.run(run())
    assert wait == pytest.approx(BOUND)
    assert BOUND * 0.9 < took < BOUND + 0.15
    assert groups[1:] == [[6], [7]]


def test_a_group_that_reaches_its_target_is_called_before_the_bound() -> None:
    """Calls fitted at 9 ms fixed + 2 ms a query are worth a group of 4 (4.5 floored: a ratio of
    exactly 4 would turn 3 on the CPU clock's noise): the fourth query, ~30 ms after the first,
    ends the hold (its wait: the bound, or 3 mean gaps of >= 30 ms each)."""
    groups: list[list[int]] = []
    began: list[float] = []

    async def run() -> tuple[float, float, int]:
        gatherer = Gatherer(_burning(0.009, 0.002, groups, began), max_batch=64, max_wait_s=BOUND)
        await _burst(gatherer, range(24))  # loaded; one size seen: no fit
        await _spaced(gatherer, [50], 0.0)  # a second size: the fit
        assert gatherer.policy is not None
        target = gatherer.policy.target()
        first = time.monotonic()
        await _spaced(gatherer, [60, 61, 62, 63], 0.01)
        return began[-1] - first, gatherer.last_wait, target

    called_after, wait, target = asyncio.run(run())
    assert target == 4
    assert groups[2:] == [[60, 61, 62, 63]]
    assert wait >= 0.09 and called_after < wait - 0.05


def test_no_hold_while_the_calls_already_gather_their_target() -> None:
    """Saturated, queries pile up while a call runs and the next call takes them all: after a
    call of 8 queries (at least the target of 4: 9 ms / 2 ms, floored) a lone query is called on
    its loop turns, not held (a hold would leave the loop idle with queries waiting); after a
    call of 1 it is."""
    groups: list[list[int]] = []

    async def run() -> list[float]:
        gatherer = Gatherer(_burning(0.009, 0.002, groups, []), max_batch=64, max_wait_s=BOUND)
        await _burst(gatherer, range(24))
        await _spaced(gatherer, [50], 0.0)  # the fit: a target of 4
        waits = []
        for burst in (range(60, 68), range(70, 71), range(80, 81)):
            await _burst(gatherer, burst)
            waits.append(gatherer.last_wait)
        return waits

    eight, after_eight, after_one = asyncio.run(run())
    assert eight > 0.0  # the call before it was [50]: held, until 4 were waiting
    assert after_eight == 0.0
    assert after_one > 0.0
    assert groups[2:] == [list(range(60, 68)), [70], [80]]


def test_a_held_gatherer_refuses_blocking_calls() -> None:
    with pytest.raises(ValueError, match="event-loop calls only"):
        Gatherer(Recorder(), max_batch=64, blocking=True, max_wait_s=0.002)


def test_a_server_gone_quiet_after_load_answers_its_next_query_at_once() -> None:
    """Loaded (three bursts of 64, then a call of 2: the latest call small), 50 ms of silence,
    then a lone query: the silence must be in the mean gap before the plan (a gap past the 2 ms
    bound: no hold), so it is called on its loop turns, not held."""
    groups: list[list[int]] = []

    async def run() -> tuple[float, float]:
        gatherer = Gatherer(_burning(0.001, 0.00002, groups, []), max_batch=64, max_wait_s=0.002)
        for _ in range(3):
            await _burst(gatherer, range(64))
        await _burst(gatherer, range(2))
        await asyncio.sleep(0.05)
        return await _spaced(gatherer, [7], 0.0), gatherer.last_wait

    took, wait = asyncio.run(run())
    assert wait == 0.0 and groups[-1] == [7]
    assert took < 0.002 + 0.05  # generous for a loaded machine; a hold alone would be 2 ms


def test_the_hold_of_each_held_take_is_reported() -> None:
    """``on_hold`` hears each held take once, with the seconds it was held (the bound here); a
    take called at once is not reported."""
    holds: list[float] = []

    async def run() -> None:
        gatherer = Gatherer(
            _burning(0.005, 0.0, [], []), max_batch=64, max_wait_s=BOUND, on_hold=holds.append
        )
        await _burst(gatherer, range(32))  # loaded; a fresh gatherer is idle: not held
        await _spaced(gatherer, [6], 0.0)  # after a take of 32: not held
        await _spaced(gatherer, [7], 0.0)  # held for the bound

    asyncio.run(run())
    assert len(holds) == 1 and BOUND * 0.9 < holds[0] < BOUND + 0.15


def test_a_split_group_call_is_not_fitted_as_one_call() -> None:
    """A group whose call fails is retried query by query: the failed call and its retries are no
    call of the group's size, so the fit (None while one size was seen) stays without one."""

    async def run() -> Gatherer[int, int]:
        gatherer = Gatherer(Recorder(), max_batch=64, max_wait_s=0.002)
        await _burst(gatherer, range(4))
        await asyncio.gather(gatherer.submit(1), gatherer.submit(-2), return_exceptions=True)
        return gatherer

    gatherer = asyncio.run(run())
    assert gatherer.policy is not None and gatherer.policy.cost.fit() is None
    assert gatherer.last_taken == 2


# A cheap call (0.3 ms fixed + 0.03 ms a query: worth a group of 10) under the 2 ms bound of the
# default setting: a closed loop's round trip is far shorter than the bound.
CHEAP = (0.0003, 0.00003)


async def _closed_loop(clients: int, max_wait_s: float, seconds: float, holds: list[float]) -> int:
    """``clients`` that each submit their next query as soon as the last is answered; how many
    queries were answered in ``seconds``."""
    gatherer = Gatherer(
        _burning(*CHEAP, [], []), max_batch=64, max_wait_s=max_wait_s, on_hold=holds.append
    )
    stop = time.monotonic() + seconds
    answered = 0

    async def client(c: int) -> None:
        nonlocal answered
        while time.monotonic() < stop:
            await gatherer.submit(c)
            answered += 1

    await asyncio.gather(*(client(c) for c in range(clients)))
    return answered


@pytest.mark.parametrize("clients", [1, 2])
def test_a_closed_loop_of_few_clients_is_not_slowed_by_holds(clients: int) -> None:
    """With fewer clients than the target, nobody is left to join a held group: the first holds
    gather nothing, so holding stops (a few holds per doubling stretch, not one per call) and the
    throughput stays that of no hold at all (before the fix: 3.1x slower with one client).
    Alternating rounds, totals compared: at least 0.8x; held takes under 5 % of the queries."""
    totals = {0.0: 0, 0.002: 0}
    holds: list[float] = []
    for _ in range(3):
        for wait in totals:
            totals[wait] += asyncio.run(_closed_loop(clients, wait, 0.3, holds))
    assert totals[0.002] >= 0.8 * totals[0.0]
    assert len(holds) < 0.05 * totals[0.002]


def test_open_arrivals_that_holds_can_gather_are_still_held() -> None:
    """Queries arriving one by one, 0.5 ms apart or more (exponential gaps; the loop's sleeps add
    to them: ~1 ms measured) with a cheap call: held, a group gathers the queries of its hold, so
    holding goes on through the run (the second half's calls are larger too) and the calls are
    larger than without a hold (measured: half the takes held, 1.65 queries a call against 1)."""

    async def run(max_wait_s: float) -> tuple[list[list[int]], list[float]]:
        groups: list[list[int]] = []
        holds: list[float] = []
        gatherer = Gatherer(
            _burning(*CHEAP, groups, []), max_batch=64, max_wait_s=max_wait_s, on_hold=holds.append
        )
        rng = random.Random(3)
        waiting = []
        for q in range(600):
            waiting.append(asyncio.ensure_future(gatherer.submit(q)))
            await asyncio.sleep(rng.expovariate(1 / 0.0005))
        await asyncio.gather(*waiting)
        return groups, holds

    held_groups, holds = asyncio.run(run(0.002))
    unheld_groups, _ = asyncio.run(run(0.0))
    late = [g for g in held_groups if g[0] >= 300]
    assert len(holds) > 0.3 * len(held_groups)
    assert 600 / len(held_groups) > 1.3 * 600 / len(unheld_groups)  # measured: 1.65 vs 1.00
    assert len(late) and sum(len(g) for g in late) / len(late) > 1.3  # measured: 1.89
