"""``Candidates.rescored``'s compiled pass (``row_kernel.rescored_rows``) against numpy's path
(``Candidates._numpy_rescored``) and a Python sort written here: rows by query, then the new
score from high to low, then the fused score from high to low (NaN after every number, -0.0 as
0.0, on both), then row. Scores drawn from a few values (ties, ±0.0, NaN, ±inf) and batches of a
lone request's and a coalesced batch's sizes, queries past 2 ** 11 (two key passes above the
score's bits)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from candidate_rows import same_rows

from recsmith.ranking import row_kernel
from recsmith.retrieval.candidates import Candidates

VALUES = np.array([1.5, 0.0, -0.0, -2.0, np.nan, np.inf, -np.inf, 0.25], np.float32)


def _draw(rng: np.random.Generator, n: int, n_q: int, width: int) -> tuple[Candidates, np.ndarray]:
    """Candidates by query with drawn fused scores, and drawn new scores."""

    def scores() -> np.ndarray:
        out = rng.choice(VALUES, n)
        noisy = rng.random(n) < 0.4
        out[noisy] = rng.standard_normal(int(noisy.sum())).astype(np.float32)
        return out.astype(np.float32)

    return Candidates(
        n_q,
        tuple(f"s{i}" for i in range(width)),
        np.sort(rng.integers(0, n_q, n)).astype(np.int32),  # merge's rows: by query
        rng.integers(0, 10**5, n).astype(np.int32),
        scores(),
        rng.standard_normal((n, width)).astype(np.float32),
        rng.integers(0, 99, (n, width)).astype(np.int16),
        distinct=bool(rng.random() < 0.5),
    ), scores()


def _key(value: float) -> tuple[int, float]:
    """High to low, NaN last, -0.0 as 0.0 (== in Python)."""
    return (1, 0.0) if math.isnan(value) else (0, -value)


def _sorted(cands: Candidates, score: np.ndarray) -> list[int]:
    return sorted(
        range(len(cands)),
        key=lambda r: (
            int(cands.query[r]),
            _key(float(score[r])),
            _key(float(cands.score[r])),
            r,
        ),
    )


@pytest.mark.parametrize("seed", range(30))
def test_the_pass_orders_as_numpy_and_the_sort(library: object, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.choice([0, 1, 7, 300, 2500, 6000]))
    n_q = int(rng.choice([1, 8, 64, 5000]))
    cands, score = _draw(rng, n, n_q, 1 + seed % 4)
    built = row_kernel.rescored_rows(library, cands, score)
    assert built is not None
    same_rows(built, cands._numpy_rescored(score))
    order = _sorted(cands, score)
    assert built.items.tolist() == cands.items[order].tolist()
    assert built.query.tolist() == cands.query[order].tolist()
    assert np.array_equal(built.score, score[order], equal_nan=True)
    assert np.array_equal(built.source_scores, cands.source_scores[order], equal_nan=True)
    assert np.array_equal(built.source_ranks, cands.source_ranks[order])


def test_hand_ordered_rows(library: object) -> None:
    """Query 0: new scores 1, NaN, 1, -0.0, 0.0 with fused 0, 5, 2, 1, 1: rows 2 (1, fused 2),
    0 (1, fused 0), 3 and 4 (0.0 and -0.0 equal, fused equal: row order), 1 (NaN); query 1's
    row after."""
    cands = Candidates(
        2,
        ("a",),
        np.array([0, 0, 0, 0, 0, 1], np.int32),
        np.array([10, 11, 12, 13, 14, 15], np.int32),
        np.array([0.0, 5.0, 2.0, 1.0, 1.0, 9.0], np.float32),
        np.arange(6, dtype=np.float32).reshape(6, 1),
        np.arange(6, dtype=np.int16).reshape(6, 1),
    )
    score = np.array([1.0, np.nan, 1.0, -0.0, 0.0, -5.0], np.float32)
    out = row_kernel.rescored_rows(library, cands, score)
    assert out is not None
    assert out.items.tolist() == [12, 10, 13, 14, 11, 15]
    assert out.source_ranks[:, 0].tolist() == [2, 0, 3, 4, 1, 5]


def test_what_the_pass_leaves_to_numpy(library: object) -> None:
    rng = np.random.default_rng(4)
    cands, score = _draw(rng, 50, 4, 2)
    assert row_kernel.rescored_rows(library, cands, score.astype(np.float64)) is None
    assert row_kernel.rescored_rows(library, cands, score[:-1]) is None
    negative = cands.query.copy()
    negative[0] = -1
    assert row_kernel.rescored_rows(library, replace(cands, query=negative), score) is None
    wide = replace(cands, source_scores=np.asfortranarray(cands.source_scores))
    assert row_kernel.rescored_rows(library, wide, score) is None
    same_rows(wide.rescored(score), wide._numpy_rescored(score))
