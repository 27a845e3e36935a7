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


def spd_inverse(matrix: np.ndarray, block: int = 2048) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix, computed in place (``matrix`` is
    consumed). Cholesky then LAPACK's ``potri``, which inverts from the factor directly: about
    n³ flops instead of the 2.3·n³ of solving against an identity (``cho_solve``), and no second
    n × n matrix. Measured at 17,632 items (lastfm) in the EASE fit: see BENCHMARKS.md §1."""
    n = matrix.shape[0]
    m = matrix.T  # Fortran order over the same memory (and, G being symmetric, the same matrix)
    potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (m,))
    factor, info = potrf(m, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise ValueError(f"matrix is not positive definite (LAPACK potrf info {info})")
    inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ValueError(f"matrix is singular (LAPACK potri info {info})")
    for lo in range(0, n, block):  # potri fills one triangle: mirror it, a block at a time
        hi = min(lo + block, n)
        inverse[lo:hi, :lo] = inverse[:lo, lo:hi].T
        tile = inverse[lo:hi, lo:hi]
        tile[:] = np.triu(tile) + np.triu(tile, 1).T
    return inverse.T  # symmetric: the transpose is the same matrix, in C order


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
        p = spd_inverse(gram)
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
