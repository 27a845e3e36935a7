"""EASE (Steck 2019): a closed-form item-item linear model, B = I − P / diag(P), P = (XᵀX + λI)⁻¹.

The solve is dense in the number of items, so memory grows with its square: above ``max_items`` the
model keeps only the most popular items (the "item-subset path"); the others get no score and the
serving fill completes lists from popularity. 20k items need ~3.2 GB in float64, ~1.6 GB in float32,
which is what ``dtype`` chooses between.
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
import scipy.linalg
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import Interactions, binarize
from recsmith.models.base import ModelConfig, Recommender, sparse_from_arrays, sparse_to_arrays


class EASEConfig(ModelConfig):
    regularization: float = Field(250.0, gt=0, description="λ added to the Gram diagonal")
    max_items: int = Field(20_000, ge=2, description="keep only the most popular items above this")
    dtype: Literal["float32", "float64"] = "float32"
    binary: bool = Field(True, description="fit on 0/1 interactions (the original EASE)")


class EASE(Recommender):
    """Score(u) = x_u · B over the kept items; other items score -inf."""

    name = "ease"
    Config = EASEConfig
    config: EASEConfig
    weights_: np.ndarray  # [n_kept, n_kept]
    kept_: np.ndarray  # item indices the weights cover
    user_items_: sparse.csr_array
    n_items_: np.ndarray  # scalar array: catalogue size

    def fit(self, data: Interactions) -> Self:
        cfg = self.config
        x = binarize(data.matrix) if cfg.binary else data.matrix.astype(np.float32)
        if data.n_items > cfg.max_items:
            counts = np.bincount(x.indices, minlength=data.n_items)
            kept = np.sort(np.argsort(-counts, kind="stable")[: cfg.max_items])
        else:
            kept = np.arange(data.n_items)
        xk = x[:, kept]
        gram = (xk.T @ xk).toarray().astype(cfg.dtype)
        gram[np.diag_indices_from(gram)] += cfg.regularization
        # P = G⁻¹ via Cholesky (G is symmetric positive definite): faster and steadier than inv
        p = scipy.linalg.cho_solve(
            scipy.linalg.cho_factor(gram, overwrite_a=True, check_finite=False),
            np.eye(len(kept), dtype=gram.dtype),
            overwrite_b=True,
            check_finite=False,
        )
        weights = -p / np.diag(p)[None, :]
        weights[np.diag_indices_from(weights)] = 0.0
        # C order: sparse @ dense copies a Fortran-ordered operand on every call
        self.weights_ = np.ascontiguousarray(weights, dtype=np.float32)
        self.kept_ = kept.astype(np.int64)
        self.user_items_ = x
        self.n_items_ = np.asarray(data.n_items)
        return self

    @property
    def n_items(self) -> int:
        return int(self.n_items_)

    def _spread(self, block: np.ndarray) -> np.ndarray:
        """Scores over kept items → over the whole catalogue (-inf elsewhere)."""
        if len(self.kept_) == self.n_items:
            return block
        out = np.full((block.shape[0], self.n_items), -np.inf, dtype=np.float32)
        out[:, self.kept_] = block
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._score_history(self.user_items_[users])

    def _score_history(self, history: sparse.csr_array) -> np.ndarray:
        rows = sparse.csr_array(history)[:, self.kept_]
        if self.config.binary:
            rows.data[:] = 1.0
        return self._spread(np.asarray(rows @ self.weights_, dtype=np.float32))

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.kept_, items)
        inside = (pos < len(self.kept_)) & (
            self.kept_[np.minimum(pos, len(self.kept_) - 1)] == items
        )
        block = np.full((len(items), len(self.kept_)), -np.inf, dtype=np.float32)
        block[inside] = self.weights_[pos[inside]]
        return self._spread(block)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "weights_": self.weights_,
            "kept_": self.kept_,
            "n_items_": self.n_items_,
            **sparse_to_arrays("user_items_", self.user_items_),
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_items_ = sparse_from_arrays("user_items_", arrays)
        super()._restore(arrays)
