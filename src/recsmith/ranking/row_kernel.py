"""``candidate_features``' per-row columns of a request batch in one compiled pass.

At a coalesced batch's size (16 users, ~4,100 candidate rows) the features' own arithmetic is a
few gathers per row; what numpy spends is its per-call cost, one call per column or block of
columns (~40 calls), each a pass over the rows. This C loop reads each row's query, item and
category once and writes every column that depends on nothing but them, the sources' scores and
ranks, ``n_sources``, the item columns, the query's four and the context, into the
[features, candidates] matrix. What it reads per query or per (query, category) cell (the users'
events, the share, recency and session planes, the context) is computed by numpy first, as
before, and the property columns are still ``property_values``'. Same values bit for bit: the
same gathers, one float64 division for the session share as numpy's ``int64 / float32``, NaN
as numpy writes it.

The library is built by ``trees.build`` (its cache, lock and pruning) on a background thread
the first time it is asked for (``start``: when a pipeline is loaded), never on a request:
until it is loaded, or where it cannot be (no compiler), numpy writes the columns
(``candidate_features``' own path, also the tests' oracle).
"""

from __future__ import annotations

import ctypes
import logging
import threading

import numpy as np
from scipy import sparse

from recsmith.trees.build import KernelUnavailable, load_library

log = logging.getLogger(__name__)

SOURCE = r"""
#include <stdint.h>

/* Columns of out [width, n] (row f: feature f of every candidate row), for candidate rows of
   query query[i] (< n_queries) and item items[i] (< n_items): the sources' score and rank
   interleaved (rank NaN where 0 or below), the count of sources with a rank, four per-item
   columns, the query's user events, the (query, category) cell's share, days and session count
   over the query's session total (the cell past every query's for an item without a category),
   the query's context. Returns -1, having written nothing, when an index is out of range. */
int32_t candidate_columns(
    int64_t n, int64_t n_queries, int64_t n_items, int64_t n_sources, int64_t n_cats,
    int64_t n_context, const int32_t *query, const int32_t *items, const float *scores,
    const int16_t *ranks, const float *popularity, const float *trend, const float *age,
    const float *price, const int32_t *category, const float *user_events, const float *share,
    const float *days, const int64_t *counts, const float *totals, const float *context,
    float *out)
{
    const union { uint32_t bits; float value; } nan = {0x7fc00000u};  /* numpy's NaN */
    const int64_t no_cell = n_queries * n_cats;
    for (int64_t i = 0; i < n; i++) {
        int64_t q = query[i], item = items[i];
        if (q < 0 || q >= n_queries || item < 0 || item >= n_items) return -1;
        if (category[item] >= n_cats) return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        const int64_t q = query[i], item = items[i], c = category[item];
        const int64_t cell = c >= 0 ? q * n_cats + c : no_cell;
        float *o = out + i;
        int64_t proposed = 0;
        for (int64_t s = 0; s < n_sources; s++) {
            const int16_t rank = ranks[i * n_sources + s];
            o[2 * s * n] = scores[i * n_sources + s];
            o[(2 * s + 1) * n] = rank > 0 ? (float)rank : nan.value;
            proposed += rank > 0;
        }
        o += 2 * n_sources * n;
        o[0] = (float)proposed;
        o[n] = popularity[item];
        o[2 * n] = trend[item];
        o[3 * n] = age[item];
        o[4 * n] = price[item];
        o[5 * n] = user_events[q];
        o[6 * n] = share[cell];
        o[7 * n] = days[cell];
        o[8 * n] = (float)((double)counts[cell] / (double)totals[q]);
        for (int64_t k = 0; k < n_context; k++) o[(9 + k) * n] = context[q * n_context + k];
    }
    return 0;
}

/* Element k of an index array of 4 or 8 bytes an element, and of a float32 or float64 one:
   scipy stores a matrix's indices in either width (a release's mapped matrices in int64, a
   request's built ones in int32 or int64), and a branch taken the same way every time costs
   less than a copy of the widest of them. */
static inline int64_t index_at(const void *array, int64_t width, int64_t k) {
    return width == 8 ? ((const int64_t *)array)[k] : ((const int32_t *)array)[k];
}
static inline double value_at(const void *array, int64_t width, int64_t k) {
    return width == 8 ? ((const double *)array)[k] : ((const float *)array)[k];
}

/* Per row i: of the recent items r of row query[i] of the recent CSR matrix (storage order),
   those below m_rows, the one with the largest weight matrix[r, items[i]] (0 where the matrix
   stores nothing or items[i] is outside it), the last such on ties, written to anchor[i] where
   that weight is > 0 and none of the row's weights is NaN, else -1. matrix: a canonical CSR
   (each row's columns sorted, none twice), searched by halving within the row. */
void strongest(
    int64_t n, const int32_t *query, const int32_t *items, const void *recent_indptr,
    const void *recent_indices, int64_t recent_ptr_width, int64_t recent_index_width,
    const void *indptr, const void *indices, const void *data, int64_t ptr_width,
    int64_t index_width, int64_t data_width, int64_t m_rows, int64_t m_cols, int64_t *anchor)
{
    for (int64_t i = 0; i < n; i++) {
        const int64_t item = items[i];
        const int64_t first = index_at(recent_indptr, recent_ptr_width, query[i]);
        const int64_t end = index_at(recent_indptr, recent_ptr_width, query[i] + 1);
        int64_t best_at = -1, nan = 0;
        double best = 0.0;
        for (int64_t k = first; k < end && !nan; k++) {
            const int64_t r = index_at(recent_indices, recent_index_width, k);
            if (r >= m_rows) continue;  /* joined after training: in no model's matrix */
            double weight = 0.0;
            if (item >= 0 && item < m_cols) {
                const int64_t stop = index_at(indptr, ptr_width, r + 1);
                int64_t lo = index_at(indptr, ptr_width, r), hi = stop;
                while (lo < hi) {  /* the first position whose column is not below item */
                    const int64_t mid = lo + (hi - lo) / 2;
                    if (index_at(indices, index_width, mid) < item) lo = mid + 1; else hi = mid;
                }
                if (lo < stop && index_at(indices, index_width, lo) == item)
                    weight = value_at(data, data_width, lo);
            }
            if (weight != weight) nan = 1;
            else if (best_at < 0 || weight >= best) { best = weight; best_at = r; }
        }
        anchor[i] = !nan && best_at >= 0 && best > 0.0 ? best_at : -1;
    }
}
"""

