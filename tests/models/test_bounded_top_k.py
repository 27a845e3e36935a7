"""``bounded_top_k`` (the item lists' top-k, issue #19) against each row ranked on its own.

The oracle is a Python ranking per row (``_expected``): finite and +inf entries by score from
high to low, ties lower index first, NaN and -inf never listed, padding past the row's entries.
Rows are long enough for the bounded path (at least two entries per group) and not, full of
ties straddling the k-th place (a handful of distinct values), with -inf runs, a few NaN or
+inf, rows of NaN but for a few numbers (most groups' maxima NaN: the bound is NaN), and ``k``
from 0 to past the point where it hands over to ``top_k``.
"""

import numpy as np
import pytest

from recsmith.models.als import ImplicitALS
from recsmith.models.topk import BOUND_GROUPS, TopK, bounded_top_k


def _expected(scores: np.ndarray, k: int) -> TopK:
    k = max(k, 0)
    ids = np.full((len(scores), k), -1, np.int32)
    best = np.full((len(scores), k), -np.inf, np.float32)
    for r, row in enumerate(scores.astype(np.float64)):
        listable = [i for i in range(len(row)) if not np.isnan(row[i]) and row[i] != -np.inf]
        ranked = sorted(listable, key=lambda i: (-row[i], i))[:k]
        ids[r, : len(ranked)] = ranked
        best[r, : len(ranked)] = row[ranked]
    return TopK(ids, best)


def _row(rng: np.random.Generator, n_cols: int, kind: str) -> np.ndarray:
    if kind == "ties":  # long runs of equal scores: which tied item makes the cut is the rule
        row = rng.integers(0, 5, n_cols).astype(np.float32) / 4
    else:
        row = rng.standard_normal(n_cols).astype(np.float32)
    if kind == "sparse":  # fewer listable entries than many k ask for
        row[rng.random(n_cols) < 0.995] = -np.inf
    if kind == "odd":  # NaN never listed; +inf first (a row of ``top_k``'s)
        row[rng.integers(0, n_cols, 3)] = np.nan
        row[rng.integers(0, n_cols)] = np.inf
    if kind == "nan":  # so many NaN that the k-th group maximum is NaN: no bound to cut at
        numbers = row[:3].copy()
        row[:] = np.nan
        row[rng.integers(0, n_cols, 3)] = numbers
    row[rng.random(n_cols) < 0.1] = -np.inf
    return row


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [0, 1, 10, 100, BOUND_GROUPS // 4, BOUND_GROUPS // 4 + 1, 700, 3000])
def test_lists_are_each_rows_own_ranking(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    # the last groups hold one entry fewer than the others when the width is not a multiple
    n_cols = int(rng.choice([BOUND_GROUPS, 2 * BOUND_GROUPS + 5, 5 * BOUND_GROUPS + 1023]))
    kinds = ["ties", "plain", "sparse", "nan", "odd"][: 1 + seed % 5]  # +inf hands all over
    scores = np.stack([_row(rng, n_cols, kind) for kind in kinds])
    got, want = bounded_top_k(scores, k), _expected(scores, k)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.scores, want.scores)
    assert got.ids.dtype == np.int32 and got.scores.dtype == np.float32


def test_the_kth_place_tied_across_groups_goes_to_the_lower_indices() -> None:
    """Hand-built: 0.5 at columns 3, 1030 and 2000 (three different groups of 1,024), 0.9 at
    column 4000, everything else 0. ``k`` = 3 lists 4000, then 3 and 1030, never 2000."""
    scores = np.zeros((1, 4 * BOUND_GROUPS), np.float32)
    scores[0, [3, 1030, 2000]] = 0.5
    scores[0, 4000] = 0.9
    got = bounded_top_k(scores, 3)
    np.testing.assert_array_equal(got.ids, [[4000, 3, 1030]])
    np.testing.assert_array_equal(got.scores, np.array([[0.9, 0.5, 0.5]], np.float32))


def test_factor_neighbours_on_a_catalogue_with_tied_items() -> None:
    """An iALS catalogue of 5,000 items, each vector repeated by a few others (equal cosines):
    ``similar_items`` lists each asked item's neighbours as its own cosines ranked in the test,
    ties lower index first, the item itself never."""
    rng = np.random.default_rng(3)
    distinct = rng.normal(size=(900, 16)).astype(np.float32)
    items = distinct[rng.integers(0, 900, 5000)]
    model = ImplicitALS.from_arrays(
        ImplicitALS.Config(factors=16),
        {"user_factors_": np.ones((1, 16), np.float32), "item_factors_": items},
    )
    asked = np.array([0, 1, 2500, 4999])
    unit = items / (np.linalg.norm(items, axis=1) + 1e-12)[:, None]
    cosine = unit[asked] @ unit.T
    cosine[np.arange(len(asked)), asked] = -np.inf
    for k in (1, 5, 40):
        got, want = model.similar_items(asked, k), _expected(cosine, k)
        np.testing.assert_array_equal(got.ids, want.ids)
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)


def test_a_row_of_nan_lists_its_few_numbers() -> None:
    """Hand-built (the review's case): NaN everywhere but 1, 2, 3 at columns 5, 9, 2000. Every
    group maximum but three is NaN, so the bound is NaN, and the row lists 2000, 9, 5."""
    scores = np.full((1, 4 * BOUND_GROUPS), np.nan, np.float32)
    scores[0, [5, 9, 2000]] = [1, 2, 3]
    got = bounded_top_k(scores, 3)
    np.testing.assert_array_equal(got.ids, [[2000, 9, 5]])
    np.testing.assert_array_equal(got.scores, [[3, 2, 1]])


def test_a_short_row_lists_its_numbers_only() -> None:
    """Hand-checked: NaN and -inf are never listed, even when ``k`` reaches past them."""
    scores = np.array([[np.nan, 1.0, -np.inf, 2.0, 1.0]], np.float32)
    got = bounded_top_k(scores, 6)
    np.testing.assert_array_equal(got.ids, [[3, 1, 4, -1, -1, -1]])
    np.testing.assert_array_equal(got.scores[0, :3], [2.0, 1.0, 1.0])
    assert np.isneginf(got.scores[0, 3:]).all()


def test_a_row_whose_few_neighbours_share_a_group_lists_them_all() -> None:
    """A sparse model's row: five listable entries, all in group 7 of 1,024 (columns 7, 1031,
    2055, 3079, 4103), -inf elsewhere; ``k`` = 10 lists the five by score, then padding."""
    scores = np.full((1, 5 * BOUND_GROUPS), -np.inf, np.float32)
    scores[0, [7, 1031, 2055, 3079, 4103]] = [0.2, 0.9, 0.2, 0.5, 0.1]
    got = bounded_top_k(scores, 10)
    np.testing.assert_array_equal(got.ids, [[1031, 3079, 7, 2055, 4103, -1, -1, -1, -1, -1]])


@pytest.mark.parametrize("k", [1, 10, 100])
def test_scores_of_another_precision_rank_in_it(k: int) -> None:
    """float64 scores (user-kNN's item lists) are ranked by their float64 values, not by what
    they round to in float32: 2 + 2⁻³⁰ (column 50) above 2 (column 40), though both are 2.0
    in float32, where the lower index would come first."""
    rng = np.random.default_rng(9)
    scores = rng.random((2, 3 * BOUND_GROUPS))
    scores[:, 40], scores[:, 50] = 2.0, 2.0 + 2.0**-30
    got = bounded_top_k(scores, k)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(got.ids, order)
