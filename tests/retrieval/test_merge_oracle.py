"""``merge`` against a Python dictionary per (query, item): one row per pair, each source's
score and rank in its column, the fused score Σ w_s / (60 + rank_s) added in source order (the
order ``np.add.at`` added them in), rows best first per query (ties: lower item first).
``distinct_keys`` against ``np.unique(..., return_inverse=True)``. ``Candidates.rescored`` on
``merge(ordered=False)``'s rows against a Python sort: rows best first by the new score per
query, ties (and NaN, last) broken by the fused score, then by item (the fused order's own ties):
what ``merge`` then ``with_scores`` gave. Scores drawn from a few values force tie runs; distinct
ones leave none."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsmith.digit_sort import by_digits
from recsmith.retrieval.merge import RRF_K, merge
from recsmith.retrieval.sources import Proposals
from recsmith.sparse_rows import distinct_keys


def _proposals(rng: np.random.Generator, n_queries: int, n_items: int) -> Proposals:
    """Best first per query, each item once per query (as sources propose)."""
    query, items, ranks = [], [], []
    for q in range(n_queries):
        picked = rng.choice(n_items, size=int(rng.integers(0, min(n_items, 25))), replace=False)
        query += [q] * len(picked)
        items += picked.tolist()
        ranks += list(range(1, len(picked) + 1))
    n = len(items)
    return Proposals(
        np.asarray(query, np.int32),
        np.asarray(items, np.int32),
        rng.standard_normal(n).astype(np.float32),
        np.asarray(ranks, np.int16),
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("big", [False, True])  # True: a batch's size, keys sorted by digits
def test_merge_is_a_dictionary_per_query_and_item(seed: int, big: bool) -> None:
    rng = np.random.default_rng(seed)
    n_queries, n_items = int(rng.integers(1, 30)), int(rng.integers(5, 60))
    if big:  # ~14,000 proposals of keys past 16 bits: two passes (``digit_sort``)
        n_queries, n_items = 400, int(rng.integers(3000, 6000))
    names = ("a", "b", "c")
    props = [_proposals(rng, n_queries, n_items) for _ in names]
    if big:  # the merge's keys reach the digit passes
        n_keys = sum(len(p.items) for p in props)
        assert by_digits(n_keys, (n_queries * n_items - 1).bit_length())
    weights = [1.0, 0.3, 0.7]
    got = merge(props, names, n_queries, n_items, weights)

    fused: dict[tuple[int, int], float] = {}
    said: dict[tuple[int, int], dict[int, tuple[float, int]]] = {}
    for s, p in enumerate(props):
        for q, i, score, rank in zip(
            p.query.tolist(), p.items.tolist(), p.scores.tolist(), p.ranks.tolist(), strict=True
        ):
            fused[(q, i)] = fused.get((q, i), 0.0) + weights[s] / (RRF_K + rank)
            said.setdefault((q, i), {})[s] = (score, rank)
    f32 = {pair: float(np.float32(v)) for pair, v in fused.items()}
    expected = sorted(f32, key=lambda pair: (pair[0], -f32[pair], pair[1]))

    rows = list(zip(got.query.tolist(), got.items.tolist(), strict=True))
    assert rows == expected
    assert got.score.tolist() == [f32[pair] for pair in expected]
    for r, pair in enumerate(rows):
        for s in range(len(names)):
            score, rank = said[pair].get(s, (math.nan, 0))
            assert got.source_ranks[r, s] == rank
            assert got.source_scores[r, s] == np.float32(score) or (
                math.isnan(score) and np.isnan(got.source_scores[r, s])
            )


def test_distinct_keys_is_numpys_unique_with_its_inverse() -> None:
    rng = np.random.default_rng(4)
    for n in (0, 1, 2, 17, 3000):
        key = rng.integers(0, max(n // 3, 1), n).astype(np.int64) * 1000 + rng.integers(0, 3, n)
        unique, place = distinct_keys(key)
        want_unique, want_place = np.unique(key, return_inverse=True)
        assert unique.tolist() == want_unique.tolist()
        assert place.tolist() == want_place.ravel().tolist()


def _score_of(table: dict[tuple[int, int], float], query: np.ndarray, items: np.ndarray):
    pairs = zip(query.tolist(), items.tolist(), strict=True)
    return np.asarray([table[p] for p in pairs], np.float32)


@pytest.mark.parametrize("seed", range(8))
# 150: past KEY_SORT_ROWS, the key sort; 500: past three passes' rows, the key by digits
@pytest.mark.parametrize("n_queries", [None, 150, 500])
@pytest.mark.parametrize("values", ["distinct", "few", "nan and zeros", "distinct and nan"])
def test_rescored_is_a_python_sort_over_the_fused_order(
    seed: int, n_queries: int | None, values: str
) -> None:
    rng = np.random.default_rng(seed)
    n_queries, n_items = n_queries or int(rng.integers(1, 20)), int(rng.integers(5, 60))
    names = ("a", "b", "c")
    props = [_proposals(rng, n_queries, n_items) for _ in names]
    loose = merge(props, names, n_queries, n_items, [1.0, 0.3, 0.7], ordered=False)
    pairs = list(zip(loose.query.tolist(), loose.items.tolist(), strict=True))
    if values == "distinct":
        drawn = rng.permutation(len(pairs)).astype(np.float32) * 0.5
    elif values == "few":
        drawn = rng.integers(0, 3, len(pairs)).astype(np.float32)
    elif values == "nan and zeros":
        drawn = rng.choice(np.asarray([np.nan, 0.0, -0.0, 1.0], np.float32), len(pairs))
    else:  # no two numbers equal, NaN tying only NaN
        drawn = rng.permutation(len(pairs)).astype(np.float32)
        drawn[rng.random(len(pairs)) < 0.3] = np.nan
    table = dict(zip(pairs, drawn.tolist(), strict=True))
    fused = dict(zip(pairs, loose.score.tolist(), strict=True))
    got = loose.rescored(_score_of(table, loose.query, loose.items))

    def key(pair: tuple[int, int]) -> tuple[object, ...]:
        s = table[pair]
        return (pair[0], (1, 0.0) if math.isnan(s) else (0, -s), -fused[pair], pair[1])

    expected = sorted(pairs, key=key)
    assert list(zip(got.query.tolist(), got.items.tolist(), strict=True)) == expected
    assert np.array_equal(got.score, _score_of(table, got.query, got.items), equal_nan=True)
    row = {p: r for r, p in enumerate(pairs)}
    at = np.asarray([row[p] for p in expected], np.int64)
    assert np.array_equal(got.source_scores, loose.source_scores[at], equal_nan=True)
    assert np.array_equal(got.source_ranks, loose.source_ranks[at])


def test_rescored_matches_with_scores_after_the_fused_sort() -> None:
    """The path it replaced: ``merge`` sorted by the fused score, then ``with_scores``."""
    rng = np.random.default_rng(11)
    props = [_proposals(rng, 12, 40) for _ in range(2)]
    loose = merge(props, ("a", "b"), 12, 40, ordered=False)
    ordered = merge(props, ("a", "b"), 12, 40)
    table = {
        p: float(rng.integers(0, 4))
        for p in zip(loose.query.tolist(), loose.items.tolist(), strict=True)
    }
    got = loose.rescored(_score_of(table, loose.query, loose.items))
    want = ordered.with_scores(_score_of(table, ordered.query, ordered.items))
    for name in ("query", "items", "score", "source_scores", "source_ranks"):
        assert np.array_equal(getattr(got, name), getattr(want, name), equal_nan=True), name
