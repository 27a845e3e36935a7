"""``best_first`` orders rows exactly as ``np.lexsort((-score, query))`` does, the oracle, on
scores with ties, signed zeros, infinities and NaN; the packed sort is taken exactly where the
query's bits, the score's 32 and the row index's fit in 64."""

from __future__ import annotations

import numpy as np
import pytest

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


@pytest.fixture
def packed_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The key widths ``best_first`` handed to the real ``packed_order``, one per call."""
    from recsmith.models import topk

    calls: list[int] = []
    real = topk.packed_order

    def counted(key: np.ndarray, bits: int) -> np.ndarray:
        calls.append(bits)
        return real(key, bits)

    monkeypatch.setattr(topk, "packed_order", counted)
    return calls


@pytest.mark.parametrize("n, index_bits", [(KEY_SORT_ROWS + 1, 10), (4800, 13)])
def test_best_first_packs_exactly_where_query_score_and_index_fit_64_bits(
    n: int, index_bits: int, packed_calls: list[int]
) -> None:
    """Queries of 64 - 32 - index bits are packed; one bit more (65 in all) is not, and a width
    miscounted by one would pack it and drop the query's top bit. Queries unsorted, so that bit
    decides the order, and the top query present; both orders are lexsort's."""
    rng = np.random.default_rng(n)
    for query_bits, packed in ((32 - index_bits, True), (33 - index_bits, False)):
        query = rng.integers(0, 1 << query_bits, n).astype(np.int64)
        query[rng.choice(n, n // 3)] = query[rng.choice(n, n // 3)]  # several rows a query
        query[7] = (1 << query_bits) - 1
        score = rng.standard_normal(n).astype(np.float32)
        score[rng.random(n) < 0.3] = np.float32(0.5)  # ties keep their row order
        packed_calls.clear()
        assert best_first(query, score).tolist() == np.lexsort((-score, query)).tolist()
        assert packed_calls == ([32 + query_bits] if packed else [])
