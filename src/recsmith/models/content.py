"""Content-based: recommend items whose metadata resembles what the user interacted with.

Items are TF-IDF vectors over categories, tags and text (``features.items``); a user's profile is
the time-decayed, weight-averaged vector of their items. Because only metadata is needed, an item
with zero interactions is recommendable the moment it is in the catalogue: the cold-item answer.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import Interactions, decay_factors
from recsmith.features.items import tfidf_vectors
from recsmith.models.base import ModelConfig, Recommender, sparse_from_arrays, sparse_to_arrays


class ContentConfig(ModelConfig):
    half_life_days: float | None = Field(
        30.0, gt=0, description="older interactions count less in the profile; None = no decay"
    )
    min_df: int = Field(1, ge=1, description="drop tokens used by fewer items than this")


class ContentBased(Recommender):
    """Score(u, i) = cos(profile_u, v_i), profile_u = Σ decayed weight · v_j over u's items j."""

    name = "content"
    Config = ContentConfig
    config: ContentConfig
    item_vectors_: sparse.csr_array  # [n_items, n_tokens], L2-normalised rows
    user_items_: sparse.csr_array  # decayed weights

    def fit(self, data: Interactions) -> Self:
        if data.catalog is None or len(data.catalog) == 0:
            raise ValueError("content: needs item metadata (import or send the item catalogue)")
        order = data.items.to_index(data.catalog.item_ids)
        self.item_vectors_ = tfidf_vectors(
            data.catalog, order, data.n_items, min_df=self.config.min_df
        )
        decay = decay_factors(data.event_ts, data.reference_ts, self.config.half_life_days)
        weights = np.maximum(data.event_weights * decay, 0).astype(np.float32)
        profile = sparse.csr_array(
            (weights, (data.event_users, data.event_items)), shape=data.matrix.shape
        )
        profile.sum_duplicates()
        self.user_items_ = profile
        return self

    @property
    def n_items(self) -> int:
        return int(self.item_vectors_.shape[0])

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._score_history(self.user_items_[users])

    def _score_history(self, history: sparse.csr_array) -> np.ndarray:
        profile = (sparse.csr_array(history, dtype=np.float32) @ self.item_vectors_).tocsr()
        norms = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        profile = sparse.diags_array(1.0 / norms) @ profile
        return np.asarray((profile @ self.item_vectors_.T).todense(), dtype=np.float32)

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        scores = np.asarray(
            (self.item_vectors_[items] @ self.item_vectors_.T).todense(), np.float32
        )
        scores[scores == 0] = -np.inf  # nothing in common: not similar
        return scores

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            **sparse_to_arrays("item_vectors_", self.item_vectors_),
            **sparse_to_arrays("user_items_", self.user_items_),
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_vectors_ = sparse_from_arrays("item_vectors_", arrays)
        self.user_items_ = sparse_from_arrays("user_items_", arrays)
