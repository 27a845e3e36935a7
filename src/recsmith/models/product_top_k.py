"""The best ``k`` entries of each row of ``history @ M`` for a sparse item × item matrix ``M``
(item-kNN, co-occurrence, sequential rules): what an item-to-item source proposes for a batch of
item histories (each visitor's or user's recent items), and an item's similar items.

Only the entries the product stores are candidates: for each history entry, ``M``'s row of that
item (a model keeps up to ``neighbors`` per item) scaled by its weight, the rows of one query added
up. Scipy's product zeroes accumulators as wide as the catalogue on every call; finding the
distinct (query, item) sums by sorting every gathered entry, looking each up among the query's
exclusions, then sorting the sums again for the top ``k`` cost two sorts of the whole batch
(~20,000 entries for 64 users of 5 recent items on the 100,000-item shop: BENCHMARKS §79). Here
the gathered entries are added straight into a dense accumulator of ``queries × items`` cells kept
between calls (only the touched cells are written, then zeroed again), the excluded cells are
overwritten there, one representative per cell is found by the last write of its entry number
into the same cells, and the survivors are ranked by sorts of short rows of one 64-bit key
(score, item) per entry, one row per query (``_ranked``). Where ``queries × items`` would pass
``GRID_CELLS`` (a catalogue above ~131,000 items at 64 queries), the accumulator's columns are
the ones the batch touches, renumbered densely (``_touched_columns``: 64 queries of 25
neighbours touch ~1,600 of a million items); where even those pass it (an offline batch of
thousands of users), the distinct cells are found by a sort instead (``_summed_by_sort``). The
keys keep the real item, so the order is the same whichever way the sums were made.

The sums are scipy's: each cell adds its entries in the history's stored order, in the product's
dtype, from 0 (``np.add.at`` is unbuffered and ordered), and a sum of 0 is no entry. The order is
``entries_top_k``'s: by score from high to low, ties by item index.

A retrieval source, which hands its lists on as flat rows, takes ``product_flat_top``: the same
rows, ranked for a request's batch by one flat sort of keys that carry the query, without the
padded ``TopK`` (its cost is numpy's fixed cost a call, not the accumulator: BENCHMARKS §133).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from recsmith.models.topk import FlatTop, TopK, flat
from recsmith.sparse_rows import distinct_keys, in_sorted, kept_zeros, spans

#: The most accumulator cells (queries × items, or queries × touched items) a batch is summed in:
#: 32 MiB of float32 (64 MiB of float64) per thread at most, kept for the thread's life. Past it
#: the batch's cells are sorted (BENCHMARKS §79).
GRID_CELLS = 1 << 23

#: Queries up to which ``product_flat_top`` ranks by one flat sort (``_flat_ranked``), measured
#: ahead at batches of 1, 16 and 64 (BENCHMARKS §133). An offline batch keeps ``_ranked``'s rows
#: of at most ``SORT_WIDTH`` keys, and so does a catalogue whose columns leave no room for the
#: query's bits above 32 score bits in 64 (2 ** 26 items at 64 queries).
FLAT_QUERIES = 64

#: The column slots' dtype (4 bytes per catalogue item a thread): entry numbers, and a batch
#: never gathers 2**31 entries (that would be 16 GiB of sums).
_SLOT = np.dtype(np.int32)


def product_top_k(
    history: sparse.csr_array,
    matrix: sparse.csr_array,
    k: int,
    drop: Sequence[sparse.csr_array] = (),
) -> TopK:
    """Top ``k`` stored entries of each row of ``history @ matrix`` (``-1`` / ``-inf`` padded),
    never an item that row ``i`` of any of ``drop`` stores (its own items, its exclusions; each
    shaped like the product), nor a sum of 0. Summed in the accumulator where the batch's
    queries × touched columns fit ``GRID_CELLS``, else by a sort of the entries' cells.
    ``k`` ≥ 0 (a source's quota is ≥ 1)."""
    n, n_cols = history.shape[0], int(matrix.shape[1])
    entries = _entries(history, matrix, drop)
    if entries is None:  # no neighbours at all (most items of a sparse association have few)
        return TopK(np.full((n, k), -1, np.int32), np.full((n, k), -np.inf, np.float32))
    query, cols, scores, signed = entries
    top = _ranked(n, query, cols, scores, k, n_cols)
    if len(signed):
        _sign_back(top.scores, signed, np.arange(n)[:, None], top.ids, n_cols)
    return top


def product_flat_top(
    history: sparse.csr_array,
    matrix: sparse.csr_array,
    k: int,
    drop: Sequence[sparse.csr_array] = (),
) -> FlatTop:
    """``flat(product_top_k(history, matrix, k, drop))`` for ``k`` ≥ 0: the same rows, in the
    same order, with the same bits (``k`` < 0, which no source passes, is not that: the padded
    rows list nearly every entry, the flat ones none). Up to ``FLAT_QUERIES`` queries they are
    ranked by one sort of keys that carry the query (``_flat_ranked``) and cut straight to flat
    rows, without the padded rows of keys, their decoding into a ``TopK`` and its flattening in
    between: ~25 numpy calls fewer, each paying its fixed cost in a request (the shop's
    co-occurrence source: 0.86× at 16 queries, 0.97× at 1; the whole ``answer`` ~1-1.5 %
    faster once the harness's A/A of ~0.99 is allowed for; BENCHMARKS §133)."""
    n, n_cols = history.shape[0], int(matrix.shape[1])
    fits = (n - 1).bit_length() + 32 + _col_bits(n_cols) <= 64  # the flat sort's key
    if n > FLAT_QUERIES or not fits:  # a large batch, or a vast catalogue
        return flat(product_top_k(history, matrix, k, drop))
    entries = _entries(history, matrix, drop)
    if entries is None:  # no entry at all: ``flat`` of the all-padding TopK, without building it
        return FlatTop(
            np.zeros(0, np.intp),
            np.zeros(0, np.int32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int16),
        )
    query, cols, scores, signed = entries
    top = _flat_ranked(n, query, cols, scores, k, n_cols)
    if len(signed):
        _sign_back(top.scores, signed, top.query, top.items, n_cols)
    return top


def _entries(
    history: sparse.csr_array, matrix: sparse.csr_array, drop: Sequence[sparse.csr_array]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The product's listed cells, one entry each, queries ascending: (query, column, float32
    score, the sorted ``_cell``s of those whose float32 score is -0.0), or None where the
    history reaches no neighbour. -0.0 arises only from a float64 sum below float32's range (a
    float32 sum of -0.0 is 0, not listed); the ranking keys read it as 0.0, so the callers put
    the sign back where those cells are listed (``_sign_back``)."""
    n, n_cols = history.shape[0], int(matrix.shape[1])
    for d in drop:
        if d.shape != (n, n_cols):
            raise ValueError(f"drop: a matrix of shape {d.shape}, not the product's {(n, n_cols)}")
    stored = slice(history.indptr[0], history.indptr[-1])
    items, weights = history.indices[stored], history.data[stored]
    starts = matrix.indptr[items]
    lengths = matrix.indptr[items + 1] - starts
    at = spans(starts, lengths)
    if len(at) == 0:
        return None
    values = np.repeat(weights, lengths) * matrix.data[at]
    if values.dtype not in (np.float32, np.float64):  # integer weights: as scipy's float product
        values = values.astype(np.float64)
    query = np.arange(n).repeat(history.indptr[1:] - history.indptr[:-1]).repeat(lengths)
    cols = matrix.indices[at]
    rows, dropped = _stored(drop, n)
    if n * n_cols <= GRID_CELLS:  # the catalogue's own columns
        width, column = n_cols, cols
    else:  # a wide catalogue: the columns this batch touches, numbered densely
        touched, column = _touched_columns(cols, n_cols)
        width = len(touched)
        rows, dropped = _touched_only(rows, dropped, touched, n_cols)
    cells = query * width + column
    dropped = rows * width + dropped
    if n * width <= GRID_CELLS:
        listed, sums = _summed_in_grid(cells, values, dropped, n * width)
    else:  # an offline batch of thousands of queries: too many cells to hold
        listed, sums = _summed_by_sort(cells, values, dropped)
    scores = sums.astype(np.float32, copy=False)  # a float64 product's sums: scipy's, cast
    keep = (sums != 0) & np.isfinite(scores)  # a sum of 0 is no entry; −inf (dropped), overflow
    listed, scores = listed[keep], scores[keep]
    query, cols = query[listed], cols[listed]
    signed = np.zeros(0, np.int64)
    if sums.dtype != np.float32:  # a float64 sum below float32's range: -0.0
        negative = np.flatnonzero(np.signbit(scores) & (scores == 0))
        signed = np.sort(_cell(query[negative], cols[negative], n_cols))
    return query, cols, scores, signed


def _cell(query: np.ndarray, cols: np.ndarray, n_cols: int) -> np.ndarray:
    """One number per (query, column): a stride of ``n_cols + 1``, so that a padding id of -1
    lands on the previous query's column ``n_cols`` (no item's), never on a listed cell."""
    return query * (n_cols + 1) + cols


def _sign_back(
    scores: np.ndarray, signed: np.ndarray, query: np.ndarray, ids: np.ndarray, n_cols: int
) -> None:
    """Writes -0.0 into ``scores`` (in place) where (``query``, ``ids``) is one of ``signed``'s
    cells: the ranking keys read -0.0 as 0.0, and ``signed`` are listed cells whose score is
    -0.0, so a row found there is that cell, ranked with its score 0.0. A padding slot (id -1)
    is no cell of ``signed`` (``_cell``). Called only where ``signed`` lists some cell (rare:
    a float64 sum below float32's range), so a request pays nothing for it."""
    scores[in_sorted(signed, _cell(query, ids, n_cols))] = np.float32(-0.0)


def _touched_columns(cols: np.ndarray, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct columns among ``cols`` (in no particular order) and each entry's place
    among them: the accumulator is one row of these per query, not of the whole catalogue
    (64 queries of 5 items of 5 neighbours touch ~1,600 of a million items). Found without a
    sort, in a per-thread array of one slot per column that is never cleared: each entry
    writes its number into its column's slot, the entry whose number stays there stands for
    its column, and the columns' places are written over their slots."""
    slot = kept_zeros("columns", n_cols, _SLOT)
    number = np.arange(len(cols), dtype=_SLOT)
    slot[cols] = number
    touched = cols[slot[cols] == number]
    slot[touched] = np.arange(len(touched), dtype=_SLOT)
    return touched, slot[cols]


def _stored(matrices: Sequence[sparse.csr_array], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every stored (row, column) of each of ``matrices`` (n rows each)."""
    if not matrices:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    counts = np.concatenate([m.indptr[1:] - m.indptr[:-1] for m in matrices])
    cols = np.concatenate([m.indices[m.indptr[0] : m.indptr[-1]] for m in matrices])
    return (np.arange(len(counts)) % max(n, 1)).repeat(counts), cols


def _touched_only(
    rows: np.ndarray, cols: np.ndarray, touched: np.ndarray, n_cols: int
) -> tuple[np.ndarray, np.ndarray]:
    """The (row, place) of the (row, column) pairs whose column is one of ``touched``, its
    place read from the slots ``_touched_columns`` wrote (any other column's slot holds a stale
    number)."""
    place = np.minimum(kept_zeros("columns", n_cols, _SLOT)[cols], len(touched) - 1)
    mine = touched[place] == cols
    return rows[mine], place[mine]


def _summed_in_grid(
    cells: np.ndarray, values: np.ndarray, dropped: np.ndarray, n_cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """One entry per distinct cell (its position in ``cells``) and the cell's sum (−inf where
    dropped), added in the kept accumulator (``n_cells`` ≤ ``GRID_CELLS``)."""
    grid = kept_zeros("grid", n_cells, values.dtype)
    try:  # the accumulator goes back zeroed whatever happens: the next call adds into it
        np.add.at(grid, cells, values)  # unbuffered, in entry order: scipy's additions
        grid[dropped] = -np.inf
        sums = grid[cells]
        # one entry per cell: whichever entry number lands last in it (a view of the same cells)
        number = np.arange(len(cells), dtype=np.int32 if grid.itemsize == 4 else np.int64)
        claimed = grid.view(number.dtype)
        claimed[cells] = number
        listed = np.flatnonzero(claimed[cells] == number)
    finally:
        grid[cells] = 0
        grid[dropped] = 0
    return listed, sums[listed]


def _summed_by_sort(
    cells: np.ndarray, values: np.ndarray, dropped: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``_summed_in_grid`` by a stable sort of the cells: each distinct cell's first entry,
    its terms added in entry order."""
    distinct, place = distinct_keys(cells)
    sums = np.zeros(len(distinct), values.dtype)
    np.add.at(sums, place, values)
    sums[in_sorted(np.sort(dropped), distinct)] = -np.inf
    first = np.empty(len(distinct), np.intp)
    first[place[::-1]] = np.arange(len(place) - 1, -1, -1)
    return first, sums


#: Keys sorted per row at once: x86-simd-sort's in-register networks sort rows of up to 256
#: 64-bit keys ~6 times faster per key than longer ones (28 against 169 µs for 64 rows of 256
#: against 400), and a flat sort of a batch's keys costs ~16 times as much as its rows of 256.
SORT_WIDTH = 256

#: ``_descending`` of −inf: its bits (a negative score's are kept), above every finite score's.
_MINUS_INF = 0xFF800000


def _ranked(
    n: int, query: np.ndarray, cols: np.ndarray, scores: np.ndarray, k: int, n_cols: int
) -> TopK:
    """``entries_top_k`` of distinct (query, column) entries with finite float32 scores,
    the entries of each query together, queries ascending.

    Each entry becomes one 64-bit key: its score's bits mapped so that integer order is
    descending score order (``_descending``), above its column. Keys are unique within a query,
    so any sort gives the order, and the key alone gives back both. They are laid out one row
    per query, padded with the key of a −inf score, and each row's ``k`` smallest are found by
    sorts of rows of at most ``SORT_WIDTH`` keys (``_smallest``)."""
    col_bits = _col_bits(n_cols)
    low = np.uint64(col_bits)
    key = _score_col_key(scores, cols, low)
    pad = _padding(col_bits)
    if n == 1:  # a lone request: its keys are its row
        rows = key[None, :]
    else:
        counts = np.bincount(query, minlength=n)
        width = int(counts.max(initial=0))
        flat = np.full(n * width, pad)
        flat[query * width + np.arange(len(key)) - (counts.cumsum() - counts)[query]] = key
        rows = flat.reshape(n, width)
    top = _smallest(rows, k, max(SORT_WIDTH, 2 * k), pad)
    if top.shape[1] < k:  # no row holds k
        top = np.hstack([top, np.full((n, k - top.shape[1]), pad)])
    best = _descending((top >> low).astype(np.uint32).view(np.float32))  # padding: −inf
    ids = np.where(top == pad, -1, (top & np.uint64((1 << col_bits) - 1)).astype(np.int32))
    return TopK(ids, best)


def _flat_ranked(
    n: int, query: np.ndarray, cols: np.ndarray, scores: np.ndarray, k: int, n_cols: int
) -> FlatTop:
    """``flat(_ranked(...))`` for ``n`` ≤ ``FLAT_QUERIES``: the query's bits above ``_ranked``'s
    key (score, column) make one flat sort order every query's entries in place (the entries
    come grouped by query, ascending, so each query's run keeps its positions); an entry's rank
    is its place in its run, and those ranked within ``k`` are the rows."""
    col_bits = _col_bits(n_cols)
    low = np.uint64(col_bits)
    key = _score_col_key(scores, cols, low)
    key |= query.astype(np.uint64) << np.uint64(col_bits + 32)
    key.sort()
    counts = np.bincount(query, minlength=n)
    rank = np.arange(len(key)) - (counts.cumsum() - counts)[query]
    at = np.flatnonzero(rank < k)
    key = key[at]
    return FlatTop(
        query[at],
        (key & np.uint64((1 << col_bits) - 1)).astype(np.int32),
        _descending((key >> low).astype(np.uint32).view(np.float32)),  # the low 32 bits: score
        (rank[at] + 1).astype(np.int16),
    )


def _col_bits(n_cols: int) -> int:
    """The column's bits in a key: for ``n_cols`` itself, not ``n_cols - 1``, so the all-ones
    column is >= ``n_cols``, no item's, and the padding key's (a real key never equals it: no
    listed score is -inf)."""
    return max(int(n_cols).bit_length(), 1)


def _score_col_key(scores: np.ndarray, cols: np.ndarray, low: np.uint64) -> np.ndarray:
    """The uint64 key of each (score, column): the score's ``_descending`` bits above the
    column's ``low`` bits (``_col_bits``), so integer order is score from high to low, ties by
    column. -0.0 is read as 0.0 (one key, as ties; ``_sign_back`` restores the sign)."""
    bits = _descending(scores + np.float32(0)).view(np.uint32)
    return (bits.astype(np.uint64) << low) | cols.astype(np.uint64)


def _descending(scores: np.ndarray) -> np.ndarray:
    """float32 bits whose unsigned integer order is the scores' descending order (NaN aside):
    a positive score's bits below the sign flipped, a negative score's kept. Its own inverse."""
    bits = scores.view(np.int32)
    return (bits ^ (~(bits >> 31) & np.int32(0x7FFFFFFF))).view(np.float32)


def _padding(col_bits: int) -> np.uint64:
    """The key after every real one: a −inf score (above any finite one's), the column
    ``2**col_bits - 1`` (no item's)."""
    return np.uint64((_MINUS_INF << col_bits) | ((1 << col_bits) - 1))


def _smallest(keys: np.ndarray, k: int, piece: int, pad: np.uint64) -> np.ndarray:
    """Each row's ``k`` smallest keys (fewer where the rows are shorter), ascending. Rows wider
    than ``piece`` (> ``2 k``) are cut into pieces of that width (the last filled with ``pad``),
    each sorted and cut to its ``k`` smallest, until a row fits one piece: a row's smallest
    ``k`` are among its pieces'."""
    n, width = keys.shape
    while width > piece:
        parts = -(-width // piece)
        if parts * piece > width:
            whole = np.full((n, parts * piece), pad)
            whole[:, :width] = keys
            keys = whole
        keys = np.sort(keys.reshape(n * parts, piece), axis=1)[:, :k].reshape(n, parts * k)
        width = parts * k
    return np.sort(keys, axis=1)[:, :k]
