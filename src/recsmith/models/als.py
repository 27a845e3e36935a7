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

A start is still luck: over five seeds iALS alone spread 0.146–0.164 NDCG@10 on one ml-100k
validation split (BENCHMARKS §58). With ``starts`` > 1 iALS fits that many times from
consecutive seeds and serves the mean of their scores brought back to ``factors`` columns
(``averaged``): serving costs what one start did, training ``starts`` fits. Alone it scored
higher on five of six validation splits (§58); in the default pipeline it made calibration
ship item-kNN alone instead of the fused order on ml-100k's validation part, so 1 is the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from pydantic import Field
from scipy import sparse
from threadpoolctl import threadpool_limits

from recsmith.features.interactions import Interactions
from recsmith.ids import IdMap, sort_order
from recsmith.models.base import ModelConfig, Recommender
from recsmith.models.derived import Derivation, unit_rows


class ALSConfig(ModelConfig):
    factors: int = Field(64, ge=1)
    regularization: float = Field(0.05, ge=0)
    alpha: float = Field(2.0, gt=0)
    iterations: int = Field(15, ge=1)
    random_state: int | None = 42
    num_threads: int = Field(0, ge=0, description="0 = all cores")
    starts: int = Field(
        1, ge=1, description="fits from seeds random_state, +1, …; their scores averaged"
    )


#: The item vectors at unit length, kept once per fitted factors and written into the release.
_UNIT_ITEMS = Derivation(
    "unit_items", lambda model: model.item_factors_, unit_rows, similar_only=True
)


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

    def _fit_implicit(
        self, cls: type, data: Interactions, progress: bool, starts: int = 1, **params: Any
    ) -> None:
        """Train an ``implicit`` model class on ``data``'s matrix in id order
        (``canonical_order``) with one BLAS thread (implicit checks the BLAS configuration when
        constructed, so construction happens inside the limit too), ``starts`` times from
        consecutive seeds, and keep the fits' ``averaged`` factors (one fit's when ``starts`` is
        1), back in ``data``'s index order, as contiguous float32 arrays. The average is taken in
        id order too: its QR and SVD would round otherwise for another row order."""
        users, items = canonical_order(data.users), canonical_order(data.items)
        matrix = sparse.csr_matrix(data.matrix)[users][:, items]
        matrix.sort_indices()
        seed = params.pop("random_state", None)
        fits: list[tuple[np.ndarray, np.ndarray]] = []
        with threadpool_limits(limits=1, user_api="blas"):
            for n in range(starts):
                model = cls(**params, random_state=None if seed is None else seed + n)
                model.fit(matrix, show_progress=progress)
                fits.append((model.user_factors, model.item_factors))
            user_factors, item_factors = fits[0] if starts == 1 else averaged(fits)
        self.user_factors_ = _unpermuted(user_factors, users)
        self.item_factors_ = _unpermuted(item_factors, items)


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
    """Score(u, i) = p_u · q_i from implicit's conjugate-gradient ALS, averaged over ``starts``
    fits from consecutive seeds (``averaged``)."""

    name = "ials"
    Config = ALSConfig
    config: ALSConfig

    def fit(self, data: Interactions, *, progress: bool = False) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares

        self._fit_implicit(AlternatingLeastSquares, data, progress, **self.config.model_dump())
        return self


def averaged(fits: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One (user, item) factor pair of as many columns as each fit's, ``rank``, whose scores are
    the best rank-``rank`` approximation (least squares over every user-item pair) of the mean of
    the fits' scores.

    The mean itself is each start's factors side by side, scaled by 1/sqrt(k) on both sides
    (their products summed, divided by k): k·rank columns. It is brought back to ``rank`` so that
    what serves (the artifact, scoring, the ANN index) costs what one start did: with U = Qu Ru
    and V = Qv Rv, U Vᵀ = Qu (Ru Rvᵀ) Qvᵀ, and the SVD of the small square Ru Rvᵀ truncates it
    exactly without forming the users × items matrix (Ru Rvᵀ is at most k·rank square; fewer
    users or items than that make it rectangular, and the result still holds).

    A row that is zero in every fit (an item no event touched: implicit leaves it exactly 0) has
    zero mean scores, so its exact approximation is zero; the QR route leaves ~1e-16 there, which
    unit-length scaling would turn into a direction, so such rows are set back to exact zeros.
    Memory: the side-by-side factors and their QR hold ~36 bytes × rows × k·rank at the peak
    (1M users × 3 starts × 64 factors ≈ 7 GB), against 4 bytes × rows × rank for one start."""
    rank, scale = fits[0][0].shape[1], 1.0 / np.sqrt(len(fits))
    qu, ru = np.linalg.qr(np.hstack([u for u, _ in fits]).astype(np.float64) * scale)
    qv, rv = np.linalg.qr(np.hstack([v for _, v in fits]).astype(np.float64) * scale)
    left, values, right = np.linalg.svd(ru @ rv.T, full_matrices=False)
    root = np.sqrt(values[:rank])
    user_factors = _columns((qu @ left[:, :rank]) * root, rank)
    item_factors = _columns((qv @ right[:rank].T) * root, rank)
    for side, factors in ((0, user_factors), (1, item_factors)):
        factors[~np.any([fit[side].any(axis=1) for fit in fits], axis=0)] = 0.0
    return user_factors, item_factors


def _columns(factors: np.ndarray, rank: int) -> np.ndarray:
    """``factors`` as contiguous float32 with ``rank`` columns: zeros added where fewer users or
    items than ``rank`` left fewer singular values (the artifact's shape stays ``factors``)."""
    out = np.zeros((factors.shape[0], rank), dtype=np.float32)
    out[:, : factors.shape[1]] = factors
    return out
