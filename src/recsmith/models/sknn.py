"""Session-based kNN (Jannach & Ludewig 2017): answer a visitor from the current session alone.

Past sessions are binary item sets. A query (the visitor's session so far, or a user's items) is
compared with every past session by cosine similarity; the ``neighbors`` most similar sessions vote
for their items with their similarity. Recent sessions weigh more when ``recency_half_life_days``
is set, since shop assortments and tastes drift.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import Interactions, binarize, decay_factors
from recsmith.models.base import ModelConfig, Recommender, sparse_from_arrays, sparse_to_arrays
from recsmith.models.cooccurrence import basket_codes, baskets
from recsmith.models.itemknn import keep_top_per_row


class SessionKNNConfig(ModelConfig):
    neighbors: int = Field(100, ge=1)
    recency_half_life_days: float | None = Field(None, gt=0)


class SessionKNN(Recommender):
    """Score(q, i) = Σ_s sim(q, s) · w_s · 1[i ∈ s] over the query's nearest past sessions s."""

    name = "sknn"
    Config = SessionKNNConfig
    config: SessionKNNConfig
    sessions_: sparse.csr_array  # binary sessions × items
    session_weight_: np.ndarray  # recency weight per session
    user_items_: sparse.csr_array

    def fit(self, data: Interactions) -> Self:
        self.sessions_ = baskets(data).astype(np.float32)
        if self.config.recency_half_life_days is None:
            self.session_weight_ = np.ones(self.sessions_.shape[0], dtype=np.float32)
        else:
            last = _last_time_per_basket(data, self.sessions_.shape[0])
            self.session_weight_ = decay_factors(
                last, data.reference_ts, self.config.recency_half_life_days
            ).astype(np.float32)
        self.user_items_ = binarize(data.matrix)
        return self

    @property
    def n_items(self) -> int:
        return int(self.sessions_.shape[1])

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._score_history(self.user_items_[users])

    def _score_history(self, history: sparse.csr_array) -> np.ndarray:
        query = sparse.csr_array(history, dtype=np.float32)
        query.data[:] = 1.0
        dots = (query @ self.sessions_.T).tocsr()
        q_len = np.diff(query.indptr).astype(np.float32)
        s_len = np.diff(self.sessions_.indptr).astype(np.float32)
        rows = np.repeat(np.arange(dots.shape[0]), np.diff(dots.indptr))
        dots.data = dots.data / np.sqrt(q_len[rows] * s_len[dots.indices])
        dots.data *= self.session_weight_[dots.indices]
        nearest = keep_top_per_row(dots, self.config.neighbors)
        return np.asarray((nearest @ self.sessions_).todense(), dtype=np.float32)

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        one_hot = sparse.csr_array(
            (np.ones(len(items), np.float32), (np.arange(len(items)), items)),
            shape=(len(items), self.n_items),
        )
        scores = self._score_history(one_hot)
        scores[scores == 0] = -np.inf
        return scores

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "session_weight_": self.session_weight_,
            **sparse_to_arrays("sessions_", self.sessions_),
            **sparse_to_arrays("user_items_", self.user_items_),
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.sessions_ = sparse_from_arrays("sessions_", arrays)
        self.user_items_ = sparse_from_arrays("user_items_", arrays)
        super()._restore(arrays)


def _last_time_per_basket(data: Interactions, n_baskets: int) -> np.ndarray:
    """The newest event time of each basket, in the basket order ``baskets`` produces."""
    codes = basket_codes(data)
    last = np.full(n_baskets, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, codes, data.event_ts)
    return last