_built = threading.Event()
_started = threading.Lock()
_library: ctypes.CDLL | None = None
_unavailable: str | None = None


def start() -> None:
    """Build or load the library on a background thread, once a process (later calls return
    at once): a pipeline's load calls it, as the ranker starts its own build."""
    if _started.acquire(blocking=False):
        threading.Thread(target=_load, name="feature-kernel", daemon=True).start()


def _load() -> None:
    global _library, _unavailable
    try:
        # plain -O2, no -march=native: gathers, copies and searches, nothing vectors speed
        library = load_library(SOURCE, native=False)
        library.candidate_columns.argtypes = [*[ctypes.c_int64] * 6, *[ctypes.c_void_p] * 16]
        library.candidate_columns.restype = ctypes.c_int32
        library.strongest.argtypes = [
            ctypes.c_int64,
            *[ctypes.c_void_p] * 4,
            *[ctypes.c_int64] * 2,
            *[ctypes.c_void_p] * 3,
            *[ctypes.c_int64] * 5,
            ctypes.c_void_p,
        ]
        library.strongest.restype = None
        _library = library
    except KernelUnavailable as exc:
        _unavailable = str(exc)
        log.warning("candidate features and anchors: numpy's, not compiled (%s)", exc)
    finally:
        _built.set()


def wait(timeout: float | None = None) -> bool:
    """Start the build if none was, wait up to ``timeout`` s for it; True when the compiled
    passes run now (tests and benchmarks)."""
    start()
    return _built.wait(timeout) and _library is not None


def loaded() -> ctypes.CDLL | None:
    """The compiled library once built (starting the build if none was), else None."""
    if _library is None and not _built.is_set():
        start()
    return _library


