"""MMR's closed-form walk for a request of a few queries, cell by cell in Python.

A served request under open load comes alone or with a few others (1-4 queries), and for such a
batch ``MMR._windowed``'s ~60 numpy calls cost more than the work: each query walks only its
window's ~36 cells. Here those cells are read once as Python lists and walked as the numpy path
walks them (``MMR._windowed`` and ``MMR._walk``): each cell keyed ``λ · relevance`` scaled by
its query's first and last rows, less ``1 − λ`` where an item of its category came before it;
the cells sorted by key (stable: ties in column order); the first ``k`` the category cap does
not refuse picked. The same float64 operations in the same order give the same keys, so the
same rows. A query whose window does not settle its list (fewer than ``k`` picks keyed at least
the bound of the cells past it), or a batch outside that walk's premises (seeds, rows out of
non-finite relevance, cap groups that are not the penalty's categories, more than
``FEW_QUERIES`` queries), is answered None: the numpy path answers the whole call, as before.
"""

from __future__ import annotations

import math

import numpy as np

from recsmith.rerank.similarity import CategorySimilarity, Similarity

#: Queries up to which a batch is walked here; above, numpy's per-call cost is spread over
#: enough cells to win (a batch of 16 walks ~580 window cells).
FEW_QUERIES = 4


def walked_few(
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
    query (``bounds``: each query's row range) in relevance order (the caller checked it,
    ``mmr._in_order``: unordered rows are sorted by the numpy path), each query walked within its
    first ``window + 2k`` cells (``MMR._windowed``'s window); None where the numpy path must
    answer (see the module docstring)."""
    n_queries = len(bounds) - 1
    penalised = lam < 1.0 and isinstance(similarity, CategorySimilarity)
    if n_queries > FEW_QUERIES or (lam < 1.0 and not penalised) or is_seed.any():
        return None
    width = window + 2 * k
    spread = 1.0 - lam
    picked: list[int] = []
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if end == start:
            continue
        shown = min(end - start, width)
        cells = slice(start, start + shown)
        codes = group[cells].tolist()
        if penalised and similarity.category[items[cells]].tolist() != codes:
            return None  # cap groups other than the penalty's categories: counted apart there
        rel = relevance[start : min(end, start + shown + 1)].tolist()  # and the first past it
        hi, lo = rel[0], float(relevance[end - 1])  # the caller checked the order
        if not (math.isfinite(hi) and math.isfinite(lo)):
            return None
        span = hi - lo
        seen: dict[int, int] = {}
        keys, refused = [], []
        for col in range(shown):
            code = codes[col]
            before = seen.get(code, 0)
            seen[code] = before + 1
            key = lam * ((rel[col] - lo) / span if span > 0 else 1.0)
            if penalised and code >= 0 and before > 0:
                key = key - spread  # ``(1 − λ) · 1.0``: the same bits
            keys.append(key)
            refused.append(cap is not None and code >= 0 and before >= cap)
        taken = [c for c in sorted(range(shown), key=lambda c: -keys[c]) if not refused[c]][:k]
        if end - start > shown:  # cells past the window: settled only by k picks keyed high
            beyond = lam * ((rel[shown] - lo) / span if span > 0 else 1.0)
            if len(taken) < k or keys[taken[-1]] < beyond:
                return None
        picked.extend(start + c for c in taken)
    return np.array(picked, np.int64)
