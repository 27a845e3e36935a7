"""TopK, the hot-path currency between models and everything after them, and the top-k kernels
(dense score rows, and sparse rows where only stored entries are candidates)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from recsmith.digit_sort import PACKED_ROWS, by_digits, packed_order, packs, stable_order


@dataclass(frozen=True, slots=True)
class TopK:
    """Best items per query: internal item indices (-1 padded) and their scores (-inf padded)."""

    ids: np.ndarray  # int32 [n_queries, k]
    scores: np.ndarray  # float32 [n_queries, k]

    def __post_init__(self) -> None:
        if self.ids.shape != self.scores.shape or self.ids.ndim != 2:
            raise ValueError(
                f"TopK ids {self.ids.shape} and scores {self.scores.shape} must be equal 2-D"
            )


@dataclass(frozen=True, slots=True)
class FlatTop:
    """A ``TopK``'s listed slots as flat rows, best first within each query, queries ascending:
    what a retrieval source hands on (``sources.Proposals`` numbers the queries in its batch).
    A source built straight from entries makes these without the padded ``TopK`` in between."""

    query: np.ndarray  # intp: the row of the TopK
    items: np.ndarray  # int32
    scores: np.ndarray  # float32
    ranks: np.ndarray  # int16, 1 = best


def flat(top: TopK) -> FlatTop:
    """``top``'s slots that list an item (ids ≥ 0), read by flat position."""
    width = top.ids.shape[1]
    at = np.flatnonzero(top.ids >= 0)
    rows = at // max(width, 1)
    return FlatTop(
        rows,
        top.ids.reshape(-1).take(at).astype(np.int32, copy=False),
        top.scores.reshape(-1).take(at).astype(np.float32, copy=False),
        (at - rows * width + 1).astype(np.int16),
    )


#: A dense top-k: (scores [rows, columns], k) to each row's best ``k``.
Kernel = Callable[[np.ndarray, int], TopK]


