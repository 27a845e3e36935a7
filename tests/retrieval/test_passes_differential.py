"""The four compiled candidate passes (``row_kernel``: merged, rescored, below and static rows)
against numpy's path, their oracle, on seeded random inputs, compared byte for byte: scores
drawn from ±0.0, ±inf, NaN, ±1e8, denormals and ties, so a pass that writes 0.0 for numpy's
-0.0, sums in float where numpy sums in double, or orders ties otherwise fails here. (Answer
identity hardly sees these: the ranker re-scores and the cut hides them, review rv-ans25.)
Adapted from the reviewer's differential fuzz; a few hundred cases a pass."""

from __future__ import annotations

import numpy as np
import pytest
from candidate_rows import same_array, same_rows
from scipy import sparse

from recsmith.ranking import row_kernel
from recsmith.retrieval import merge, sources
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import Proposals, StaticSource

CASES = 250
SPECIAL = np.array(
    [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 3.5, 1e8, -1e8, 1e-40], np.float32
)


def _floats(rng: np.random.Generator, n: int, nan: bool = True) -> np.ndarray:
    """Specials (with or without NaN), small integers (ties), normals, or ±0.0 among a few."""
    kind = int(rng.integers(4))
    if kind == 0:
        return rng.choice(SPECIAL if nan else SPECIAL[~np.isnan(SPECIAL)], n).astype(np.float32)
    if kind == 1:
        return rng.integers(-3, 3, n).astype(np.float32)
    if kind == 2:
        return (rng.standard_normal(n) * rng.choice([1, 1e6, 1e-3])).astype(np.float32)
    return rng.choice(np.array([2.0, -0.0, 0.0, 1.0], np.float32), n)


def _candidates(
    rng: np.random.Generator, n_q: int, width: int, best_first: bool, most: int
) -> tuple[Candidates, int]:
    """Per query up to ``most`` distinct items; ``best_first``: each query's scores falling
    (no NaN) in query order, else rows shuffled across queries."""
    n_items = int(rng.integers(1, 300))
    query, items, score = [], [], []
    for q in range(n_q):
        k = int(rng.integers(0, min(most, n_items) + 1))
        s = _floats(rng, k, nan=not best_first)
        query.append(np.full(k, q, np.int32))
        items.append(rng.choice(n_items, size=k, replace=False).astype(np.int32))
        score.append(-np.sort(-s) if best_first else s)
    q, i, s = (np.concatenate(a) for a in (query, items, score))
    if not best_first:
        p = rng.permutation(len(q))
        q, i, s = q[p], i[p], s[p]
    n = len(q)
    cands = Candidates(
        n_q,
        tuple(f"s{c}" for c in range(width)),
        q,
        i,
        s,
        _floats(rng, n * width).reshape(n, width),
        rng.integers(0, 300, (n, width)).astype(np.int16),
        bool(rng.integers(2)),
    )
    return cands, n_items


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # rank -60: 0 / 0
def test_merged_rows_bytes(library: object) -> None:
    rng = np.random.default_rng(148)
    answered = 0
    for _ in range(CASES):
        n_src, n_q = int(rng.integers(1, 5)), int(rng.integers(1, 12))
        n_items = int(rng.choice([int(rng.integers(1, 50)), 2**31 - 1]))
        low = max(0, n_items - 40)
        props = []
        for _ in range(n_src):
            k = int(rng.integers(0, 80))
            ranks = (
                rng.choice([1, 2, 3, 50, 32767, 32700, -60, -1, 0], k)
                if rng.random() < 0.2
                else rng.integers(1, 200, k)
            )
            props.append(
                Proposals(
                    rng.integers(0, n_q, k).astype(np.int32),
                    rng.integers(low, n_items, k).astype(np.int32),
                    _floats(rng, k),
                    ranks.astype(np.int16),
                )
            )
        sizes = [len(p.items) for p in props]
        if not sum(sizes):
            continue
        names = tuple(f"s{s}" for s in range(n_src))
        weights = rng.choice([1.0, 0.5, 0.0, -1.0, 2.0], n_src)
        proposed = tuple(
            np.concatenate([getattr(p, f) for p in props])
            for f in ("query", "items", "scores", "ranks")
        )
        got = row_kernel.merged_rows(
            library, names, proposed, sizes, weights, n_q, n_items, merge.RRF_K
        )
        assert got is not None
        same_rows(got, merge._numpy_merged(list(names), proposed, sizes, weights, n_q, n_items))
        answered += 1
    assert answered > CASES * 0.9


