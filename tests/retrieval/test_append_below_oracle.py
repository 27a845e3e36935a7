"""``append_below`` against a Python walk: each query's candidates keep their place, extra items
the query lacks follow in the extra's order, scored below the query's lowest score (and 0), and
the rows come out exactly as a full sort by (query, score from high to low, row) orders them,
whether the candidates arrive best first (the sort-free path) or not (the full sort)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.merge import BYTE_ROWS, append_below
from recsmith.retrieval.sources import Proposals


def _cands(rng: np.random.Generator, n_q: int, n_items: int, best_first: bool) -> Candidates:
    query, items = [], []
    for q in range(n_q):
        mine = rng.choice(n_items, size=int(rng.integers(0, min(12, n_items))), replace=False)
        query += [q] * len(mine)
        items += mine.tolist()
    n = len(items)
    score = rng.choice(np.array([2.0, 0.5, 0.5, -1.0, -3.25], np.float32), n)
    noisy = rng.random(n) < 0.5
    score[noisy] = rng.standard_normal(int(noisy.sum())).astype(np.float32)
    cands = Candidates(
        n_q,
        ("a",),
        np.asarray(query, np.int32),
        np.asarray(items, np.int32),
        score.astype(np.float32),
        rng.standard_normal((n, 1)).astype(np.float32),
        rng.integers(1, 9, (n, 1)).astype(np.int16),
    )
    return cands.with_scores(cands.score) if best_first else cands


def _extra(rng: np.random.Generator, n_q: int, n_items: int) -> Proposals:
    query, items = [], []
    for q in range(n_q):
        mine = rng.choice(n_items, size=int(rng.integers(0, min(8, n_items))), replace=False)
        query += [q] * len(mine)
        items += mine.tolist()
    ranks = [r for q in range(n_q) for r in range(1, query.count(q) + 1)]
    return Proposals(
        np.asarray(query, np.int32),
        np.asarray(items, np.int32),
        rng.random(len(items)).astype(np.float32),
        np.asarray(ranks, np.int16),
    )


def _oracle(cands: Candidates, extra: Proposals) -> list[tuple]:
    rows = []
    floor: dict[int, float] = {}
    for r in range(len(cands)):
        q, s = int(cands.query[r]), float(cands.score[r])
        floor[q] = (
            s if math.isnan(s) or math.isnan(floor.get(q, 0.0)) else min(floor.get(q, 0.0), s)
        )
        rows.append((q, int(cands.items[r]), s, float(cands.source_scores[r, 0]), math.nan, r))
    have = {(r[0], r[1]) for r in rows}
    for j in range(len(extra.items)):
        q, i = int(extra.query[j]), int(extra.items[j])
        if (q, i) in have:
            continue
        s = float(np.float32(floor.get(q, 0.0) - 1.0 - int(extra.ranks[j]) * 1e-3))
        rows.append((q, i, s, math.nan, float(extra.scores[j]), len(rows)))
    rows.sort(key=lambda r: (r[0], math.isnan(r[2]), -r[2] if not math.isnan(r[2]) else 0, r[5]))
    return [r[:5] for r in rows]


def _got(out: Candidates) -> list[tuple]:
    return [
        (
            int(out.query[r]),
            int(out.items[r]),
            float(out.score[r]),
            float(out.source_scores[r, 0]),
            float(out.source_scores[r, 1]),
        )
        for r in range(len(out))
    ]


def _same(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(
        all(
            (x == y) or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
            for x, y in zip(ra, rb, strict=True)
        )
        for ra, rb in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("best_first", [True, False])
def test_append_below_is_the_walk(seed: int, best_first: bool) -> None:
    rng = np.random.default_rng(seed)
    n_q, n_items = int(rng.integers(1, 20)), int(rng.integers(3, 30))
    cands = _cands(rng, n_q, n_items, best_first)
    if seed % 3 == 2 and len(cands):  # a NaN score: the floor of its query is NaN
        cands.score[int(rng.integers(len(cands)))] = np.nan
    extra = _extra(rng, n_q, n_items)
    out = append_below(cands, extra, "popular")
    assert out.sources == ("a", "popular")
    assert _same(_got(out), _oracle(cands, extra))


def test_source_columns_in_any_memory_order_are_copied_the_same() -> None:
    """Candidates whose per-source columns are column-major take numpy's own copy, row-major
    ones (past ``BYTE_ROWS`` rows) a byte copy a row: the same rows either way, each holding
    its own cells."""
    rng = np.random.default_rng(7)
    cands = _cands(rng, 120, 25, best_first=True)
    assert len(cands) >= BYTE_ROWS  # a batch's size: the row-major columns take the byte copy
    wide = Candidates(
        cands.n_queries,
        ("a", "b", "c"),
        cands.query,
        cands.items,
        cands.score,
        rng.standard_normal((len(cands), 3)).astype(np.float32),
        rng.integers(0, 9, (len(cands), 3)).astype(np.int16),
    )
    column_major = Candidates(
        *(getattr(wide, f) for f in ("n_queries", "sources", "query", "items", "score")),
        np.asfortranarray(wide.source_scores),
        np.asfortranarray(wide.source_ranks),
    )
    extra = _extra(rng, 120, 25)
    a, b = append_below(wide, extra, "popular"), append_below(column_major, extra, "popular")
    for name in ("query", "items", "score", "source_scores", "source_ranks"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    # each candidate's own cells, found by its (query, item), under the new column's NaN / 0
    own = {
        (int(q), int(i)): (r, c)
        for q, i, r, c in zip(
            wide.query,
            wide.items,
            wide.source_scores.tolist(),
            wide.source_ranks.tolist(),
            strict=True,
        )
    }
    for row in range(len(a)):
        pair = (int(a.query[row]), int(a.items[row]))
        if pair in own:
            assert a.source_scores[row].tolist()[:3] == own[pair][0]
            assert a.source_ranks[row].tolist() == [*own[pair][1], 0]
            assert np.isnan(a.source_scores[row, 3])


@pytest.mark.parametrize(
    ("score_dtype", "rank_dtype"),
    [(np.float16, np.int16), (np.float32, np.int8), (np.float64, np.int64)],
)
def test_source_columns_of_other_dtypes_are_cast(score_dtype: type, rank_dtype: type) -> None:
    """Candidates built by hand with source columns other than float32 and int16 (past
    ``BYTE_ROWS`` rows, row-major): each row's own cells, found by its (query, item), hold its
    values cast, not its bytes read as float32 / int16 (narrower: wrong values; wider: an
    error)."""
    rng = np.random.default_rng(5)
    cands = _cands(rng, 120, 25, best_first=True)
    assert len(cands) >= BYTE_ROWS
    scores = rng.integers(-40, 40, (len(cands), 2)) / 4  # exact in float16 and float32
    ranks = rng.integers(1, 100, (len(cands), 2))
    built = Candidates(
        cands.n_queries,
        ("a", "b"),
        *(getattr(cands, f) for f in ("query", "items", "score")),
        scores.astype(score_dtype),
        ranks.astype(rank_dtype),
    )
    out = append_below(built, _extra(rng, 120, 25), "popular")
    own = {
        (int(q), int(i)): (s, r)
        for q, i, s, r in zip(
            cands.query, cands.items, scores.tolist(), ranks.tolist(), strict=True
        )
    }
    found = 0
    for row in range(len(out)):
        pair = (int(out.query[row]), int(out.items[row]))
        if pair in own:
            found += 1
            assert out.source_scores[row].tolist()[:2] == own[pair][0]
            assert out.source_ranks[row].tolist() == [*own[pair][1], 0]
    assert found == len(cands)


@pytest.mark.parametrize("seed", range(12))
def test_extra_items_the_queries_all_hold_leave_the_rows_as_they_stand(seed: int) -> None:
    """Every extra item already a candidate of its query (a request's popular items, proposed
    by trending or the model): the walk's rows, one empty column wider; rows best first stand
    as they are (their own arrays, not copies), rows out of order or with a NaN score are
    sorted as when items are added."""
    rng = np.random.default_rng(50 + seed)
    n_q = 1 + seed % 4
    cands = _cands(rng, n_q, 40, best_first=seed % 3 != 0)
    cands = dataclasses.replace(cands, distinct=seed % 2 == 1)  # each pair once: so drawn
    if seed % 6 == 5 and len(cands):
        cands.score[int(rng.integers(len(cands)))] = np.nan
    held = rng.random(len(cands)) < 0.6
    ranks = np.concatenate(
        [np.arange(1, c + 1) for c in np.bincount(cands.query[held], minlength=n_q)]
    )
    extra = Proposals(
        cands.query[held],
        cands.items[held],
        rng.random(int(held.sum())).astype(np.float32),
        ranks.astype(np.int16),
    )
    out = append_below(cands, extra, "popular")
    assert out.sources == ("a", "popular")
    assert _same(_got(out), _oracle(cands, extra))
    assert out.source_ranks[:, 1].tolist() == [0] * len(out)
    assert out.distinct == cands.distinct
    stands = seed % 3 != 0 and not np.isnan(cands.score).any()
    assert (out.score is cands.score) == stands


def test_queries_out_of_order_are_sorted_though_nothing_is_added() -> None:
    """Query 1's rows before query 0's, each best first, every extra item held: the rows come
    out by query (hand values), as when items are added."""
    cands = Candidates(
        2,
        ("a",),
        np.array([1, 1, 0], np.int32),
        np.array([7, 8, 9], np.int32),
        np.array([3.0, 2.0, 1.0], np.float32),
        np.zeros((3, 1), np.float32),
        np.ones((3, 1), np.int16),
    )
    extra = Proposals(
        np.array([0], np.int32),
        np.array([9], np.int32),
        np.ones(1, np.float32),
        np.ones(1, np.int16),
    )
    out = append_below(cands, extra, "popular")
    assert out.query.tolist() == [0, 1, 1] and out.items.tolist() == [9, 7, 8]
