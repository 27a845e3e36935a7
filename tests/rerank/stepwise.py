"""A category similarity MMR does not recognise as one: it takes the greedy step loop, so tests
can hold the closed-form order against it (and both against a textbook loop)."""

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
