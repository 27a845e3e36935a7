"""A static source's proposals (``first_kept_of_one``: each query's first ``k`` items of one
shared ranking that it does not exclude) against a plain Python walk down the ranking per query,
and against the grid version (``first_kept``) that segments still use."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import (
    Proposals,
    StaticSource,
    first_kept,
    first_kept_of_one,
    static_proposals,
)
from recsmith.sparse_rows import CODED_CELLS, stored_in_every_row


def _walk(order: np.ndarray, scores: np.ndarray, excluded: list[set[int]], k: int) -> list:
    """The oracle: per query, walk the ranking and keep what it does not exclude, k at most."""
    out = []
    for q, seen in enumerate(excluded):
        pairs = zip(order.tolist(), scores.tolist(), strict=True)
        kept = [(i, s) for i, s in pairs if i not in seen]
        out += [(q, i, s, r + 1) for r, (i, s) in enumerate(kept[:k])]
    return out


def _rows(p: Proposals) -> list:
    dtypes = (p.query.dtype, p.items.dtype, p.scores.dtype, p.ranks.dtype)
    assert dtypes == (np.int32, np.int32, np.float32, np.int16)
    columns = (p.query.tolist(), p.items.tolist(), p.scores.tolist(), p.ranks.tolist())
    return list(zip(*columns, strict=True))


def _exclusions(rng: np.random.Generator, n: int, n_items: int, hot: np.ndarray) -> list[set[int]]:
    """Per query a random set: some rows empty, some full of the ranking's head, some long."""
    out = []
    for _ in range(n):
        size = int(rng.choice([0, 1, 3, 12, 40]))
        pool = hot if rng.random() < 0.6 else np.arange(n_items)
        out.append(set(rng.choice(pool, size=min(size, len(pool)), replace=False).tolist()))
    return out


def _matrix(excluded: list[set[int]], n_items: int, duplicate: bool) -> sparse.csr_array:
    """CSR rows of ``excluded``; with ``duplicate``, each row's first item stored twice and its
    indices unsorted (not canonical: a matrix built by hand, not by scipy's constructor)."""
    cols = [[*s, *list(s)[:1]] if duplicate else sorted(s) for s in excluded]
    indptr = np.cumsum([0, *(len(c) for c in cols)])
    indices = np.asarray([i for c in cols for i in c], np.int32)
    return sparse.csr_array(
        (np.ones(len(indices), np.float32), indices, indptr), shape=(len(excluded), n_items)
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_cells", [1 << 22, 0])
def test_first_kept_of_one_is_a_walk_down_the_ranking(seed: int, max_cells: int) -> None:
    """Read from the batch's rows × excluded items grid (whatever its size: ``coded_cells`` 0),
    and (``max_cells`` 0) without it."""
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(30, 400))
    n = int(rng.integers(1, 70))
    width = int(rng.integers(1, n_items))
    order = rng.permutation(n_items)[:width]
    scores = np.sort(rng.standard_normal(width).astype(np.float32))[::-1]
    excluded = _exclusions(rng, n, n_items, order[:60])
    exclude = _matrix(excluded, n_items, duplicate=seed % 2 == 1)
    for k in (1, 5, 30, width + 10):
        got = _rows(first_kept_of_one(order, scores, exclude, k, max_cells, coded_cells=0))
        assert got == _walk(order, scores, excluded, k)
        grid = first_kept(
            np.broadcast_to(order, (n, width)), np.broadcast_to(scores, (n, width)), exclude, k
        )
        assert got == _rows(grid)


@pytest.mark.parametrize("max_cells", [1 << 22, 0])
def test_a_ranking_holding_an_item_twice_still_skips_it_everywhere(max_cells: int) -> None:
    order = np.array([4, 7, 4, 2, 9, 7, 1])
    scores = np.linspace(1, 0, len(order)).astype(np.float32)
    excluded = [{4}, {7, 2}, set()]
    exclude = _matrix(excluded, 10, duplicate=False)
    got = _rows(first_kept_of_one(order, scores, exclude, 3, max_cells, coded_cells=0))
    assert got == _walk(order, scores, excluded, 3)


def test_a_shared_ranking_of_40000_items_counts_past_16_bits() -> None:
    """One ranking of 40,000 items every row shares (``first_k_kept``'s one-ranking path): its
    running counts reach 39,999, past int16, though no rank taken passes 30,000; a query that
    excludes the first item ranks the rest from 1, and no cell past the k-th is taken (16-bit
    counts would wrap negative and take them). Lists a row: ``test_kept_proposals``."""
    order = np.arange(40_000)
    scores = np.linspace(1, 0, len(order)).astype(np.float32)
    excluded = [{0}, set()]
    got = first_kept_of_one(order, scores, _matrix(excluded, 40_000, duplicate=False), 30_000)
    assert _rows(got) == _walk(order, scores, excluded, 30_000)


