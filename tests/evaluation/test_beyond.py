"""Beyond-accuracy metrics: hand-computed cases, brute-force references and properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from recsmith.evaluation.beyond import (
    average_popularity,
    head_tail_share,
    intra_list_diversity,
    novelty,
    personalisation,
    popularity_lift,
)

SQRT_HALF = 1 / math.sqrt(2)  # cosine of [1, 0] and [1, 1]

# items: 0 = [1, 0], 1 = [0, 1], 2 = [1, 1], 3 = [0, 0] (no features at all)
FEATURES = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])


def reference_diversity(recs: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Plain loop over each list's item pairs; a zero vector has cosine 0 with everything."""
    out = []
    for row in recs:
        items = [i for i in row if i >= 0]
        dists = []
        for i, j in itertools.combinations(items, 2):
            norm = np.linalg.norm(features[i]) * np.linalg.norm(features[j])
            dists.append(1.0 - (features[i] @ features[j] / norm if norm > 0 else 0.0))
        out.append(np.mean(dists) if dists else np.nan)
    return np.array(out)


def reference_personalisation(recs: np.ndarray) -> float:
    lists = [set(int(i) for i in row if i >= 0) for row in recs]
    lists = [s for s in lists if s]
    overlaps = [
        len(a & b) / math.sqrt(len(a) * len(b)) for a, b in itertools.combinations(lists, 2)
    ]
    return 1.0 - float(np.mean(overlaps)) if overlaps else float("nan")


# ---------------------------------------------------------------- intra-list diversity


def test_intra_list_diversity_by_hand() -> None:
    recs = np.array(
        [
            [0, 1, -1],  # one pair, cos 0: 1 - 0 = 1
            [0, 2, -1],  # one pair, cos 1/sqrt2: 1 - 0.7071 = 0.2929
            [0, 1, 2],  # cos 0, 0.7071, 0.7071: 1 - 1.4142 / 3 = 0.5286
            [2, 3, -1],  # item 3 has no features: unlike everything, 1 - 0 = 1
            [1, -1, -1],  # a single item has no pair: NaN
        ]
    )
    expected = [1.0, 1 - SQRT_HALF, 1 - 2 * SQRT_HALF / 3, 1.0, np.nan]
    np.testing.assert_allclose(intra_list_diversity(recs, FEATURES), expected)
    csr = sparse.csr_array(FEATURES)  # category one-hots arrive sparse: same answer
    np.testing.assert_allclose(intra_list_diversity(recs, csr), expected)
    np.testing.assert_allclose(intra_list_diversity(recs, sparse.csr_matrix(FEATURES)), expected)


def test_intra_list_diversity_of_signed_embeddings_can_exceed_one() -> None:
    # [1, 0] and [-1, 0] point opposite ways: cos -1, distance 2.
    assert intra_list_diversity(np.array([[0, 1]]), np.array([[1.0, 0.0], [-1.0, 0.0]]))[0] == 2.0


def test_intra_list_diversity_stays_at_one_for_a_featureless_item_despite_rounding() -> None:
    # [1, 3, 3] normalised has a squared norm of 1 + 2e-16: the pair sum came out a hair below 0
    # and the diversity a hair above the 1 that non-negative features allow.
    features = np.array([[0.0, 0.0, 0.0], [1.0, 3.0, 3.0]])
    assert intra_list_diversity(np.array([[0, 1]]), features)[0] == 1.0
    assert intra_list_diversity(np.array([[0, 1]]), sparse.csr_array(features))[0] == 1.0


def test_intra_list_diversity_validates_recs() -> None:
    with pytest.raises(ValueError, match="item indices"):
        intra_list_diversity(np.array([[0, 4]]), FEATURES)
    with pytest.raises(ValueError, match="2-D integer"):
        intra_list_diversity(np.array([0.0, 1.0]), FEATURES)


