"""Bayesian personalised ranking (Rendle et al. 2009), trained by the ``implicit`` library.

implicit appends a bias column to the item factors and a constant 1 to the user factors, so the
plain dot product already includes the item bias.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field

from recsmith.features.interactions import Interactions
from recsmith.models.als import FactorModel
from recsmith.models.base import ModelConfig


class BPRConfig(ModelConfig):
    factors: int = Field(64, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    regularization: float = Field(0.01, ge=0)
    iterations: int = Field(100, ge=1)
    random_state: int | None = 42
    num_threads: int = Field(0, ge=0, description="0 = all cores; 1 makes fits reproducible")


class BPR(FactorModel):
    """Score(u, i) = p_u · q_i + b_i from implicit's SGD on sampled (user, pos, neg) triples."""

    name = "bpr"
    Config = BPRConfig
    config: BPRConfig

    def fit(self, data: Interactions, *, progress: bool = False) -> Self:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        self._fit_implicit(BayesianPersonalizedRanking, data, progress, **self.config.model_dump())
        return self
