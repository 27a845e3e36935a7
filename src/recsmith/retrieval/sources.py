"""Candidate sources: each proposes up to ``k`` items per query with its own scores.

Any trained model is a source: for a known user it recommends from the user's history, for an
anonymous visitor (or with ``use = "recent"``) from the items of the current session, if the model
can score item histories. Static sources (popular, trending, new arrivals) rank the catalogue once
and hand every query the best items it has not seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from scipy import sparse

from recsmith.models.base import Recommender
from recsmith.models.topk import FlatTop, TopK, flat
from recsmith.models.transitions import Transitions
from recsmith.retrieval.queries import Queries
from recsmith.sparse_rows import CODED_CELLS, DENSE_CELLS, stored_in_every_row, stored_in_rows


@dataclass(frozen=True, slots=True)
class Proposals:
    """What one source proposes: flat rows (query, item, score, rank), best first per query."""

    query: np.ndarray  # int32
    items: np.ndarray  # int32
    scores: np.ndarray  # float32
    ranks: np.ndarray  # int16, 1 = best

    def where(self, keep: np.ndarray) -> Proposals:
        """The rows where ``keep`` (bool per row) holds, or the rows it lists, in its order."""
        return Proposals(self.query[keep], self.items[keep], self.scores[keep], self.ranks[keep])

    def renumbered(self, queries: np.ndarray) -> Proposals:
        """Proposals for a subset of queries, with query q renumbered ``queries[q]`` (its place
        in the whole batch)."""
        return Proposals(queries[self.query].astype(np.int32), self.items, self.scores, self.ranks)


class CandidateSource(Protocol):
    """Anything that proposes items for a batch of queries."""

    name: str

    def retrieve(self, queries: Queries, k: int) -> Proposals: ...


def flatten(top: TopK, query_index: np.ndarray) -> Proposals:
    """TopK rows (−1 padded) of the queries ``query_index`` → flat proposals (cells read by
    flat position, as ``first_k_kept`` reads them)."""
    return proposed(flat(top), query_index)


def proposed(rows: FlatTop, query_index: np.ndarray) -> Proposals:
    """Flat rows of the queries ``query_index`` as proposals (query ``i`` is
    ``query_index[i]``)."""
    return Proposals(query_index[rows.query].astype(np.int32), rows.items, rows.scores, rows.ranks)


def concat(parts: list[Proposals]) -> Proposals:
    """The parts' rows, in order; a lone part with rows is itself (no copy)."""
    parts = [p for p in parts if len(p.items)] or parts[:1]
    if not parts:
        empty_i = np.zeros(0, np.int32)
        return Proposals(empty_i, empty_i, np.zeros(0, np.float32), np.zeros(0, np.int16))
    if len(parts) == 1:
        return parts[0]
    return Proposals(
        *(
            np.concatenate(cols)
            for cols in zip(*((p.query, p.items, p.scores, p.ranks) for p in parts), strict=True)
        )
    )


