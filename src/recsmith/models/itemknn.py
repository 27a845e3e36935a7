"""Item-based k-nearest neighbours with shrunk cosine similarity.

sim(i, j) = <x_i, x_j> / (|x_i| |x_j| + shrinkage): the shrinkage term damps similarities that rest
on few co-occurrences. Each item keeps only its ``neighbors`` most similar items, so the model is a
sparse items×items matrix and scoring is one sparse product per chunk of users.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import Interactions
from recsmith.models.base import ModelConfig, Recommender, sparse_from_arrays, sparse_to_arrays


class ItemKNNConfig(ModelConfig):
    neighbors: int = Field(100, ge=1)
    shrinkage: float = Field(10.0, ge=0)
    binary: bool = Field(False, description="treat every interaction as 1 instead of its weight")


def keep_top_per_row(matrix: sparse.csr_array, k: int) -> sparse.csr_array:
    """The ``k`` largest entries of each row, vectorised (one lexsort, no loop over rows)."""
    matrix = matrix.tocsr()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    order = np.lexsort((-matrix.data, rows))
    rank = np.arange(len(order)) - matrix.indptr[rows[order]]
    keep = order[rank < k]
    return sparse.csr_array(
        (matrix.data[keep], (rows[keep], matrix.indices[keep])),
        shape=matrix.shape,
        dtype=np.float32,
    )


class ItemKNN(Recommender):
    """Score(u, j) = Σ_i x_ui · sim(i, j) over the user's items i."""

    name = "itemknn"
    Config = ItemKNNConfig
    config: ItemKNNConfig
    similarity_: sparse.csr_array
    user_items_: sparse.csr_array

    def fit(self, data: Interactions) -> Self:
        x = data.matrix.astype(np.float32)
        if self.config.binary:
            x = x.copy()
            x.data[:] = 1.0
        xt = x.T.tocsr()
        dots = (xt @ xt.T).tocsr()
        dots.setdiag(0)
        dots.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        rows = np.repeat(np.arange(dots.shape[0]), np.diff(dots.indptr))
        dots.data = dots.data / (norms[rows] * norms[dots.indices] + self.config.shrinkage + 1e-12)
        self.similarity_ = keep_top_per_row(dots, self.config.neighbors)
        self.user_items_ = x
        return self

    @property
    def n_items(self) -> int:
        return int(self.similarity_.shape[0])

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._score_history(self.user_items_[users])

    def _score_history(self, history: sparse.csr_array) -> np.ndarray:
        return np.asarray((history @ self.similarity_).todense(), dtype=np.float32)

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        scores = np.asarray(self.similarity_[items].todense(), dtype=np.float32)
        scores[scores == 0] = -np.inf  # only real neighbours are similar
        return scores

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            **sparse_to_arrays("similarity_", self.similarity_),
            **sparse_to_arrays("user_items_", self.user_items_),
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.similarity_ = sparse_from_arrays("similarity_", arrays)
        self.user_items_ = sparse_from_arrays("user_items_", arrays)