def test_static_source_retrieve_matches_the_walk() -> None:
    """Through ``StaticSource.retrieve`` (prefix cut to k + the fullest row; -inf items never
    ranked), on a batch and on rows sliced out of it."""
    rng = np.random.default_rng(11)
    n_items = 500
    item_scores = rng.random(n_items).astype(np.float32)
    item_scores[rng.choice(n_items, 50, replace=False)] = -np.inf
    source = StaticSource("popular", item_scores)
    excluded = _exclusions(rng, 80, n_items, source.order[:50])
    whole = _matrix(excluded, n_items, duplicate=False)
    for matrix, sets in ((whole, excluded), (whole[20:], excluded[20:])):
        queries = Queries(
            np.full(matrix.shape[0], -1, np.int32),
            sparse.csr_array(matrix.shape, dtype=np.float32),
            matrix,
        )
        got = _rows(source.retrieve(queries, 20))
        assert got == _walk(source.order, item_scores[source.order], sets, 20)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("max_cells", [1 << 22, 0])
def test_static_sources_answered_together_are_each_a_walk_down_its_ranking(
    seed: int, max_cells: int
) -> None:
    """``static_proposals`` (a batch's static sources in one pass: one grid lookup, one running
    count restarted at each source's head) against the walk of each source's own ranking, its
    quota apart: on batches of 20-70 queries and on requests of 1-4 (grids below
    ``CODED_CELLS``), a source whose quota is 0, a ranking holding an item twice (given as
    ``order``), a source with nothing ranked ahead of the others (its head empty: the pass's
    restarts would read before the grid), and (``max_cells`` 0) where each source answers on
    its own."""
    rng = np.random.default_rng(100 + seed)
    n_items = int(rng.integers(60, 500))
    n = 1 + seed % 4 if seed < 4 else int(rng.integers(20, 70))
    made = []
    for s in range(int(rng.integers(2, 5))):
        item_scores = rng.standard_normal(n_items).astype(np.float32)
        item_scores[rng.choice(n_items, n_items // 5, replace=False)] = -np.inf
        source = StaticSource(f"s{s}", item_scores)
        if s == 1 and seed % 2:  # a ranking of its own holding one item twice
            source = StaticSource("twice", item_scores, np.r_[source.order[:5], source.order[:40]])
        made.append((source, 0 if seed == 3 and s == 0 else int(rng.integers(1, 60))))
    if seed % 3 == 2:  # new arrivals in a shop without creation dates: an empty head, first
        made.insert(0, (StaticSource("undated", np.full(n_items, -np.inf, np.float32)), 20))
    excluded = _exclusions(rng, n, n_items, made[0][0].order[:60])
    exclude = _matrix(excluded, n_items, duplicate=False)
    queries = Queries(
        np.full(n, -1, np.int32), sparse.csr_array(exclude.shape, dtype=np.float32), exclude
    )
    got = static_proposals(made, queries, max_cells)
    assert len(got) == len(made)
    for (source, k), proposals in zip(made, got, strict=True):
        walked = _walk(source.order, source.item_scores[source.order], excluded, k)
        assert _rows(proposals) == walked, source.name


@pytest.mark.parametrize("n", [1, 2, 4])
def test_a_request_of_a_few_users_reads_its_static_sources_in_one_pass(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request of 1-4 users (three heads of 20-30 items past exclusions of up to 40: a grid
    below ``CODED_CELLS``) takes the one pass, not each source on its own (``kept``), with
    each source's walk as its proposals."""
    rng = np.random.default_rng(n)
    made = [
        (StaticSource(f"s{s}", rng.standard_normal(300).astype(np.float32)), 20 + 5 * s)
        for s in range(3)
    ]
    excluded = _exclusions(rng, n, 300, made[0][0].order[:60])
    exclude = _matrix(excluded, 300, duplicate=False)
    queries = Queries(
        np.full(n, -1, np.int32), sparse.csr_array(exclude.shape, dtype=np.float32), exclude
    )
    cells = n * sum(k + max(len(e) for e in excluded) for _, k in made)
    assert cells < CODED_CELLS
    alone: list[str] = []
    kept = StaticSource.kept

    def spy(self: StaticSource, *args: object) -> Proposals:
        alone.append(self.name)
        return kept(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(StaticSource, "kept", spy)
    got = static_proposals(made, queries)
    assert alone == []
    for (source, k), proposals in zip(made, got, strict=True):
        walked = _walk(source.order, source.item_scores[source.order], excluded, k)
        assert _rows(proposals) == walked, source.name


def test_a_batch_grid_of_one_ranking_is_laid_out_by_rows() -> None:
    """``stored_in_every_row`` hands back its [rows, ranking] grid in row order (what
    ``first_k_kept``'s running count and flat positions read; a grid in column order gives
    the same values at twice the cost), with the values a set lookup gives."""
    rng = np.random.default_rng(5)
    excluded = _exclusions(rng, 16, 300, np.arange(60))
    order = rng.permutation(300)[:120]
    held = stored_in_every_row(_matrix(excluded, 300, duplicate=False), order, coded_cells=0)
    assert held is not None and held.flags.c_contiguous
    assert held.tolist() == [[int(i) in seen for i in order] for seen in excluded]