def unavailable_reason() -> str | None:
    """Why the compiled passes do not run (no compiler, a failed build), else None."""
    return _unavailable


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def strongest(
    library: ctypes.CDLL,
    query: np.ndarray,
    items: np.ndarray,
    recent: sparse.csr_array,
    matrix: sparse.csr_array,
) -> np.ndarray | None:
    """``pipeline.anchors``' anchor per (query, item) row, int64: the recent item of the query
    whose ``matrix`` weight for the item is the largest (> 0, the last on ties, none where a
    weight is NaN), else -1. None where the compiled search does not apply (a matrix not in
    canonical form, whose duplicates scipy adds up; a value or index dtype it does not read):
    numpy's ``_strongest`` answers."""
    widths = (recent.indptr, recent.indices, matrix.indptr, matrix.indices)
    if not matrix.has_canonical_format or matrix.data.dtype not in (np.float32, np.float64):
        return None
    if any(a.dtype not in (np.int32, np.int64) for a in widths):
        return None
    query = np.ascontiguousarray(query, np.int32)
    items = np.ascontiguousarray(items, np.int32)
    arrays = [np.ascontiguousarray(a) for a in (*widths, matrix.data)]
    out = np.empty(len(query), np.int64)
    library.strongest(
        len(query),
        _address(query),
        _address(items),
        _address(arrays[0]),
        _address(arrays[1]),
        arrays[0].itemsize,
        arrays[1].itemsize,
        *(_address(a) for a in arrays[2:]),
        *(a.itemsize for a in arrays[2:]),
        matrix.shape[0],
        matrix.shape[1],
        _address(out),
    )
    return out


def write_columns(
    library: ctypes.CDLL,
    out: np.ndarray,
    query: np.ndarray,
    items: np.ndarray,
    scores: np.ndarray,
    ranks: np.ndarray,
    item_columns: tuple[np.ndarray, ...],
    category: np.ndarray,
    user_events: np.ndarray,
    n_cats: int,
    cells: tuple[np.ndarray, np.ndarray, np.ndarray],
    totals: np.ndarray,
    context: np.ndarray,
) -> bool:
    """Writes rows ``0 : 2 × sources + 9 + context columns`` of ``out`` [width, n] (C order,
    float32) as ``candidate_features`` lays them out: ``item_columns`` the four per-item
    columns, ``cells`` the share, days (float32) and session counts (int64) of every (query,
    category) cell, ``query × n_cats + category``, and of the last one (no category). False,
    with nothing written, when a query, an item or a category is out of range: numpy's path
    then answers (and raises where it does)."""
    n_queries, n_context = context.shape
    if not (out.flags.c_contiguous and out.dtype == np.float32 and out.shape[1] == len(items)):
        raise ValueError("out: expected a C-order float32 [features, candidates] matrix")
    if any(len(c) != n_queries * n_cats + 1 for c in cells) or len(totals) != n_queries:
        raise ValueError("cells: expected one per (query, category) and the last one")
    if ranks.shape != scores.shape or out.shape[0] < 2 * scores.shape[1] + 9 + n_context:
        raise ValueError("scores, ranks: expected [candidates, sources] each, and room for them")
    arrays = [
        np.ascontiguousarray(query, np.int32),
        np.ascontiguousarray(items, np.int32),
        np.ascontiguousarray(scores, np.float32),
        np.ascontiguousarray(ranks, np.int16),
        *(np.ascontiguousarray(c, np.float32) for c in item_columns),
        np.ascontiguousarray(category, np.int32),
        np.ascontiguousarray(user_events, np.float32),
        np.ascontiguousarray(cells[0], np.float32),
        np.ascontiguousarray(cells[1], np.float32),
        np.ascontiguousarray(cells[2], np.int64),
        np.ascontiguousarray(totals, np.float32),
        np.ascontiguousarray(context, np.float32),
    ]
    n_items = min(len(a) for a in arrays[4:9])
    done = library.candidate_columns(
        len(items),
        n_queries,
        n_items,
        scores.shape[1],
        n_cats,
        n_context,
        *(_address(a) for a in arrays),
        _address(out),
    )
    return done == 0
