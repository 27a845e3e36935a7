"""Metric properties on random inputs, and agreement with a slow pure-Python reference."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsmith.evaluation.metrics import (
    average_precision_at_k,
    compute_metrics,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
)


def truth_of(rows: list[set[int]], n_items: int) -> sp.csr_array:
    """Truth matrix from one set of relevant items per user."""
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_array((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


def reference(row: list[int], relevant: set[int], k: int) -> dict[str, float]:
    """Slow, obviously-correct per-user metrics, written from the textbook definitions."""
    row = (list(row) + [-1] * k)[:k]
    hits = [item != -1 and item in relevant for item in row]
    n_hits, n_rel = sum(hits), len(relevant)
    dcg = sum(1 / math.log2(rank + 1) for rank, hit in enumerate(hits, 1) if hit)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(n_rel, k) + 1))
    seen, ap_sum = 0, 0.0
    for rank, hit in enumerate(hits, 1):
        if hit:
            seen += 1
            ap_sum += seen / rank
    first = next((rank for rank, hit in enumerate(hits, 1) if hit), None)
    return {
        "precision": n_hits / k,
        "recall": n_hits / n_rel,
        "ndcg": dcg / ideal,
        "map": ap_sum / min(n_rel, k),
        "hit_rate": float(n_hits > 0),
        "mrr": 0.0 if first is None else 1 / first,
    }


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, list[set[int]], int, int]:
    """Random (recs, truth sets, n_items, k): distinct items per row, -1 anywhere as empty slots."""
    n_items = draw(st.integers(1, 25))
    n_users = draw(st.integers(1, 6))
    width = draw(st.integers(1, 8))
    recs, truths = [], []
    for _ in range(n_users):
        items = draw(st.permutations(range(n_items)))
        n_real = draw(st.integers(0, min(width, n_items)))
        row = list(items[:n_real]) + [-1] * (width - n_real)
        recs.append(draw(st.permutations(row)) if draw(st.booleans()) else row)
        truths.append(set(draw(st.sets(st.integers(0, n_items - 1), min_size=1))))
    k = draw(st.integers(1, width + 2))
    return np.array(recs, dtype=np.int32), truths, n_items, k


@settings(max_examples=200, deadline=None)
@given(cases())
def test_vectorised_agrees_with_reference(
    case: tuple[np.ndarray, list[set[int]], int, int],
) -> None:
    recs, truths, n_items, k = case
    result = compute_metrics(recs, truth_of(truths, n_items), n_items, k=k)
    for user, relevant in enumerate(truths):
        expected = reference(recs[user].tolist(), relevant, k)
        got = {name: float(values[user]) for name, values in result.per_user.items()}
        assert got == pytest.approx(expected, abs=1e-12)
    distinct = {int(i) for i in recs[:, :k].ravel() if i >= 0}
    assert result.coverage == pytest.approx(len(distinct) / n_items)


@settings(max_examples=100, deadline=None)
@given(cases())
def test_metrics_are_within_unit_interval(
    case: tuple[np.ndarray, list[set[int]], int, int],
) -> None:
    recs, truths, n_items, k = case
    result = compute_metrics(recs, truth_of(truths, n_items), n_items, k=k)
    for values in result.per_user.values():
        assert values.dtype == np.float64 and values.shape == (len(truths),)
        assert np.all((values >= 0) & (values <= 1 + 1e-12))
    assert 0.0 <= result.coverage <= 1.0


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_perfect_ranking(data: st.DataObject) -> None:
    n_items = data.draw(st.integers(1, 20))
    relevant = data.draw(st.sets(st.integers(0, n_items - 1), min_size=1))
    k = data.draw(st.integers(1, 10))
    ranked = data.draw(st.permutations(sorted(relevant)))
    others = [i for i in range(n_items) if i not in relevant]
    row = (list(ranked) + others + [-1] * k)[:k]  # every relevant item before any other
    recs, truth = np.array([row]), truth_of([relevant], n_items)
    best = min(k, len(relevant))
    assert ndcg_at_k(recs, truth)[0] == pytest.approx(1.0)
    assert recall_at_k(recs, truth)[0] == pytest.approx(best / len(relevant))
    assert precision_at_k(recs, truth)[0] == pytest.approx(best / k)
    assert average_precision_at_k(recs, truth)[0] == pytest.approx(1.0)
    assert reciprocal_rank(recs, truth)[0] == 1.0


@settings(max_examples=100, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_truth_storage_and_user_order_do_not_matter(
    case: tuple[np.ndarray, list[set[int]], int, int], rnd: random.Random
) -> None:
    recs, truths, n_items, k = case
    canonical = compute_metrics(recs, truth_of(truths, n_items), n_items, k=k)
    # Users in another order, their relevant sets stored as unsorted CSR (shuffled columns).
    perm = np.array(rnd.sample(range(len(truths)), len(truths)))
    indices: list[int] = []
    for user in perm:
        cols = sorted(truths[user])
        rnd.shuffle(cols)
        indices.extend(cols)
    indptr = np.cumsum([0] + [len(truths[user]) for user in perm])
    shuffled = sp.csr_array(
        (np.ones(len(indices)), np.array(indices), indptr), shape=(len(truths), n_items)
    )
    shuffled.has_sorted_indices = False
    permuted = compute_metrics(recs[perm], shuffled, n_items, k=k)
    for name, values in canonical.per_user.items():
        np.testing.assert_allclose(permuted.per_user[name], values[perm], atol=1e-12)
    assert permuted.coverage == pytest.approx(canonical.coverage)
