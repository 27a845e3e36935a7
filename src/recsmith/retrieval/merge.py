"""Merge: the union of every source's proposals, de-duplicated, with each source's say kept.

The order before ranking (and the fallback order if no ranker is trained) is reciprocal rank fusion
— score = Σ_s w_s / (60 + rank_s) — which needs no score calibration between sources whose scores
live on different scales (dot products, cosines, counts). The weights ``w_s`` (default 1) let a
source that is the same for everyone (trending, new arrivals) fill lists without outvoting the
personal ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.sources import Proposals
from recsmith.sparse_rows import distinct_keys, pairs_held, sorted_distinct

RRF_K = 60.0
#: Rows from which ``_copy_rows`` copies a row's bytes as one item (a batch's thousands); below,
#: numpy's own block copy is cheaper than making the views (a lone request's ~250 rows)
BYTE_ROWS = 512


def merge(
    proposals: Sequence[Proposals],
    sources: Sequence[str],
    n_queries: int,
    n_items: int,
    weights: Sequence[float] | None = None,
    *,
    ordered: bool = True,
) -> Candidates:
    """One candidate row per distinct (query, item); ``proposals[s]`` comes from ``sources[s]``
    and weighs ``weights[s]`` in the fused order. With ``ordered=False`` the rows stay in
    (query, item) order, their scores fused but not sorted: for a caller that scores every row
    again and sorts once (``Candidates.rescored``), so the fused sort runs only where it decides
    something."""
    if len(proposals) != len(sources):
        raise ValueError("one Proposals per source")
    w = np.ones(len(sources)) if weights is None else np.asarray(weights, np.float64)
    if len(w) != len(sources):
        raise ValueError("one weight per source")
    sizes = [len(p.items) for p in proposals]
    if sum(sizes) == 0:
        return Candidates.empty(n_queries, sources)
    query = np.concatenate([p.query for p in proposals]).astype(np.int32, copy=False)
    items = np.concatenate([p.items for p in proposals]).astype(np.int32, copy=False)
    scores = np.concatenate([p.scores for p in proposals])
    ranks = np.concatenate([p.ranks for p in proposals])
    # imported here: the kernel's module imports ``Candidates`` from this package
    from recsmith.ranking import row_kernel

    library = row_kernel.ready()  # once loaded, one compiled pass (numpy's below: its oracle)
    merged = None
    if library is not None:
        proposed = (query, items, scores, ranks)
        named = tuple(sources)
        merged = row_kernel.merged_rows(
            library, named, proposed, sizes, w, n_queries, n_items, RRF_K
        )
    if merged is None:
        merged = _numpy_merged(sources, (query, items, scores, ranks), sizes, w, n_queries, n_items)
    return merged.with_scores(merged.score) if ordered else merged


def _numpy_merged(
    sources: Sequence[str],
    proposed: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    sizes: list[int],
    w: np.ndarray,
    n_queries: int,
    n_items: int,
) -> Candidates:
    """``merge``'s rows by numpy, unsorted (``ordered=False``): until the compiled pass is
    loaded, and where it declines."""
    query, items, scores, ranks = proposed
    source = np.repeat(np.arange(len(sources)), sizes)
    key = query.astype(np.int64) * n_items + items
    unique_keys, row = distinct_keys(key)
    n, width = len(unique_keys), len(sources)
    # each row's query and item written from its proposals (a row's proposals agree on both):
    # cheaper than dividing the 64-bit keys back into them; the per-source cells written
    # through one flat index, which numpy's fancy assignment serves faster than an index pair
    out_query, out_items = np.empty(n, np.int32), np.empty(n, np.int32)
    out_query[row] = query
    out_items[row] = items
    cell = row * width + source
    source_scores = np.full((n, width), np.nan, dtype=np.float32)
    source_ranks = np.zeros((n, width), dtype=np.int16)
    source_scores.reshape(-1)[cell] = scores
    source_ranks.reshape(-1)[cell] = ranks
    # each row's terms summed from 0.0 in proposal order, as ``np.add.at`` on zeros adds them
    fused = np.bincount(row, weights=w[source] / (RRF_K + ranks), minlength=n)
    return Candidates(
        n_queries,
        tuple(sources),
        out_query,
        out_items,
        fused.astype(np.float32),
        source_scores,
        source_ranks,
        distinct=True,
    )


def append_below(cands: Candidates, extra: Proposals, name: str) -> Candidates:
    """Add ``extra``'s items (those not already candidates of the query) under every existing
    candidate of their query, in ``extra``'s order, as a new source column ``name``: how the
    popularity fallback joins a ranked list without being re-ranked by features it never had.
    Where every one of them is a candidate already (a request's popular items are most often
    proposed by trending or the model: so at one user on the benchmark shop) and the rows are
    in order, the rows stand as they are, one empty column wider: what the rows appended and
    sorted below would give, without ~25 numpy calls (~64 against ~37 µs at one user).
    Once the compiled passes are loaded (``row_kernel.below_rows``) one pass builds the rows
    where they come best first; numpy's path below answers the rest (and is its oracle)."""
    # imported here: the kernel's module imports ``Candidates`` from this package
    from recsmith.ranking import row_kernel

    library = row_kernel.ready()
    built = None if library is None else row_kernel.below_rows(library, cands, extra, name)
    if built is not None:
        return built
    return _numpy_below(cands, extra, name)


