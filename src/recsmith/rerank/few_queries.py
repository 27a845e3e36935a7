"""MMR's closed-form walk for a served request's batch of queries, in one compiled call.

A served request under open load comes alone or with a few others (1-4 queries; the coalescer
flushes at most 64), and for such a batch ``MMR._windowed``'s ~60 numpy calls cost more than
the work: each query walks only its window's ~36 cells. ``ranking.row_kernel``'s ``mmr_walk``
walks those cells as the numpy path walks them (``MMR._windowed`` and ``MMR._walk``): each cell
keyed ``λ · relevance`` scaled by its query's first and last rows, less ``1 − λ`` where an item
of its category came before it; the cells ordered by key (stable: ties in column order); the
first ``k`` the category cap does not refuse picked. The same float64 operations in the same
order give the same keys, so the same rows. A query whose window does not settle its list
(fewer than ``k`` picks keyed at least the bound of the cells past it), or a batch outside that
walk's premises (seeds, rows out of order, non-finite relevance or span of it, a cap over
groups other than the penalty's categories, more than ``FEW_QUERIES`` queries), is answered
None: the numpy path answers the whole call, as it does while the library is not loaded (built
on a background thread at a pipeline's load; no compiler).
"""

from __future__ import annotations

import ctypes

import numpy as np

from recsmith.ranking.row_kernel import address
from recsmith.rerank.similarity import CategorySimilarity, Similarity

#: Queries up to which a batch is walked here: the coalescer's largest batch
#: (``serving.coalesce.MAX_COALESCED``). The walk wins at every size measured (re-ranking CPU on
#: the 100k-item shop 0.47x numpy's at 8 and 16 queries, 0.56x at 64, 0.60x at 1,024:
#: BENCHMARKS §152), but one query whose window does not settle hands the whole batch to numpy
#: (which walks in full only such queries), the compiled walk's CPU then spent for nothing:
#: past a served batch's size, where an offline batch holds such a query ever more likely, that
#: is not risked.
FEW_QUERIES = 64

#: what the compiled walk reads as "no cap", and where it bounds any count (int64)
_NO_CAP = 2**63 - 1


def walked_few(
    library: ctypes.CDLL,
    lam: float,
    similarity: Similarity,
    window: int,
    bounds: np.ndarray,
    items: np.ndarray,
    relevance: np.ndarray,
    is_seed: np.ndarray,
    group: np.ndarray,
    cap: int | None,
    k: int,
) -> np.ndarray | None:
    """The rows ``MMR.__call__`` picks (int64, by query then pick order) for rows grouped by
    query (``bounds``: each query's row range), each query walked within its first
    ``window + 2k`` cells (``MMR._windowed``'s window) by ``library``'s ``mmr_walk``; None where
    the numpy path must answer (see the module docstring; rows out of relevance order, which
    the walk checks as ``mmr._in_order`` does, are sorted there)."""
    n_queries = len(bounds) - 1
    penalised = lam < 1.0 and isinstance(similarity, CategorySimilarity)
    if n_queries > FEW_QUERIES or (lam < 1.0 and not penalised) or is_seed.any():
        return None
    category = similarity.category if penalised else group  # not read unless penalised
    arrays = [
        _readable(items, _INDEX),
        _readable(relevance, _REAL),
        _readable(group, _INDEX),
        _readable(category, _INDEX),
    ]
    bounds = np.ascontiguousarray(bounds, np.int64)
    out = np.empty(len(items), np.int64)  # a pick per row at most
    written = library.mmr_walk(
        n_queries,
        address(bounds),
        float(lam),
        penalised,
        min(window + 2 * k, _NO_CAP),
        *[part for a in arrays for part in (address(a), a.itemsize)],
        len(category),
        _NO_CAP if cap is None else max(min(cap, _NO_CAP), -_NO_CAP),
        min(k, _NO_CAP),
        address(out),
    )
    return None if written < 0 else out[:written]


_INDEX = (np.dtype(np.int32), np.dtype(np.int64))
_REAL = (np.dtype(np.float32), np.dtype(np.float64))


def _readable(array: np.ndarray, dtypes: tuple[np.dtype, ...]) -> np.ndarray:
    """``array`` as the walk reads it: contiguous, of one of ``dtypes`` (its own where it is one:
    no copy of a similarity's item-long categories; else the widest, which holds any value of
    the narrower kinds exactly)."""
    array = np.asarray(array)
    dtype = array.dtype if array.dtype in dtypes else dtypes[-1]
    return np.ascontiguousarray(array, dtype)
