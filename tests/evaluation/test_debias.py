"""Debiased offline metrics (``--debias popularity:ETA``) against values worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse

from recsmith.errors import ValidationError
from recsmith.evaluation.debias import (
    Debias,
    debiased_metrics,
    inverse_propensities,
    parse_debias,
)
from recsmith.evaluation.metrics import ndcg_at_k, recall_at_k


def test_inverse_propensities_follow_popularity_to_the_power_eta() -> None:
    # 4 users x 3 items: item 0 has 4 users, item 1 one, item 2 none (counted as one)
    train = sparse.csr_array(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]]))
    assert inverse_propensities(train, 0.5) == pytest.approx([1.0, 2.0, 2.0])
    assert inverse_propensities(train, 1.0) == pytest.approx([1.0, 4.0, 4.0])
    assert inverse_propensities(train, 0.0) == pytest.approx([1.0, 1.0, 1.0])


def test_weighted_recall_and_ndcg_by_hand() -> None:
    weights = np.array([1.0, 4.0, 2.0, 1.0])
    truth = sparse.csr_array(np.array([[1, 1, 0, 0], [0, 0, 1, 1]]))
    recs = np.array([[0, 3], [2, 0]])  # user 0 hits item 0 at rank 1; user 1 hits item 2 at 1
    got = debiased_metrics(recs, truth, weights, k=2)
    scale = (1 + 4 + 2 + 1) / 4  # the mean weight of the four test interactions
    ideal = 1 + 1 / math.log2(3)  # two relevant items, k = 2
    assert got["recall_debiased"] == pytest.approx([1 / scale / 2, 2 / scale / 2])
    assert got["ndcg_debiased"] == pytest.approx([1 / scale / ideal, 2 / scale / ideal])


def test_one_test_item_per_user_still_weighs_rare_items_up() -> None:
    """Leave-last-out: two users, one test item each; plain NDCG scores a hit on either the same,
    debiased NDCG scores the hit on the rarely shown item higher (a per-user normalisation would
    cancel the weight here)."""
    weights = np.array([1.0, 4.0])
    truth = sparse.csr_array(np.array([[1, 0], [0, 1]]))
    recs = np.array([[0], [1]])
    assert ndcg_at_k(recs, truth, 1).tolist() == [1.0, 1.0]
    got = debiased_metrics(recs, truth, weights, 1)["ndcg_debiased"]
    assert got == pytest.approx([1 / 2.5, 4 / 2.5])
    assert got.mean() == pytest.approx(1.0)  # both found: the mean stays on the plain scale


def test_equal_weights_give_the_plain_metrics_back() -> None:
    rng = np.random.default_rng(3)
    truth = sparse.csr_array((rng.random((50, 40)) < 0.1).astype(np.float32))
    truth = truth[np.flatnonzero(np.diff(truth.indptr) > 0)]
    recs = np.argsort(rng.random((truth.shape[0], 40)), axis=1)[:, :10]
    got = debiased_metrics(recs, truth, np.ones(40), k=10)
    assert got["ndcg_debiased"] == pytest.approx(ndcg_at_k(recs, truth, 10))
    assert got["recall_debiased"] == pytest.approx(recall_at_k(recs, truth, 10))


def test_the_spec_is_parsed_or_named() -> None:
    assert parse_debias("popularity") == Debias(0.5)
    assert parse_debias("popularity:1") == Debias(1.0)
    for bad in ("exposure", "popularity:x", "popularity:9"):
        with pytest.raises(ValidationError) as exc:
            parse_debias(bad)
        assert exc.value.field == "--debias"
