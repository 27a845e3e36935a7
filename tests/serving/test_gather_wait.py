"""The hold policy of dynamic batching: its cost fit against a second implementation, its target
and hold against hand-computed values, and its bound and idle rule at the extremes."""

from __future__ import annotations

import random

import numpy as np
import pytest

from recsmith.serving.gather_wait import COST_MEMORY, LONGEST_GAP_S, CallCost, WaitPolicy


def test_the_cost_fit_is_the_weighted_least_squares_line() -> None:
    """Oracle: numpy's weighted polyfit over every call, the newest weighing 1 and each older one
    ``COST_MEMORY`` times the next (``polyfit`` weighs residuals, so it gets the square root)."""
    rng = random.Random(7)
    sizes = [rng.randint(1, 20) for _ in range(300)]
    seconds = [0.0004 + 0.00005 * n + rng.uniform(-5e-5, 5e-5) for n in sizes]
    cost = CallCost()
    for n, t in zip(sizes, seconds, strict=True):
        cost.add(n, t)
    weights = COST_MEMORY ** np.arange(len(sizes))[::-1]
    per_query, fixed = np.polyfit(sizes, seconds, 1, w=np.sqrt(weights))
    fit = cost.fit()
    assert fit is not None
    assert fit == pytest.approx((fixed, per_query), rel=1e-6)


def test_calls_of_one_size_have_no_fit() -> None:
    cost = CallCost()
    assert cost.fit() is None
    for _ in range(50):
        cost.add(3, 0.001)
    assert cost.fit() is None


def _fitted(fixed: float, per_query: float, max_wait_s: float = 0.002) -> WaitPolicy:
    policy = WaitPolicy(max_wait_s, max_batch=64)
    for n in (4, 3, 2, 1, 4, 3, 2, 1):  # the latest call lone
        policy.called(n, fixed + per_query * n)
    return policy


def _loaded(policy: WaitPolicy, gap_s: float, n: int = 400) -> WaitPolicy:
    for i in range(n):
        policy.arrived(1000.0 + i * gap_s)
    return policy


def test_the_hold_waits_for_the_target_at_the_measured_rate() -> None:
    """fixed 1.1 ms, 0.2 ms a query: worth waiting for 5 queries (5.5); at one query per 0.3 ms
    the fifth comes 1.2 ms after the first; at one per 0.8 ms it would take 3.2 ms: the bound."""
    policy = _loaded(_fitted(0.0011, 0.0002), 0.0003)
    assert policy.target() == 5
    wait, target = policy.plan()
    assert target == 5 and wait == pytest.approx(0.0012, rel=1e-3)
    slower = _loaded(_fitted(0.0011, 0.0002), 0.0008)
    assert slower.plan() == (pytest.approx(0.002), 5)


def test_no_hold_when_batching_saves_nothing_or_no_one_else_is_coming() -> None:
    assert _loaded(_fitted(0.0, 0.0003), 0.0001).plan() == (0.0, 1)  # no fixed cost
    assert _loaded(_fitted(0.0001, 0.0003), 0.0001).plan() == (0.0, 1)  # target 0.33
    assert _loaded(_fitted(0.001, 0.0002), 0.0025).plan() == (0.0, 1)  # gap past the 2 ms bound
    assert WaitPolicy(0.002, 64).plan() == (0.0, 1)  # just started: taken to be idle


def test_no_hold_after_a_take_that_gathered_as_many_without_one() -> None:
    """Target 10 (fixed 2.1 ms, 0.2 ms a query); one query per 0.8 ms: a hold of the 2 ms bound
    gathers 1 + 2.5 = 3.5 on average. After a take of 4 (queries pile up during the calls; the
    take's groups may be of different keys, a call of 1 each) no hold; after a take of 3 there
    is one."""
    policy = _loaded(_fitted(0.0021, 0.0002), 0.0008)
    assert policy.target() == 10
    policy.taken(4)
    policy.called(1, 0.0023)  # the take's last group: one key of four
    assert policy.plan() == (0.0, 1)
    policy.taken(3)
    assert policy.plan() == (pytest.approx(0.002), 10)


def test_holds_that_gather_nothing_stop_for_a_doubling_while() -> None:
    """Mean gain 1 at first, a quarter of each new gain: three holds gaining nothing take it to
    0.42 (< 0.5), and the next 32 plans go unheld; a retry starts at 0.6, so one more hold that
    gains nothing (0.45) stops holding for 64; a hold that gains resets the stretch to 32."""
    policy = _loaded(_fitted(0.0021, 0.0002), 0.0008)
    held = policy.plan()
    assert held[0] > 0

    def fail_holds(n: int) -> None:
        for _ in range(n):
            assert policy.plan() == held
            policy.held(0)

    def unheld_plans() -> int:
        count = 0
        while policy.plan() == (0.0, 1):
            count += 1
        return count

    fail_holds(3)
    assert unheld_plans() == 32  # the 33rd plan is a hold again
    fail_holds(1)
    assert unheld_plans() == 64
    policy.held(2)  # gained: holding goes on (0.6 -> 0.95), the next stretch is 32 again
    fail_holds(3)  # 0.95 -> 0.71 -> 0.53 -> 0.40
    assert unheld_plans() == 32


def test_a_server_gone_quiet_answers_its_next_request_at_once() -> None:
    policy = _loaded(_fitted(0.001, 0.0002), 0.0001)
    assert policy.plan()[0] > 0
    policy.arrived(1000.0 + 400 * 0.0001 + 3600.0)  # an hour later
    assert policy.mean_gap_s >= LONGEST_GAP_S / 8
    assert policy.plan() == (0.0, 1)


def test_without_a_fit_batching_is_taken_to_pay_up_to_the_bound() -> None:
    policy = _loaded(WaitPolicy(0.002, max_batch=64), 0.0005)
    assert policy.plan() == (pytest.approx(0.002), 64)


@pytest.mark.parametrize("bound", [0.0005, 0.002, 0.01])
def test_the_hold_never_exceeds_its_bound(bound: float) -> None:
    rng = random.Random(bound)
    for _ in range(200):
        policy = _fitted(rng.uniform(0, 0.01), rng.uniform(-1e-4, 0.002), bound)
        _loaded(policy, rng.choice([0.0, 1e-6, rng.uniform(0, 2 * bound)]), rng.randint(1, 60))
        wait, target = policy.plan()
        assert 0.0 <= wait <= bound and 1 <= target <= 64


def test_a_hold_needs_a_positive_finite_bound() -> None:
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="max_wait_s"):
            WaitPolicy(bad, 64)
