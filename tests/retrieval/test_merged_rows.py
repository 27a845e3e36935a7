"""``merge``'s compiled pass (``row_kernel.merged_rows``) against numpy's path
(``merge._numpy_merged``) and a dictionary per (query, item) written here: rows in (query, item)
order, each source's score and rank in its column (a source's later row where it proposes a pair
twice), the fused score Σ w_s / (60 + rank_s) added from 0.0 in proposal order in float64 and
cast once. Drawn batches of a request's shapes and of keys past 22 bits (three digit passes),
and the inputs the pass leaves to numpy."""

from __future__ import annotations

import numpy as np
import pytest
from candidate_rows import same_rows

from recsmith.ranking import row_kernel
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.merge import RRF_K, _numpy_merged, merge
from recsmith.retrieval.sources import Proposals


def _proposals(rng: np.random.Generator, n_q: int, n_items: int, twice: bool) -> Proposals:
    """Per query a head of ranks 1, 2, ... (queries in drawn order); with ``twice`` an item
    proposed again at a later rank."""
    query, items, ranks = [], [], []
    for q in rng.permutation(n_q).tolist():
        picked = rng.choice(n_items, size=int(rng.integers(0, min(n_items, 40))), replace=False)
        picked = picked.tolist()
        if twice and picked:
            picked.append(picked[0])
        query += [q] * len(picked)
        items += picked
        ranks += list(range(1, len(picked) + 1))
    return Proposals(
        np.asarray(query, np.int32),
        np.asarray(items, np.int32),
        rng.standard_normal(len(items)).astype(np.float32),
        np.asarray(ranks, np.int16),
    )


def _concatenated(props: list[Proposals]) -> tuple[np.ndarray, ...]:
    return tuple(
        np.concatenate([getattr(p, f) for p in props])
        for f in ("query", "items", "scores", "ranks")
    )


def _dictionary(props: list[Proposals], weights: list[float], n_items: int) -> list[tuple]:
    """(query, item, fused, per source (score, rank) or None), by (query, item)."""
    fused: dict[tuple[int, int], float] = {}
    said: dict[tuple[int, int], dict[int, tuple[float, int]]] = {}
    for s, p in enumerate(props):
        for q, i, score, rank in zip(
            p.query.tolist(), p.items.tolist(), p.scores.tolist(), p.ranks.tolist(), strict=True
        ):
            fused[q, i] = fused.get((q, i), 0.0) + weights[s] / (60.0 + rank)
            said.setdefault((q, i), {})[s] = (score, rank)
    return [
        (q, i, float(np.float32(fused[q, i])), [said[q, i].get(s) for s in range(len(props))])
        for q, i in sorted(fused)
    ]


def _rows(out: Candidates) -> list[tuple]:
    return [
        (
            int(out.query[r]),
            int(out.items[r]),
            float(out.score[r]),
            [
                None if rank == 0 else (score, rank)
                for score, rank in zip(
                    out.source_scores[r].tolist(), out.source_ranks[r].tolist(), strict=True
                )
            ],
        )
        for r in range(len(out))
    ]


