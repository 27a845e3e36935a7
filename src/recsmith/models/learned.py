"""Did a fitted model learn anything to rank by? A cheap check at the end of training.

A model can fit without error and learn nothing: item-kNN on data where no two items share a
user has an empty similarity matrix, EASE on one item per user a zero weight matrix, a factor
model regularised to zero factors. Its lists are then arbitrary (ties in index order) or empty,
and nothing said so: ``recsmith train`` printed the usual line and the release served them.
``nothing_learned`` tells, so that training warns (output and manifest) without failing: the
data may grow into the model, and a pipeline fills from its other sources meanwhile.
"""

from __future__ import annotations

import numpy as np

from recsmith.features.interactions import Interactions
from recsmith.models.base import Recommender

#: Score cells the check computes at most (``SAMPLED_USERS`` users × the catalogue): 16 MB of
#: float32, so a catalogue of millions of items checks a few users rather than allocating GBs.
_CELLS = 4_000_000
#: The most active users whose scores are looked at: they have the most history for a model to
#: use, so a model that separates items for anyone separates them for some of these.
SAMPLED_USERS = 64
#: Score spread below which a user's unseen items count as tied: float32 scores of a model
#: that ranks differ far more (iALS, EASE and kNN scores are of order 0.01 to 1).
TIED = 1e-6
#: How each reason starts (the manifest's ``fit_warnings`` values; ``recsmith train`` prints them)
NOTHING = "learned nothing to rank items by"


def nothing_learned(model: Recommender, data: Interactions) -> str | None:
    """Why ``model`` (fitted on ``data``) has nothing to rank items by, or None when it has.

    A model with an item-to-item matrix (item-kNN, co-occurrence) learned nothing when that
    matrix is empty: every such model stores only pairs of distinct items (an item is not its
    own neighbour), so any entry is a pair. Any other model is scored for its most active users,
    and learned nothing when every item each of them has not seen gets the same score."""
    neighbours = model.item_to_item
    if neighbours is not None:
        if neighbours.nnz == 0:
            return f"{NOTHING}: its item-item matrix is empty (no two items share a user)"
        return None
    counts = np.diff(data.matrix.indptr)
    n = int(min(SAMPLED_USERS, max(1, _CELLS // max(1, data.n_items)), data.n_users))
    if n == 0:
        return None
    users = np.argsort(-counts, kind="stable")[:n]
    scores = model._score(users).astype(np.float64)
    rows = data.matrix[users]
    judged = 0
    for row in range(n):  # ≤ 64 rows: each masks its own seen items
        unseen = np.ones(data.n_items, dtype=bool)
        unseen[rows.indices[rows.indptr[row] : rows.indptr[row + 1]]] = False
        if unseen.sum() < 2:
            continue
        judged += 1
        if np.ptp(scores[row, unseen]) > TIED:
            return None
    if judged == 0:
        return None
    return (
        f"{NOTHING}: every item it could recommend scores the same (within {TIED:g}) for the "
        f"{judged} most active users"
    )


def learning_warnings(models: dict[str, Recommender], data: Interactions) -> dict[str, str]:
    """``nothing_learned`` of each named model, only those that learned nothing: what the
    manifest's ``fit_warnings`` holds (name → reason) and ``recsmith train`` prints."""
    found = {name: nothing_learned(model, data) for name, model in models.items()}
    return {name: reason for name, reason in found.items() if reason is not None}
