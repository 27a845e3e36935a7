"""Maximal marginal relevance: diversify each query's list by penalising near-duplicates.

Greedy, per query: pick the item maximising ``λ·relevance − (1 − λ)·max similarity to the items
already picked``, ``k`` times (Carbonell & Goldstein, 1998). Relevance is min-max normalised per
query first, so λ means the same trade-off whatever the score scale; λ = 1 is the relevance order,
λ = 0 picks the item least like anything picked so far (ties: the more relevant).

With category similarity (1 for a shared primary category, else 0: the default) the greedy order
has a closed form, so no step loop runs at all. An item's penalty is 1 exactly when an item of its
category was picked before it, and the most relevant item of a category (ties: the earlier row) is
always picked before the others of it, whose penalty is then already 1. So every item is picked at
the score ``key = λ·relevance − (1 − λ)·[not the first of its category, or its category seeded]``,
scores only fall as picks accrue, and the greedy order is simply the order of ``key`` (ties: the
earlier row), with the category cap and ``k`` applied as in relevance order: a few sorts within
each row of the padded grid below, the same lists as the step loop (``tests/rerank/`` checks both
against a textbook loop). That needs a category's first item shown: a cap over groups other
than the categories can refuse it while none of its category is shown, and its next item is then
no repeat, so such capped calls take the step loop (``MMR._walk``). λ = 1 is the same sort with
any similarity. Rows in relevance order without pins (what re-ranking hands over) are first walked
within their first columns only (``MMR._windowed``: a proof per row that nothing past them can
enter its list; rows without one are walked in full; a batch of at most ``FEW_QUERIES`` queries
(a served batch's size) is walked by one compiled call first, ``few_queries.walked_few``, once
``ranking.row_kernel``'s library is loaded, where numpy's ~60 calls cost more than its windows'
cells: BENCHMARKS §152). In process, CPU time of the re-ranking stage on the 100k-item
pipeline: 0.58× the step loop's for one query, 0.84× for 16, 1.02× for 64 before the window
(``benchmarks/mmr_ab.py``; BENCHMARKS §80 for the window).

Other similarities (item vectors) take the greedy steps: sequential, but queries are independent,
so every step runs for a whole chunk of queries at once on a padded grid (one query per row, its
candidates along the columns): an ``argmax`` per row and one similarity block update
(``similarity.py``). Cost: O(k · rows) numpy work per chunk, no Python loop over queries or
candidates. The only Python loop over queries is the integer bookkeeping that cuts a batch into
chunks of about ``max_cells`` grid cells, which bounds the memory of the gathered embeddings
whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from recsmith.ranking import row_kernel
from recsmith.rerank.few_queries import FEW_QUERIES, walked_few
from recsmith.rerank.placement import group_rank, pair_key, place, seed_counts
from recsmith.rerank.similarity import CategorySimilarity, Similarity
from recsmith.retrieval.candidates import Candidates
from recsmith.sparse_rows import DENSE_CELLS, spans


def _chunks(counts: np.ndarray, max_cells: int) -> Iterator[tuple[int, int]]:
    """Query ranges [start, stop) whose padded grid (queries × widest query) fits ``max_cells``."""
    start, width = 0, 0
    for q, count in enumerate(counts.tolist()):
        wider = max(width, count)
        if q > start and wider * (q - start + 1) > max_cells:
            yield start, q
            start, wider = q, count
        width = wider
    yield start, len(counts)


@dataclass(frozen=True, slots=True)
class MMR:
    """An MMR selector (``placement.Selector``): plugs into ``RulePlan.apply``, where pinned rows
    are *seeds* (already picked: they count for similarity and for the category cap)."""

    lam: float
    similarity: Similarity
    max_cells: int = 1 << 17

    def __post_init__(self) -> None:
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"MMR lambda must be within [0, 1], got {self.lam}")
        # a Python float, so every path keys in float64 (NEP 50: a numpy float32 λ times a
        # Python float is float32, as ``rerank(diversity=np.float32(..))`` would hand it over)
        object.__setattr__(self, "lam", float(self.lam))

    def __call__(
        self,
        *,
        query: np.ndarray,
        items: np.ndarray,
        relevance: np.ndarray,
        is_seed: np.ndarray,
        group: np.ndarray,
        cap: int | None,
        k: int,
    ) -> np.ndarray:
        """Rows picked, grouped by query, in pick order (at most ``k`` minus the query's seeds)."""
        if len(query) == 0 or k <= 0:
            return np.zeros(0, np.int64)
        bounds = np.searchsorted(query, np.arange(int(query[-1]) + 2))
        closed = self.lam == 1.0 or isinstance(self.similarity, CategorySimilarity)
        if closed:
            picked = None
            library = row_kernel.loaded() if len(bounds) - 1 <= FEW_QUERIES else None
            if library is not None:  # it checks the rows' order and the cap's groups itself
                picked = walked_few(
                    library,
                    self.lam,
                    self.similarity,
                    _WINDOW,
                    bounds,
                    items,
                    relevance,
                    is_seed,
                    group,
                    cap,
                    k,
                )
            if picked is None:
                picked = self._windowed(query, bounds, items, relevance, is_seed, group, cap, k)
            if picked is not None:
                return picked
        return self._chunked(query, bounds, items, relevance, is_seed, group, cap, k)

    def _chunked(
        self,
        query: np.ndarray,
        bounds: np.ndarray,
        items: np.ndarray,
        relevance: np.ndarray,
        is_seed: np.ndarray,
        group: np.ndarray,
        cap: int | None,
        k: int,
    ) -> np.ndarray:
        """Every row walked in full (closed form, where it holds: ``_walk``) or stepped
        (``_chunk``), a chunk of queries of about ``max_cells`` grid cells at a time."""
        rel = _normalised(query, bounds, relevance)
        closed = self.lam == 1.0 or isinstance(self.similarity, CategorySimilarity)
        out = [np.zeros(0, np.int64)]
        for q0, q1 in _chunks(bounds[1:] - bounds[:-1], self.max_cells):
            lo, hi = int(bounds[q0]), int(bounds[q1])
            if hi > lo:
                rows = slice(lo, hi)
                grid = _Grid(query[rows] - q0, bounds[q0 : q1 + 1] - lo)
                args = (grid, items[rows], rel[rows], is_seed[rows], group[rows], cap, k)
                walked = self._walk(*args) if closed else None
                picked = self._chunk(*args) if walked is None else walked[0]
                out.append(picked + lo)
        return np.concatenate(out)

    def _windowed(
        self,
        query: np.ndarray,
        bounds: np.ndarray,
        items: np.ndarray,
        relevance: np.ndarray,
        is_seed: np.ndarray,
        group: np.ndarray,
        cap: int | None,
        k: int,
    ) -> np.ndarray | None:
        """The closed-form lists of rows in relevance order without seeds (as re-ranking hands
        them over), walked within each row's first ``_WINDOW + 2k`` columns; None where that
        does not apply (seeds, rows out of order, non-finite relevance, rows all within the
        window, no window able to give ``k`` picks: ``_cannot_settle``). A cell's penalty
        depends on the columns before it only, and no cell past the window can key above
        ``λ · relevance`` of the window's next column (the most any of them has), so a row
        whose window yields ``k`` picks keyed at least that high has its whole list; the other
        rows (a cap skipping most of a long head) are walked in full (``_chunked``, on those
        rows only). Only the window's ~36 columns a row are normalised, gridded and sorted, not
        the ~290 of a batch's rows: a row in relevance order has its minimum and maximum at its
        ends."""
        width = _WINDOW + 2 * k
        starts, ends = bounds[:-1], bounds[1:]
        lengths = ends - starts
        if int(lengths.max()) <= width or is_seed.any():
            return None
        rel = np.asarray(relevance, np.float64)
        present = lengths > 0
        hi, lo = np.zeros(len(lengths)), np.zeros(len(lengths))
        hi[present], lo[present] = rel[starts[present]], rel[ends[present] - 1]
        # in order with finite ends: every row finite, its maximum first, its minimum last
        if not (np.isfinite(hi).all() and np.isfinite(lo).all() and _in_order(query, rel)):
            return None
        shown = np.minimum(lengths, width)
        cells = spans(starts, shown)
        shown_items, shown_group = items[cells], group[cells]
        if self._cannot_settle(shown_items, shown_group, cap, k):
            return None
        window = _Grid(
            np.repeat(np.arange(len(lengths)), shown), np.concatenate(([0], shown.cumsum()))
        )
        scaled = _scaled(rel[cells], window.row, lo, hi)
        walked = self._walk(window, shown_items, scaled, is_seed[cells], shown_group, cap, k)
        if walked is None:
            return None
        picked, keys = walked
        picked = cells[picked]
        row = query[picked]
        per_row = np.bincount(row, minlength=len(lengths))
        last = np.full(len(lengths), np.inf)
        filled = per_row > 0
        last[filled] = keys[np.cumsum(per_row)[filled] - 1]
        # the most any cell past the window can key: its first column's λ·relevance
        beyond = np.full(len(lengths), -np.inf)
        long = np.flatnonzero(lengths > width)
        beyond[long] = self.lam * _scaled(rel[starts[long] + width], long, lo, hi)
        settled = (lengths <= width) | ((per_row >= k) & (last >= beyond))
        if settled.all():
            return picked
        # the other rows walked in full, on their own (rows are walked independently)
        redo = np.flatnonzero(~settled[query])
        number = np.cumsum(~settled) - 1  # an unsettled row's place among them
        sub = number[query[redo]]
        again = self._chunked(
            sub,
            np.searchsorted(sub, np.arange(int(sub[-1]) + 2)),
            items[redo],
            rel[redo],
            is_seed[redo],
            group[redo],
            cap,
            k,
        )
        rows = np.concatenate([picked[settled[row]], redo[again]])
        return rows[np.argsort(query[rows], kind="stable")]  # by query, then pick order

    def _cannot_settle(self, items: np.ndarray, group: np.ndarray, cap: int | None, k: int) -> bool:
        """Whether no row past a window (its cells' ``items`` and cap ``group``, all rows
        together) can settle, by counts that need no grouping (``_fewer_than``, over the whole
        window: at least any row's): a capped row picks at most ``cap`` cells of each group and
        every uncategorised cell; under a penalty with λ below 0.5 a category's later cells key
        below 0 (the least a row's bound past the window is), so only the first of each
        category and the uncategorised cells can settle it. Such a batch (few categories
        against ``k``, a cap starving the list) would walk its window for nothing and then in
        full (BENCHMARKS §110); the full walk alone runs instead. A cap of at least ``k``
        cannot starve a row, nor can codes whose window's first and last cells lie far enough
        apart (``_apart``): the other cells are not looked at then (the shop's usual batch)."""
        if (
            cap is not None
            and cap < k
            and not _apart(k, cap, group[0], group[-1])
            and _fewer_than(k, group, cap)
        ):
            return True
        if self.lam < 0.5 and isinstance(self.similarity, CategorySimilarity) and k > 1:
            category = self.similarity.category
            if not _apart(k, 1, category[items[0]], category[items[-1]]):
                return _fewer_than(k, category[items], 1)
        return False

    def _walk(
        self,
        grid: _Grid,
        items: np.ndarray,
        rel: np.ndarray,
        is_seed: np.ndarray,
        group: np.ndarray,
        cap: int | None,
        k: int,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The closed-form walk of every row of ``grid``: the rows picked (by query, in pick
        order) and their keys. Sorts within each row of the padded grid, never a sort of the
        whole batch. None where the closed form does not hold: a penalty with a cap over groups
        other than the categories, which can refuse a category's first item while none of that
        category is picked, so its next item is no repeat (the step loop answers)."""
        base = self.lam * rel
        key = base
        similarity = self.similarity
        penalised = self.lam < 1.0 and isinstance(similarity, CategorySimilarity)
        codes = similarity.category[items] if penalised else group
        same = codes is group or np.array_equal(codes, group)
        if penalised and cap is not None and not same:
            return None
        # rows in relevance order without seeds, whose cap groups are the penalty's categories:
        # within a row, a category's cells key in column order (its first, unpenalised, above
        # the rest), so one grouped count along the columns gives both the first of each
        # category and the cap's count of each cell (``_taken``), in place of a grouped count
        # in key order after the sort
        ranked = None
        if (penalised or cap is not None) and same and _column_ranks_hold(grid, base, is_seed):
            ranked = group_rank(pair_key(grid.row, codes))
        if penalised:
            if ranked is not None:
                penalty = np.where((codes >= 0) & (ranked > 0), 1.0, 0.0)
            else:
                penalty = _after_first(grid, codes, base, is_seed)
            key = base - (1.0 - self.lam) * penalty
        over = None if ranked is None or cap is None else (group >= 0) & (ranked >= cap)
        # every row's non-seed cells by key, best first (stable: ties keep the column order)
        cells = grid.spread(np.where(is_seed, np.inf, -key), np.inf)
        order = np.argsort(cells, axis=1, kind="stable")
        need = k - np.bincount(grid.row[is_seed], minlength=grid.shape[0])
        # the walk down each row's order stops once ``need`` cells are taken, and whether a cell
        # is taken depends on the cells before it only: walked over the head of the order
        # first, over all of it only when a row's head did not fill its list (caps skipping
        # many cells)
        head = min(order.shape[1], _HEAD + 2 * k)
        live = _taken(grid, order[:, :head], is_seed, group, cap, need, over)
        if head < order.shape[1] and (live.sum(axis=1) < need).any():
            live = _taken(grid, order, is_seed, group, cap, need, over)
        r, c = np.nonzero(live)
        picked = grid.starts[r] + order[r, c]
        return picked, key[picked]

    def _chunk(
        self,
        grid: _Grid,
        items: np.ndarray,
        relevance: np.ndarray,
        is_seed: np.ndarray,
        group: np.ndarray,
        cap: int | None,
        k: int,
    ) -> np.ndarray:
        n_q, lam = grid.shape[0], self.lam
        rel = grid.spread(relevance, 0.0)
        grp = grid.spread(group, -1)
        taken = ~grid.spread(np.ones(len(items), bool), False) | grid.spread(is_seed, False)
        need = k - np.bincount(grid.row[is_seed], minlength=n_q)
        block = self.similarity.block(grid.spread(items, items[0])) if lam < 1.0 else None
        max_sim = np.zeros(grid.shape)  # max over an empty set: no penalty
        has_pick = np.zeros(n_q, bool)
        same = np.zeros(grid.shape, np.int32)

        def absorb(pick: np.ndarray) -> None:
            """Fold the cell just picked in every row into that row's penalties and cap counts."""
            ok = pick >= 0
            col = np.where(ok, pick, 0)
            if block is not None:
                sim = block.against(col)
                fresh = np.where(has_pick[:, None], np.maximum(max_sim, sim), sim)
                max_sim[:] = np.where(ok[:, None], fresh, max_sim)
            if cap is not None:
                g = grp[np.arange(n_q), col][:, None]
                same[:] += ok[:, None] & (grp == g) & (g >= 0)
            has_pick[:] |= ok

        seeds = np.flatnonzero(is_seed)
        seed_rank = group_rank(grid.row[seeds])
        for s in range(int(seed_rank.max(initial=-1)) + 1):
            pick = np.full(n_q, -1, np.int64)
            these = seeds[seed_rank == s]
            pick[grid.row[these]] = grid.col[these]
            absorb(pick)

        picks, base = [], lam * rel
        for step in range(k):
            eligible = ~taken & (need > step)[:, None]
            if cap is not None:
                eligible &= (grp < 0) | (same < cap)
            if not eligible.any():
                break
            score = np.where(eligible, base - (1.0 - lam) * max_sim, -np.inf)
            pick = np.argmax(score, axis=1)
            pick = np.where(eligible[np.arange(n_q), pick], pick, -1)
            live = np.flatnonzero(pick >= 0)
            taken[live, pick[live]] = True
            picks.append(grid.starts[live] + pick[live])  # queries in order, within a step
            absorb(pick)
        if not picks:
            return np.zeros(0, np.int64)
        rows = np.concatenate(picks)
        return rows[np.argsort(grid.row[rows], kind="stable")]  # by query, then pick order


#: Columns of each row's order walked first beyond twice ``k`` (``MMR._walk``): a batch's
#: rows hold ~280 candidates and fill a list of 10 within the first few dozen.
_HEAD = 16

#: Columns of each row, beyond twice ``k``, within which ``MMR._windowed`` first walks rows in
#: relevance order, from any batch size: only the window's cells are normalised and gridded
#: (BENCHMARKS §80 measured the window costing more below 8 queries when the whole batch was);
#: re-ranking CPU of the 100k-item shop's batches, window against full walk, one query 186.1
#: against 183.5 µs, 4 queries 236 against 254 (BENCHMARKS §110). Batches whose windows cannot
#: give ``k`` picks by count skip it (``MMR._cannot_settle``); windows that fail by key (the
#: k-th pick below the bound past them) are still walked before the full walk: at 1-4 queries
#: up to 1.43x the re-ranking of f28285a, which walked below 8 queries in full (§110).
_WINDOW = 16


def _apart(k: int, each: int, first: np.integer, last: np.integer) -> bool:
    """Whether two codes (0 or more; -1 is none) already span enough distinct ones for
    ``each`` cells of every one to reach ``k``: they alone decide ``_fewer_than`` is False."""
    a, b = int(first), int(last)
    return a >= 0 and b >= 0 and each * (abs(a - b) + 1) >= k


def _fewer_than(k: int, codes: np.ndarray, each: int) -> bool:
    """Whether ``each`` cells of every distinct code (0 or more) and every cell without one
    (-1) number fewer than ``k``: distinct codes bounded by the span from the least to the
    greatest (two reductions, no grouping), the cells without one counted only when that
    alone falls short."""
    lo, hi = int(codes.min()), int(codes.max())
    if lo >= 0:
        return each * (hi - lo + 1) < k
    most = each * (hi + 1)  # the codes present lie in 0 .. hi
    return most < k and most + int(np.count_nonzero(codes < 0)) < k


def _in_order(row: np.ndarray, rel: np.ndarray) -> bool:
    """Whether every row's cells (grouped by row) come in non-increasing relevance."""
    return bool(np.all((rel[1:] <= rel[:-1]) | (row[1:] != row[:-1])))


def _taken(
    grid: _Grid,
    order: np.ndarray,
    is_seed: np.ndarray,
    group: np.ndarray,
    cap: int | None,
    need: np.ndarray,
    over: np.ndarray | None = None,
) -> np.ndarray:
    """bool [rows, columns of ``order``]: the cells of each row's ``order`` (a prefix of it, or
    all) taken by the walk: not seeds, within the cap once the seeds of their group and the
    cells taken before them count, and at most ``need`` of the row. ``over``: per cell, whether
    the cap refuses it, where that is known already (``MMR._walk``)."""
    live = _along(grid.spread(~is_seed, False), order)
    if over is not None:
        live &= ~_along(grid.spread(over, False), order)
    elif cap is not None:
        grp = _along(grid.spread(group, -1), order)
        grp = np.where(live, grp, -1)
        before = _rank_in_row(grp)
        if is_seed.any():
            seeded = seed_counts(grid.row, group, is_seed, np.arange(len(group)))
            before = before + _along(grid.spread(seeded, 0), order)
        live &= (grp < 0) | (before < cap)
    live &= np.cumsum(live, axis=1) <= need[:, None]
    return live


def _column_ranks_hold(grid: _Grid, base: np.ndarray, is_seed: np.ndarray) -> bool:
    """Whether a cell's place among its row's cells of its category, counted along the
    columns, is also its place in the walk's key order and the cap's count before it, given
    cap groups that are those categories: no seeds and rows in relevance order (``base``)."""
    return not is_seed.any() and _in_order(grid.row, base)


def _normalised(query: np.ndarray, bounds: np.ndarray, relevance: np.ndarray) -> np.ndarray:
    """Min-max per query (rows grouped by query, ``bounds`` its row ranges); non-finite values
    rank last; a constant query becomes all 1."""
    rel = np.asarray(relevance, np.float64)
    finite = np.isfinite(rel)
    if not finite.all():
        rel = np.where(finite, rel, rel[finite].min() - 1.0 if finite.any() else 0.0)
    present = bounds[1:] > bounds[:-1]
    starts = bounds[:-1][present]
    lo, hi = np.zeros(len(present)), np.zeros(len(present))
    lo[present] = np.minimum.reduceat(rel, starts)
    hi[present] = np.maximum.reduceat(rel, starts)
    return _scaled(rel, query, lo, hi)


def _scaled(rel: np.ndarray, query: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``rel`` min-max scaled to [0, 1] by the ``lo`` and ``hi`` of its query (``query``, per
    value; 1 where they are equal): one formula for the whole batch's rows and a window's few,
    so both give the same bits. Spans are taken per query, and divided by without a mask when
    none is 0 (the common batch: numpy's masked division costs several times the plain one)."""
    span = hi - lo
    if (span > 0).all():
        return (rel - lo[query]) / span[query]
    span = span[query]
    return np.divide(rel - lo[query], span, out=np.ones_like(rel), where=span > 0)


def _after_first(
    grid: _Grid, codes: np.ndarray, base: np.ndarray, is_seed: np.ndarray
) -> np.ndarray:
    """float 0/1 per row: 1 where an item of the row's category is picked before it whatever
    happens (a seed of its category, or a more relevant row of it: ties, the earlier row)."""
    has = codes >= 0
    if is_seed.any():
        keys = pair_key(grid.row, codes)
        seeds = keys[is_seed & has]
        has_first = has & ~is_seed & ~np.isin(keys, seeds)
    else:
        has_first = has
    if _in_order(grid.row, base):  # rows in relevance order already, as re-ranking has
        firsts = first_of_each(grid.row, np.where(has_first, codes, -1))
    else:
        cost = grid.spread(-base, np.inf)
        by_relevance = np.argsort(cost, axis=1, kind="stable")
        code = _along(grid.spread(np.where(has_first, codes, -1), -1), by_relevance)
        r, c = np.nonzero((_rank_in_row(code) == 0) & (code >= 0))
        firsts = grid.starts[r] + by_relevance[r, c]
    penalty = np.where(has & ~is_seed, 1.0, 0.0)
    penalty[firsts] = 0.0
    return penalty


def first_of_each(row: np.ndarray, code: np.ndarray, max_cells: int = DENSE_CELLS) -> np.ndarray:
    """The positions of the first element of each (``row``, ``code`` >= 0) pair, in array order
    (-1 codes count for nothing; order of the result unspecified). Where rows × codes fit
    ``max_cells``, the least position of each pair by ``np.minimum.at`` into a dense table
    (155 against 543 µs for a batch of 64's grid of [64, 283] by the grouped count over every
    cell, ``_rank_in_row``, that ``_after_first`` used); else a grouped count over the pairs."""
    ok = np.flatnonzero(code >= 0)
    width = int(code.max(initial=-1)) + 1
    n_rows = int(row.max(initial=-1)) + 1
    if n_rows * width > max_cells:
        return ok[group_rank(pair_key(row[ok], code[ok])) == 0]
    table = np.full(n_rows * width, len(code), np.int64)
    np.minimum.at(table, row[ok].astype(np.int64) * width + code[ok], ok)
    return table[table < len(code)]


def _row_numbers(n: int) -> np.ndarray:
    """[n, 1]: each row's number, to index a grid cell by cell with a column per cell."""
    return np.arange(n)[:, None]


def _along(values: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``np.take_along_axis(values, columns, axis=1)`` for 2-D grids, as one fancy index:
    the same cells without the wrapper's index building (several calls per request)."""
    return values[_row_numbers(len(values)), columns]


def _rank_in_row(codes: np.ndarray) -> np.ndarray:
    """[n, width] ints: each cell's 0-based position among the cells of its row holding the same
    code, in column order (a grouped cumulative count, row by row)."""
    if len(codes) and codes.min() >= -(2**15) and codes.max() < 2**15:
        codes = codes.astype(np.int16)  # numpy's stable sort of 16-bit ints is a radix sort
    order = np.argsort(codes, axis=1, kind="stable")
    ordered = _along(codes, order)
    start = np.ones(codes.shape, bool)
    start[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    col = np.arange(codes.shape[1])  # broadcast along the rows
    ranks = np.empty_like(order)
    ranks[_row_numbers(len(order)), order] = col - np.maximum.accumulate(
        np.where(start, col, 0), axis=1
    )
    return ranks


@dataclass(frozen=True, slots=True, init=False)
class _Grid:
    """Flat rows (grouped by query) <-> padded cells [n_queries, widest query]."""

    row: np.ndarray
    col: np.ndarray
    starts: np.ndarray
    shape: tuple[int, int]

    def __init__(self, row: np.ndarray, bounds: np.ndarray) -> None:
        starts = np.asarray(bounds[:-1], np.int64)
        object.__setattr__(self, "row", row.astype(np.int64))
        object.__setattr__(self, "col", np.arange(len(row)) - starts[row])
        object.__setattr__(self, "starts", starts)
        object.__setattr__(self, "shape", (len(starts), int((bounds[1:] - bounds[:-1]).max())))

    def spread(self, values: np.ndarray, fill: object) -> np.ndarray:
        out = np.full(self.shape, fill, dtype=np.asarray(values).dtype)
        out[self.row, self.col] = values
        return out


def mmr(
    cands: Candidates,
    *,
    k: int,
    lam: float,
    similarity: Similarity,
    relevance: np.ndarray | None = None,
) -> Candidates:
    """MMR on its own: the top ``k`` of every query, diversified (``relevance`` defaults to
    ``cands.score``). Rows keep their scores; the row order is the MMR order."""
    rel = cands.score if relevance is None else relevance
    chosen = MMR(lam, similarity)(
        query=cands.query,
        items=cands.items,
        relevance=rel,
        is_seed=np.zeros(len(cands), bool),
        group=np.full(len(cands), -1, np.int32),
        cap=None,
        k=k,
    )
    return cands.take(place(cands.query, np.zeros(0, np.int64), np.zeros(0), chosen, k))
