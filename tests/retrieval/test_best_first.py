"""``best_first`` orders rows exactly as ``np.lexsort((-score, query))`` does, the oracle, on
scores with ties, signed zeros, infinities and NaN."""

from __future__ import annotations

import numpy as np

from recsmith.digit_sort import ROWS_PER_PASS, by_digits, packs
from recsmith.retrieval.candidates import KEY_SORT_ROWS, best_first


def test_best_first_is_lexsort_on_every_kind_of_score() -> None:
    rng = np.random.default_rng(7)
    specials = np.asarray([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.5, -1.5], np.float32)
    for trial in range(200):  # half below KEY_SORT_ROWS (lexsort itself), half above (the key)
        n = int(rng.integers(0, KEY_SORT_ROWS)) + (trial % 2) * KEY_SORT_ROWS
        query = rng.integers(0, 1 + trial % 20, n).astype(np.int32)
        if trial % 4 > 1:  # grouped by query, as the pipeline's candidates are
            query = np.sort(query)
        score = rng.standard_normal(n).astype(np.float32)
        special = rng.random(n) < 0.3
        score[special] = rng.choice(specials, int(special.sum()))
        score[rng.random(n) < 0.2] = np.float32(0.25)  # exact ties keep their row order
        assert best_first(query, score).tolist() == np.lexsort((-score, query)).tolist()


def test_best_first_puts_the_high_score_first_within_each_query() -> None:
    query = np.asarray([1, 0, 1, 0, 1], np.int32)
    score = np.asarray([0.1, 0.5, 0.9, -0.0, np.nan], np.float32)
    assert best_first(query, score).tolist() == [1, 3, 2, 0, 4]  # q0: 0.5, 0; q1: 0.9, 0.1, NaN


def test_best_first_packed_and_by_digits_is_lexsort() -> None:
    """A request batch's key packed above the row index (asserted), and a key too wide for
    that (a million queries: 52 bits, and 14 of the index) sorted by its 16-bit digits."""
    rng = np.random.default_rng(11)
    specials = np.asarray([0.0, -0.0, np.inf, -np.inf, np.nan, 1.5, -1.5], np.float32)
    for n_queries, n in ((64, 3 * ROWS_PER_PASS + 500), (1_100_000, 4 * ROWS_PER_PASS + 10)):
        query = np.sort(rng.integers(0, n_queries, n)).astype(np.int32)
        query[-1] = n_queries - 1
        width = 32 + (n_queries - 1).bit_length()
        assert packs(n, width) == (n_queries == 64)
        assert by_digits(n, width)
        score = rng.standard_normal(n).astype(np.float32)
        special = rng.random(n) < 0.2
        score[special] = rng.choice(specials, int(special.sum()))
        score[rng.random(n) < 0.3] = np.float32(-0.75)  # ties across and within queries
        assert best_first(query, score).tolist() == np.lexsort((-score, query)).tolist()
        shuffled = rng.permutation(query)  # rows not grouped by query
        assert best_first(shuffled, score).tolist() == np.lexsort((-score, shuffled)).tolist()
