"""Non-personalised baselines: ``popular`` (all-time) and ``trending`` (recency-decayed).

They are also the fallback for users the personalised models do not know, so they must never fail.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field

from recsmith.features.interactions import Interactions, decay_factors
from recsmith.models.base import ModelConfig, Recommender


class PopularConfig(ModelConfig):
    """``half_life_days`` None counts distinct users per item; a number counts decayed events."""

    half_life_days: float | None = Field(None, gt=0)


class TrendingConfig(PopularConfig):
    half_life_days: float | None = Field(7.0, gt=0)


class Popular(Recommender):
    """Items ranked by how many users interacted with them (or by decayed event counts)."""

    name = "popular"
    Config = PopularConfig
    config: PopularConfig
    item_scores_: np.ndarray

    def fit(self, data: Interactions) -> Self:
        if self.config.half_life_days is None:
            counts = np.bincount(data.matrix.indices, minlength=data.n_items)
        else:
            decay = decay_factors(data.event_ts, data.reference_ts, self.config.half_life_days)
            counts = np.bincount(data.event_items, weights=decay, minlength=data.n_items)
        # a tiny index-based tie-breaker keeps rankings deterministic across platforms
        self.item_scores_ = (counts - np.arange(data.n_items) * 1e-9).astype(np.float32)
        return self

    @property
    def n_items(self) -> int:
        return len(self.item_scores_)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.item_scores_, (len(users), 1))

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        return np.tile(self.item_scores_, (len(items), 1))

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"item_scores_": self.item_scores_}


class Trending(Popular):
    """Popularity with a short half-life: what is picking up now."""

    name = "trending"
    Config = TrendingConfig