def _numpy_below(cands: Candidates, extra: Proposals, name: str) -> Candidates:
    """``append_below`` by numpy: until the compiled pass is loaded, and where it declines."""
    new = ~pairs_held(cands.query, cands.items, extra.query, extra.items, cands.n_queries)
    if not new.any() and _best_first_rows(cands.query, cands.score):
        src_scores, src_ranks = _widened(cands, 0)
        return Candidates(
            cands.n_queries,
            (*cands.sources, name),
            cands.query.astype(np.int32, copy=False),
            cands.items.astype(np.int32, copy=False),
            cands.score,
            src_scores,
            src_ranks,
            cands.distinct,
        )
    q, items, ranks = extra.query[new], extra.items[new], extra.ranks[new]
    floor = _floors(cands)
    score = (floor[q] - 1.0 - ranks.astype(np.float64) * 1e-3).astype(np.float32)
    src_scores, src_ranks = _widened(cands, len(items))
    src_scores[len(cands) :, -1] = extra.scores[new]
    src_ranks[len(cands) :, -1] = ranks
    out = Candidates(
        cands.n_queries,
        (*cands.sources, name),
        np.concatenate([cands.query, q]).astype(np.int32),
        np.concatenate([cands.items, items]).astype(np.int32),
        np.concatenate([cands.score, score]),
        src_scores,
        src_ranks,
        # the rows added are pairs not held yet; distinct if each is added once (a source
        # ranking an item twice for a query would add it twice)
        distinct=cands.distinct and _distinct_pairs(q, items),
    )
    return _sorted_below(out)


def _widened(cands: Candidates, added: int) -> tuple[np.ndarray, np.ndarray]:
    """The source score and rank columns of ``cands`` with one column more (NaN, 0) and
    ``added`` rows more (NaN and 0 throughout), for ``append_below`` to fill."""
    width = len(cands.sources) + 1
    src_scores = np.full((len(cands) + added, width), np.nan, dtype=np.float32)
    src_ranks = np.zeros((len(cands) + added, width), dtype=np.int16)
    _copy_rows(src_scores, cands.source_scores)
    _copy_rows(src_ranks, cands.source_ranks)
    return src_scores, src_ranks


def _copy_rows(wider: np.ndarray, rows: np.ndarray) -> None:
    """``wider[: len(rows), : rows.shape[1]] = rows`` for a C-ordered ``wider`` with more
    columns: each row copied as one opaque item (a void view of its bytes), where numpy's
    copy of a 2-D block walks its few columns row by row (3.5 against 20 µs for a batch of
    16's [4,600, 4] float32 source scores, 2.7 against 18 for the int16 ranks). The bytes
    are the values: the same copy, NaN payloads included. Only where both hold the same dtype
    (the sources' float32 and int16): bytes of another (a ``Candidates`` built by hand) would be
    read as wrong values, where numpy's copy casts them."""
    n, width = rows.shape
    if n < BYTE_ROWS or not rows.flags.c_contiguous or rows.dtype != wider.dtype:
        wider[:n, :width] = rows  # a lone request's few hundred rows: the views cost more
        return
    item = np.dtype((np.void, width * rows.itemsize))
    wider[:n, :width].view(item)[:, 0] = rows.view(item)[:, 0]


def _distinct_pairs(query: np.ndarray, items: np.ndarray) -> bool:
    """Whether no (query, item) pair repeats (queries and items non-negative, below 2 ** 31)."""
    key = (query.astype(np.int64) << 32) | items
    return len(sorted_distinct(key)) == len(key)


def _floors(cands: Candidates) -> np.ndarray:
    """float64 per query: the lowest score among its candidates, and 0.0 at most (0.0 for a
    query without any); NaN where one of its scores is NaN. The minimum of each run of equal
    queries (``reduceat``: rows come grouped by query, one run each), then of the runs of each
    query (``np.minimum.at`` over the few runs, so rows out of group still count): the value
    ``np.minimum.at`` over every row gave, a fifteenth of its cost for a batch of 64."""
    floor = np.zeros(cands.n_queries)
    if len(cands):
        query = cands.query
        starts = np.flatnonzero(np.r_[True, query[1:] != query[:-1]])
        lowest = np.minimum.reduceat(cands.score.astype(np.float64), starts)
        np.minimum.at(floor, query[starts], lowest)
    return floor


def _sorted_below(out: Candidates) -> Candidates:
    """``out.with_scores(out.score)`` where it can be had without sorting scores: the rows
    appended under each query's candidates score below them, in their own order, so a stable
    sort by query alone (two runs per query, merged in one pass) already puts every query's
    rows best first, exactly where ``best_first`` would (ties in row order). Checked, not
    assumed: the sorted scores must not rise within a query (and hold no NaN), else the full
    sort runs."""
    order = np.argsort(out.query, kind="stable")
    if _best_first_rows(out.query[order], out.score[order]):
        return out.reordered(order)
    return out.with_scores(out.score)


def _best_first_rows(query: np.ndarray, score: np.ndarray) -> bool:
    """Whether rows grouped by ``query`` (ascending) are each query's best first, as
    ``best_first`` orders them: scores never rising within a query, none NaN (``best_first``
    puts NaN last, which this check does not follow, so it refuses NaN)."""
    later = query[1:] > query[:-1]
    falling = (query[1:] == query[:-1]) & (score[1:] <= score[:-1])
    return bool((later | falling).all()) and not np.isnan(score).any()
