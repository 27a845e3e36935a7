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

import numpy as np
from scipy import sparse


def csr_from_pairs(
    n_rows: int, n_cols: int, rows: np.ndarray, cols: np.ndarray
) -> sparse.csr_array:
    """A canonical 0/1 float32 CSR matrix with an entry at every (rows[i], cols[i]); duplicate
    pairs count once."""
    keys = np.unique(np.asarray(rows, np.int64) * n_cols + np.asarray(cols, np.int64))
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(keys // max(n_cols, 1), minlength=n_rows), out=indptr[1:])
    matrix = sparse.csr_array(
        (np.ones(len(keys), np.float32), (keys % max(n_cols, 1)).astype(np.int32), indptr),
        shape=(n_rows, n_cols),
    )
    matrix.has_canonical_format = True
    return matrix


def gather_rows(matrix: sparse.csr_array, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The entries of rows ``index[i]`` of ``matrix`` as (i, column) pairs; negative indices
    (unknown users) contribute nothing."""
    at = np.flatnonzero(index >= 0)
    starts = matrix.indptr[index[at]]
    lengths = matrix.indptr[index[at] + 1] - starts
    total = int(lengths.sum())
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return np.repeat(at, lengths), matrix.indices[offsets + np.arange(total)]


def contains(matrix: sparse.csr_array, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Whether ``matrix`` stores an entry at each (rows[i], cols[i]) — bool, shaped like rows."""
    if not matrix.has_sorted_indices:
        matrix = matrix.sorted_indices()
    n_cols = max(int(matrix.shape[1]), 1)
    stored = (
        np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr)) * n_cols
        + matrix.indices
    )
    return in_sorted(stored, np.asarray(rows, np.int64) * n_cols + np.asarray(cols, np.int64))


def in_sorted(stored: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Whether each of ``wanted`` is among ``stored`` (sorted ascending): one ``searchsorted``.
    ``np.isin`` over a batch's (query, item) keys takes its sort path — 390 µs for 360 keys among
    3,115, against 80 µs here with the sort — or, forced to its table, allocates one flag per
    possible key (queries × catalogue)."""
    if len(stored) == 0:
        return np.zeros(np.shape(wanted), dtype=bool)
    at = np.minimum(np.searchsorted(stored, wanted), len(stored) - 1)
    return stored[at] == wanted
