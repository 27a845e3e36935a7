"""A category similarity MMR does not recognise as one: it takes the greedy step loop, so tests
can hold the closed-form order against it; and the textbook loop both are held against."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsmith.rerank import CategorySimilarity
from recsmith.rerank.similarity import SimilarityBlock


@dataclass(frozen=True)
class StepwiseCategories:
    """``inner``'s blocks behind another type: forces the greedy step loop."""

    inner: CategorySimilarity

    def block(self, items: np.ndarray) -> SimilarityBlock:
        return self.inner.block(items)


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