@dataclass(frozen=True, slots=True)
class ModelSource:
    """A trained model as a source. ``use``: "auto" answers known users from their history and
    visitors from their recent items (as it does a known user its history proposes nothing
    for); "recent" always scores the recent items (item-to-item).
    A model that reads order (``transitions``) answers a known user who met items since
    training (``Queries.latest``) from those items ahead of their history; one that weighs
    recency (EASE's ``recency``) scores a visitor's recent items by their places there (a known
    user's unweighted, as offline)."""

    name: str
    model: Recommender
    use: Literal["auto", "recent"] = "auto"

    def retrieve(self, queries: Queries, k: int) -> Proposals:
        n = len(queries)
        by_user = (queries.users >= 0) if self.use == "auto" else np.zeros(n, dtype=bool)
        has_recent = queries.recent.indptr[1:] > queries.recent.indptr[:-1]
        unanswered = ~by_user  # rows no user answers (their history, or the items met since)
        by_items = unanswered & has_recent if self.model.scores_histories else np.zeros(n, bool)
        parts = []
        ordered, latest = self.model, queries.latest
        if isinstance(ordered, Transitions) and ordered.follows_latest and latest is not None:
            ahead = by_user & (latest.indptr[1:] > latest.indptr[:-1])  # met items since training
            if ahead.any():
                rows = np.flatnonzero(ahead)
                history = ordered.history_after(queries.users[rows], _rows_of(latest, rows))
                # ``exclude`` holds the training and recent items unless seen ones may return
                top = ordered.sparse_flat_from_items(
                    history, k, _rows_of(queries.exclude, rows), drop_own=False
                )
                parts.append(proposed(top, rows))
                by_user = by_user & ~ahead
        if by_user.any():
            rows = np.flatnonzero(by_user)
            exclude = _rows_of(queries.exclude, rows)
            top = self.model.with_evidence(
                self.model.recommend(queries.users[rows], k, exclude=exclude)
            )
            parts.append(flatten(top, rows))
            if self.model.zero_is_no_evidence and self.model.scores_histories and k > 0:
                # a known user whose history led nowhere (no neighbour, no path: the kept items
                # lead their row, so an empty first slot is an empty row) is scored from its
                # recent items, as a visitor is, before the list falls to popularity
                nowhere = rows[(top.ids[:, 0] < 0) & has_recent[rows]]
                unanswered[nowhere] = by_items[nowhere] = True
        if by_items.any() and self.model.item_to_item is not None:  # only items with a score
            # a row without recent items proposes nothing here, so every row not answered from
            # a history is scored: when that is every row (a "recent" source, visitors with no
            # session yet among the batch), scipy's row selection (~60-80 µs a matrix) is spared
            rows = np.flatnonzero(unanswered)
            history, excluded = _rows_of(queries.recent, rows), _rows_of(queries.exclude, rows)
            parts.append(proposed(self.model.sparse_flat_from_items(history, k, excluded), rows))
        elif by_items.any():
            rows = np.flatnonzero(by_items)
            history = _rows_of(queries.recent, rows)
            exclude = (_rows_of(queries.exclude, rows) + history).tocsr()
            # the recent items' places (a model weighing recency; none offline: a set), a
            # visitor's only: a known user's items since training take no place (README)
            places = None
            if self.model.weighs_recency and latest is not None:
                places = _visitors_rows(_rows_of(latest, rows), queries.users[rows] < 0)
            top = drop_excluded(
                self.model.recommend_from_items(history, k + widest_row(exclude), places=places),
                exclude,
                k,
            )
            parts.append(flatten(self.model.with_evidence(top), rows))
        return concat(parts)


class StaticSource:
    """The same ranking for everyone (popular, trending, new arrivals), minus what each query
    excludes. ``item_scores`` −inf marks items never proposed. The catalogue is ranked once, at
    construction, so a request only walks the head of that order."""

    def __init__(self, name: str, item_scores: np.ndarray, order: np.ndarray | None = None) -> None:
        self.name = name
        self.item_scores = np.asarray(item_scores, dtype=np.float32)
        if order is None:
            finite = np.flatnonzero(np.isfinite(self.item_scores))
            order = finite[np.argsort(-self.item_scores[finite], kind="stable")]
        self.order = order

    def retrieve(self, queries: Queries, k: int) -> Proposals:
        return self.kept(self.order[: k + widest_row(queries.exclude)], queries.exclude, k)

    def kept(self, head: np.ndarray, exclude: sparse.csr_array, k: int) -> Proposals:
        """``retrieve`` of ``head``, the order cut where no row can exclude more of it."""
        if exclude.shape[0] == 0 or len(head) == 0:  # nothing rankable (e.g. no creation dates)
            return concat([])
        return first_kept_of_one(head, self.item_scores[head], exclude, k)


