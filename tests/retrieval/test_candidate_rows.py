"""``Candidates.take`` and ``with_scores`` (built by the constructor, not ``dataclasses.replace``)
carry every column of the rows asked for, row by row, and nothing else: the oracle is a plain
Python loop over the rows."""

from __future__ import annotations

import numpy as np

from recsmith.retrieval.candidates import Candidates


def _table(rng: np.random.Generator, n: int) -> Candidates:
    query = np.sort(rng.integers(0, 4, n)).astype(np.int32)
    return Candidates(
        4,
        ("ials", "together", "trending"),
        query,
        rng.integers(0, 50, n).astype(np.int32),
        rng.standard_normal(n).astype(np.float32),
        rng.standard_normal((n, 3)).astype(np.float32),
        rng.integers(0, 9, (n, 3)).astype(np.int16),
    )


def _row(c: Candidates, r: int) -> tuple[object, ...]:
    return (
        int(c.query[r]),
        int(c.items[r]),
        float(c.score[r]),
        c.source_scores[r].tolist(),
        c.source_ranks[r].tolist(),
    )


def test_take_and_with_scores_keep_each_row_whole() -> None:
    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 60):
        cands = _table(rng, n)
        rows = rng.permutation(n)[: n // 2]
        taken = cands.take(rows)
        assert (taken.n_queries, taken.sources) == (cands.n_queries, cands.sources)
        assert [_row(taken, i) for i in range(len(taken))] == [_row(cands, r) for r in rows]
        assert taken.source_scores.dtype == np.float32 and taken.source_ranks.dtype == np.int16

        fresh = rng.standard_normal(n).astype(np.float32)
        scored = cands.with_scores(fresh)
        expected = sorted(range(n), key=lambda r: (int(cands.query[r]), -float(fresh[r]), r))
        assert [_row(scored, i) for i in range(n)] == [
            (*_row(cands, r)[:2], float(fresh[r]), *_row(cands, r)[3:]) for r in expected
        ]
        assert scored.score.dtype == np.float32


def test_take_of_a_mask_keeps_the_rows_it_marks() -> None:
    """A boolean mask selects rows (as numpy's index did), not the rows 0 and 1."""
    rng = np.random.default_rng(5)
    for n in (0, 1, 9, 40):
        cands = _table(rng, n)
        mask = rng.random(n) < 0.5
        taken = cands.take(mask)
        assert [_row(taken, i) for i in range(len(taken))] == [
            _row(cands, r) for r in range(n) if mask[r]
        ]


def test_take_of_a_plain_list_of_rows() -> None:
    """A list (numpy reads an empty one as float64, which ``ndarray.take`` refuses) selects rows."""
    cands = _table(np.random.default_rng(7), 12)
    assert len(cands.take([])) == 0
    assert [_row(cands.take([5, 2]), i) for i in range(2)] == [_row(cands, 5), _row(cands, 2)]
