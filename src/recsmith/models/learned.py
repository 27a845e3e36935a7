"""Did a fitted model learn anything to rank by? A cheap check at the end of training.

A model can fit without error and learn nothing: item-kNN on data where no two items share a
user has an empty similarity matrix, EASE on one item per user a zero weight matrix, a factor
model regularised to zero factors, or one left at its random start (BPR at a vanishing learning
rate). Its lists are then arbitrary (ties in index order, or noise) or empty, and nothing said
so: ``recsmith train`` printed the usual line and the release served them.
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
#: Standard errors above chance (AUC 1/2) that a factor model's ranking of its users' own items
#: must reach (``at_chance``): random scores pass for learned about once in 740 fits; a fitted
#: model's AUC on its own training items is far above (0.73 to 1.0 on the tests' data).
CHANCE_Z = 3.0
#: How each reason starts (the manifest's ``fit_warnings`` values; ``recsmith train`` prints them)
NOTHING = "learned nothing to rank items by"


def nothing_learned(model: Recommender, data: Interactions) -> str | None:
    """Why ``model`` (fitted on ``data``) has nothing to rank items by, or None when it has.

    A model with an item-to-item matrix (item-kNN, co-occurrence) learned nothing when that
    matrix is empty: every such model stores only pairs of distinct items (an item is not its
    own neighbour), so any entry is a pair. Any other model is scored for its most active users,
    and learned nothing when every item each of them has not seen gets the same score, or, a
    factor model (``embeddings``), when its scores rank their own items no better than chance
    (``at_chance``)."""
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
    seen = [rows.indices[rows.indptr[row] : rows.indptr[row + 1]] for row in range(n)]
    judged = spread = 0
    for row in range(n):  # ≤ 64 rows: each masks its own seen items
        unseen = np.ones(data.n_items, dtype=bool)
        unseen[seen[row]] = False
        if unseen.sum() < 2:
            continue
        judged += 1
        spread += bool(np.ptp(scores[row, unseen]) > TIED)
    if judged == 0:
        return None
    if spread == 0:
        return (
            f"{NOTHING}: every item it could recommend scores the same (within {TIED:g}) for "
            f"the {judged} most active users"
        )
    return at_chance(scores, seen) if model.embeddings is not None else None


def at_chance(scores: np.ndarray, seen: list[np.ndarray]) -> str | None:
    """Why a factor model's ``scores`` (rows: users, ``seen``: each one's items) rank those
    items above the rest no better than chance, or None when they rank them above it.

    A factor model starts from random vectors, and one that leaves them where they were (BPR
    at a vanishing learning rate, or too few steps) scores items apart, but by noise: no ties
    for the check above to find. What fitting does, whatever the loss (BPR's is exactly this
    order), is score a user's own items above the others, so each user's AUC of seen against
    unseen items is compared with chance (1/2): the mean over users must exceed it by
    ``CHANCE_Z`` standard errors of random scores, ``(n_seen + n_unseen + 1) / (12 · n_seen ·
    n_unseen)`` per user (Mann-Whitney)."""
    aucs, variances = [], []
    for row, items in enumerate(seen):
        own = np.zeros(scores.shape[1], dtype=bool)
        own[items] = True
        n_seen, n_unseen = int(own.sum()), int((~own).sum())
        if n_seen == 0 or n_unseen == 0:
            continue
        others = np.sort(scores[row, ~own])
        below = np.searchsorted(others, scores[row, own], "left")
        not_above = np.searchsorted(others, scores[row, own], "right")
        aucs.append(float((below + not_above).sum()) / (2 * n_seen * n_unseen))
        variances.append((n_seen + n_unseen + 1) / (12 * n_seen * n_unseen))
    if not aucs:
        return None
    auc = float(np.mean(aucs))
    if auc - 0.5 > CHANCE_Z * np.sqrt(np.sum(variances)) / len(aucs):
        return None
    return (
        f"{NOTHING}: it ranks the items of the {len(aucs)} most active users above the others "
        f"no better than chance (AUC {auc:.2f}): its factors stayed where they started"
    )


def learning_warnings(models: dict[str, Recommender], data: Interactions) -> dict[str, str]:
    """``nothing_learned`` of each named model, only those that learned nothing: what the
    manifest's ``fit_warnings`` holds (name → reason) and ``recsmith train`` prints."""
    found = {name: nothing_learned(model, data) for name, model in models.items()}
    return {name: reason for name, reason in found.items() if reason is not None}
