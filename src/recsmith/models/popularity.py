"""Non-personalised baselines: ``popular`` (all-time) and ``trending`` (recency-decayed).

They are also the fallback for users the personalised models do not know, so they must never fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

import numpy as np
from pydantic import Field

from recsmith.features.interactions import Interactions, decay_factors
from recsmith.models.base import ModelConfig, Recommender
from recsmith.models.topk import TopK


class PopularConfig(ModelConfig):
    """``half_life_days`` None counts distinct users per item; a number counts decayed events."""

    half_life_days: float | None = Field(None, gt=0)


class TrendingConfig(PopularConfig):
    half_life_days: float | None = Field(7.0, gt=0)


class Popular(Recommender):
    """Items ranked by how many users interacted with them (or by decayed event counts).

    Equal counts are common (every item seen by one user) and must order the same everywhere:
    ties go to the lower item index by an exact rank, not by a tiny float term that float32 loses
    once counts exceed a few units (issue #3: numpy versions then ordered tied items differently).
    The reported scores stay the counts."""

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
        self.item_scores_ = counts.astype(np.float32)
        return self

    def _rank_scores(self) -> np.ndarray:
        """n_items for the best item down to 1 for the last, ties by lower index first: distinct
        and exact in float64, so any top-k kernel orders them the same way."""
        order = np.argsort(-self.item_scores_, kind="stable")
        ranks = np.empty(self.n_items, np.float64)
        ranks[order] = np.arange(self.n_items, 0, -1, dtype=np.float64)
        return ranks

    def _chunked_top_k(self, n_rows: int, block: Callable[[int, int], np.ndarray], k: int) -> TopK:
        """Top-k by exact rank (masked items stay at -inf), reported with the counts."""
        ranks = self._rank_scores()

        def ranked(start: int, stop: int) -> np.ndarray:
            return np.where(np.isneginf(block(start, stop)), -np.inf, ranks)

        top = super()._chunked_top_k(n_rows, ranked, k)
        found = top.ids >= 0
        scores = np.where(found, self.item_scores_[np.where(found, top.ids, 0)], -np.inf)
        return TopK(top.ids, scores.astype(np.float32))

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
