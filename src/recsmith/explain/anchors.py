"""The history items behind an item-to-item proposal, strongest first.

An item-to-item model (item-kNN, co-occurrence) scores a history as ``history @ M``: the history
item ``r`` adds ``M[r, i]`` to candidate ``i``. ``pipeline.anchors`` names the single strongest
for the reason's text; an explanation lists the few strongest with their weights.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

#: Anchors listed per item and source at most.
MAX_ANCHORS = 3


def supporting(
    history: np.ndarray, matrix: sparse.csr_array, item: int, limit: int = MAX_ANCHORS
) -> list[tuple[int, float]]:
    """Up to ``limit`` (history item, weight) pairs with ``matrix[r, item] > 0``, by weight
    descending (ties by index). History items or an item outside the matrix (joined the index
    after training) support nothing."""
    if item >= matrix.shape[1]:
        return []
    history = np.unique(history[history < matrix.shape[0]])
    if len(history) == 0:
        return []
    weights = np.asarray(matrix[history, np.full(len(history), item)]).ravel()
    order = np.lexsort((history, -weights))
    kept = [i for i in order[:limit] if weights[i] > 0]
    return [(int(history[i]), float(weights[i])) for i in kept]
