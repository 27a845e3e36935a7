"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008), trained by the ``implicit`` library.

We add no training code of our own: confidence is 1 + alpha·weight as in implicit, and BLAS is held
to one thread during ``fit`` (implicit is fastest that way and warns otherwise) without changing the
caller's global thread settings.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from pydantic import Field
from scipy import sparse
from threadpoolctl import threadpool_limits

from recsmith.features.interactions import Interactions
from recsmith.models.base import ModelConfig, Recommender
from recsmith.models.derived import derived


class ALSConfig(ModelConfig):
    factors: int = Field(64, ge=1)
    regularization: float = Field(0.05, ge=0)
    alpha: float = Field(2.0, gt=0)
    iterations: int = Field(15, ge=1)
    random_state: int | None = 42
    num_threads: int = Field(0, ge=0, description="0 = all cores")


class FactorModel(Recommender):
    """Shared scoring of matrix-factorisation models: users and items as dense factor vectors."""

    user_factors_: np.ndarray
    item_factors_: np.ndarray

    @property
    def n_items(self) -> int:
        return int(self.item_factors_.shape[0])

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    @property
    def embeddings(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self.user_factors_, self.item_factors_

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        unit = derived(self, "_unit_of", self.item_factors_, _unit_rows)
        return unit[items] @ unit.T

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors_": self.user_factors_, "item_factors_": self.item_factors_}

    def _fit_implicit(self, cls: type, data: Interactions, progress: bool, **params: Any) -> None:
        """Train an ``implicit`` model class with one BLAS thread (implicit checks the BLAS
        configuration when constructed, so construction happens inside the limit too) and keep
        its factors as contiguous float32 arrays."""
        with threadpool_limits(limits=1, user_api="blas"):
            model = cls(**params)
            model.fit(sparse.csr_matrix(data.matrix), show_progress=progress)
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)


class ImplicitALS(FactorModel):
    """Score(u, i) = p_u · q_i from implicit's conjugate-gradient ALS."""

    name = "ials"
    Config = ALSConfig
    config: ALSConfig

    def fit(self, data: Interactions, *, progress: bool = False) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares

        self._fit_implicit(AlternatingLeastSquares, data, progress, **self.config.model_dump())
        return self


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` scaled to unit length (cosine similarity as an inner product): normalising
    the whole catalogue costs more than one item's scores, so ``_item_scores`` keeps it
    (``derived``) rather than redoing it on every ``/similar`` request (issue #19)."""
    norms = np.linalg.norm(vectors, axis=1) + 1e-12
    return vectors / norms[:, None]
