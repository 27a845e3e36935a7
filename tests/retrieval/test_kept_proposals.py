"""``sources.kept_proposals``: each row's first ``k`` listed, not excluded items as flat
proposals, against hand-worked rows and against the padded path it replaces on the ANN
source's stored lists (``flatten(drop_excluded(...))``, kept as the oracle)."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recsmith.models.topk import TopK
from recsmith.retrieval.sources import drop_excluded, flatten, kept_proposals


def _exclude(rows: list[list[int]], n_items: int) -> sparse.csr_array:
    r = np.repeat(np.arange(len(rows)), [len(x) for x in rows])
    c = np.array([i for x in rows for i in x], dtype=np.int64)
    return sparse.csr_array((np.ones(len(c), np.float32), (r, c)), shape=(len(rows), n_items))


def test_first_k_kept_items_by_hand() -> None:
    ids = np.array([[4, 7, 1, 9, -1], [2, 3, 5, 6, 8], [1, -1, -1, -1, -1]], np.int32)
    scores = np.array([[9, 8, 7, 6, -np.inf], [5, 4, 3, 2, 1], [1] + [-np.inf] * 4], np.float32)
    # query rows 3, 5, 6 of a batch of 7: exclusions are read from those rows
    exclude = _exclude([[], [], [], [7], [], [2, 5, 8], [1]], 10)
    got, count = kept_proposals(TopK(ids, scores), exclude, 3, np.array([3, 5, 6]))
    assert got.query.tolist() == [3, 3, 3, 5, 5]
    assert got.items.tolist() == [4, 1, 9, 3, 6]
    assert got.scores.tolist() == [9, 7, 6, 4, 2]
    assert got.ranks.tolist() == [1, 2, 3, 1, 2]
    assert count.tolist() == [3, 2, 0]  # row 0 kept 3 of its 3 wanted; row 2 had none left
    assert (got.query.dtype, got.items.dtype, got.scores.dtype, got.ranks.dtype) == (
        np.int32,
        np.int32,
        np.float32,
        np.int16,
    )


def test_as_the_padded_path_on_random_lists() -> None:
    rng = np.random.default_rng(5)
    for trial in range(40):
        n, width, n_items = int(rng.integers(1, 20)), int(rng.integers(1, 60)), 500
        ids = np.stack([rng.permutation(n_items)[:width] for _ in range(n)]).astype(np.int32)
        ids[rng.random(ids.shape) < 0.1] = -1  # an index's unreachable tail, or holes
        scores = np.where(ids >= 0, rng.random(ids.shape), -np.inf).astype(np.float32)
        rows = np.sort(rng.choice(40, n, replace=False))
        excluded = [
            rng.choice(n_items, int(rng.integers(0, 30)), replace=False).tolist() for _ in range(40)
        ]
        for r, q in enumerate(rows.tolist()):  # some of the row's own items excluded
            own = ids[r][ids[r] >= 0]
            excluded[q] += own[: int(rng.integers(0, len(own) + 1))].tolist()
        exclude = _exclude([sorted(set(x)) for x in excluded], n_items)
        k = int(rng.integers(1, width + 5))
        top = TopK(ids, scores)
        want = flatten(drop_excluded(top, exclude, k, rows), rows)
        got, count = kept_proposals(top, exclude, k, rows)
        for name in ("query", "items", "scores", "ranks"):
            assert getattr(got, name).tolist() == getattr(want, name).tolist(), (trial, name)
        assert (
            count.tolist() == np.bincount(np.searchsorted(rows, want.query), minlength=n).tolist()
        )


def test_lists_a_row_wider_than_16_bit_counts_keep_k_each() -> None:
    """Lists of 40,000 items a row (``first_k_kept``'s list-a-row path, whose running counts are
    16-bit only below 32,768 columns): each row keeps its first 35,000 not excluded, so its
    running counts pass 32,767; 16-bit counts would wrap negative and keep every cell."""
    w, k = 40_000, 35_000
    ids = np.tile(np.arange(w, dtype=np.int32), (2, 1))
    top = TopK(ids, np.tile(np.linspace(1, 0, w, dtype=np.float32), (2, 1)))
    got, count = kept_proposals(top, _exclude([[0], []], w), k, np.arange(2))
    assert count.tolist() == [k, k]
    assert got.items[got.query == 0].tolist() == list(range(1, k + 1))
    assert got.items[got.query == 1].tolist() == list(range(k))