@pytest.mark.parametrize("seed", range(30))
def test_the_pass_builds_numpys_rows_and_the_dictionarys(library: object, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_q, n_items = int(rng.integers(1, 20)), int(rng.integers(2, 3000))
    if seed % 5 == 4:  # keys past 22 bits: three passes of 11
        n_q, n_items = 70, 100_000
    names = tuple(f"s{i}" for i in range(1 + seed % 5))
    props = [_proposals(rng, n_q, n_items, twice=seed % 4 == 3) for _ in names]
    weights = rng.choice([1.0, 0.3, 0.7, 2.0], len(names))
    sizes = [len(p.items) for p in props]
    proposed = _concatenated(props)
    built = row_kernel.merged_rows(library, names, proposed, sizes, weights, n_q, n_items, RRF_K)
    assert built is not None
    same_rows(built, _numpy_merged(names, proposed, sizes, weights, n_q, n_items))
    assert _rows(built) == _dictionary(props, weights.tolist(), n_items)


def test_hand_computed_rows(library: object) -> None:
    """Two sources: query 1 before query 0 in the first, item 4 of query 0 in both."""
    a = Proposals(
        np.array([1, 0, 0], np.int32),
        np.array([2, 4, 1], np.int32),
        np.array([0.5, 0.25, 0.125], np.float32),
        np.array([1, 1, 2], np.int16),
    )
    b = Proposals(
        np.array([0], np.int32),
        np.array([4], np.int32),
        np.ones(1, np.float32),
        np.ones(1, np.int16),
    )
    weights = np.array([1.0, 2.0])
    out = row_kernel.merged_rows(
        library, ("a", "b"), _concatenated([a, b]), [3, 1], weights, 2, 5, RRF_K
    )
    assert out is not None
    assert out.query.tolist() == [0, 0, 1] and out.items.tolist() == [1, 4, 2]
    assert out.score.tolist() == [
        float(np.float32(1 / 62)),
        float(np.float32(1 / 61 + 2 / 61)),
        float(np.float32(1 / 61)),
    ]
    assert out.source_ranks.tolist() == [[2, 0], [1, 1], [1, 0]]
    assert out.source_scores[:, 0].tolist() == [0.125, 0.25, 0.5]
    assert np.isnan(out.source_scores[[0, 2], 1]).all() and out.source_scores[1, 1] == 1.0


def test_what_the_pass_leaves_to_numpy(library: object) -> None:
    rng = np.random.default_rng(2)
    props = [_proposals(rng, 4, 50, twice=False) for _ in range(2)]
    q, i, s, r = _concatenated(props)
    sizes, weights = [len(p.items) for p in props], np.ones(2)

    def declined(proposed: tuple[np.ndarray, ...], n_items: int = 50) -> bool:
        got = row_kernel.merged_rows(
            library, ("a", "b"), proposed, sizes, weights, 4, n_items, 60.0
        )
        return got is None

    assert not declined((q, i, s, r))
    assert declined((q, i, s, r), n_items=int(i.max()))  # an item past the catalogue
    past = q.copy()
    past[3] = 4  # a query past the batch
    assert declined((past, i, s, r))
    assert declined((q, i, s, r.astype(np.int32)))
    assert declined((q, i, s.astype(np.float64), r))
    assert declined((q, i.astype(np.int64), s, r))


def test_merge_takes_the_pass_once_loaded(library: object) -> None:
    """``merge``'s rows with the pass loaded: the dictionary's, sorted best first (ordered)."""
    rng = np.random.default_rng(9)
    props = [_proposals(rng, 6, 400, twice=False) for _ in range(3)]
    got = merge(props, ("a", "b", "c"), 6, 400, [1.0, 0.5, 2.0], ordered=False)
    assert _rows(got) == _dictionary(props, [1.0, 0.5, 2.0], 400)


@pytest.mark.parametrize("sizes", [[1, 1], [100_000, 100_001]])
def test_sizes_that_do_not_cover_the_rows_are_left_to_numpy(library: object, sizes) -> None:
    """Sizes summing short of the rows (review rv-ans25: the pass read each row's source past
    them unwritten, and a weight out of bounds) or past them: the pass declines, numpy's path
    raises on the same input."""
    rng = np.random.default_rng(5)
    m = 200_000
    proposed = (
        rng.integers(0, 4, m).astype(np.int32),
        rng.integers(0, 50, m).astype(np.int32),
        rng.standard_normal(m).astype(np.float32),
        rng.integers(1, 100, m).astype(np.int16),
    )
    weights = np.ones(2)
    got = row_kernel.merged_rows(library, ("a", "b"), proposed, sizes, weights, 4, 50, RRF_K)
    assert got is None
    with pytest.raises(ValueError):
        _numpy_merged(("a", "b"), proposed, sizes, weights, 4, 50)
