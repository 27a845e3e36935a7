"""Co-occurrence: "frequently bought / viewed together" from sessions or baskets.

Two items co-occur when they appear in the same basket (a session; an actor's events of one day
when there is no session id). For an item i, a candidate j scores by confidence
P(j | i) = co(i, j) / n(i), or by lift = co(i, j) · N / (n(i) · n(j)), and pairs seen together in
fewer than ``min_support`` baskets are dropped: rare pairs are noise, not associations.
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import MICROS_PER_DAY, Interactions, binarize
from recsmith.models.association import Association
from recsmith.models.base import ModelConfig
from recsmith.models.itemknn import keep_top_per_row


class CooccurrenceConfig(ModelConfig):
    metric: Literal["confidence", "lift"] = "confidence"
    min_support: int = Field(2, ge=1, description="baskets a pair must share to count")
    neighbors: int = Field(100, ge=1)


def basket_codes(data: Interactions) -> np.ndarray:
    """The basket of each event: its session, or its actor's UTC day when it has no session."""
    day = data.event_ts // MICROS_PER_DAY
    day -= day.min()
    actor_day = data.event_users.astype(np.int64) * (int(day.max()) + 1) + day
    no_session = data.event_sessions < 0  # negative keys: actor-days; others: session codes
    basket_key = np.where(no_session, -1 - actor_day, data.event_sessions.astype(np.int64))
    codes, _ = pd.factorize(basket_key)
    return codes


def baskets(data: Interactions) -> sparse.csr_array:
    """Binary baskets × items (rows in ``basket_codes`` order)."""
    codes = basket_codes(data)
    matrix = sparse.csr_array(
        (np.ones(len(codes), np.float32), (codes, data.event_items)),
        shape=(int(codes.max()) + 1, data.n_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


class Cooccurrence(Association):
    """Score(u, j) = Σ_i x_ui · assoc(i → j) over the user's (or session's) items i."""

    name = "cooccurrence"
    Config = CooccurrenceConfig
    config: CooccurrenceConfig

    def fit(self, data: Interactions) -> Self:
        b = baskets(data)
        counts = np.asarray(b.sum(axis=0)).ravel()
        co = (b.T @ b).tocsr()
        co.setdiag(0)
        co.data[co.data < self.config.min_support] = 0
        co.eliminate_zeros()
        rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
        if self.config.metric == "confidence":
            co.data = co.data / counts[rows]
        else:
            co.data = co.data * b.shape[0] / (counts[rows] * counts[co.indices])
        self.association_ = keep_top_per_row(co, self.config.neighbors)
        self.user_items_ = binarize(data.matrix)
        return self
