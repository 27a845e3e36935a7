"""``static_proposals``' compiled pass (``row_kernel.static_rows``) against numpy's path (the
same function with the library unloaded) and a Python walk written here: per source, per query,
the head's first ``k`` items the query does not exclude, ranked 1, 2, ... among the kept, grouped
by source, then query. Drawn batches of one to four sources (heads holding an item twice, empty
exclusion rows, rows excluding the whole head, int32 and int64 offsets), and the inputs the pass
leaves to numpy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsmith.ranking import row_kernel
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import Proposals, StaticSource, static_proposals, widest_row


def _exclusions(rng: np.random.Generator, n: int, n_items: int, hot: np.ndarray) -> list[set]:
    rows = []
    for q in range(n):
        kind = q % 3
        if kind == 0:
            rows.append(set())
        elif kind == 1:
            rows.append(set(rng.choice(hot, size=min(len(hot), 12), replace=False).tolist()))
        else:
            rows.append(set(rng.choice(n_items, size=int(rng.integers(1, 40))).tolist()))
    return rows


def _matrix(rows: list[set], n_items: int, wide: bool) -> sparse.csr_array:
    cols = [sorted(r) for r in rows]
    indptr = np.cumsum([0, *(len(c) for c in cols)])
    indices = np.asarray([c for r in cols for c in r], np.int64 if wide else np.int32)
    data = np.ones(len(indices), np.float32)
    dtype = np.int64 if wide else np.int32
    return sparse.csr_array((data, indices, indptr.astype(dtype)), shape=(len(rows), n_items))


def _walk(source: StaticSource, head: np.ndarray, excluded: list[set], k: int) -> list:
    out = []
    for q, seen in enumerate(excluded):
        kept = [i for i in head.tolist() if i not in seen][:k]
        out += [(q, i, float(source.item_scores[i]), r + 1) for r, i in enumerate(kept)]
    return out


def _rows(p: Proposals) -> list:
    assert (p.query.dtype, p.items.dtype, p.scores.dtype, p.ranks.dtype) == (
        np.int32,
        np.int32,
        np.float32,
        np.int16,
    )
    columns = (p.query.tolist(), p.items.tolist(), p.scores.tolist(), p.ranks.tolist())
    return list(zip(*columns, strict=True))


def _sources(rng: np.random.Generator, n_items: int, count: int) -> list[StaticSource]:
    out = []
    for s in range(count):
        scores = rng.standard_normal(n_items).astype(np.float32)
        scores[rng.random(n_items) < 0.2] = -np.inf  # never proposed
        source = StaticSource(f"s{s}", scores)
        if s == 1 and len(source.order) > 3:  # a ranking holding an item twice
            order = source.order.copy()
            order[2] = order[0]
            source = StaticSource(f"s{s}", scores, order)
        out.append(source)
    return out


@pytest.mark.parametrize("seed", range(30))
def test_the_pass_proposes_as_numpy_and_the_walk(
    library: object, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(seed)
    n, n_items = int(rng.integers(1, 20)), int(rng.integers(20, 400))
    sources = _sources(rng, n_items, 1 + seed % 4)
    asked = [(s, int(rng.integers(0, 30))) for s in sources]
    excluded = _exclusions(rng, n, n_items, sources[0].order[:20])
    queries = Queries(
        np.full(n, -1, np.int32),
        _matrix([set()] * n, n_items, False),
        _matrix(excluded, n_items, seed % 2 == 1),
    )
    extra = widest_row(queries.exclude)
    heads = [s.order[: k + extra] for s, k in asked]
    scored = [s.item_scores.take(h) for s, h in zip(sources, heads, strict=True)]
    built = row_kernel.static_rows(library, queries.exclude, heads, scored, [k for _, k in asked])
    assert built is not None
    got = [Proposals(*columns) for columns in built]
    for p, (source, k), head in zip(got, asked, heads, strict=True):
        assert _rows(p) == _walk(source, head, excluded, k)
    assert [_rows(p) for p in static_proposals(asked, queries)] == [_rows(p) for p in got]
    monkeypatch.setattr(row_kernel, "_library", None)  # numpy's path
    assert [_rows(p) for p in static_proposals(asked, queries)] == [_rows(p) for p in got]


def test_hand_computed_rows(library: object) -> None:
    """Head [5, 3, 8, 1] (k 2) and [3, 9] (k 1); query 0 excludes 3, query 1 excludes 5, 8, 9."""
    exclude = _matrix([{3}, {5, 8, 9}], 10, False)
    heads = [np.array([5, 3, 8, 1]), np.array([3, 9])]
    scored = [np.array([4, 3, 2, 1], np.float32), np.array([7, 6], np.float32)]
    built = row_kernel.static_rows(library, exclude, heads, scored, [2, 1])
    assert built is not None
    first, second = (list(zip(*(c.tolist() for c in cols), strict=True)) for cols in built)
    assert first == [(0, 5, 4.0, 1), (0, 8, 2.0, 2), (1, 3, 3.0, 1), (1, 1, 1.0, 2)]
    assert second == [(0, 9, 6.0, 1), (1, 3, 7.0, 1)]


def test_what_the_pass_leaves_to_numpy(library: object) -> None:
    exclude = _matrix([{3}, {5}], 10, False)
    heads, scored = [np.array([5, 3, 8])], [np.ones(3, np.float32)]
    assert row_kernel.static_rows(library, exclude, heads, scored, [2]) is not None
    assert row_kernel.static_rows(library, exclude, [np.array([5, 10, 8])], scored, [2]) is None
    assert row_kernel.static_rows(library, exclude, heads, [np.ones(3)], [2]) is None
    past = sparse.csr_array(
        (np.ones(1, np.float32), np.array([12], np.int32), np.array([0, 1, 1], np.int32)),
        shape=(2, 10),
    )
    assert row_kernel.static_rows(library, past, heads, scored, [2]) is None
