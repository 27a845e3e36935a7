"""User-based k-nearest neighbours: recommend what the most similar users had.

sim(u, v) = <x_u, x_v> / (|x_u| |x_v| + shrinkage). Similarities are computed per chunk of queried
users against everyone (one sparse product), never as a full users×users matrix, so memory stays
bounded by the chunk size whatever the number of users.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import Interactions, binarize
from recsmith.models.base import ModelConfig, Recommender, sparse_from_arrays, sparse_to_arrays
from recsmith.models.itemknn import keep_top_per_row


class UserKNNConfig(ModelConfig):
    neighbors: int = Field(50, ge=1)
    shrinkage: float = Field(10.0, ge=0)
    binary: bool = Field(False, description="treat every interaction as 1 instead of its weight")


class UserKNN(Recommender):
    """Score(u, i) = Σ_v sim(u, v) · x_vi over u's ``neighbors`` most similar users v."""

    name = "userknn"
    Config = UserKNNConfig
    config: UserKNNConfig
    user_items_: sparse.csr_array
    norms_: np.ndarray

    def fit(self, data: Interactions) -> Self:
        x = binarize(data.matrix) if self.config.binary else data.matrix.astype(np.float32)
        self.user_items_ = x.tocsr()
        self.norms_ = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel()).astype(np.float32)
        return self

    @property
    def n_items(self) -> int:
        return int(self.user_items_.shape[1])

    def _neighbours(self, users: np.ndarray) -> sparse.csr_array:
        """Top-``neighbors`` shrunk cosine similarities of each queried user (self excluded)."""
        x = self.user_items_
        dots = (x[users] @ x.T).tocsr()
        rows = np.repeat(np.arange(dots.shape[0]), np.diff(dots.indptr))
        denom = self.norms_[users][rows] * self.norms_[dots.indices] + self.config.shrinkage + 1e-12
        dots.data = dots.data / denom
        dots.data[dots.indices == users[rows]] = 0.0
        dots.eliminate_zeros()
        return keep_top_per_row(dots, self.config.neighbors)

    def _score(self, users: np.ndarray) -> np.ndarray:
        sims = self._neighbours(np.asarray(users, dtype=np.int64))
        return np.asarray((sims @ self.user_items_).todense(), dtype=np.float32)

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        """Items co-consumed by the same users, cosine-normalised (user-based models have no item
        space of their own, so item-to-item falls back to co-occurrence)."""
        xt = self.user_items_.T.tocsr()
        dots = np.asarray((xt[items] @ self.user_items_).todense(), dtype=np.float32)
        norms = np.sqrt(np.asarray(xt.multiply(xt).sum(axis=1)).ravel()) + 1e-12
        scores = dots / (norms[items][:, None] * norms[None, :])
        scores[scores == 0] = -np.inf
        return scores

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"norms_": self.norms_, **sparse_to_arrays("user_items_", self.user_items_)}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_items_ = sparse_from_arrays("user_items_", arrays)
        super()._restore(arrays)