def test_rescored_rows_bytes(library: object) -> None:
    rng = np.random.default_rng(149)
    for _ in range(CASES):
        most = int(rng.choice([5, 60, 400]))  # both sides of KEY_SORT_ROWS
        cands, _ = _candidates(rng, int(rng.integers(1, 40)), int(rng.integers(0, 4)), False, most)
        score = _floats(rng, len(cands))
        got = row_kernel.rescored_rows(library, cands, score)
        assert got is not None
        same_rows(got, cands._numpy_rescored(score))


def test_below_rows_bytes(library: object) -> None:
    rng = np.random.default_rng(150)
    answered = 0
    for _ in range(CASES):
        n_q, width = int(rng.integers(1, 8)), int(rng.integers(0, 4))
        most = int(rng.choice([0, 3, 30]))
        cands, n_items = _candidates(rng, n_q, width, rng.random() < 0.9, most)
        if rng.random() < 0.3 and len(cands):  # query groups shuffled, each still best first
            order = np.argsort(rng.permutation(n_q)[cands.query], kind="stable")
            cands = cands._rows(order, cands.score[order], cands.distinct)
        m = int(rng.integers(0, 30))
        extra = Proposals(
            rng.integers(0, n_q, m).astype(np.int32),
            rng.integers(0, n_items + 3, m).astype(np.int32),  # some past every candidate id
            _floats(rng, m),
            rng.integers(1, rng.choice([5, 300, 32767]), m).astype(np.int16),
        )
        if rng.random() < 0.8:  # as sources list them: each query's rows by rank
            extra = extra.where(np.lexsort((extra.ranks, extra.query)))
        got = row_kernel.below_rows(library, cands, extra, "new")
        if got is not None:  # declined where the rows would not come best first
            same_rows(got, merge._numpy_below(cands, extra, "new"))
            answered += 1
    assert answered > CASES * 0.6


def test_static_rows_bytes(library: object, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(151)
    for _ in range(CASES):
        n, n_items = int(rng.integers(1, 10)), int(rng.integers(1, 60))
        dense = rng.random((n, n_items)) < rng.choice([0.0, 0.1, 0.5, 1.0])
        exclude = sparse.csr_array(dense.astype(np.float32))
        if rng.random() < 0.5:
            exclude.indptr = exclude.indptr.astype(np.int64)
            exclude.indices = exclude.indices.astype(np.int64)
        queries = Queries(
            np.arange(n, dtype=np.int32), sparse.csr_array((n, n_items), dtype=np.float32), exclude
        )
        asked = []
        for s in range(int(rng.integers(1, 4))):
            order = None  # the source's own order, or a head holding items twice
            if rng.random() < 0.2:
                order = rng.integers(0, n_items, int(rng.integers(0, 20)))
            source = StaticSource(f"t{s}", _floats(rng, n_items), order)
            asked.append((source, int(rng.integers(0, 12))))
        got = sources.static_proposals(asked, queries)
        with monkeypatch.context() as numpy_path:
            numpy_path.setattr(row_kernel, "_library", None)
            want = sources.static_proposals(asked, queries)
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            for name in ("query", "items", "scores", "ranks"):
                assert same_array(getattr(a, name), getattr(b, name)), name
