"""The top-k kernel: order, padding, and never returning excluded (-inf) entries."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import sparse

from recsmith.models.topk import TopK, sparse_top_k, top_k


def test_best_first_and_padding() -> None:
    scores = np.array([[0.1, 0.9, -np.inf, 0.5], [-np.inf, -np.inf, -np.inf, 2.0]], np.float32)
    top = top_k(scores, 3)
    np.testing.assert_array_equal(top.ids, [[1, 3, 0], [3, -1, -1]])
    np.testing.assert_allclose(top.scores[0], [0.9, 0.5, 0.1])
    assert np.isneginf(top.scores[1, 1:]).all()


def test_k_beyond_columns_pads() -> None:
    top = top_k(np.array([[1.0, 2.0]], np.float32), 4)
    np.testing.assert_array_equal(top.ids, [[1, 0, -1, -1]])


@settings(deadline=None)  # a first call pays numpy's warm-up: no timing in unit tests
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 5), st.integers(1, 30)),
        elements=st.floats(-1e6, 1e6, width=32),
    ),
    st.integers(1, 40),
)
def test_matches_full_sort(scores: np.ndarray, k: int) -> None:
    top = top_k(scores, k)
    expected = -np.sort(-scores, axis=1)[:, :k]
    width = min(k, scores.shape[1])
    np.testing.assert_allclose(top.scores[:, :width], expected)
    picked = np.take_along_axis(scores, top.ids[:, :width].astype(np.int64), axis=1)
    np.testing.assert_allclose(picked, expected)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 12), st.floats(0.0, 1.0), st.integers(0, 10_000))
def test_sparse_top_k_equals_dense_top_k_over_stored_entries(
    n_rows: int, k: int, density: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(n_rows, 15)).astype(np.float32)
    dense[rng.random((n_rows, 15)) > density] = 0.0  # not stored: never a candidate
    dense[(dense != 0.0) & (rng.random((n_rows, 15)) < 0.2)] = -np.inf  # stored but masked
    rows, cols = np.nonzero(dense)
    stored = sparse.csr_array((dense[rows, cols], (rows, cols)), shape=dense.shape)
    got = sparse_top_k(stored, k)
    want = top_k(np.where(dense == 0.0, -np.inf, dense), k)
    assert np.array_equal(got.ids, want.ids)
    assert np.array_equal(got.scores, want.scores)


def test_sparse_answers_are_typed_and_ordered_by_the_float32_scores_they_return() -> None:
    # float64 scores 1 + 1e-9 (item 1) and 1 (item 0) are both 1.0 in float32: the answer ranks
    # them as the scores it returns say, a tie, lower index first; 0.5 (item 2) comes last.
    stored = sparse.csr_array(np.array([[1.0, 1.0 + 1e-9, 0.5]], dtype=np.float64))
    got = sparse_top_k(stored, 4)
    assert got.ids.dtype == np.int32 and got.scores.dtype == np.float32
    assert got.ids.tolist() == [[0, 1, 2, -1]]
    assert got.scores.tolist() == [[1.0, 1.0, 0.5, -np.inf]]


def test_matches_a_full_sort_on_a_long_row() -> None:
    # 300 of 2,000: long enough for numpy's introselect to leave the (k+1)-th best at position k
    # when asked for only k - 1 (seed 11 is a case where it does), which small rows never show
    scores = np.random.default_rng(11).normal(size=(1, 2000))
    top = top_k(scores, 300)
    assert top.ids[0].tolist() == np.argsort(-scores[0])[:300].tolist()


@pytest.mark.parametrize("k", [40, 50])
def test_ties_come_lower_index_first_when_k_covers_the_row(k: int) -> None:
    # 40 columns scored i % 4: the ten 3s are columns 3, 7, ..., 39, the ten 2s 2, 6, ..., 38...
    # each level in index order. 40 ties are past the size where numpy's default sort stops
    # being stable by accident; partitioning (not needed when k covers the row) scrambles them.
    top = top_k(np.tile(np.arange(40) % 4, (2, 1)).astype(np.float64), k)
    by_level = [c for level in (3, 2, 1, 0) for c in range(level, 40, 4)]
    want = (by_level + [-1] * 10)[:k]
    assert top.ids.tolist() == [want, want]


@pytest.mark.parametrize(("n_cols", "k", "width"), [(0, 3, 3), (4, 0, 0), (4, -2, 0), (0, 0, 0)])
def test_nothing_to_rank_is_all_padding_of_width_k(n_cols: int, k: int, width: int) -> None:
    """No column to rank (or k ≤ 0): k slots of padding per row (none for k ≤ 0), typed as any
    other answer, so callers stack it with real ones."""
    top = top_k(np.zeros((2, n_cols), np.float32), k)
    assert top.ids.shape == top.scores.shape == (2, width)
    assert top.ids.dtype == np.int32 and top.scores.dtype == np.float32
    assert (top.ids == -1).all() and np.isneginf(top.scores).all()


def test_ids_and_scores_are_typed_and_all_minus_inf_rows_are_padding() -> None:
    top = top_k(np.array([[-np.inf, -np.inf, -np.inf], [0.5, -np.inf, 2.0]]), 3)
    assert top.ids.dtype == np.int32 and top.scores.dtype == np.float32
    np.testing.assert_array_equal(top.ids, [[-1, -1, -1], [2, 0, -1]])


@pytest.mark.parametrize(
    ("ids", "scores"),
    [(np.zeros((2, 3), np.int32), np.zeros((2, 2), np.float32)), (np.zeros(3), np.zeros(3))],
)
def test_topk_refuses_mismatched_or_flat_arrays(ids: np.ndarray, scores: np.ndarray) -> None:
    with pytest.raises(ValueError, match="must be equal 2-D"):
        TopK(ids, scores)
