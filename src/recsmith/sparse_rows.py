"""Row-wise sparse helpers for the request path: build a CSR matrix in one step, gather rows, ask
which (row, column) pairs it holds.

A single recommendation request touches a dozen small sparse matrices (what the user has, their
recent items, what the request excludes). Each scipy operation costs tens of microseconds of
Python before any work — validation, dtype checks, COO round trips — so a request that chained
them spent milliseconds in overhead. These helpers work on the CSR arrays directly: keys
``row × n_cols + column`` are sorted in a canonical CSR matrix, so membership is one
``searchsorted``; construction sorts the keys once and builds ``indptr`` with a cumulative count.
"""

from __future__ import annotations

import copy
import functools
import threading
import weakref
from typing import NamedTuple

import numpy as np
from scipy import sparse

from recsmith.digit_sort import stable_argsort


def csr_from_pairs(
    n_rows: int, n_cols: int, rows: np.ndarray, cols: np.ndarray
) -> sparse.csr_array:
    """A canonical 0/1 float32 CSR matrix with an entry at every (rows[i], cols[i]); duplicate
    pairs count once."""
    keys = sorted_distinct(np.asarray(rows, np.int64) * n_cols + np.asarray(cols, np.int64))
    indptr = np.zeros(n_rows + 1, np.int64)
    np.bincount(keys // max(n_cols, 1), minlength=n_rows).cumsum(out=indptr[1:])
    # int64 columns, as scipy's constructor made them of these
    return _canonical(n_rows, n_cols, indptr, keys % max(n_cols, 1))


def _canonical(
    n_rows: int, n_cols: int, indptr: np.ndarray, indices: np.ndarray
) -> sparse.csr_array:
    """The 0/1 float32 CSR matrix of canonical rows ``indptr``/``indices`` (each row's columns
    sorted, none twice), a copy of the cached empty one filled (``_empty``)."""
    matrix = copy.copy(_empty(n_rows, n_cols))
    matrix.data = np.ones(len(indices), np.float32)
    matrix.indices = indices
    matrix.indptr = indptr
    matrix.has_canonical_format = True
    return matrix


def newest_first(n_rows: int, n_cols: int, rows: np.ndarray, cols: np.ndarray) -> sparse.csr_array:
    """Lists of items, each row's newest first (``rows`` nondecreasing, ``cols`` in list order),
    as ``Queries.latest``: a canonical float32 CSR matrix storing each item's place in its row's
    list (1 = newest); an item listed twice keeps its newer place. Built as ``csr_from_pairs``
    builds, without scipy's constructor."""
    keys = np.asarray(rows, np.int64) * n_cols + np.asarray(cols, np.int64)
    order = np.argsort(keys, kind="stable")  # an item listed twice: its newer place first
    keys = keys[order]
    first = _run_starts(keys)
    place = np.arange(len(keys)) - np.searchsorted(rows, rows) + 1
    indptr = np.zeros(n_rows + 1, np.int64)
    np.bincount(keys[first] // max(n_cols, 1), minlength=n_rows).cumsum(out=indptr[1:])
    matrix = copy.copy(_empty(n_rows, n_cols))
    matrix.data = place[order][first].astype(np.float32)
    matrix.indices = keys[first] % max(n_cols, 1)
    matrix.indptr = indptr
    matrix.has_canonical_format = True
    return matrix


@functools.lru_cache(maxsize=64)
def _empty(n_rows: int, n_cols: int) -> sparse.csr_array:
    """An empty float32 CSR matrix of this shape, whose shallow copy ``csr_from_pairs`` fills
    with its own arrays: they are valid by construction (sorted unique keys, the index dtype
    scipy would pick), so scipy's constructor (index dtype scans, format checks: ~36 µs, half
    of a lone request's construction) is paid once per shape instead of on every request."""
    return sparse.csr_array((n_rows, n_cols), dtype=np.float32)


def csr_of_rows(
    matrix: sparse.csr_array,
    index: np.ndarray,
    n_cols: int,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
) -> sparse.csr_array:
    """``csr_from_pairs`` (``n_cols`` wide: at least the matrix, wider where items joined the
    catalogue after it was built) of rows ``index[i]`` of ``matrix`` (``gather_rows``) and the
    pairs (``rows``, ``cols``): what a request's recent items and exclusions are built from.
    Where no pair is added and ``matrix`` is canonical (sorted, distinct columns a row: scipy
    keeps the flag once it has checked it), its gathered rows already are the canonical rows, so
    they are copied in as they stand: no keys made, sorted and divided back (35 against 55 µs
    for a batch of 16's recent rows, 42 against 70 for their training items); else the pairs'
    construction. An ``n_cols`` narrower than the matrix is refused: its columns would not fit
    (the rows copied as they stand would be an invalid matrix, the pairs' keys would carry
    columns into the next row)."""
    if n_cols < matrix.shape[1]:
        raise ValueError(f"n_cols {n_cols} < the matrix's {matrix.shape[1]} columns")
    # imported here: the kernel's module imports this one (``DENSE_CELLS``)
    from recsmith.ranking import row_kernel

    index = np.asarray(index)
    if rows is not None and cols is not None:  # lists too, as numpy's path takes them
        rows, cols = np.asarray(rows), np.asarray(cols)
    library = row_kernel.ready()
    built = None
    if library is not None:
        built = row_kernel.rows_with_pairs(library, matrix, index, n_cols, rows, cols)
    if built is not None:
        return _canonical(len(index), n_cols, *built)
    return _numpy_rows(matrix, index, n_cols, rows, cols)


def _numpy_rows(
    matrix: sparse.csr_array,
    index: np.ndarray,
    n_cols: int,
    rows: np.ndarray | None,
    cols: np.ndarray | None,
) -> sparse.csr_array:
    """``csr_of_rows`` by numpy: until the compiled pass (``row_kernel.rows_with_pairs``) is
    loaded, where it does not apply, and as its tests' oracle."""
    n = len(index)
    if (rows is None or len(rows) == 0) and matrix.has_canonical_format:
        known, starts, lengths = _row_spans(matrix, index)
        counts = np.zeros(n, np.int64)
        counts[known] = lengths
        indptr = np.zeros(n + 1, np.int64)
        counts.cumsum(out=indptr[1:])
        # int64 columns and 0/1 float32 data, as ``csr_from_pairs`` builds them
        return _canonical(
            n, n_cols, indptr, matrix.indices[spans(starts, lengths)].astype(np.int64)
        )
    held_rows, held_cols = gather_rows(matrix, index)
    if rows is not None:
        held_rows, held_cols = np.concatenate([held_rows, rows]), np.concatenate([held_cols, cols])
    return csr_from_pairs(n, n_cols, held_rows, held_cols)


def format_checked(matrix: sparse.csr_array) -> sparse.csr_array:
    """``matrix`` with scipy's canonical-format flag computed now, for a release's matrices at
    load. scipy computes it when first read, in one pass over every stored entry (1.6-2.0 ms
    of CPU for the benchmark shop's 1.45 M training items, 0.3-0.4 for its 0.25 M recent ones;
    more where the mapped files are not yet in memory); ``csr_of_rows`` reads it, so unchecked,
    a release's first request would pay that pass instead of its load."""
    matrix.has_canonical_format = matrix.has_canonical_format  # read: computed and kept
    return matrix


def gather_rows(matrix: sparse.csr_array, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The entries of rows ``index[i]`` of ``matrix`` as (i, column) pairs; negative indices
    (unknown users) contribute nothing."""
    known, starts, lengths = _row_spans(matrix, index)
    return known.nonzero()[0].repeat(lengths), matrix.indices[spans(starts, lengths)]


def _row_spans(
    matrix: sparse.csr_array, index: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where rows ``index[i]`` of ``matrix`` lie among its entries: which ``i`` are known rows
    (``index[i]`` ≥ 0: an unknown user's row holds nothing), as a mask (``csr_of_rows`` counts
    a row's entries into it: 0.4-0.7 µs less than by positions), and each known row's first
    entry and entry count (``spans``): the one gather ``csr_of_rows``, ``gather_rows`` and
    ``rows_grid`` share. The counts are int64 whatever the matrix's index dtype: ``spans``' sums
    and ``repeat`` in int32 would be cast on every call (1.3-1.7 µs more a ``csr_of_rows``)."""
    known = index >= 0
    asked = index[known]
    starts = matrix.indptr[asked]
    return known, starts, (matrix.indptr[asked + 1] - starts).astype(np.int64, copy=False)


#: Grid cells (queries × columns) up to which ``row_values`` reads its rows densely; past it
#: (an offline batch of thousands of users) scipy's element access answers, as it did before.
DENSE_CELLS = 1 << 22


def row_values(
    matrix: sparse.csr_array,
    index: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    max_cells: int = DENSE_CELLS,
) -> np.ndarray:
    """``matrix[index[rows[k]], cols[k]]`` for every k (``index[rows]`` ≥ 0), in ``matrix``'s
    dtype: per query (a user's row), how much of each candidate's category it holds.

    The candidates of a query share its row, so the query rows are spread into a dense grid
    once (``rows_grid``) and read by position: scipy's element access costs tens of
    microseconds of checks per call, most of a lone request's feature work. Past ``max_cells``
    grid cells (an offline batch of thousands of users) scipy's element access answers."""
    if len(rows) == 0:
        return np.zeros(0, matrix.dtype)
    grid = rows_grid(matrix, index, max_cells)
    if grid is None:
        picked = index[rows].astype(np.int64)
        return np.asarray(matrix[picked, np.asarray(cols, np.int64)]).ravel()
    return grid_values(grid, matrix, rows, cols)


def rows_grid(
    matrix: sparse.csr_array, index: np.ndarray, max_cells: int = DENSE_CELLS
) -> np.ndarray | None:
    """Rows ``index[i]`` of ``matrix`` (none for a negative index) spread into one flat dense
    grid, query ``i``'s row at ``i × n_cols``, in ``matrix``'s dtype; None past ``max_cells``
    cells. Entries stored twice add up in storage order, as scipy's element access sums them.
    Built once where several columns of the same rows are read (``grid_values``)."""
    width = int(matrix.shape[1])
    if len(index) * width > max_cells:
        return None
    known, starts, lengths = _row_spans(matrix, index)
    positions = spans(starts, lengths)
    # one flat grid: numpy's ``add.at`` has a fast path for a 1-D array and one index array,
    # not for a 2-D one with an index tuple (55 against 99 µs a call for a batch of 64, four
    # calls); the same float additions, in storage order
    grid = np.zeros(len(index) * width, matrix.dtype)
    owner = np.repeat(known.nonzero()[0], lengths).astype(np.int64)
    at_cell = owner * width + matrix.indices[positions]
    np.add.at(grid, at_cell, matrix.data[positions])
    return grid


def grid_values(
    grid: np.ndarray, matrix: sparse.csr_array, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """``matrix[index[rows[k]], cols[k]]`` read from ``rows_grid(matrix, index)``."""
    width = int(matrix.shape[1])
    return grid[np.asarray(rows, np.int64) * width + np.asarray(cols, np.int64)]


def entry_values(matrix: sparse.csr_array, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[k], cols[k]]`` for every k (0 where nothing is stored), in ``matrix``'s
    dtype. For a canonical matrix (sorted, no duplicates) each pair is searched within its own
    row's span, all pairs at once: a binary search by halving steps, ~log2 of the longest row
    asked, instead of scipy's element access and its checks (or a sort of the rows asked and a
    search among their concatenated entries: 1.7 times as long for the 3,100 pairs of a batch
    of 64's anchors); any other matrix is left to scipy (which adds duplicates up).

    A column outside the matrix (negative, or past ``matrix.shape[1]``: an item that joined
    after training) holds nothing: 0, where scipy's access raises or wraps a negative one and
    the search would compare it in the index dtype (int32 wraps columns from 2**31)."""
    if len(rows) == 0:
        return np.zeros(0, matrix.dtype)
    cols = np.asarray(cols)
    # the search finds nothing at a column outside the matrix as long as the index dtype holds
    # it; scipy's access raises instead. Both ends in one reduction (negatives read unsigned)
    searched = matrix.has_canonical_format and np.can_cast(cols.dtype, matrix.indices.dtype)
    if not searched and int(cols.view(f"u{cols.itemsize}").max()) >= matrix.shape[1]:
        inside = (cols >= 0) & (cols < matrix.shape[1])
        out = np.zeros(len(rows), matrix.dtype)
        out[inside] = entry_values(matrix, np.asarray(rows)[inside], cols[inside])
        return out
    if not matrix.has_canonical_format:
        return np.asarray(matrix[rows, cols]).ravel()
    indices = matrix.indices
    if len(indices) == 0:
        return np.zeros(len(rows), matrix.dtype)
    rows = np.asarray(rows, np.int64)
    start = matrix.indptr[rows].astype(np.int64)
    end = matrix.indptr[rows + 1].astype(np.int64)
    cols = np.asarray(cols, indices.dtype)
    # ``below``: the last position of each span known to hold a column < the pair's (start - 1:
    # none yet). Steps of 2^m, ..., 2, 1 reach any position of the widest span; a step past
    # the span looks at its last position instead, which is as good a next ``below`` where it
    # holds a smaller column (the span holds nothing else), and ``below`` itself in an empty
    # span (start - 1 = end - 1).
    below, stop = start - 1, end - 1
    step = 1 << max(int((end - start).max()).bit_length() - 1, 0)
    while step:
        ahead = np.minimum(below + step, stop)
        below = np.where(indices[ahead] < cols, ahead, below)
        step >>= 1
    last = len(indices) - 1
    at = np.minimum(below + 1, last)
    found = (below + 1 < end) & (indices[at] == cols)
    return np.where(found, matrix.data[at], matrix.dtype.type(0))


def spans(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions ``starts[i] .. starts[i] + lengths[i] - 1`` of every span, concatenated."""
    total = int(lengths.sum())
    return (starts - lengths.cumsum() + lengths).repeat(lengths) + np.arange(total)


def sorted_distinct(key: np.ndarray) -> np.ndarray:
    """``np.unique(key)`` for a 1-D integer ``key``: one sort and a neighbour comparison. numpy
    2's ``unique`` takes its hash path for integers and sorts the distinct values afterwards,
    ~4 times the cost at a request's sizes (143 against 37 µs for a batch of 64's 1,752
    exclusion keys, 24 against 6 µs for 320 recent ones: ``csr_from_pairs``, twice a call).
    The stable sort (timsort for integers) finds the sorted runs such keys come in (rows
    gathered in order, then the request's few extra items): 1.9 against 28 µs for those
    1,752, where the default quicksort sorts them all over again."""
    ordered = np.sort(key, kind="stable")
    return ordered[_run_starts(ordered)]


def distinct_keys(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True)`` for a 1-D integer ``key``: the sorted distinct
    keys, and each key's place among them. One stable argsort and a cumulative count: numpy
    2's ``unique`` with an inverse costs ~1.6 times as much (1,009 against 637 µs on the ~20,000
    proposals of a batch of 64 queries: retrieval's ``merge``; an offline batch's cells in
    ``product_top_k``). From a few hundred keys the argsort is one sort of the keys packed above
    their row index (``digit_sort.packed_order``: ~25 against ~150 µs by timsort for a batch of
    16's 4,800 proposals), by 16-bit digits where they do not fit in 64 bits together."""
    order = stable_argsort(key)
    ordered = key[order]
    first = _run_starts(ordered)
    place = np.empty(len(key), np.intp)
    place[order] = first.cumsum() - 1
    return ordered[first], place


def _run_starts(ordered: np.ndarray) -> np.ndarray:
    """bool mask of the first element of each run of equal values in sorted ``ordered``."""
    first = np.empty(len(ordered), bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return first


def contains(matrix: sparse.csr_array, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Whether ``matrix`` stores an entry at each (rows[i], cols[i]) — bool, shaped like rows."""
    if not matrix.has_sorted_indices:
        matrix = matrix.sorted_indices()
    n_cols = max(int(matrix.shape[1]), 1)
    stored = (
        np.arange(matrix.shape[0], dtype=np.int64).repeat(matrix.indptr[1:] - matrix.indptr[:-1])
        * n_cols
        + matrix.indices
    )
    return in_sorted(stored, np.asarray(rows, np.int64) * n_cols + np.asarray(cols, np.int64))


#: Grid cells from which ``stored_in_rows`` sorts the rows; below, ``contains`` searches each
#: cell (17 against 25 µs for one query's 259 cells, 61 against 86 at 16 queries; 531 against
#: 250 at 64).
ROW_SORT_CELLS = 8192
#: Grid cells from which ``stored_in_rows`` reads the rows × distinct columns grid; below (a
#: lone request's one list of ~260 items), ``contains``: coding the matrix costs more there
CODED_CELLS = 1024


def stored_in_rows(
    matrix: sparse.csr_array,
    index: np.ndarray,
    ids: np.ndarray,
    min_cells: int = ROW_SORT_CELLS,
    max_cells: int = DENSE_CELLS,
    coded_cells: int = CODED_CELLS,
) -> np.ndarray:
    """bool [n, width]: whether row ``index[i]`` of ``matrix`` stores ``ids[i, j]`` (``ids``
    non-negative; a negative ``index`` stores nothing). Read from the grid of the matrix's rows ×
    its distinct stored columns (``_column_codes``) where that grid fits ``max_cells``: three
    gathers a cell, where a search among the stored keys costs a binary search a cell (43
    against 128 µs for a batch of 16's [16, 264] stored ANN lists against 466 exclusions).
    Past it (an offline batch of thousands of users), ``contains`` over the grid's cells, or
    looked up the other way round from ``min_cells``: each row of ``ids`` is sorted (its
    column packed into the low bits, so numpy's vectorised sort of plain integers serves
    instead of an argsort), and the rows' stored entries are searched among the sorted cells
    (232 against 427 µs for a batch of 64's [64, 259] grid against 1,752 exclusions)."""
    n, width = ids.shape
    coded = _column_codes(matrix, max_cells) if n * width >= coded_cells else None
    if coded is not None:
        code, valid = _code_of(coded, ids, int(matrix.shape[1]))
        row = np.where(np.asarray(index) >= 0, index, matrix.shape[0])  # past the last: none
        return valid & coded.grid.take(row.astype(np.int64)[:, None] * coded.width + code)
    if n * width < max(min_cells, 1):
        return contains(matrix, np.repeat(index, width), ids.ravel()).reshape(n, width)
    hit = np.zeros(n * width, bool)
    n_cols = max(int(matrix.shape[1]), 1)
    shift = max(int(width - 1).bit_length(), 1)
    packed = np.sort((ids.astype(np.int64) << shift) | np.arange(width), axis=1)
    cells = (np.arange(n, dtype=np.int64)[:, None] * n_cols + (packed >> shift)).ravel()
    rows, cols = gather_rows(matrix, np.asarray(index))
    wanted = rows.astype(np.int64) * n_cols + cols
    low = cells.searchsorted(wanted, "left")
    at = spans(low, cells.searchsorted(wanted, "right") - low)  # every cell holding it
    hit[at - at % width + (packed.ravel()[at] & ((1 << shift) - 1))] = True
    return hit.reshape(n, width)


def stored_in_every_row(
    matrix: sparse.csr_array,
    ids: np.ndarray,
    max_cells: int = DENSE_CELLS,
    coded_cells: int = CODED_CELLS,
) -> np.ndarray | None:
    """bool [rows, width]: whether each row of ``matrix`` stores ``ids[j]`` (one list every row
    asks about: a static ranking's head), from the rows × distinct columns grid
    (``_column_codes``): the ids are coded once, then one gather a cell. None where that grid
    would pass ``max_cells``, or below ``coded_cells`` cells asked (the caller looks its cells
    up another way)."""
    if matrix.shape[0] * len(ids) < coded_cells:
        return None
    coded = _column_codes(matrix, max_cells)
    if coded is None:
        return None
    code, valid = _code_of(coded, ids, int(matrix.shape[1]))
    # ``take`` along the columns: the fancy index ``[:rows, code]`` hands back a grid in column
    # order, which every reader of rows then walks strided or copies (a static source's
    # ``first_k_kept``: 33 against 18 µs on a batch of 16's [16, 89] head)
    return coded.grid.reshape(-1, coded.width)[: matrix.shape[0]].take(code, axis=1) & valid


class _Codes(NamedTuple):
    """A matrix's distinct stored columns and the rows × codes grid of what each row stores (a
    column's code: its place among them; one spare row of False at the end, for rows that store
    nothing)."""

    columns: np.ndarray
    grid: np.ndarray  # [(rows + 1) × width]
    width: int  # codes a row: the distinct columns, at least 1


def _column_codes(matrix: sparse.csr_array, max_cells: int) -> _Codes | None:
    """``_Codes`` of ``matrix`` (a batch's exclusions: a few hundred distinct items), or None
    where its rows × distinct columns pass ``max_cells``. The distinct columns are found
    without a sort, in a per-thread slot table that is never cleared (``kept_zeros``): each
    entry writes its number into its column's slot, the entry whose number stays there stands
    for its column, and the codes are written over their slots.

    The last matrix coded in this thread is remembered, across batches, until this thread codes
    another: a batch's sources look up the same exclusions four times (11 µs a coding at batch
    16). While it is remembered, the slots hold its codes: only coding another matrix writes
    them. A matrix is the one remembered if its ``indptr`` and ``indices`` are the same objects
    (held weakly, the matrix not at all: one the caller drops is freed, an offline batch's too)
    and its shape and ``max_cells`` the same: the codes depend on nothing else, and scipy's
    edits in place tried (``eliminate_zeros``, setting an entry, ``resize``) hand the matrix a
    new array or change its shape (``resize`` to more columns keeps both arrays: its wider slot
    table, fresh zeros, would read every id as code 0). What stays assumed: no caller writes
    into ``indptr`` or ``indices`` in place once the matrix is looked up (no caller in src
    does: each batch builds its exclusions anew; comparing their bytes at each lookup would
    close that too, but cost 1-3 µs a lookup inside a request, a third of what the memo saves),
    and no other thread edits it during a lookup. The memo keeps the last grid (at most
    ``max_cells`` bools) until this thread codes another."""
    memo = _scratch.__dict__.get("codes")
    if (
        memo is not None
        and memo.indptr() is matrix.indptr
        and memo.indices() is matrix.indices
        and memo.key == (matrix.shape, max_cells)
    ):
        return memo.coded
    n_rows, n_cols = matrix.shape
    stored = matrix.indices[matrix.indptr[0] : matrix.indptr[-1]]
    slots = kept_zeros("column_codes", max(int(n_cols), 1), np.dtype(np.int32))
    number = np.arange(len(stored), dtype=np.int32)
    slots[stored] = number
    columns = stored[slots[stored] == number]
    width = max(len(columns), 1)  # no entries: one code, which no row stores
    coded = None
    if (n_rows + 1) * width <= max_cells:
        slots[columns] = np.arange(len(columns), dtype=np.int32)
        grid = np.zeros((n_rows + 1) * width, bool)
        owner = np.arange(n_rows, dtype=np.int64).repeat(matrix.indptr[1:] - matrix.indptr[:-1])
        grid[owner * width + slots.take(stored)] = True
        coded = _Codes(columns, grid, width)
    _scratch.codes = _Memo(
        weakref.ref(matrix.indptr),
        weakref.ref(matrix.indices),
        (matrix.shape, max_cells),
        coded,
    )
    return coded


class _Memo(NamedTuple):
    """The last matrix coded in a thread (``_column_codes``): its index arrays, held weakly,
    its shape and ``max_cells``, and its codes."""

    indptr: weakref.ref
    indices: weakref.ref
    key: tuple[tuple[int, int], int]
    coded: _Codes | None


def _code_of(coded: _Codes, ids: np.ndarray, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Each id's code, read from this thread's slots (``coded`` is the matrix last coded in
    this thread: its codes are there), and whether it is one of the stored columns at all: a
    slot no stored column owns holds a stale code, which the check reads as another column."""
    if len(coded.columns) == 0:
        return np.zeros(np.shape(ids), np.intp), np.zeros(np.shape(ids), bool)
    slots = kept_zeros("column_codes", max(n_cols, 1), np.dtype(np.int32))
    code = slots.take(ids)
    np.minimum(code, len(coded.columns) - 1, out=code)
    return code, coded.columns.take(code) == ids


_scratch = threading.local()


def kept_zeros(name: str, size: int, dtype: np.dtype) -> np.ndarray:
    """``size`` elements of a zero-initialised array of ``dtype`` kept per thread between calls
    under ``name`` (an accumulator the caller zeroes again where it wrote; slot tables that
    are only read where written): allocating and zeroing a catalogue-wide array a call would
    cost more than the work. It grows to the largest call's size and stays."""
    kept: dict[tuple[str, np.dtype], np.ndarray] = _scratch.__dict__.setdefault("kept", {})
    array = kept.get((name, dtype))
    if array is None or len(array) < size:
        array = kept[name, dtype] = np.zeros(size, dtype)
    return array[:size]


#: Held pairs below which ``pairs_held`` sorts them and searches rather than build its grid, whose
#: table and grid cost ~5 µs whatever the rows (thread CPU a call, 40 filler items): a lone
#: request's 257 candidates take 11.8 against 16.3 µs, 771 take 16.7 against 18.0, 1,028 take
#: 20.0 by the sort against 18.4, a batch of 64's 16,448 take 375 against 58.
SORTED_PAIRS = 1024


def pairs_held(
    query: np.ndarray,
    items: np.ndarray,
    ask_query: np.ndarray,
    ask_items: np.ndarray,
    n_queries: int,
    max_cells: int = DENSE_CELLS,
    min_pairs: int = SORTED_PAIRS,
) -> np.ndarray:
    """bool per asked pair: whether (``ask_query[i]``, ``ask_items[i]``) is among the held pairs
    (``query[j]``, ``items[j]``); queries below ``n_queries``, items non-negative.

    The asked items are few (a batch's popularity filler: a few dozen distinct items under
    thousands of candidates), so each gets a code 1, 2, ... in a table up to the largest of them
    (one byte a cell up to 255 codes: at most 100 kB for a catalogue of 100,000),
    and a grid of queries × codes marks which of them each query holds: two gathers and a
    scatter, where sorting the held pairs to search them (``in_sorted``) costs a sort of every
    candidate (58 against 375 µs for a batch of 64's 16,448). Below ``min_pairs`` held pairs
    (a lone request) the sort is the cheaper, and past ``max_cells`` grid cells (an offline
    batch) the grid too big: there, that sorted search."""
    if len(ask_items) == 0:
        return np.zeros(0, bool)
    items, ask_items = np.asarray(items), np.asarray(ask_items)
    if len(items) >= min_pairs:
        distinct = sorted_distinct(ask_items)
        if n_queries * len(distinct) <= max_cells:
            return _held_by_grid(query, items, ask_query, ask_items, n_queries, distinct)
    n_items = int(max(items.max(initial=0), ask_items.max())) + 1
    held = np.asarray(query).astype(np.int64) * n_items + items
    wanted = np.asarray(ask_query).astype(np.int64) * n_items + ask_items
    # stable: timsort merges the runs of each query's rows, the same sorted keys either way
    return in_sorted(np.sort(held, kind="stable"), wanted)


def _held_by_grid(
    query: np.ndarray,
    items: np.ndarray,
    ask_query: np.ndarray,
    ask_items: np.ndarray,
    n_queries: int,
    distinct: np.ndarray,
) -> np.ndarray:
    """``pairs_held`` through a grid of queries × the asked items' codes (``distinct``: the asked
    items, sorted, each once)."""
    width = len(distinct)
    # 0: not asked, else 1 + its column; one cell past the largest asked item, where every
    # larger item reads (``clip``: no pass to find them)
    code = np.zeros(int(distinct[-1]) + 2, np.min_scalar_type(width))
    code[distinct] = np.arange(1, width + 1)
    held = code.take(items, mode="clip")
    at = np.flatnonzero(held != 0)  # a bool mask: numpy's nonzero of bytes is ~5 times slower
    grid = np.zeros(n_queries * width, bool)
    grid[np.asarray(query).take(at).astype(np.int64) * width + held.take(at) - 1] = True
    return grid[np.asarray(ask_query, np.int64) * width + code.take(ask_items) - 1]


def in_sorted(stored: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Whether each of ``wanted`` is among ``stored`` (sorted ascending): one ``searchsorted``.
    ``np.isin`` over a batch's (query, item) keys takes its sort path — 390 µs for 360 keys among
    3,115, against 80 µs here with the sort — or, forced to its table, allocates one flag per
    possible key (queries × catalogue)."""
    if len(stored) == 0:
        return np.zeros(np.shape(wanted), dtype=bool)
    at = np.minimum(stored.searchsorted(wanted), len(stored) - 1)
    return stored[at] == wanted
