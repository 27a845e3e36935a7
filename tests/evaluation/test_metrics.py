"""Metrics: hand-computed cases and input checks (properties: test_metrics_properties.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsmith.errors import ValidationError
from recsmith.evaluation.metrics import (
    DEFAULT_METRICS,
    METRICS,
    average_precision_at_k,
    catalog_coverage,
    compute_metrics,
    hit_matrix,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
)

D2, D3, D4 = 1.0, 1 / math.log2(3), 1 / math.log2(4)  # discounts at ranks 1, 2, 3


def truth_of(rows: list[set[int]], n_items: int) -> sp.csr_array:
    """Truth matrix from one set of relevant items per user (entries inserted in set order)."""
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_array((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


def all_metrics(recs: np.ndarray, truth: sp.csr_array, k: int | None = None) -> dict[str, float]:
    return {name: float(fn(recs, truth, k)[0]) for name, fn in METRICS.items()}


# ---------------------------------------------------------------- hand-computed cases


def test_worked_example_two_hits_out_of_three() -> None:
    # recs [3, 1, 7], truth {1, 7, 9}: hits at ranks 2 and 3.
    got = all_metrics(np.array([[3, 1, 7]]), truth_of([{1, 7, 9}], 10))
    assert got["precision"] == pytest.approx(2 / 3)  # 2 hits / k=3
    assert got["recall"] == pytest.approx(2 / 3)  # 2 hits / |T|=3
    # DCG = 1/log2(3) + 1/log2(4); ideal over min(3, 3) = 3 hits = 1 + 1/log2(3) + 1/log2(4)
    assert got["ndcg"] == pytest.approx((D3 + D4) / (D2 + D3 + D4))
    # AP = (precision@2 + precision@3) / min(3, 3) = (1/2 + 2/3) / 3
    assert got["map"] == pytest.approx((1 / 2 + 2 / 3) / 3)
    assert got["hit_rate"] == 1.0
    assert got["mrr"] == pytest.approx(1 / 2)  # first hit at rank 2


def test_single_relevant_item_at_top_of_padded_list() -> None:
    # recs [5, -1, -1], truth {5}: precision 1/3 (padding still counts in k), the rest perfect.
    got = all_metrics(np.array([[5, -1, -1]]), truth_of([{5}], 6))
    assert got == pytest.approx(
        {"precision": 1 / 3, "recall": 1.0, "ndcg": 1.0, "map": 1.0, "hit_rate": 1.0, "mrr": 1.0}
    )


def test_truth_larger_than_k() -> None:
    # recs [1, 2], truth {1, 2, 3, 4}: precision 2/2, recall 2/4;
    # ideal DCG over min(4, 2) = 2 ranks, so ndcg = (1 + 1/log2(3)) / (1 + 1/log2(3)) = 1;
    # AP = (1/1 + 2/2) / min(4, 2) = 1.
    got = all_metrics(np.array([[1, 2]]), truth_of([{1, 2, 3, 4}], 5))
    assert got == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "ndcg": 1.0, "map": 1.0, "hit_rate": 1.0, "mrr": 1.0}
    )


def test_hit_at_rank_three_only() -> None:
    # recs [0, 2, 4], truth {4, 8}: precision 1/3, recall 1/2;
    # ndcg = (1/log2(4)) / (1 + 1/log2(3)); AP = (1/3) / min(2, 3) = 1/6; mrr = 1/3.
    got = all_metrics(np.array([[0, 2, 4]]), truth_of([{4, 8}], 9))
    assert got == pytest.approx(
        {
            "precision": 1 / 3,
            "recall": 1 / 2,
            "ndcg": D4 / (D2 + D3),
            "map": 1 / 6,
            "hit_rate": 1.0,
            "mrr": 1 / 3,
        }
    )


def test_no_hits_scores_zero_everywhere() -> None:
    got = all_metrics(np.array([[0, 2, 3]]), truth_of([{1}], 4))
    assert got == dict.fromkeys(METRICS, 0.0)


def test_users_are_scored_independently() -> None:
    # User 0 is the worked example, user 1 has no hits: means are halves of user 0's values.
    recs = np.array([[3, 1, 7], [0, 2, 4]])
    result = compute_metrics(recs, truth_of([{1, 7, 9}, {9}], 10), n_items=10)
    assert result.per_user["precision"] == pytest.approx([2 / 3, 0.0])
    assert result.means["precision"] == pytest.approx(1 / 3)
    assert result.means["mrr"] == pytest.approx(1 / 4)
    assert result.coverage == pytest.approx(6 / 10)  # items {0, 1, 2, 3, 4, 7}
    assert set(result.means) == set(DEFAULT_METRICS)


def test_k_truncates_and_pads() -> None:
    recs = np.array([[3, 1, 7]])
    truth = truth_of([{1, 7, 9}], 10)
    # k=2: recs [3, 1] -> 1 hit / 2; k=5: recs [3, 1, 7, -1, -1] -> 2 hits / 5.
    assert precision_at_k(recs, truth, k=2)[0] == pytest.approx(1 / 2)
    assert precision_at_k(recs, truth, k=5)[0] == pytest.approx(2 / 5)
    # AP@5 divides by min(|T|=3, 5) = 3, the same as at k=3.
    assert average_precision_at_k(recs, truth, k=5)[0] == pytest.approx((1 / 2 + 2 / 3) / 3)
    result = compute_metrics(recs, truth, n_items=10, names=["precision"], k=2)
    assert result.coverage == pytest.approx(2 / 10)  # only the top 2 count
    assert list(result.per_user) == ["precision"]


def test_every_metric_honours_its_k() -> None:
    # recs [3, 1, 7], truth {1, 7, 9}. k=1: [3] -> no hit at all; k=2: [3, 1] -> one hit at rank 2.
    recs, truth = np.array([[3, 1, 7]]), truth_of([{1, 7, 9}], 10)
    assert all_metrics(recs, truth, k=1) == pytest.approx(
        {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0, "hit_rate": 0.0, "mrr": 0.0}
    )
    assert all_metrics(recs, truth, k=2) == pytest.approx(
        {
            "precision": 1 / 2,
            "recall": 1 / 3,
            "ndcg": D3 / (D2 + D3),  # ideal over min(3, 2) = 2 hits
            "map": (1 / 2) / 2,  # precision@2 over min(3, 2)
            "hit_rate": 1.0,
            "mrr": 1 / 2,
        }
    )
    assert hit_matrix(recs, truth, k=2).tolist() == [[False, True]]


# ---------------------------------------------------------------- padding, duplicates, inputs


def test_padding_never_hits_even_where_row_offsets_would_alias() -> None:
    # Row-offset keys: user 1's -1 is key 1*n - 1, i.e. user 0's last item; it must not match.
    n = 4
    recs = np.array([[-1, -1], [-1, -1]])
    truth = truth_of([{n - 1}, {n - 1}], n)
    assert not hit_matrix(recs, truth).any()
    assert hit_rate_at_k(recs, truth).tolist() == [0.0, 0.0]
    # A -1 in the middle is just an empty slot; the hit after it keeps its rank.
    assert reciprocal_rank(np.array([[-1, 2]]), truth_of([{2}], 3))[0] == pytest.approx(1 / 2)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([1, 1, 2], "recs row 1 recommends an item twice"),  # the duplicate is the row's least
        ([3, 2, 3], "recs row 1 recommends an item twice"),  # it is not
        ([0, -1, 0], "recs row 1 recommends an item twice"),  # item 0 is an item, not padding
    ],
)
def test_duplicate_recommendations_are_refused_naming_the_row(row: list[int], message: str) -> None:
    recs = np.array([[1, 2, -1], row])
    with pytest.raises(ValueError) as info:
        precision_at_k(recs, truth_of([{1}, {1}], 4))
    assert str(info.value) == f"{message}; a hit may only count once"


def test_repeated_padding_is_not_a_duplicate() -> None:
    assert precision_at_k(np.array([[1, -1, -1]]), truth_of([{1}], 3))[0] == pytest.approx(1 / 3)


def test_empty_truth_row_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no relevant items \(first: row 1\)"):
        ndcg_at_k(np.array([[0], [1]]), truth_of([{0}, set()], 3))


def test_stored_zeros_are_not_relevant() -> None:
    truth = sp.csr_array((np.array([1.0, 0.0]), np.array([0, 1]), np.array([0, 2])), shape=(1, 3))
    assert hit_matrix(np.array([[0, 1]]), truth).tolist() == [[True, False]]
    # A row holding only a stored zero is empty.
    zero_only = sp.csr_array((np.array([0.0]), np.array([1]), np.array([0, 1])), shape=(1, 3))
    with pytest.raises(ValueError, match="no relevant items"):
        recall_at_k(np.array([[1]]), zero_only)


def test_duplicate_truth_entries_count_once_and_input_is_untouched() -> None:
    # Raw CSR with column 2 stored twice and unsorted: [2, 2, 1].
    truth = sp.csr_array((np.ones(3), np.array([2, 2, 1]), np.array([0, 3])), shape=(1, 3))
    assert not truth.has_canonical_format
    before = truth.copy()
    assert recall_at_k(np.array([[2]]), truth)[0] == pytest.approx(1 / 2)  # |T| = |{1, 2}|
    assert (truth != before).nnz == 0
    # its very arrays, not only its value: summing in place would sort and shorten them
    assert (truth.indices.tolist(), truth.indptr.tolist()) == ([2, 2, 1], [0, 3])


def test_accepts_csr_matrix_and_bool_truth() -> None:
    truth = sp.csr_matrix(np.array([[0, 1, 1]], dtype=bool))
    assert recall_at_k(np.array([[1, 0]], dtype=np.int32), truth)[0] == pytest.approx(1 / 2)


@pytest.mark.parametrize(
    ("recs", "match"),
    [
        (np.array([[0, 5]]), "item indices"),
        (np.array([[0, -2]]), "item indices"),
        (np.array([[0.0, 1.0]]), "integer"),
        (np.array([0, 1]), "2-D"),
        (np.array([[0], [1]]), "rows"),
    ],
)
def test_bad_recs_are_refused(recs: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        precision_at_k(recs, truth_of([{0}], 5))


def test_bad_arguments_are_refused() -> None:
    truth = truth_of([{0}], 5)
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k(np.array([[0]]), truth, k=0)
    with pytest.raises(TypeError) as type_error:
        precision_at_k(np.array([[0]]), np.ones((1, 5)))  # type: ignore[arg-type]
    assert str(type_error.value) == "truth must be a scipy sparse matrix/array, got ndarray"
    with pytest.raises(ValidationError) as info:
        compute_metrics(np.array([[0]]), truth, n_items=5, names=["ndcg", "auc"])
    known = "['hit_rate', 'map', 'mrr', 'ndcg', 'precision', 'recall']"
    assert (info.value.field, info.value.reason) == ("metrics", f"unknown ['auc']; known: {known}")
    with pytest.raises(ValueError, match="n_items"):
        compute_metrics(np.array([[0]]), truth, n_items=6)
    with pytest.raises(ValueError) as rows:
        precision_at_k(np.array([[0, 1, 2], [1, 2, 3]]), truth)  # 2 rows of 3 against 1 user
    assert str(rows.value) == "recs has 2 rows but truth has 1"
    with pytest.raises(ValueError) as empty_row:
        recall_at_k(np.array([[0], [1]]), truth_of([{0}, set()], 3))
    assert str(empty_row.value).endswith("exclude users with empty truth before computing metrics")
    empty = sp.csr_array((0, 5))
    with pytest.raises(ValueError) as no_users:
        compute_metrics(np.zeros((0, 2), dtype=int), empty, n_items=5)
    assert str(no_users.value) == "no users to evaluate"


def test_no_users_give_an_empty_hit_matrix() -> None:
    hits = hit_matrix(np.zeros((0, 3), dtype=np.int64), sp.csr_array((0, 5)))
    assert (hits.shape, hits.dtype) == ((0, 3), np.dtype(bool))


def test_hits_are_exact_in_a_catalogue_past_float_precision() -> None:
    # Hit keys are row * n_items + item. With n_items = 2**53, user 1's keys pass 2**53, where
    # float64 rounds 2**54 - 3 to 2**54 - 4: item 2**53 - 3 would hit item 2**53 - 4.
    n_items = 2**53
    truth = sp.csr_array(
        (np.ones(2), np.array([0, n_items - 4]), np.array([0, 1, 2])), shape=(2, n_items)
    )
    recs = np.array([[0], [n_items - 3]], dtype=np.int64)
    assert hit_matrix(recs, truth).tolist() == [[True], [False]]


def test_catalog_coverage() -> None:
    # Distinct items {0, 1, 2} out of 10; padding is not an item.
    assert catalog_coverage(np.array([[0, 1, -1], [1, 2, -1]]), 10) == pytest.approx(3 / 10)
    assert catalog_coverage(np.full((2, 3), -1), 10) == 0.0
    bad = "recs must hold item indices in [0, 10) or -1 for no item"
    for recs in ([[10]], [[0, -2]]):
        with pytest.raises(ValueError) as info:
            catalog_coverage(np.array(recs), 10)
        assert str(info.value) == bad
    with pytest.raises(ValueError) as no_catalogue:
        catalog_coverage(np.array([[0]]), 0)
    assert str(no_catalogue.value) == "n_items must be >= 1, got 0"
