"""Plackett–Luce sampling and propensities against brute-force enumeration of every ordering."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recsmith.exploration.plackett_luce import propensities, sample_order


def enumerated(w: np.ndarray, k: int) -> np.ndarray:
    """[items, k]: P(item at position j), summed over every ordering (the oracle)."""
    out = np.zeros((len(w), k))
    for perm in itertools.permutations(range(len(w))):
        p, left = 1.0, w.sum()
        for x in perm[:k]:
            p *= w[x] / left
            left -= w[x]
        for j in range(k):
            out[perm[j], j] += p / np.prod(range(1, len(w) - k + 1))  # tails counted (n-k)! times
    return out


def test_the_enumeration_oracle_matches_a_hand_computation() -> None:
    # w = 3, 2, 1: P(b first) = 2/6; P(b second) = 3/6 * 2/3 + 1/6 * 2/5 = 1/3 + 1/15 = 0.4
    oracle = enumerated(np.array([3.0, 2.0, 1.0]), 2)
    assert oracle[:, 0] == pytest.approx([1 / 2, 1 / 3, 1 / 6])
    assert oracle[1, 1] == pytest.approx(0.4)
    assert oracle[:, 1] == pytest.approx([0.35, 0.4, 0.25])


def test_position_one_is_exact_and_later_positions_match_enumeration_k2_of_3() -> None:
    w = np.array([3.0, 2.0, 1.0])
    logw = np.log(w)[None, :]
    oracle = enumerated(w, 2)
    rng = np.random.default_rng(0)
    for order in itertools.permutations(range(3)):
        o = np.asarray([order])
        p = propensities(logw, o, 2, rng.gumbel(size=(1, 4000, 3)))[0]
        assert p[0] == pytest.approx(oracle[order[0], 0], abs=1e-12)  # exact
        # Rao-Blackwellised: each sample's term is at most w_x / (W - w_max) <= 1; 4000 samples
        # put the standard error under 0.008
        assert p[1] == pytest.approx(oracle[order[1], 1], abs=0.03)


def test_estimates_converge_on_a_bigger_case_with_padding() -> None:
    w = np.array([5.0, 1.0, 1.0, 0.5])
    oracle = enumerated(w, 3)
    logw = np.log(np.array([[5.0, 1.0, 1.0, 0.5]]))
    logw = np.concatenate([logw, [[-np.inf]]], axis=1)  # a padded column: never drawn
    rng = np.random.default_rng(1)
    order = np.array([[3, 1, 0, 2, 4]])
    p = propensities(logw, order, 3, rng.gumbel(size=(1, 20000, 5)))[0]
    expected = [oracle[3, 0], oracle[1, 1], oracle[0, 2]]
    assert p == pytest.approx(expected, abs=0.01)


def test_the_gumbel_sampler_draws_plackett_luce() -> None:
    """How often each item lands at each position over many draws: the enumerated marginals."""
    w = np.array([3.0, 2.0, 1.0])
    n = 60_000
    rng = np.random.default_rng(2)
    logw = np.broadcast_to(np.log(w), (n, 3))
    order = sample_order(logw, rng.gumbel(size=(n, 3)))
    freq = np.stack([np.bincount(order[:, j], minlength=3) / n for j in range(2)], axis=1)
    assert freq == pytest.approx(enumerated(w, 2), abs=0.01)


def test_padding_is_drawn_last_and_has_no_propensity() -> None:
    logw = np.array([[0.0, -np.inf, 0.0]])
    order = sample_order(logw, np.zeros((1, 3)))
    assert order[0, -1] == 1
    p = propensities(logw, order, 3, np.zeros((1, 8, 3)))
    assert np.isnan(p[0, 2]) and p[0, 0] == pytest.approx(0.5)


def test_an_unlikely_position_gets_a_positive_propensity_below_the_truth() -> None:
    """Item 0 (weight 1000) drawn second: few samples ever leave it out of first place, so the
    Monte-Carlo term is usually 0; the floor (the drawn path's own probability) keeps it positive
    and under the enumerated marginal."""
    w = np.array([1000.0, 1.0, 1.0])
    exact = enumerated(w, 2)[0, 1]
    rng = np.random.default_rng(4)
    order = np.array([[1, 0, 2]])
    p = propensities(np.log(w)[None, :], order, 2, rng.gumbel(size=(1, 16, 3)))[0]
    floor = (1 / 1002) * (1000 / 1001)
    assert floor <= p[1] <= exact * 3
    assert p[1] > 0
