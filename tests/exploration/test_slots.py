"""Epsilon and Thompson slots: propensities by hand, and against how often each item really shows
when the policy is run many times (an oracle that does not use the propensity formula)."""

from __future__ import annotations

import numpy as np
import pytest

from recsmith.exploration.slots import fill_slots, uniform_shares
from recsmith.exploration.streams import Stream, seeds_of, uniforms
from recsmith.exploration.thompson import rank_shares

LISTED = np.array([[10, 11, 12, 13, 14]])
NO_PINS = np.zeros((1, 5), bool)
POOL = np.array([20, 21, 22, 23])


def run(
    n: int,
    slots: list[int],
    epsilon: float,
    eligible: np.ndarray,
    pinned: np.ndarray = NO_PINS,
    bank: np.ndarray | None = None,
):
    """The slot policy for ``n`` requests of the same list (seeds from their ids)."""
    seeds = seeds_of([f"req-{i}" for i in range(n)])
    listed = np.repeat(LISTED, n, axis=0)
    ok = np.repeat(eligible[None, :], n, axis=0)
    coins = uniforms(seeds, Stream.COIN, len(slots))
    if bank is None:
        ranking, shares = uniforms(seeds, Stream.POOL, len(POOL)), uniform_shares(ok)
    else:
        pick = (uniforms(seeds, Stream.BANK, 1)[:, 0] * len(bank)).astype(int)
        ranking = bank[pick]

        def shares(q, col, depth):
            return rank_shares(bank, ok[q], col, depth)

    return fill_slots(
        listed,
        np.repeat(pinned, n, axis=0),
        np.asarray(slots),
        epsilon,
        coins,
        POOL,
        ok,
        ranking,
        shares,
    )


def test_epsilon_mixture_by_hand() -> None:
    """ε = 0.2, slot 3 (0-based 2), 3 eligible pool items: the ranked item stays with 0.8, each
    pool item shows with 0.2 / 3; other positions are certain."""
    eligible = np.array([True, True, False, True])
    draw = run(400, [2], 0.2, eligible)
    kept = draw.items[:, 2] == 12
    assert draw.propensity[kept, 2] == pytest.approx(0.8)
    assert draw.propensity[~kept, 2] == pytest.approx(0.2 / 3)
    assert set(draw.items[~kept, 2]) <= {20, 21, 23}  # 22 is not eligible
    assert np.all(draw.propensity[:, [0, 1, 3, 4]] == 1.0)
    assert np.array_equal(draw.items[:, [0, 1, 3, 4]], np.repeat(LISTED[:, [0, 1, 3, 4]], 400, 0))
    assert 0.15 < (~kept).mean() < 0.25  # the coin is ε


def test_a_pinned_slot_never_explores_and_a_small_pool_explores_nowhere() -> None:
    pinned = NO_PINS.copy()
    pinned[0, 2] = True
    draw = run(200, [2], 1.0, np.ones(4, bool), pinned=pinned)
    assert np.all(draw.items[:, 2] == 12) and np.all(draw.propensity == 1.0)
    # two explorable slots, one eligible item: neither explores (exactness over coverage)
    draw = run(200, [1, 3], 1.0, np.array([True, False, False, False]))
    assert np.all(draw.items == LISTED) and np.all(draw.propensity == 1.0)


@pytest.mark.parametrize("thompson", [False, True])
def test_propensities_match_how_often_each_item_shows(thompson: bool) -> None:
    """Two slots, ε = 0.5: the empirical frequency of (slot, item) over 40,000 requests against
    the mean logged propensity of that (slot, item). Thompson uses a fixed, uneven bank, so the
    shares differ by rank and the binomial mixture over earlier coins matters."""
    n = 40_000
    bank = None
    if thompson:
        rng = np.random.default_rng(5)
        bank = rng.beta([8, 4, 2, 1], [2, 4, 8, 9], size=(64, 4))
    draw = run(n, [1, 3], 0.5, np.ones(4, bool), bank=bank)
    for slot in (1, 3):
        items, counts = np.unique(draw.items[:, slot], return_counts=True)
        for item, count in zip(items, counts, strict=True):
            logged = draw.propensity[draw.items[:, slot] == item, slot]
            assert np.ptp(logged) < 1e-12  # the same item at the same slot: one probability
            assert count / n == pytest.approx(logged[0], abs=0.012), (slot, item)


def test_thompson_shares_by_hand() -> None:
    """Bank of two draws over two arms: arm 0 wins draw 0, arm 1 wins draw 1 → each is best in
    half the draws; with arm 1 ineligible, arm 0 is best in all of them."""
    bank = np.array([[0.9, 0.1], [0.2, 0.7]])
    both = rank_shares(bank, np.array([[True, True]]), np.array([0]), 2)
    assert both[0] == pytest.approx([0.5, 0.5])
    alone = rank_shares(bank, np.array([[True, False]]), np.array([0]), 2)
    assert alone[0] == pytest.approx([1.0, 0.0])


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_every_slot_exploring_needs_no_masked_infinity() -> None:
    """ε = 1 with two explorable slots: the second slot's draw is the pool ranking's 2nd item
    for certain (Binom(1; 1, 1) = 1), so its propensity is the share of being 2nd: 1/4; no
    0 · ∞ is evaluated on the way (it was, under ``np.where``, as a RuntimeWarning)."""
    draw = run(50, [1, 3], 1.0, np.ones(4, bool))
    assert np.all(draw.explored[:, [1, 3]])
    assert np.allclose(draw.propensity[:, [1, 3]], 0.25)
    assert np.all(draw.propensity[:, [0, 2, 4]] == 1.0)