def static_proposals(
    asked: Sequence[tuple[StaticSource, int]],
    queries: Queries,
    max_cells: int = DENSE_CELLS,
) -> list[Proposals]:
    """``[source.retrieve(queries, k) for source, k in asked]``, the sources' heads read in one
    pass: a batch's static sources (trending, new arrivals, the popularity filler) each looked
    up its head among the exclusions, counted its kept cells and gathered them on its own, a
    fixed ~15 numpy calls a source over a grid of a few hundred cells. Here their heads are one
    row of ids: one lookup in the exclusions' grid (``stored_in_every_row``), one running count
    along the rows restarted at each head, one ``flatnonzero``, and the kept cells grouped by
    source with a stable sort (each source's rows stay in query, then rank, order, as
    ``first_k_kept`` lists them); the sources' proposals are slices of the same arrays. A
    request of 1-4 users (a few hundred cells, below ``CODED_CELLS``) is read the same way:
    each source answering on its own paid its own sort, search and running count, ~25 numpy
    calls a source (the shop's three, thread CPU on captured batches: one user ~90 against
    ~62 µs, four users ~88 against ~72). Where the grid of an offline batch's many cells is
    not read, or a head is empty, each source answers on its own.
    The batch's exclusions are coded once either way (``_column_codes`` remembers them for the
    sources after)."""
    exclude = queries.exclude
    n, extra = exclude.shape[0], widest_row(exclude)
    heads = [source.order[: k + extra] for source, k in asked]
    # imported here: the kernel's module imports this package's ``Candidates``
    from recsmith.ranking import row_kernel

    library = row_kernel.ready()  # once loaded, one compiled pass (numpy's below: its oracle)
    if library is not None and n and heads and all(len(h) for h in heads):
        scored = [source.item_scores.take(h) for (source, _), h in zip(asked, heads, strict=True)]
        built = row_kernel.static_rows(library, exclude, heads, scored, [k for _, k in asked])
        if built is not None:
            return [Proposals(*columns) for columns in built]
    widths = np.array([len(h) for h in heads], np.int64)
    held, every, width = None, None, int(widths.sum())
    if len(asked) > 1 and widths.all() and n * width <= max_cells:
        every = np.concatenate(heads)
        held = stored_in_every_row(exclude, every, max_cells, coded_cells=0)
    if held is None or every is None:
        return [source.kept(h, exclude, k) for (source, k), h in zip(asked, heads, strict=True)]
    keep = ~held
    rank = keep.cumsum(axis=1)  # then restarted at each head: less the count before it
    starts = widths.cumsum() - widths
    before = np.zeros((n, len(asked)), rank.dtype)
    before[:, 1:] = rank[:, starts[1:] - 1]
    rank -= before.repeat(widths, axis=1)
    quota = np.array([k for _, k in asked], np.int64).repeat(widths)
    cells = np.flatnonzero(keep & (rank <= quota))  # flat: see ``first_k_kept``
    cols = cells % width
    head = np.arange(len(asked), dtype=np.int16).repeat(widths).take(cols)
    order = np.argsort(head, kind="stable")  # by source; each source's cells in their order
    cells, cols = cells.take(order), cols.take(order)
    ids = every.take(cols).astype(np.int32)
    scores = np.concatenate(
        [source.item_scores.take(h) for (source, _), h in zip(asked, heads, strict=True)]
    ).take(cols)  # float32, as ``StaticSource`` holds them
    ranks = rank.reshape(-1).take(cells).astype(np.int16)
    query = (cells // width).astype(np.int32)
    counts = np.bincount(head, minlength=len(asked))
    ends = counts.cumsum()
    return [
        Proposals(query[a:b], ids[a:b], scores[a:b], ranks[a:b])
        for a, b in zip((ends - counts).tolist(), ends.tolist(), strict=True)
    ]


def first_kept_of_one(
    order: np.ndarray,
    scores: np.ndarray,
    exclude: sparse.csr_array,
    k: int,
    max_cells: int = DENSE_CELLS,
    coded_cells: int = CODED_CELLS,
) -> Proposals:
    """``first_kept`` of one ranking ``order`` [width] (``scores`` alongside) shared by every
    query: the same proposals, with the excluded cells of the [n, width] grid read from the
    grid of the batch's rows × its distinct excluded items (``stored_in_every_row``: the
    ranking's items coded once, one gather a cell, the coding shared with the batch's other
    sources; trending 76 → 53 µs a batch of 16 inside ``Pipeline.answer``, BENCHMARKS §109).
    Where that grid passes ``max_cells`` (an offline batch), or the [n, width] grid is below
    ``coded_cells`` (a lone request: coding costs more there), each stored exclusion is looked up
    among the ranking's few sorted items instead (one ``searchsorted`` per exclusion, rather
    than each grid cell among the batch's exclusions); a ranking holding an item twice then
    takes ``first_kept`` itself."""
    n, width = exclude.shape[0], len(order)
    if n == 0 or width == 0:
        return concat([])
    held = stored_in_every_row(exclude, order, max_cells, coded_cells)
    if held is not None:
        return first_k_kept(~held, k, order, scores)[0]
    by_item = order.argsort()
    ranked = order[by_item]
    if (ranked[1:] == ranked[:-1]).any():
        return first_kept(
            np.broadcast_to(order, (n, width)), np.broadcast_to(scores, (n, width)), exclude, k
        )
    excluded = exclude.indices[exclude.indptr[0] : exclude.indptr[-1]]
    at = ranked.searchsorted(excluded).clip(max=width - 1)
    inside = ranked[at] == excluded
    keep = np.ones((n, width), bool)
    rows = np.arange(n).repeat(exclude.indptr[1:] - exclude.indptr[:-1])
    keep[rows[inside], by_item[at[inside]]] = False
    return first_k_kept(keep, k, order, scores)[0]


def first_kept(
    order: np.ndarray, scores: np.ndarray, exclude: sparse.csr_array, k: int
) -> Proposals:
    """Row q of ``order`` [n, width] ranks items for query q (``scores`` alongside): its first
    ``k`` items that ``exclude`` row q lacks, as proposals (a static ranking, or one per segment
    combination in ``segments.popularity``); an item -1 pads a shorter row."""
    n, width = order.shape
    if n == 0 or width == 0:
        return concat([])
    keep = (order >= 0) & ~stored_in_rows(exclude, np.arange(n), np.maximum(order, 0))
    return first_k_kept(keep, k, order, scores)[0]


def first_k_kept(
    keep: np.ndarray,
    k: int,
    ids: np.ndarray,
    scores: np.ndarray,
    query: np.ndarray | None = None,
) -> tuple[Proposals, np.ndarray]:
    """Each row's first ``k`` cells where ``keep`` [n, width] holds, as proposals ranked by their
    place among the row's kept cells (the cells are in ranking order, so the first kept win), and
    how many cells each row kept (at most ``k``). ``ids`` and ``scores`` are per cell [n, width],
    or one ranking [width] every row shares (gathered by column alone); row i is query
    ``query[i]`` (default: i). The one ending of ``first_kept``, ``first_kept_of_one`` and
    ``kept_proposals``: a running count along the rows instead of a sort of each row."""
    n, width = keep.shape
    if ids.ndim == 1:  # one ranking: its cells by column alone
        rank = keep.cumsum(axis=1)  # each kept cell's place among its row's kept cells, from 1
        # flat positions, divided back: a 2-D ``nonzero`` costs ~4 times a flat one (20 against
        # 5 µs for a batch of 16's [16, 230] static heads)
        cells = np.flatnonzero(keep & (rank <= k))
        rows = cells // max(width, 1)
        cols = cells - rows * width
        ranks, taken_ids, taken_scores = rank.reshape(-1).take(cells), ids[cols], scores[cols]
    else:  # a list a row: 16-bit counts, cells read by flat position, not by (row, column)
        # index pairs (33 against 62 µs for a batch of 16's [16, 264] stored ANN lists)
        rank = keep.cumsum(axis=1, dtype=np.int16 if width < 1 << 15 else np.int64)
        cells = np.flatnonzero(keep & (rank <= k))
        rows = cells // width
        ranks = rank.reshape(-1).take(cells)
        taken_ids, taken_scores = ids.reshape(-1).take(cells), scores.reshape(-1).take(cells)
    count = rank[:, -1].astype(np.int64) if width else np.zeros(n, np.int64)
    return Proposals(
        (rows if query is None else query[rows]).astype(np.int32),
        taken_ids.astype(np.int32),
        taken_scores.astype(np.float32),
        ranks.astype(np.int16),
    ), np.minimum(count, k)


class CategoryPopular:
    """Popularity within categories: the fallback for a request that asks for some categories
    (``popular in Shoes``), where the global top list might hold none of them.

    Each category's items are ranked by ``item_scores`` once, at construction; a request merges the
    heads of its categories' lists, so it never touches the rest of the catalogue. ``membership``
    is the catalogue's item × category matrix (an item may sit in several categories).
    """

    name = "category_popular"

    def __init__(
        self, item_scores: np.ndarray, membership: sparse.csr_array, names: Sequence[str]
    ) -> None:
        self.item_scores = np.asarray(item_scores, dtype=np.float32)
        by_category = sparse.csr_array(membership.T)
        rows = np.repeat(np.arange(by_category.shape[0]), np.diff(by_category.indptr))
        items = by_category.indices
        scores = self.item_scores[items]
        keep = np.isfinite(scores)
        order = np.lexsort((items[keep], -scores[keep], rows[keep]))
        self.items = items[keep][order].astype(np.int64)
        self.indptr = np.searchsorted(rows[keep][order], np.arange(by_category.shape[0] + 1))
        self.codes = {name: c for c, name in enumerate(names)}

    def within(self, categories: Sequence[str], depth: int) -> StaticSource:
        """A static source over the best ``depth`` items of each named category (unknown names
        add nothing), ranked by popularity (``merged_heads``)."""
        heads = [self._ranked(name)[:depth] for name in categories]
        order, _ = merged_heads(heads, [self.item_scores[head] for head in heads])
        return StaticSource(self.name, self.item_scores, order)

    def members(self, categories: Sequence[str]) -> list[np.ndarray]:
        """Each named category's items (sorted indices; an unknown name: none), one array a
        name: the pools another popularity (a segment's) takes each category's head of before
        ``merged_heads`` ranks them together, as ``within`` does by popularity."""
        return [np.sort(self._ranked(name)) for name in categories]

    def _ranked(self, name: str) -> np.ndarray:
        """One category's items best first by popularity (an unknown name: none)."""
        c = self.codes.get(name)
        return (
            np.zeros(0, np.int64) if c is None else self.items[self.indptr[c] : self.indptr[c + 1]]
        )


def merged_heads(
    heads: Sequence[np.ndarray], scores: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Several categories' heads (items, ``scores`` alongside) as one ranking: each item once
    (an item of two categories has one score), best first, ties to the lower index, with its
    score. A category request ranks the union of every category's own head, never the union of
    the categories cut to the sum: there the best category would crowd out the others, and a
    per-category cap (``max_per_category``) would leave the list short."""
    items = np.concatenate([np.zeros(0, np.int64), *heads])
    values = np.concatenate([np.zeros(0, np.float64), *scores])
    items, first = np.unique(items, return_index=True)
    values = values[first]
    order = np.lexsort((items, -values))
    return items[order], values[order]


def _rows_of(matrix: sparse.csr_array, rows: np.ndarray) -> sparse.csr_array:
    """``matrix[rows]`` for sorted unique ``rows``; the matrix itself when they are all of its
    rows (a lone request, or a batch whose queries all take one path), which skips scipy's fancy
    row indexing: ~60-80 µs a call, twice per item-to-item source on every request."""
    return matrix if len(rows) == matrix.shape[0] else matrix[rows]


def _visitors_rows(matrix: sparse.csr_array, visitors: np.ndarray) -> sparse.csr_array | None:
    """``matrix`` with the rows not marked in ``visitors`` emptied (the matrix itself where every
    row is marked; None where none is)."""
    if visitors.all():
        return matrix
    if not visitors.any():
        return None
    keep = np.repeat(visitors, np.diff(matrix.indptr))
    indptr = np.r_[0, np.cumsum(np.diff(matrix.indptr) * visitors)]
    return sparse.csr_array((matrix.data[keep], matrix.indices[keep], indptr), shape=matrix.shape)


def widest_row(matrix: sparse.csr_array) -> int:
    """Entries in the fullest row: how far a source over-fetches so that, after dropping what a
    query excludes, ``k`` items are still left."""
    return int((matrix.indptr[1:] - matrix.indptr[:-1]).max()) if matrix.shape[0] else 0


def kept_proposals(
    top: TopK, exclude: sparse.csr_array, k: int, rows: np.ndarray
) -> tuple[Proposals, np.ndarray]:
    """``flatten(drop_excluded(top, exclude, k, rows), rows)``, and how many items each row kept
    (at most ``k``): each row's first ``k`` items that are listed and not excluded, found by a
    running count along the row, without the padded best-``k`` lists in between (a stable
    argsort of every row's cells, the gathers of ``k`` columns and their padding; 124 + 44 µs
    for a batch of 16's stored ANN lists of 264 items, quota 200)."""
    kept = (top.ids >= 0) & ~stored_in_rows(exclude, rows, np.maximum(top.ids, 0))
    return first_k_kept(kept, k, top.ids, top.scores, rows)


def drop_excluded(
    top: TopK, exclude: sparse.csr_array, k: int, rows: np.ndarray | None = None
) -> TopK:
    """The best ``k`` of over-fetched lists (rows best first) without excluded items; row i of
    ``top`` is row ``rows[i]`` of ``exclude`` (default: row i)."""
    n = len(top.ids)
    at = np.arange(n) if rows is None else rows
    hit = (top.ids < 0) | stored_in_rows(exclude, at, np.maximum(top.ids, 0))
    order = np.argsort(hit, axis=1, kind="stable")[:, :k]  # survivors first, still in order
    cells = (np.arange(n)[:, None], order)  # ``np.take_along_axis(·, order, axis=1)``
    ids, scores, gone = top.ids[cells], top.scores[cells], hit[cells]
    ids[gone], scores[gone] = -1, -np.inf
    if ids.shape[1] < k:
        ids = np.pad(ids, ((0, 0), (0, k - ids.shape[1])), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, k - scores.shape[1])), constant_values=-np.inf)
    return TopK(ids.astype(np.int32), scores.astype(np.float32))
