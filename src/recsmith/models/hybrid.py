"""Hybrid: a weighted fusion of other models, with the weights learnt on a validation split.

Each component's scores are z-normalised per user (their scales differ by orders of magnitude),
then summed with weights. Unless weights are given, ``fit`` holds out each user's latest
``validation_share`` of events, fits the components on the rest, and picks the weights on a simplex
grid that maximise NDCG@``k`` on the held-out events; the components are then refit on everything.
A cold item (metadata, no interactions) still ranks through any content component, since the
others score it 0.

The grid search scores lists with ``evaluation.metrics``: a pure function module, imported here
rather than duplicated.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Self

import numpy as np
from pydantic import Field, field_validator
from scipy import sparse

from recsmith.features.interactions import Interactions
from recsmith.models.base import ModelConfig, Recommender, _mask
from recsmith.models.topk import top_k


class HybridConfig(ModelConfig):
    components: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"ease": {}, "ials": {}, "itemknn": {}}
    )
    weights: dict[str, float] | None = Field(None, description="fixed weights; None = learn them")
    validation_share: float = Field(0.1, gt=0, lt=0.5)
    grid_steps: int = Field(5, ge=1, description="weights move in steps of 1/grid_steps")
    k: int = Field(10, ge=1, description="list length the weights are tuned for")
    max_validation_users: int = Field(2000, ge=10)
    random_state: int = 0

    @field_validator("components")
    @classmethod
    def _known(cls, components: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not components or "hybrid" in components:
            raise ValueError("components: list at least one model, and not hybrid itself")
        return components


def last_share_per_user(users: np.ndarray, ts: np.ndarray, share: float) -> np.ndarray:
    """Mask of each user's latest ``share`` of events (at least one, for users with two or more):
    every user keeps a past to learn from and a future to be scored on."""
    order = np.lexsort((ts, users))
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, counts)
    n_held = np.where(counts >= 2, np.maximum(1, np.floor(counts * share)), 0).astype(np.int64)
    mask = np.zeros(len(users), dtype=bool)
    mask[order] = rank >= np.repeat(counts - n_held, counts)
    return mask


def zscore_rows(scores: np.ndarray) -> np.ndarray:
    """Per-row standardisation over finite entries; a non-finite entry (an item the component
    cannot score) becomes the row's minimum − 1, and a row with nothing finite becomes all 0."""
    finite = np.isfinite(scores)
    count = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    values = np.where(finite, scores, 0.0)
    mean = values.sum(axis=1, keepdims=True) / count
    std = np.sqrt((np.where(finite, scores - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / count)
    z = np.where(finite, (values - mean) / np.where(std > 0, std, 1.0), np.inf)
    floor = z.min(axis=1, keepdims=True)
    floor = np.where(np.isfinite(floor), floor - 1.0, 0.0)
    return np.where(finite, z, floor).astype(np.float32)


class Hybrid(Recommender):
    """Score(u, i) = Σ_c w_c · z_c(u, i) over the component models c."""

    name = "hybrid"
    Config = HybridConfig
    config: HybridConfig
    weights_: np.ndarray  # one weight per component, in ``components`` order

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.components: list[Recommender] = []

    def _new_components(self) -> list[Recommender]:
        from recsmith.models.registry import create  # the registry lists this class too

        return [create(name, **params) for name, params in self.config.components.items()]

    def fit(self, data: Interactions) -> Self:
        names = list(self.config.components)
        if self.config.weights is not None:
            missing = set(names) - set(self.config.weights)
            if missing:
                raise ValueError(f"weights: no weight for {sorted(missing)}")
            weights = np.array([self.config.weights[n] for n in names], dtype=np.float32)
        else:
            weights = self._learn_weights(data)
        self.components = [c.fit(data) for c in self._new_components()]
        self.weights_ = weights
        return self

    def _learn_weights(self, data: Interactions) -> np.ndarray:
        from recsmith.evaluation.metrics import ndcg_at_k

        n = len(self.config.components)
        held = last_share_per_user(data.event_users, data.event_ts, self.config.validation_share)
        train = data.subset(~held)
        # truth as validation holds it: an item the user had in ``train``, rated 0 or below
        # too, is never served, so no truth either (it would be masked: unreachable)
        truth = train.new_to_users((data.subset(held).matrix > 0).astype(np.float32))
        users = np.flatnonzero((np.diff(truth.indptr) > 0) & (np.diff(train.matrix.indptr) > 0))
        if len(users) == 0 or n == 1:
            return np.full(n, 1.0 / n, dtype=np.float32)
        rng = np.random.default_rng(self.config.random_state)
        if len(users) > self.config.max_validation_users:
            users = np.sort(rng.choice(users, self.config.max_validation_users, replace=False))
        z = [zscore_rows(c.fit(train)._score(users)) for c in self._new_components()]
        # masked as serving masks: every item the user had, rated 0 or below too (issue #15)
        seen, truth_rows = train.had_pairs()[users], truth[users]
        best, best_ndcg = np.full(n, 1.0 / n, dtype=np.float32), -1.0
        steps = self.config.grid_steps
        for combo in itertools.product(range(steps + 1), repeat=n):
            if sum(combo) != steps:
                continue
            w = np.asarray(combo, dtype=np.float32) / steps
            fused = sum(wc * zc for wc, zc in zip(w, z, strict=True))
            assert isinstance(fused, np.ndarray)
            _mask(fused, seen)
            score = float(ndcg_at_k(top_k(fused, self.config.k).ids, truth_rows).mean())
            if score > best_ndcg:
                best, best_ndcg = w, score
        return best

    @property
    def n_items(self) -> int:
        return self.components[0].n_items

    def check_is_fitted(self) -> None:
        super().check_is_fitted()
        for c in self.components:
            c.check_is_fitted()

    def _fuse(self, parts: list[np.ndarray]) -> np.ndarray:
        fused = np.zeros_like(parts[0])
        for w, p in zip(self.weights_, parts, strict=True):
            if w:
                fused += w * zscore_rows(p)
        return fused

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._fuse([c._score(users) for c in self.components])

    def _score_history(self, history: sparse.csr_array) -> np.ndarray:
        usable = [
            (w, c)
            for w, c in zip(self.weights_, self.components, strict=True)
            if c.scores_histories
        ]
        if not usable:
            raise NotImplementedError("no hybrid component can score an item history")
        fused = np.zeros((history.shape[0], self.n_items), dtype=np.float32)
        for w, c in usable:
            fused += w * zscore_rows(c._score_history(history))
        return fused

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        return self._fuse([c._item_scores(items) for c in self.components])

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"weights_": self.weights_}

    def save(self, path: Path, *, answers_similar: bool = True) -> None:
        super().save(path, answers_similar=answers_similar)
        for name, component in zip(self.config.components, self.components, strict=True):
            component.save(path / "components" / name, answers_similar=answers_similar)

    @classmethod
    def load(cls, path: Path) -> Self:
        from recsmith.models.registry import model_class

        model = super().load(path)
        model.components = [
            model_class(
                json.loads((path / "components" / n / "model.json").read_text())["name"]
            ).load(path / "components" / n)
            for n in model.config.components
        ]
        return model
