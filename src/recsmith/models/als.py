"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008), trained by the ``implicit`` library.

We add no training code of our own: confidence is 1 + alpha·weight as in implicit, and BLAS is held
to one thread during ``fit`` (implicit is fastest that way and warns otherwise) without changing the
caller's global thread settings.

implicit is fitted on the matrix with its users and items in the order of their ids
(``canonical_order``), not in the order the events first named them: its seeded start gives row
``n`` the ``n``-th random vector, so the same events read in another order (a file sorted another
way, the store's order against the file's) started every id elsewhere and trained other factors —
iALS alone scored 0.019–0.027 NDCG@10 on one validation split over six row orders of the same
events (BENCHMARKS §49), enough to flip calibration's choice. In id order the same events give
bit-identical factors, whatever their order and however many threads implicit runs (each user's
and each item's solve is its own; measured identical at 1, 2 and 8 threads and under load).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from pydantic import Field
from scipy import sparse
from threadpoolctl import threadpool_limits

from recsmith.features.interactions import Interactions
from recsmith.ids import IdMap, sort_order
from recsmith.models.base import ModelConfig, Recommender
from recsmith.models.derived import Derivation


class ALSConfig(ModelConfig):
    factors: int = Field(64, ge=1)
    regularization: float = Field(0.05, ge=0)
    alpha: float = Field(2.0, gt=0)
    iterations: int = Field(15, ge=1)
    random_state: int | None = 42
    num_threads: int = Field(0, ge=0, description="0 = all cores")


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` scaled to unit length (cosine similarity as an inner product): normalising
    the whole catalogue costs more than one item's scores, so ``_item_scores`` keeps it
    (``derived``) rather than redoing it on every ``/similar`` request (issue #19)."""
    norms = np.linalg.norm(vectors, axis=1) + 1e-12
    return vectors / norms[:, None]


#: The item vectors at unit length, kept once per fitted factors and written into the release.
_UNIT_ITEMS = Derivation("unit_items", lambda model: model.item_factors_, _unit_rows)


class FactorModel(Recommender):
    """Shared scoring of matrix-factorisation models: users and items as dense factor vectors."""

    derivations = (_UNIT_ITEMS,)
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
        unit = _UNIT_ITEMS.of(self)
        return unit[items] @ unit.T

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors_": self.user_factors_, "item_factors_": self.item_factors_}

    def _fit_implicit(self, cls: type, data: Interactions, progress: bool, **params: Any) -> None:
        """Train an ``implicit`` model class on ``data``'s matrix in id order
        (``canonical_order``) with one BLAS thread (implicit checks the BLAS configuration when
        constructed, so construction happens inside the limit too) and keep its factors, back in
        ``data``'s index order, as contiguous float32 arrays."""
        users, items = canonical_order(data.users), canonical_order(data.items)
        matrix = sparse.csr_matrix(data.matrix)[users][:, items]
        matrix.sort_indices()
        with threadpool_limits(limits=1, user_api="blas"):
            model = cls(**params)
            model.fit(matrix, show_progress=progress)
        self.user_factors_ = _unpermuted(model.user_factors, users)
        self.item_factors_ = _unpermuted(model.item_factors, items)


def canonical_order(ids: IdMap) -> np.ndarray:
    """The indices of ``ids`` in the order of the ids themselves: an order the same ids have
    however the events that named them were ordered."""
    return sort_order(ids.to_array())


def _unpermuted(factors: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rows fitted in ``order`` put back at their indices, as contiguous float32."""
    out = np.empty(factors.shape, dtype=np.float32)
    out[order] = factors
    return out


class ImplicitALS(FactorModel):
    """Score(u, i) = p_u · q_i from implicit's conjugate-gradient ALS."""

    name = "ials"
    Config = ALSConfig
    config: ALSConfig

    def fit(self, data: Interactions, *, progress: bool = False) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares

        self._fit_implicit(AlternatingLeastSquares, data, progress, **self.config.model_dump())
        return self
