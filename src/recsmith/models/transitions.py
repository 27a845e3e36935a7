"""Sequential rules: the items that FOLLOWED an item in users' time-ordered sequences.

Where what a user did last predicts what comes next (review or viewing sequences, each user's
latest item held out), an item's *successors* are the signal that symmetric co-occurrence and
item-kNN blur with its predecessors. This is the "SR" baseline of Ludewig & Jannach (2018,
"Evaluation of session-based recommendation algorithms"), strong there at a tiny cost: every
pair (i at position p, j at position p + d) of one user's sequence with 1 <= d <= ``steps``
adds 1/d to rule i -> j (the nearer the follower, the stronger the rule). Each item's rules are
normalised to sum to one, so an item followed by many others does not outvote one with a clear
successor, and each is pruned to its ``neighbors`` strongest. A user is scored from their
``history`` latest items, the k-th latest (k = 0, 1, ...) weighted 1/(k + 1): the last one leads,
the ones before it break ties and cover items with few rules.

Visitors scored from their recent items (``use = "recent"``, no user row) get those items at
equal weight: the serving path hands over a set, not an order.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import Interactions
from recsmith.models.base import ModelConfig
from recsmith.models.cooccurrence import Cooccurrence
from recsmith.models.itemknn import keep_top_per_row
from recsmith.models.sequences import user_sequences


class TransitionsConfig(ModelConfig):
    steps: int = Field(10, ge=1, description="followers within this many steps count")
    history: int = Field(10, ge=1, description="latest items a user is scored from")
    neighbors: int = Field(100, ge=1, description="rules kept per item")


def follow_counts(
    indptr: np.ndarray, seq: np.ndarray, n_items: int, steps: int
) -> sparse.csr_array:
    """Σ over sequences of 1/d for each (item at p -> item at p + d), 1 <= d <= ``steps``;
    ``indptr``/``seq`` as ``user_sequences`` gives them (ids + 1). One sparse sum per distance
    keeps the peak memory at one copy of the events, not ``steps`` copies."""
    items = seq - 1
    end = np.repeat(indptr[1:], np.diff(indptr))  # where each position's sequence ends
    pos = np.arange(len(items))
    total = sparse.csr_array((n_items, n_items), dtype=np.float64)
    for d in range(1, steps + 1):
        p = pos[pos + d < end]
        if len(p) == 0:
            break
        total = total + sparse.csr_array(
            (np.full(len(p), 1.0 / d), (items[p], items[p + d])), shape=(n_items, n_items)
        )
    total.setdiag(0)  # an item that comes back later is not its own successor
    total.eliminate_zeros()
    return total.tocsr()


def latest_weighted(indptr: np.ndarray, seq: np.ndarray, n_items: int, n: int) -> sparse.csr_array:
    """Users × items: each user's ``n`` latest sequence items, the k-th latest weighted 1/(k+1)
    (an item met twice adds both weights)."""
    sizes = np.diff(indptr)
    users = np.repeat(np.arange(len(sizes)), sizes)
    from_end = np.repeat(indptr[1:], sizes) - 1 - np.arange(len(seq))  # 0 = latest
    keep = from_end < n
    matrix = sparse.csr_array(
        (1.0 / (from_end[keep] + 1), (users[keep], seq[keep] - 1)),
        shape=(len(sizes), n_items),
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    return matrix


class Transitions(Cooccurrence):
    """Score(u, j) = Σ_k 1/(k+1) · rule(item_k(u) -> j) over the user's latest items item_k.

    A directed co-occurrence: the same scoring, persistence and similar-items answer as
    ``Cooccurrence`` ("what follows this item" for ``/similar``), other association and history.
    """

    name = "transitions"
    Config = TransitionsConfig
    config: TransitionsConfig  # type: ignore[assignment]

    def fit(self, data: Interactions) -> Self:
        indptr, seq = user_sequences(data)
        rules = follow_counts(indptr, seq, data.n_items, self.config.steps)
        totals = np.asarray(rules.sum(axis=1)).ravel()
        rows = np.repeat(np.arange(rules.shape[0]), np.diff(rules.indptr))
        rules.data = rules.data / totals[rows]
        self.association_ = keep_top_per_row(rules, self.config.neighbors)
        self.user_items_ = latest_weighted(indptr, seq, data.n_items, self.config.history)
        return self