@st.composite
def lists_and_features(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n_items = draw(st.integers(2, 8))
    d = draw(st.integers(1, 4))
    cells = st.lists(st.integers(0, 3), min_size=n_items * d, max_size=n_items * d)
    features = np.array(draw(cells), dtype=np.float64).reshape(n_items, d)
    k = draw(st.integers(1, n_items))
    n_users = draw(st.integers(1, 6))
    rows = []
    for _ in range(n_users):
        items = draw(st.permutations(range(n_items)))[:k]
        filled = draw(st.integers(0, k))
        rows.append(list(items[:filled]) + [-1] * (k - filled))
    return np.array(rows, dtype=np.int64).reshape(n_users, k), features


@settings(max_examples=150, deadline=None)
@given(lists_and_features())
def test_intra_list_diversity_matches_reference_and_stays_in_unit_interval(
    case: tuple[np.ndarray, np.ndarray],
) -> None:
    recs, features = case
    got = intra_list_diversity(recs, features)
    np.testing.assert_allclose(got, reference_diversity(recs, features), atol=1e-9)
    finite = got[~np.isnan(got)]
    assert ((finite >= 0) & (finite <= 1)).all()  # non-negative features: cosine in [0, 1]
    np.testing.assert_allclose(intra_list_diversity(recs, sparse.csr_array(features)), got)


# ---------------------------------------------------------------- novelty and popularity

POP = np.array([10.0, 5.0, 0.0, 1.0])  # distinct users per item; 10 users in all


def test_novelty_by_hand() -> None:
    recs = np.array([[0, 1], [2, 3], [1, -1], [-1, -1]])
    # -log2(10/10) = 0, -log2(5/10) = 1; pop 0 reads as 1 and -log2(1/10) = 3.3219 as for pop 1.
    expected = [(0 + 1) / 2, math.log2(10), 1.0, np.nan]
    np.testing.assert_allclose(novelty(recs, POP, n_users=10), expected)
    # Raw event counts above n_users are capped at probability 1: 0 bits, never negative.
    assert novelty(np.array([[0]]), np.array([25.0]), n_users=10)[0] == 0.0
    with pytest.raises(ValueError):
        novelty(recs, POP, n_users=0)


@settings(max_examples=100, deadline=None)
@given(lists_and_features(), st.integers(1, 50), st.data())
def test_novelty_is_non_negative(
    case: tuple[np.ndarray, np.ndarray], n_users: int, data: st.DataObject
) -> None:
    recs, features = case
    pop = np.array(
        data.draw(st.lists(st.integers(0, 100), min_size=len(features), max_size=len(features)))
    )
    got = novelty(recs, pop, n_users)
    assert (got[~np.isnan(got)] >= 0).all()
    assert np.isnan(got).tolist() == (recs < 0).all(axis=1).tolist()  # NaN only for empty lists


def test_average_popularity_by_hand() -> None:
    recs = np.array([[0, 1], [2, 3], [-1, -1]])
    # (10 + 5) / 2 = 7.5; (0 + 1) / 2 = 0.5; an empty list has no mean.
    np.testing.assert_allclose(average_popularity(recs, POP), [7.5, 0.5, np.nan])
    with pytest.raises(ValueError, match="non-negative"):
        average_popularity(recs, np.array([1.0, -1.0, 0.0, 0.0]))


def test_popularity_lift_by_hand() -> None:
    recs = np.array([[0, 1], [3, -1], [0, -1], [0, -1]])
    profile = sparse.csr_array(
        np.array(
            [
                [0, 0, 1, 1],  # items 2, 3: profile ARP (0 + 1) / 2 = 0.5; recs ARP 7.5: 15
                [3, 1, 0, 0],  # weights do not matter, items 0, 1: ARP 7.5; recs ARP 1: 1 / 7.5
                [0, 0, 0, 0],  # empty profile: NaN
                [0, 0, 2, 0],  # only a never-popular item: ARP 0, NaN rather than inf
            ],
            dtype=np.float32,
        )
    )
    np.testing.assert_allclose(popularity_lift(recs, POP, profile), [15.0, 1 / 7.5, np.nan, np.nan])
    with pytest.raises(ValueError, match="train_user_items"):
        popularity_lift(recs, POP, profile[:2])


# ---------------------------------------------------------------- personalisation


def test_personalisation_by_hand() -> None:
    # A = {0, 1}, B = {1, 2}, C = {3}: overlaps 1 / sqrt(2 * 2) = 0.5, 0 and 0, mean 0.5 / 3.
    recs = np.array([[0, 1], [1, 2], [3, -1], [-1, -1]])  # the empty list is left out
    assert personalisation(recs, 4) == pytest.approx(1 - 0.5 / 3)
    assert personalisation(np.array([[0, 1], [1, 0], [0, 1]]), 4) == pytest.approx(0.0)
    assert personalisation(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(1.0)
    assert math.isnan(personalisation(np.array([[0, 1], [-1, -1]]), 4))


@settings(max_examples=150, deadline=None)
@given(lists_and_features())
def test_personalisation_matches_reference(case: tuple[np.ndarray, np.ndarray]) -> None:
    recs, features = case
    got, expected = personalisation(recs, len(features)), reference_personalisation(recs)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 30), st.integers(1, 5))
def test_personalisation_of_disjoint_and_identical_lists(n_users: int, k: int) -> None:
    disjoint = np.arange(n_users * k).reshape(n_users, k)
    assert personalisation(disjoint, n_users * k) == pytest.approx(1.0)
    identical = np.tile(np.arange(k), (n_users, 1))
    assert personalisation(identical, k) == pytest.approx(0.0, abs=1e-12)


def test_personalisation_scales_to_many_users() -> None:
    # 200k users, k = 10 over 1000 items: slot j draws from its own block of 100 items, so two
    # lists share each slot with chance 1/100: E|A & B| = 0.1 and cosine 0.1 / 10 = 0.01.
    rng = np.random.default_rng(0)
    recs = rng.integers(0, 100, (200_000, 10)) + np.arange(10) * 100
    assert personalisation(recs, 1000) == pytest.approx(0.99, abs=1e-3)


# ---------------------------------------------------------------- head / tail


def test_head_tail_share_by_hand() -> None:
    pop = np.array([50, 30, 10, 5, 5, 0, 0, 0, 0, 0], dtype=np.float64)
    # head_fraction 0.2 of 10 items: the 2 most popular, {0, 1}, hold 80 of 100 interactions.
    recs = np.array([[0, 2, 5], [1, 0, -1]])  # 5 filled slots, 3 on head items (0, 1, 0)
    share = head_tail_share(recs, pop, 0.2)
    assert share.head == pytest.approx(0.6) and share.tail == pytest.approx(0.4)
    assert share.n_head_items == 2 and share.interaction_head == pytest.approx(0.8)
    # Ties at the threshold all join the head: ceil(0.25 * 4) = 1st item has pop 5, so 3 items.
    tied = head_tail_share(np.array([[3, 0]]), np.array([5.0, 5.0, 5.0, 1.0]), 0.25)
    assert tied.n_head_items == 3 and tied.head == pytest.approx(0.5)
    assert math.isnan(head_tail_share(np.array([[-1]]), pop).head)
    with pytest.raises(ValueError):
        head_tail_share(recs, pop, 1.0)
