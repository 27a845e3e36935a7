"""Queries: who is asking, what they did recently, and what must never come back — for a batch.

Online a batch is one request; offline (training the ranker, evaluating the pipeline) it is every
evaluated user at once, so retrieval is written once, vectorised over queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse


@dataclass(frozen=True, slots=True)
class Queries:
    """``users[q]`` is the model's user index (-1: unknown visitor); ``recent`` rows hold the items
    of the current session or latest history (weights, for item-to-item sources); ``exclude`` rows
    hold items never to return (already seen, excluded by the request)."""

    users: np.ndarray  # int32 [n]
    recent: sparse.csr_array  # [n, n_items]
    exclude: sparse.csr_array  # [n, n_items]
    context: tuple[dict[str, Any], ...] = field(default=())  # per query: device, hour, …
    #: per query: the moment it stands for (µs; -1 unknown): the user's first label-window event
    #: in training, now when serving (``ranking.context``); None = unknown for every query
    moments: np.ndarray | None = None
    #: per query: the items met since training (the online state, the request's ``recent``),
    #: each stored with its place in that list, 1 = newest: what a source that reads order
    #: (``transitions``) puts ahead of a known user's training-time items, and what one that
    #: weighs recency (EASE's ``recency``) weighs a visitor's recent items by; None offline
    latest: sparse.csr_array | None = None

    def __post_init__(self) -> None:
        n = len(self.users)
        if self.recent.shape[0] != n or self.exclude.shape[0] != n:
            raise ValueError("recent and exclude must have one row per query")

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> Queries:
        """The queries at ``rows`` (sorted indices), in that order."""
        return Queries(
            self.users[rows],
            self.recent[rows],
            self.exclude[rows],
            tuple(self.context[r] for r in rows.tolist()) if self.context else (),
            None if self.moments is None else self.moments[rows],
            None if self.latest is None else self.latest[rows],
        )

    @property
    def n_items(self) -> int:
        return int(self.exclude.shape[1])
