"""A category similarity MMR does not recognise as one: it takes the greedy step loop, so tests
can hold the closed-form order against it; the textbook loop both are held against; and the
few-query walk cell by cell in Python, the compiled walk's oracle."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsmith.rerank import CategorySimilarity
from recsmith.rerank.few_queries import FEW_QUERIES
from recsmith.rerank.similarity import Similarity, SimilarityBlock


@dataclass(frozen=True)
class StepwiseCategories:
    """``inner``'s blocks behind another type: forces the greedy step loop."""

    inner: CategorySimilarity

    def block(self, items: np.ndarray) -> SimilarityBlock:
        return self.inner.block(items)


def textbook_lists(
    kw: dict[str, Any], category: np.ndarray, lam: float, groups: np.ndarray | None = None
) -> list[int]:
    """The textbook loop's lists for one ``MMR.__call__``'s keyword arguments (rows grouped by
    query), query after query, as items: each query's seeds and the call's ``k`` and ``cap``."""
    query, items, relevance = kw["query"], kw["items"], kw["relevance"]
    bounds = np.searchsorted(query, np.arange(int(query[-1]) + 2)).tolist() if len(query) else []
    lists: list[int] = []
    for start, end in itertools.pairwise(bounds):
        rows = np.arange(start, end)
        seeds = np.flatnonzero(kw["is_seed"][rows]).tolist()
        lists += reference_category_mmr(
            items[rows].tolist(),
            relevance[rows].tolist(),
            category,
            lam,
            kw["k"],
            kw["cap"],
            seeds,
            groups,
        )
    return lists


def reference_category_mmr(
    items: list[int],
    rel: list[float],
    category: np.ndarray,
    lam: float,
    k: int,
    cap: int | None,
    seeds: list[int],
    groups: np.ndarray | None = None,
) -> list[int]:
    """The greedy loop with category similarity, one query, plain Python: ``seeds`` (row
    positions) count as picked, for the penalty and the cap; every pick stays within the cap,
    counted over ``groups`` (per item; the categories when None)."""
    lo, hi = min(rel, default=0.0), max(rel, default=0.0)
    norm = [(r - lo) / (hi - lo) if hi > lo else 1.0 for r in rel]
    cats = [int(category[i]) for i in items]
    grps = cats if groups is None else [int(groups[i]) for i in items]
    picked = list(seeds)
    chosen: list[int] = []
    while len(chosen) < k - len(seeds):
        best, best_score = -1, -np.inf
        for j in range(len(items)):
            if j in picked:
                continue
            if cap is not None and grps[j] >= 0 and sum(grps[p] == grps[j] for p in picked) >= cap:
                continue
            same = any(cats[j] >= 0 and cats[p] == cats[j] for p in picked)
            score = lam * norm[j] - (1 - lam) * (1.0 if same else 0.0)
            if score > best_score:
                best, best_score = j, score
        if best < 0:
            break
        picked.append(best)
        chosen.append(items[best])
    return chosen


def cell_walk(
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
    """``few_queries.walked_few`` cell by cell in Python (its implementation before the compiled
    walk, kept as its oracle): the rows picked for rows grouped by query (``bounds``) in
    relevance order, each query walked within its first ``window + 2k`` cells; None where the
    numpy path must answer (seeds, more than ``FEW_QUERIES`` queries, a similarity other than
    categories below λ 1, cap groups other than the categories, a non-finite end or span, a window
    that does not settle)."""
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
        if penalised:
            categories = similarity.category[items[cells]].tolist()
            if categories != codes and cap is not None:
                return None  # cap groups other than the penalty's categories: counted apart there
            codes = categories  # without a cap the groups play no part
        rel = relevance[start : min(end, start + shown + 1)].tolist()  # and the first past it
        hi, lo = rel[0], float(relevance[end - 1])  # the caller checked the order
        span = hi - lo
        if not (math.isfinite(hi) and math.isfinite(lo) and math.isfinite(span)):
            return None
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