def top_k(scores: np.ndarray, k: int) -> TopK:
    """Top ``k`` columns of each row, best first; entries at -inf are padding (-1), never returned.
    Ties come lower index first when k covers the row; otherwise their order (and which of several
    columns tied at the k-th score make the cut) is argpartition's, unspecified.

    ``argpartition`` then a sort of only ``k`` columns: O(n_items + k log k) per row, vectorised.
    """
    n_rows, n_cols = scores.shape
    k = max(k, 0)
    k_eff = min(k, n_cols)  # 0 (nothing to rank, or k = 0) takes the general path: no columns
    # every operation below works along the last axis: within each row
    part = (  # all columns when k covers them (partitioning would only cost time)
        np.argpartition(-scores, k_eff - 1)[:, :k_eff]
        if k_eff < n_cols
        else np.tile(np.arange(n_cols), (n_rows, 1))
    )
    part_scores = np.take_along_axis(scores, part, -1)
    order = np.argsort(-part_scores, kind="stable")  # ties keep their order in part
    ids = np.take_along_axis(part, order, -1).astype(np.int32)
    best = np.take_along_axis(part_scores, order, -1).astype(np.float32)
    ids[np.isneginf(best)] = -1
    if k_eff < k:
        ids = np.pad(ids, ((0, 0), (0, k - k_eff)), constant_values=-1)
        best = np.pad(best, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return TopK(ids, best)


#: Column groups of ``bounded_top_k`` (at least; ``4 k`` for a larger ``k``): the maxima of
#: 1,024 groups cost one pass over a row in contiguous ``np.maximum`` steps, their partition
#: next to nothing.
BOUND_GROUPS = 1024


def bounded_top_k(scores: np.ndarray, k: int) -> TopK:
    """Top ``k`` columns of each row of float32 ``scores``, best first, ties lower index first,
    NaN and -inf never listed (-1 padded): ``top_k``'s lists with a tie rule, found without
    ``argpartition`` over every column — 0.14 against 0.42 ms for one row of 100,000 (an
    ``/similar`` request's cosines, issue #19).

    The columns fall into groups (column mod the group count); the ``k``-th largest group
    maximum of a row is a bound that at least ``k`` of its entries reach (one in each of those
    groups), so every entry of the row's top ``k`` does. Only the entries at or above it (about
    ``k`` of them) are sorted, by score, then column; a row whose listable entries lie in fewer
    than ``k`` groups (a sparse model's few neighbours) sorts all of them. Rows shorter than
    two entries per group, scores holding +inf, or a row whose bound is NaN (NaN in all but
    fewer than ``k`` groups: no entry compares at or above it, so the bound would list none of
    its numbers) get a stable sort of every row (``_sorted_top_k``); scores of another dtype,
    ``top_k`` (ordered in their own precision, as before, ties as argpartition leaves them)."""
    if scores.dtype != np.float32:
        return top_k(scores, k)
    n_rows, n_cols = scores.shape
    groups = max(BOUND_GROUPS, 4 * k)
    depth = n_cols // groups
    if k <= 0 or depth < 2:
        return _sorted_top_k(scores, k)
    scores = np.ascontiguousarray(scores)
    group_max = scores[:, : depth * groups].reshape(n_rows, depth, groups).max(axis=1)
    bound = -np.partition(-group_max, k - 1, axis=1)[:, k - 1]
    # -inf: fewer than k groups hold a listable entry, so all of them (the least float on)
    # are candidates; NaN (most groups hold a NaN) stays NaN
    bound = np.maximum(bound, np.finfo(np.float32).min)
    if np.isnan(bound).any():
        return _sorted_top_k(scores, k)
    at = np.flatnonzero(scores >= bound[:, None])  # np.nonzero of the 2-D mask costs 8× more
    values = scores.reshape(-1)[at]
    if np.isposinf(values).any():  # ``entries_top_k`` lists finite entries only
        return _sorted_top_k(scores, k)
    rows, cols = np.divmod(at, n_cols)
    return entries_top_k(n_rows, rows, cols, values, k)


def _sorted_top_k(scores: np.ndarray, k: int) -> TopK:
    """``bounded_top_k``'s lists by a stable sort of every row (NaN sorts last)."""
    n_cols = scores.shape[1]
    k = max(k, 0)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(scores, order, 1).astype(np.float32)
    empty = np.isneginf(best) | np.isnan(best)
    ids = np.where(empty, -1, order).astype(np.int32)
    best[empty] = -np.inf
    if n_cols < k:
        ids = np.pad(ids, ((0, 0), (0, k - n_cols)), constant_values=-1)
        best = np.pad(best, ((0, 0), (0, k - n_cols)), constant_values=-np.inf)
    return TopK(ids, best)


def sparse_top_k(scores: sparse.csr_array, k: int) -> TopK:
    """Top ``k`` stored entries of each CSR row, best first (ties: lower item index first).

    For scorers whose scores are sparse (item-kNN, co-occurrence: only items with evidence have
    one), this costs O(nnz log nnz) instead of a pass over every item of a 100k catalogue per row;
    an item without a stored score is never proposed, and −inf entries count as absent.
    """
    n_rows = scores.shape[0]
    rows = np.repeat(np.arange(n_rows), scores.indptr[1:] - scores.indptr[:-1])
    return entries_top_k(n_rows, rows, scores.indices, scores.data, k)


def entries_top_k(
    n_rows: int, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, k: int
) -> TopK:
    """``sparse_top_k`` of the entries (``rows[i]``, ``cols[i]``) = ``values[i]``, given in any
    order with at most one entry per (row, column): the order below depends on the entries
    alone (row, score from high to low, column)."""
    ids = np.full((n_rows, k), -1, np.int32)
    best = np.full((n_rows, k), -np.inf, np.float32)
    data = np.asarray(values, dtype=np.float32)
    # rows grouped in ascending order; entries in (row, column) order have their column ties
    # in order already, so one sort by (row, score) does
    order = best_first(rows, data) if _row_major(rows, cols) else np.lexsort((cols, -data, rows))
    rows = rows[order]
    rank = np.arange(len(order)) - np.searchsorted(rows, rows)
    ok = (rank < k) & np.isfinite(data[order])  # −inf (and NaN) sort last: ranks stay 0, 1, …
    ids[rows[ok], rank[ok]] = cols[order[ok]]
    best[rows[ok], rank[ok]] = data[order[ok]]
    return TopK(ids, best)


def _row_major(rows: np.ndarray, cols: np.ndarray) -> bool:
    """Whether the entries come ordered by row, then column, each (row, column) once: as the
    stored entries of a canonical CSR matrix (``sparse_top_k``, ``bounded_top_k``'s candidates).
    Then ``best_first`` (a stable sort by row and score) leaves ties in column order, the
    order ``np.lexsort((cols, -data, rows))`` gives them, at a fifth of the three-key lexsort's
    cost (220 against 1,300 µs for the 10,700 co-occurrence entries of a batch of 64)."""
    if len(rows) < 2:
        return True
    same = rows[1:] == rows[:-1]
    return bool(((rows[1:] > rows[:-1]) | (same & (cols[1:] > cols[:-1]))).all())


#: Rows from which ``best_first`` sorts one 64-bit key rather than calling ``np.lexsort``: lexsort
#: is as quick on a lone request's few hundred rows (2.7 against 3.5 µs at 260), the packed key
#: far quicker from there (7.8 against 79 µs at 1,200 rows, 25 against 817 at a batch of 16's
#: 4,800): ``digit_sort.PACKED_ROWS``.
KEY_SORT_ROWS = PACKED_ROWS


def best_first(query: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The row order by query, then score from high to low, ties (and NaN scores, last) in row
    order: ``np.lexsort((-score, query))`` for float32 scores and non-negative queries (rows and
    users are indices, and no caller passes a negative one: from ``KEY_SORT_ROWS`` rows such a
    query does not fit the key below, which misplaces its rows (lexsort puts them first)).
    From ``KEY_SORT_ROWS`` rows it is one stable sort of a 64-bit key (the query above the
    score's bits, flipped so that integer order is float order), which grows far slower than
    lexsort's; it runs three times per request batch, and in ``entries_top_k`` on every sparse
    model top-k. That sort packs the row index under the key (``digit_sort.packed_order``)
    where the three fit in 64 bits, else goes by 16-bit digits from a few thousand rows
    (``digit_sort.stable_order``), else is numpy's stable argsort."""
    if len(query) < KEY_SORT_ROWS:
        return np.lexsort((-np.asarray(score, np.float32), query))
    down = -np.asarray(score, np.float32) + np.float32(0)  # -0.0 becomes 0.0: equal, as in lexsort
    bits = down.view(np.uint32)
    # a negative float's bits all flipped, a positive one's sign bit set: the arithmetic shift
    # of the sign spreads it into the mask that does both in one exclusive or
    flip = (down.view(np.int32) >> 31).view(np.uint32) | np.uint32(0x80000000)
    key = (bits ^ flip).astype(np.uint64)
    key[np.isnan(down)] = 0xFFFFFFFF  # NaN after every number, as sorting puts it
    query = np.asarray(query)
    key |= query.astype(np.uint64) << np.uint64(32)
    width = 32 + int(query.max()).bit_length()
    if packs(len(key), width):
        return packed_order(key, width)
    if by_digits(len(key), width):
        return stable_order(key, width)
    return np.argsort(key, kind="stable")
