"""``entries_top_k`` against a per-row Python sort (score from high to low, then column; only
finite scores listed): entries in (row, column) order take a single sort by (row, score), any
other order the three-key lexsort; both must give the oracle's lists, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from recsmith.models.topk import KEY_SORT_ROWS, entries_top_k


def _oracle(n_rows: int, rows: np.ndarray, cols: np.ndarray, data: np.ndarray, k: int) -> list:
    out = []
    for r in range(n_rows):
        mine = [
            (float(d), int(c))
            for rr, c, d in zip(rows.tolist(), cols.tolist(), data.tolist(), strict=True)
            if rr == r and np.isfinite(d)
        ]
        mine.sort(key=lambda e: (-e[0], e[1]))
        out.append([(c, d) for d, c in mine[:k]])
    return out


def _lists(top) -> list:  # type: ignore[no-untyped-def]
    return [
        [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0]
        for ids, scores in zip(top.ids, top.scores, strict=True)
    ]


@pytest.mark.parametrize("seed", range(8))
def test_entries_top_k_is_a_per_row_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_rows = int(rng.integers(1, 40))
    n_cols = int(rng.integers(5, 300))
    # sizes on both sides of KEY_SORT_ROWS, where best_first switches from lexsort to the key
    want = int(rng.integers(1, 3 * KEY_SORT_ROWS))
    keys = np.unique(rng.integers(0, n_rows * n_cols, want))
    rows, cols = keys // n_cols, keys % n_cols
    # few distinct values: ties everywhere; -inf (dropped), and signed zeros (equal)
    data = rng.choice(np.array([0.5, 0.25, 0.0, -0.0, -1.0, -np.inf], np.float32), len(keys))
    data[rng.random(len(keys)) < 0.3] = np.float32(rng.random())
    for k in (1, 3, 50):
        expected = _oracle(n_rows, rows, cols, data, k)
        assert _lists(entries_top_k(n_rows, rows, cols, data, k)) == expected  # row-major
        shuffled = rng.permutation(len(keys))
        got = entries_top_k(n_rows, rows[shuffled], cols[shuffled], data[shuffled], k)
        assert _lists(got) == expected  # any order
